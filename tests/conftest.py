"""Shared fixtures: migrated databases on every backend, configurations."""
from __future__ import annotations

import shutil
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


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> str:
    """A migrated SQLite file, copied for each test (migrating is the slow part)."""
    path = str(tmp_path_factory.mktemp("template") / "stratus.sqlite")
    migration.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: str, tmp_path) -> str:
    path = str(tmp_path / "stratus.sqlite")
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def sqlite_db(sqlite_url: str) -> Iterator[Database]:
    db = Database(sqlite_url)
    yield db
    db.dispose()


@pytest.fixture(scope="class", params=[b for b in dbs.BACKENDS if b != "sqlite"])
def server_database(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[str]:
    """A fresh migrated database on a local server, shared by a test class."""
    if not dbs.available(request.param):
        pytest.skip(f"{request.param} is not reachable")
    with dbs.scratch_database(request.param, str(tmp_path_factory.mktemp("db"))) as url:
        migration.upgrade(url)
        yield url


@pytest.fixture
def empty_server_database(server_database: str) -> str:
    """``server_database`` with every row deleted: each test of a class starts empty."""
    db = Database(server_database)
    try:
        dbs.empty_tables(db)
    finally:
        db.dispose()
    return server_database


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real scrypt, at a cost that keeps the suite fast."""
    from stratus.identity import passwords

    monkeypatch.setattr(passwords, "DEFAULT_N", 2 ** 8)


@pytest.fixture
def conf(tmp_path):
    return conf_mod.load(None, {("DEFAULT", "state_path"): str(tmp_path / "state"),
                                ("DEFAULT", "report_interval"): 1.0,
                                ("api", "port"): 0})


@pytest.fixture
def cloud(request, tmp_path):
    """Every service in this process on the in-process transport and SQLite;
    one compute host per name in the test module's ``HOSTS`` (default one),
    and with several the scheduler re-reads the hosts before each decision."""
    from tests.cloud import InProcessCloud

    hosts = getattr(request.module, "HOSTS", ("host1",))
    overrides = {("scheduler", "host_state_max_age"): 0.0} if len(hosts) > 1 else {}
    c = InProcessCloud(tmp_path, hosts=hosts, overrides=overrides)
    yield c
    c.close()
