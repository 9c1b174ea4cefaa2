"""Engine and transactions.

``Database.write()`` opens a read-write transaction, ``Database.read()`` a
read-only one. On SQLite (the embedded default) writers are serialised inside
the process and take the write lock up front (``BEGIN IMMEDIATE``) so that
concurrent writers wait for each other (busy_timeout) instead of failing with
"database is locked"; readers never wait, thanks to WAL. PostgreSQL and
MariaDB need none of that.
"""
from __future__ import annotations

import contextlib
import os
import threading
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout = 30000")
        cur.execute("PRAGMA foreign_keys = ON")
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("stratus_write") else "BEGIN")


def ensure_sqlite_dir(url: str) -> str:
    """Create the directory of a SQLite file URL; returns the file path ('' if none)."""
    if not url.startswith("sqlite"):
        return ""
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return path
    return ""


def make_engine(url: str, pool_size: int = 10, max_overflow: int = 20) -> Engine:
    if url.startswith("sqlite"):
        if ensure_sqlite_dir(url):
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                                   pool_size=pool_size, max_overflow=max_overflow)
        else:
            engine = create_engine("sqlite://", connect_args={"check_same_thread": False},
                                   poolclass=StaticPool)
        _sqlite_setup(engine)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=max_overflow,
                         pool_pre_ping=True, pool_recycle=3600)


class Database:
    """One per process: the engine plus read and write transactions."""

    def __init__(self, url: str, pool_size: int = 10, max_overflow: int = 20) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size, max_overflow)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._write_lock: contextlib.AbstractContextManager = (
            threading.RLock() if self.is_sqlite else contextlib.nullcontext())
        self._sessions = sessionmaker(expire_on_commit=False)

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A read-write transaction; commits on success, rolls back on error."""
        with self._write_lock:
            with self.engine.connect() as conn:
                conn.info["stratus_write"] = True
                try:
                    with self._sessions(bind=conn) as session:
                        yield session
                        session.commit()
                finally:
                    conn.info.pop("stratus_write", None)

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """A transaction for reads only; never commits."""
        with self.engine.connect() as conn:
            with self._sessions(bind=conn) as session:
                yield session
                session.rollback()

    def dispose(self) -> None:
        self.engine.dispose()
