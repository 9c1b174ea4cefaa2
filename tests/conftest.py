"""Shared fixtures: migrated databases on every backend, configurations."""
from __future__ import annotations

from typing import Iterator

import pytest

from stratus import conf as conf_mod
from stratus.db import migration
from stratus.db.session import Database
from tests import dbs


@pytest.fixture(params=dbs.BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path) -> Iterator[Database]:
    """A migrated, empty database on SQLite, PostgreSQL and MariaDB in turn."""
    backend = request.param
    if not dbs.available(backend):
        pytest.skip(f"{backend} is not reachable")
    with dbs.scratch_database(backend, str(tmp_path)) as url:
        migration.upgrade(url)
        db = Database(url)
        try:
            yield db
        finally:
            db.dispose()


@pytest.fixture
def sqlite_db(tmp_path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'stratus.sqlite'}"
    migration.upgrade(url)
    db = Database(url)
    yield db
    db.dispose()


@pytest.fixture
def conf(tmp_path):
    return conf_mod.load(None, {("DEFAULT", "state_path"): str(tmp_path / "state"),
                                ("DEFAULT", "report_interval"): 1.0,
                                ("api", "port"): 0})


@pytest.fixture
def cloud(tmp_path):
    """Every service in this process on the in-process transport and SQLite."""
    from tests.cloud import InProcessCloud

    c = InProcessCloud(tmp_path)
    yield c
    c.close()
