"""The Alembic migrations build exactly the tables the models describe, on
every backend: autogenerate finds nothing to change after ``upgrade``."""
from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from stratus.db import migration
from stratus.db.models import Base
from tests import dbs


@pytest.mark.parametrize("backend_name", dbs.BACKENDS)
def test_migrations_match_the_models(backend_name: str, tmp_path: Any) -> None:
    if not dbs.available(backend_name):
        pytest.skip(f"{backend_name} is not reachable")
    with dbs.scratch_database(backend_name, str(tmp_path)) as url:
        migration.upgrade(url)
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                ctx = MigrationContext.configure(conn, opts={"compare_type": True})
                diff = compare_metadata(ctx, Base.metadata)
                domains = conn.execute(sa.text("SELECT id, name, enabled FROM domains")).all()
        finally:
            engine.dispose()
    assert diff == []
    # Data the migrations seed.
    assert [(r[0], r[1], bool(r[2])) for r in domains] == [("default", "Default", True)]
