"""Requests at a named compute microversion on the in-process cloud, for the
microversion tests (``tests/unit/test_microversions_*.py``): each request
names its version and the answer must echo it."""
from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from tests.cloud import InProcessCloud

# The quota overrides of a cloud whose tests boot as many servers as they like.
UNLIMITED_SERVERS: dict[tuple[str, str], Any] = {
    ("quota", "instances"): -1, ("quota", "cores"): -1, ("quota", "ram"): -1}


def module_cloud(name: str, hosts: tuple[str, ...] = ("host1", "host2"),
                 overrides: dict[tuple[str, str], Any] | None = None,
                 ) -> Callable[..., Iterator[InProcessCloud]]:
    """A module-scoped ``cloud`` fixture: the in-process cloud on ``hosts``,
    servers unlimited by quota, plus ``overrides`` ({(section, option): value})."""
    extra = overrides or {}

    @pytest.fixture(scope="module")
    def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
        c = InProcessCloud(tmp_path_factory.mktemp(name), hosts=hosts,
                           overrides={**UNLIMITED_SERVERS, **extra})
        yield c
        c.close()
    return cloud


def module_image(name: str) -> Callable[..., str]:
    """A module-scoped ``image`` fixture: an active image of the ``cloud``."""
    @pytest.fixture(scope="module")
    def image(cloud: InProcessCloud) -> str:
        return cloud.create_image(name)
    return image


def at(version: str) -> dict[str, str]:
    """The request header naming compute ``version``."""
    return {"OpenStack-API-Version": f"compute {version}"}


def call(cloud: InProcessCloud, version: str, method: str, path: str, body: Any = None,
         status: int | None = 200, **kw: Any) -> Any:
    """``method path`` at ``version``; asserts ``status`` (unless None) and
    that the answer names the version it was served at."""
    resp = cloud.compute(method, path, body, headers=at(version), **kw)
    if status is not None:
        assert resp.status_code == status, (version, method, path,
                                            resp.get_data(as_text=True))
    assert resp.headers["OpenStack-API-Version"] == f"compute {version}"
    return resp


def fault_message(resp: Any) -> str:
    """The message of a Nova-format fault body."""
    return next(iter(resp.get_json().values()))["message"]


def role_token(cloud: InProcessCloud, name: str, role_name: str) -> str:
    """A token of a new user ``name`` holding ``role_name`` on the admin project."""
    ident = "/identity/v3"
    user = cloud.request("POST", f"{ident}/users", {"user": {
        "name": name, "password": "pw", "domain_id": "default"}}).get_json()["user"]
    role = cloud.request("GET", f"{ident}/roles?name={role_name}").get_json()["roles"][0]
    project = cloud.project_id()
    resp = cloud.request("PUT", f"{ident}/projects/{project}/users/{user['id']}/roles/"
                                f"{role['id']}")
    assert resp.status_code == 204
    return cloud.token(name, "pw", "admin")
