"""Throw-away databases on SQLite, PostgreSQL and MariaDB for tests."""
from __future__ import annotations

import contextlib
import os
import secrets
import socket
from typing import Iterator

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MYSQL_ADMIN = "mysql+pymysql://root@127.0.0.1:3306/"
BACKENDS = ("sqlite", "postgresql", "mysql")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def available(backend: str) -> bool:
    return {"sqlite": True, "postgresql": port_open(5432), "mysql": port_open(3306)}[backend]


@contextlib.contextmanager
def scratch_database(backend: str, tmpdir: str) -> Iterator[str]:
    """Create an empty database, yield its URL, drop it afterwards."""
    from sqlalchemy import create_engine, text

    if backend == "sqlite":
        yield f"sqlite:///{os.path.join(tmpdir, 'stratus.sqlite')}"
        return
    name = "stratus_t_" + secrets.token_hex(4)
    admin_url = PG_ADMIN if backend == "postgresql" else MYSQL_ADMIN
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        if backend == "postgresql":
            yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        else:
            yield f"mysql+pymysql://root@127.0.0.1:3306/{name}"
    finally:
        with admin.connect() as conn:
            if backend == "postgresql":
                conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


def empty_tables(db) -> None:  # type: ignore[no-untyped-def]
    """Delete every row, children first (reuse a migrated server database)."""
    from stratus.db.models import Base

    with db.write() as s:
        for table in reversed(Base.metadata.sorted_tables):
            s.execute(table.delete())
