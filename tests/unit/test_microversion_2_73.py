"""Microversion 2.73, a lock's reason: ``{"lock": {"locked_reason": ...}}``,
``locked_reason`` in the answers about a server, the ``locked`` list filter
and ``locked`` as a sort key. Each checked at 2.72 and at 2.73 on the
in-process cloud; every request names its version explicitly."""
from __future__ import annotations

from typing import Any

import pytest

from tests import compute_schemas as S
from tests.cloud import InProcessCloud
from tests.versioned import call, fault_message, module_cloud, module_image, role_token

HOSTS = ("host1", "host2")


cloud = module_cloud("mv273", HOSTS)
image = module_image("mv273")


@pytest.fixture(scope="module")
def member(cloud: InProcessCloud) -> str:
    """A token of a non-admin user of the admin project (the servers' project)."""
    return role_token(cloud, "mv273-member", "member")


def action(cloud: InProcessCloud, version: str, server_id: str, body: Any,
           status: int | None = 202, **kw: Any) -> Any:
    return call(cloud, version, "POST", f"/servers/{server_id}/action", body,
                status=status, **kw)


def shown(cloud: InProcessCloud, version: str, server_id: str) -> dict[str, Any]:
    return call(cloud, version, "GET", f"/servers/{server_id}").get_json()["server"]


def boot(cloud: InProcessCloud, image: str, name: str) -> str:
    sid = cloud.boot(name, image=image)["id"]
    cloud.wait_for(sid, "ACTIVE")
    return sid


def test_2_73_lock_with_a_reason(cloud: InProcessCloud, image: str) -> None:
    sid = boot(cloud, image, "reasoned")
    action(cloud, "2.73", sid, {"lock": {"locked_reason": "maintenance"}})
    server = shown(cloud, "2.73", sid)
    assert server["locked"] is True and server["locked_reason"] == "maintenance"
    S.validate(S.GET_SERVER_V273, {"server": server})
    # Not shown before 2.73.
    assert "locked_reason" not in shown(cloud, "2.72", sid)
    # Unlocking clears it.
    action(cloud, "2.73", sid, {"unlock": None})
    server = shown(cloud, "2.73", sid)
    assert server["locked"] is False and server["locked_reason"] is None
    # The 2.73 body without a reason, null and {}: locked, no reason.
    for body in (None, {}):
        action(cloud, "2.73", sid, {"lock": body})
        server = shown(cloud, "2.73", sid)
        assert server["locked"] is True and server["locked_reason"] is None
        action(cloud, "2.73", sid, {"unlock": None})
    cloud.compute("DELETE", f"/servers/{sid}")


def test_2_73_lock_body_validation(cloud: InProcessCloud, image: str) -> None:
    sid = boot(cloud, image, "validated")
    for bad in ({"locked_reason": ""}, {"locked_reason": "x" * 256},
                {"locked_reason": 5}, {"locked_reason": None}, {"reason": "why"},
                "why", []):
        resp = action(cloud, "2.73", sid, {"lock": bad}, status=400)
        assert "Invalid input for field/attribute" in fault_message(resp), bad
    assert shown(cloud, "2.73", sid)["locked"] is False
    action(cloud, "2.73", sid, {"lock": {"locked_reason": "x" * 255}})
    assert shown(cloud, "2.73", sid)["locked_reason"] == "x" * 255
    action(cloud, "2.73", sid, {"unlock": None})
    cloud.compute("DELETE", f"/servers/{sid}")


def test_2_72_lock_ignores_the_argument(cloud: InProcessCloud, image: str) -> None:
    """Before 2.73 Nova validates nothing in the lock action's argument: a
    reason there is taken and ignored (a 202, no reason kept)."""
    sid = boot(cloud, image, "old-lock")
    action(cloud, "2.72", sid, {"lock": {"locked_reason": "too early"}})
    server = shown(cloud, "2.73", sid)
    assert server["locked"] is True and server["locked_reason"] is None
    action(cloud, "2.72", sid, {"unlock": None})
    action(cloud, "2.72", sid, {"lock": None})
    assert shown(cloud, "2.73", sid)["locked"] is True
    action(cloud, "2.72", sid, {"unlock": None})
    cloud.compute("DELETE", f"/servers/{sid}")


def test_2_73_reason_in_detail_update_and_rebuild(cloud: InProcessCloud, image: str) -> None:
    sid = boot(cloud, image, "answers")
    other = boot(cloud, image, "answers-unlocked")
    action(cloud, "2.73", sid, {"lock": {"locked_reason": "audit"}})
    detail = call(cloud, "2.73", "GET", "/servers/detail").get_json()
    S.validate(S.LIST_SERVERS_DETAIL_V273, detail)
    reasons = {s["id"]: s["locked_reason"] for s in detail["servers"]}
    assert reasons[sid] == "audit" and reasons[other] is None
    old = call(cloud, "2.72", "GET", "/servers/detail").get_json()["servers"]
    assert all("locked_reason" not in s for s in old)
    # The plain list never has it.
    listed = call(cloud, "2.73", "GET", "/servers").get_json()["servers"]
    assert all("locked_reason" not in s for s in listed)

    updated = call(cloud, "2.73", "PUT", f"/servers/{sid}",
                   {"server": {"name": "answers2"}}).get_json()
    S.validate(S.UPDATE_SERVER_V273, updated)
    assert updated["server"]["locked_reason"] == "audit"
    old_update = call(cloud, "2.72", "PUT", f"/servers/{sid}",
                      {"server": {"name": "answers3"}}).get_json()
    assert "locked_reason" not in old_update["server"]

    # The admin may rebuild a locked server; the answer shows the reason.
    rebuilt = action(cloud, "2.73", sid, {"rebuild": {"imageRef": image}}).get_json()
    S.validate(S.REBUILD_SERVER_V273, rebuilt)
    assert rebuilt["server"]["locked_reason"] == "audit"
    cloud.wait_for(sid, "ACTIVE")
    old_rebuild = action(cloud, "2.72", sid, {"rebuild": {"imageRef": image}}).get_json()
    assert "locked_reason" not in old_rebuild["server"]
    cloud.wait_for(sid, "ACTIVE")
    action(cloud, "2.73", sid, {"unlock": None})
    for server_id in (sid, other):
        cloud.compute("DELETE", f"/servers/{server_id}")


def test_2_73_locked_filter(cloud: InProcessCloud, image: str, member: str) -> None:
    locked = boot(cloud, image, "filter-locked")
    unlocked = boot(cloud, image, "filter-unlocked")
    action(cloud, "2.73", locked, {"lock": {"locked_reason": "filter"}})

    def ids(version: str, query: str, **kw: Any) -> set[str]:
        found = set()
        for path in ("/servers", "/servers/detail"):
            servers = call(cloud, version, "GET", f"{path}?{query}", **kw).get_json()["servers"]
            found |= {s["id"] for s in servers}
        return found & {locked, unlocked}

    for token in (None, member):  # the admin and a project member alike
        kw = {"token": token} if token else {}
        for value in ("true", "True", "1", "yes", "on", "t"):
            assert ids("2.73", f"locked={value}", **kw) == {locked}, value
        for value in ("false", "0", "no", "off", "f"):
            assert ids("2.73", f"locked={value}", **kw) == {unlocked}, value
        # Before 2.73 the filter is not one: dropped.
        assert ids("2.72", "locked=true", **kw) == {locked, unlocked}
        for bad in ("maybe", ""):
            for path in ("/servers", "/servers/detail"):
                resp = call(cloud, "2.73", "GET", f"{path}?locked={bad}", status=400, **kw)
                assert fault_message(resp).startswith(f"Unrecognized value '{bad}', "
                                                      "acceptable values are: '0', '1'")
        call(cloud, "2.72", "GET", "/servers?locked=maybe", **kw)
    action(cloud, "2.73", locked, {"unlock": None})
    assert ids("2.73", "locked=true") == set()
    for sid in (locked, unlocked):
        cloud.compute("DELETE", f"/servers/{sid}")


def test_2_73_sort_by_locked(cloud: InProcessCloud, image: str, member: str) -> None:
    first = boot(cloud, image, "sort-a")
    second = boot(cloud, image, "sort-b")
    third = boot(cloud, image, "sort-c")
    action(cloud, "2.73", second, {"lock": None})
    mine = {first, second, third}

    def order(version: str, query: str, **kw: Any) -> list[str]:
        servers = call(cloud, version, "GET", f"/servers?{query}", **kw).get_json()["servers"]
        return [s["id"] for s in servers if s["id"] in mine]

    for kw in ({}, {"token": member}):
        # 2.73: locked sorts (ties newest first, created_at desc being added).
        assert order("2.73", "sort_key=locked&sort_dir=desc", **kw) == [second, third, first]
        assert order("2.73", "sort_key=locked&sort_dir=asc", **kw) == [first, third, second]
        # 2.72: a sort key Nova accepts and ignores: the default, newest first.
        assert order("2.72", "sort_key=locked&sort_dir=asc", **kw) == [third, second, first]
    action(cloud, "2.73", second, {"unlock": None})
    for sid in mine:
        cloud.compute("DELETE", f"/servers/{sid}")
