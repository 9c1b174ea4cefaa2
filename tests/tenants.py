"""Two projects with admin, member and reader users, made through the Identity
API of an in-process cloud, and real tokens for them (tests of policy and of
bad input share this)."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

from tests.cloud import InProcessCloud

PASSWORD = "pw-Tenant-1"

# user name -> (project name, role)
USERS: dict[str, tuple[str, str]] = {
    "a-member": ("proj-a", "member"),
    "a-member2": ("proj-a", "member"),
    "a-reader": ("proj-a", "reader"),
    "b-member": ("proj-b", "member"),
    "b-reader": ("proj-b", "reader"),
}


class Tenants:
    """Projects ``proj-a`` and ``proj-b`` and the users of :data:`USERS`."""

    def __init__(self, cloud: InProcessCloud) -> None:
        self.cloud = cloud
        self.project_ids: dict[str, str] = {}
        self.user_ids: dict[str, str] = {"admin": self._admin_id()}
        roles = {r["name"]: r["id"] for r in self._ok("GET", "/v3/roles")["roles"]}
        for project in sorted({p for p, _ in USERS.values()}):
            body = self._ok("POST", "/v3/projects", {"project": {"name": project,
                                                                 "domain_id": "default"}})
            self.project_ids[project] = body["project"]["id"]
        for user, (project, role) in USERS.items():
            body = self._ok("POST", "/v3/users", {"user": {
                "name": user, "password": PASSWORD, "domain_id": "default"}})
            self.user_ids[user] = body["user"]["id"]
            resp = cloud.request("PUT", f"/identity/v3/projects/{self.project_ids[project]}"
                                        f"/users/{body['user']['id']}/roles/{roles[role]}")
            assert resp.status_code == 204, resp.get_data(as_text=True)

    def _admin_id(self) -> str:
        resp = self.cloud.request("GET", "/identity/v3/auth/tokens",
                                  headers={"X-Subject-Token": self.cloud.token()})
        return resp.get_json()["token"]["user"]["id"]

    def _ok(self, method: str, path: str, body: Any = None) -> Any:
        resp = self.cloud.request(method, "/identity" + path, body)
        assert resp.status_code in (200, 201), resp.get_data(as_text=True)
        return resp.get_json()

    def token(self, user: str) -> str:
        if user == "admin":
            return self.cloud.token()
        return self.cloud.token(user, PASSWORD, USERS[user][0])

    def project(self, user: str) -> str:
        return self.project_ids[USERS[user][0]]

    def compute(self, user: str, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        return self.cloud.compute(method, path, body, token=self.token(user), **kw)

    def request(self, user: str, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        return self.cloud.request(method, path, body, token=self.token(user), **kw)

    def image(self, user: str, name: str, visibility: str = "private",
              data: bytes | None = b"disk" * 64) -> str:
        """An image owned by ``user``'s project (uploaded when ``data``)."""
        resp = self.request(user, "POST", "/image/v2/images", {
            "name": name, "disk_format": "raw", "container_format": "bare",
            "visibility": visibility})
        assert resp.status_code == 201, resp.get_data(as_text=True)
        image_id = resp.get_json()["id"]
        if data is not None:
            resp = self.request(user, "PUT", f"/image/v2/images/{image_id}/file", raw=data,
                                headers={"Content-Type": "application/octet-stream"})
            assert resp.status_code == 204, resp.get_data(as_text=True)
        return image_id

    def boot(self, user: str, name: str, image: str, wait: bool = True) -> dict[str, Any]:
        resp = self.compute(user, "POST", "/servers", {"server": {
            "name": name, "flavorRef": "1", "imageRef": image}})
        assert resp.status_code == 202, resp.get_data(as_text=True)
        server = resp.get_json()["server"]
        if wait:
            return self.cloud.wait_for(server["id"], "ACTIVE")
        return server


@contextlib.contextmanager
def cheap_hashing() -> Iterator[None]:
    """conftest's cheap_password_hashing, for fixtures wider than one test."""
    from stratus.identity import passwords

    saved = passwords.DEFAULT_N
    passwords.DEFAULT_N = 2 ** 8
    try:
        yield
    finally:
        passwords.DEFAULT_N = saved
