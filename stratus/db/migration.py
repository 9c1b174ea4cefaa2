"""Alembic migrations: ``stratus db sync`` upgrades a database to head."""
from __future__ import annotations

import os

from alembic import command
from alembic.config import Config as AlembicConfig

from stratus.db.session import ensure_sqlite_dir

_HERE = os.path.dirname(os.path.abspath(__file__))


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", os.path.join(_HERE, "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "heads") -> None:
    """Upgrade to every head: features add their tables in migrations of their
    own (branches off a common base) until a merge revision joins them."""
    ensure_sqlite_dir(url)
    command.upgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    """The revision (or, with several heads, the heads joined by commas)."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            heads = MigrationContext.configure(conn).get_current_heads()
            return ",".join(sorted(heads)) if heads else None
    finally:
        engine.dispose()
