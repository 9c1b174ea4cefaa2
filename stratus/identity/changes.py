"""The identity change counter: how every API process learns, at once, that
identity data changed.

``identity_state`` holds one row whose ``generation`` every identity write
bumps *in its own transaction* (:func:`bump`): disabling or deleting a user or
project, a password change, a role grant or revocation, a group membership
change, an application credential deleted, a token revoked... An API process
caches what validating a token needs (the revoked audit ids, each (user,
scope) pair's names, roles and token generations) together with the counter
value it read *before* loading them; on every authenticated request it reads
the counter again (one primary-key read) and drops the caches when it moved.

Why this is exact across processes: the write and the bump commit together,
so a request that starts after the write committed reads the new counter and
reloads. Why it is cheap: one tiny read per request, shared between
concurrent requests (:class:`ChangeCounter` lets a request reuse a read that
*started after it arrived*, which is as good as its own), and nothing else
while identity data does not change.
"""
from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stratus.db.models import IdentityState
from stratus.db.session import Database

_READ = select(IdentityState.generation).where(IdentityState.id == 1)
_READ_SQL = "SELECT generation FROM identity_state WHERE id = 1"


def bump(s: Session) -> None:
    """Bump the counter in the caller's transaction (creating its row if missing)."""
    result = s.execute(update(IdentityState).where(IdentityState.id == 1)
                       .values(generation=IdentityState.generation + 1))
    if result.rowcount:  # type: ignore[attr-defined]
        return
    try:
        with s.begin_nested():
            s.add(IdentityState(id=1, generation=1))
    except IntegrityError:  # created concurrently: bump that one
        s.execute(update(IdentityState).where(IdentityState.id == 1)
                  .values(generation=IdentityState.generation + 1))


def read(db: Database) -> int:
    """The counter now (0 if its row is missing)."""
    with db.engine.connect() as conn:
        value = conn.execute(_READ).scalar()
        conn.rollback()
    return int(value or 0)


class ChangeCounter:
    """Reads the counter for requests; concurrent requests share reads.

    A request may use a read only if that read *started after the request
    arrived*: it then sees every write that committed before the request
    began, exactly as a read of its own would. Requests that arrive while a
    read is in flight wait for it to finish and then share the next one, so
    at most one read per process is in flight and a burst of N concurrent
    requests costs about two reads, not N.

    Reads go over a connection of the counter's own, outside the pool, in
    autocommit mode: one round trip (no pool checkout, pre-ping, BEGIN or
    ROLLBACK), and every read sees the latest committed value. A failed read
    drops that connection; the next one opens a new one.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cond = threading.Condition()
        self._arrivals = 0      # requests that asked so far
        self._reading = False   # a read is in flight
        self._done_mark = 0     # arrivals counted when the last finished read started
        self._value = 0
        self.reads = 0          # database reads made (for tests and benchmarks)

    def current(self) -> int:
        with self._cond:
            self._arrivals += 1
            me = self._arrivals
            while True:
                if self._done_mark >= me:
                    return self._value
                if not self._reading:
                    self._reading = True
                    mark = self._arrivals
                    break
                self._cond.wait()
        try:
            value = self._read()
        except BaseException:
            with self._cond:
                self._reading = False
                self._cond.notify_all()
            raise
        with self._cond:
            self._reading = False
            self.reads += 1
            self._done_mark = mark
            self._value = value
            self._cond.notify_all()
        return value

    # -- the dedicated connection ----------------------------------------------------
    _conn: Any = None

    def _read(self) -> int:
        url = self.db.engine.url
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            return read(self.db)  # one shared in-memory connection: use it as everyone does
        for attempt in range(2):
            try:
                if self._conn is None:
                    self._conn = self._open()
                cursor = self._conn.dbapi_connection.cursor()
                try:
                    cursor.execute(_READ_SQL)
                    row = cursor.fetchone()
                finally:
                    cursor.close()
                return int(row[0]) if row and row[0] is not None else 0
            except Exception:
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _open(self) -> Any:
        conn = self.db.engine.raw_connection()
        conn.detach()  # ours alone, never returned to the pool
        dbapi = conn.dbapi_connection
        name = self.db.engine.dialect.name
        if name == "postgresql":
            dbapi.autocommit = True
        elif name in ("mysql", "mariadb"):
            dbapi.autocommit(True)
        # SQLite connections are in autocommit mode already (stratus.db.session).
        return conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
