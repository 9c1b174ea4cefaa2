"""An in-process Stratus cloud for fast tests: every service in this process.

The same factories the daemons and the all-in-one use (:mod:`stratus.launch`,
:mod:`stratus.api.server`), on the in-process transport and SQLite (or any
database URL), with the WSGI app driven through werkzeug's test client.
"""
from __future__ import annotations

import time
from typing import Any

import orjson
from werkzeug.test import Client

from stratus import conf as conf_mod
from stratus import launch, rpc
from stratus.api.server import build_app
from stratus.db import migration
from stratus.rpc import memory

ADMIN_PASSWORD = "secret"


class InProcessCloud:
    def __init__(self, tmp_path: Any, hosts: tuple[str, ...] = ("host1",),
                 db_url: str | None = None, fake_delay: float = 0.0,
                 overrides: dict[tuple[str, str], Any] | None = None,
                 fake_hosts: int = 0) -> None:
        """``fake_hosts`` > 0 runs that many fake hosts in one fleet named
        after ``hosts[0]`` (stratus.compute.fleet) instead of one per name."""
        values: dict[tuple[str, str], Any] = {
            ("DEFAULT", "state_path"): str(tmp_path / "state"),
            ("DEFAULT", "transport_url"): "memory://",
            ("DEFAULT", "report_interval"): 1.0,
            ("DEFAULT", "rpc_response_timeout"): 10.0,
            ("DEFAULT", "host"): hosts[0],
            ("DEFAULT", "executor_thread_pool_size"): 8,
            ("api", "port"): 8774,
            ("fake", "delay"): fake_delay,
        }
        if db_url:
            values[("database", "connection")] = db_url
        values.update(overrides or {})
        self.conf = conf_mod.load(None, values)
        migration.upgrade(self.conf.database.connection)
        from stratus.cli import bootstrap
        bootstrap(self.conf, ADMIN_PASSWORD)
        self.transport = rpc.get_transport(self.conf.DEFAULT.transport_url)
        self.db = launch.make_database(self.conf)
        self.services = [launch.make_conductor(self.conf, self.transport, self.db),
                         launch.make_scheduler(self.conf, self.transport, self.db)]
        self.computes = {}
        for host in hosts[:1] if fake_hosts else hosts:
            host_conf = conf_mod.load(None, {**values, ("DEFAULT", "host"): host,
                                             ("fake", "hosts"): fake_hosts})
            self.computes[host] = launch.make_compute(host_conf, self.transport)
        self.app = build_app(self.conf, self.db, self.transport)
        self.client = Client(self.app)
        for svc in self.services + list(self.computes.values()):
            svc.start()
        self._tokens: dict[str, str] = {}

    def close(self) -> None:
        for svc in reversed(self.services + list(self.computes.values())):
            svc.stop(timeout=5)
        self.transport.cleanup()
        self.db.dispose()
        memory.reset()  # nothing queued here reaches the next test's services

    # -- HTTP --------------------------------------------------------------------
    def token(self, username: str = "admin", password: str = ADMIN_PASSWORD,
              project: str = "admin") -> str:
        key = f"{username}/{project}"
        if key not in self._tokens:
            resp = self.client.post("/identity/v3/auth/tokens", json={"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": username, "domain": {"id": "default"}, "password": password}}},
                "scope": {"project": {"name": project, "domain": {"id": "default"}}}}})
            assert resp.status_code == 201, resp.get_data(as_text=True)
            self._tokens[key] = resp.headers["X-Subject-Token"]
        return self._tokens[key]

    def project_id(self, name: str = "admin") -> str:
        """The id of the project ``name`` (default domain)."""
        from sqlalchemy import select

        from stratus.db.models import Project

        with self.db.read() as s:
            return str(s.scalar(select(Project.id).where(Project.name == name,
                                                         Project.domain_id == "default")))

    def request(self, method: str, path: str, body: Any = None, *, token: str | None = None,
                headers: dict[str, str] | None = None, raw: bytes | None = None) -> Any:
        hdrs = {"X-Auth-Token": token or self.token()}
        hdrs.update(headers or {})
        data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        return self.client.open(path, method=method, data=data, headers=hdrs)

    def compute(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request(method, f"/compute/v2.1{path}", body, **kw)

    # -- helpers -------------------------------------------------------------------
    def create_image(self, name: str = "cirros", data: bytes = b"disk" * 256) -> str:
        resp = self.request("POST", "/image/v2/images", {
            "name": name, "disk_format": "raw", "container_format": "bare"})
        assert resp.status_code == 201, resp.get_data(as_text=True)
        image_id = resp.get_json()["id"]
        resp = self.request("PUT", f"/image/v2/images/{image_id}/file", raw=data,
                            headers={"Content-Type": "application/octet-stream"})
        assert resp.status_code == 204, resp.get_data(as_text=True)
        return image_id

    def boot(self, name: str = "vm", flavor: str = "1", image: str | None = None,
             wait: str | None = "ACTIVE", **extra: Any) -> dict[str, Any]:
        image = image or self.create_image()
        resp = self.compute("POST", "/servers", {"server": dict(
            {"name": name, "flavorRef": flavor, "imageRef": image}, **extra)})
        assert resp.status_code == 202, resp.get_data(as_text=True)
        server = resp.get_json()["server"]
        if wait:
            return self.wait_for(server["id"], wait)
        return server

    def set_compute_disabled(self, host: str, disabled: bool) -> None:
        """Disable or enable ``host``'s compute service, and have the
        scheduler's cache take it in now (it would at its next refresh)."""
        from sqlalchemy import update

        from stratus.db.models import Service
        with self.db.write() as s:
            s.execute(update(Service).where(Service.host == host,
                                            Service.binary == "stratus-compute")
                      .values(disabled=disabled))
        [scheduler] = [svc for svc in self.services if svc.binary == "stratus-scheduler"]
        scheduler.manager.cache.refresh(full=True)

    def wait_for(self, server_id: str, status: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            resp = self.compute("GET", f"/servers/{server_id}")
            if status == "DELETED" and resp.status_code == 404:
                return {}
            last = resp.get_json()["server"]
            if last["status"] == status and last.get("OS-EXT-STS:task_state") is None:
                return last
            if last["status"] == "ERROR" and status != "ERROR":
                raise AssertionError(f"server went to ERROR: {last.get('fault')}")
            time.sleep(0.01)
        raise AssertionError(f"server {server_id} not {status} after {timeout}s: {last}")
