"""os-resetState (Nova's os-admin-actions): an admin sets a server's vm state
to active or error and clears its task state, recorded as an instance action;
bad bodies are 400s that change nothing, non-admins get 403."""
from __future__ import annotations

from typing import Any, Iterator

import pytest

from stratus.db import instances as db_instances
from tests.cloud import InProcessCloud
from tests.versioned import fault_message, role_token


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    c = InProcessCloud(tmp_path_factory.mktemp("reset-state"))
    yield c
    c.close()


@pytest.fixture(scope="module")
def server(cloud: InProcessCloud) -> dict[str, Any]:
    return cloud.boot("reset-me", image=cloud.create_image("reset"))


def reset(cloud: InProcessCloud, server_id: str, state: Any, **kw: Any) -> Any:
    return cloud.compute("POST", f"/servers/{server_id}/action",
                         {"os-resetState": {"state": state}}, **kw)


def shown(cloud: InProcessCloud, server_id: str) -> dict[str, Any]:
    return cloud.compute("GET", f"/servers/{server_id}").get_json()["server"]


def test_reset_to_error_and_back_to_active(cloud: InProcessCloud,
                                           server: dict[str, Any]) -> None:
    resp = reset(cloud, server["id"], "error")
    assert resp.status_code == 202 and resp.get_data() == b""
    body = shown(cloud, server["id"])
    assert (body["status"], body["OS-EXT-STS:vm_state"], body["OS-EXT-STS:task_state"]) == (
        "ERROR", "error", None)
    assert reset(cloud, server["id"], "active").status_code == 202
    body = shown(cloud, server["id"])
    assert (body["status"], body["OS-EXT-STS:vm_state"]) == ("ACTIVE", "active")
    actions = cloud.compute("GET", f"/servers/{server['id']}/os-instance-actions"
                            ).get_json()["instanceActions"]
    assert [a["action"] for a in actions].count("resetState") == 2


def test_reset_clears_a_stuck_task_even_when_locked(cloud: InProcessCloud,
                                                   server: dict[str, Any]) -> None:
    db_instances.instance_update(cloud.db, server["id"], {"task_state": "rebooting",
                                                          "locked": True,
                                                          "locked_by": "owner"})
    assert shown(cloud, server["id"])["status"] == "REBOOT"
    assert reset(cloud, server["id"], "active").status_code == 202
    body = shown(cloud, server["id"])
    assert (body["status"], body["OS-EXT-STS:task_state"]) == ("ACTIVE", None)
    db_instances.instance_update(cloud.db, server["id"], {"locked": False, "locked_by": None})


@pytest.mark.parametrize("body", [
    {"os-resetState": {"state": "stopped"}},
    {"os-resetState": {}},
    {"os-resetState": None},
    {"os-resetState": {"state": "active", "extra": 1}},
])
def test_bad_bodies_are_400_and_change_nothing(cloud: InProcessCloud, server: dict[str, Any],
                                               body: Any) -> None:
    before = shown(cloud, server["id"])
    resp = cloud.compute("POST", f"/servers/{server['id']}/action", body)
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert "badRequest" in resp.get_json()
    after = shown(cloud, server["id"])
    assert (after["status"], after["updated"]) == (before["status"], before["updated"])


def test_unknown_server_is_404(cloud: InProcessCloud) -> None:
    resp = reset(cloud, "6b0a3b3c-8d55-4f0c-9d3e-5a4b9b7f1e01", "active")
    assert resp.status_code == 404 and "itemNotFound" in resp.get_json()


def test_a_member_may_not_reset(cloud: InProcessCloud, server: dict[str, Any]) -> None:
    member = role_token(cloud, "reset-member", "member")
    resp = reset(cloud, server["id"], "error", token=member)
    assert resp.status_code == 403, resp.get_data(as_text=True)
    assert "os_compute_api:os-admin-actions:reset_state" in fault_message(resp)
    assert shown(cloud, server["id"])["status"] == "ACTIVE"
