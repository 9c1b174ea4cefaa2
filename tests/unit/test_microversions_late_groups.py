"""Microversions 2.51, 2.58, 2.59, 2.62, 2.64 and 2.66: instance actions,
migrations and server groups, each checked at the version before it and at
the version itself on the in-process cloud (two fake hosts). Every request
names its version explicitly."""
from __future__ import annotations

import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select, update

from stratus.db import server_groups as db_groups
from stratus.db.models import Instance, InstanceAction, InstanceGroup, Migration
from stratus.scheduler.filters.affinity import ServerGroupAntiAffinityFilter
from stratus.scheduler.request import GroupInfo, SchedulingRequest
from stratus.utils import new_uuid, utcnow
from tests import compute_schemas as S
from tests.cloud import InProcessCloud
from tests.versioned import call, fault_message, module_cloud, module_image, role_token

HOSTS = ("host1", "host2")


cloud = module_cloud("mvlate", HOSTS, overrides={("quota", "server_groups"): -1,
                                                 ("quota", "server_group_members"): -1})
image = module_image("mvlate")


@pytest.fixture(scope="module")
def member(cloud: InProcessCloud) -> str:
    """A token of a non-admin member of the admin project."""
    return role_token(cloud, "late-member", "member")


def host_of(server: dict[str, Any]) -> str:
    return server["OS-EXT-SRV-ATTR:host"]


def group_count(cloud: InProcessCloud) -> int:
    with cloud.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(InstanceGroup)))


# -- 2.64: server groups with policy and rules --------------------------------------------

def _create_group(cloud: InProcessCloud, version: str, group: dict[str, Any],
                  status: int = 200, **kw: Any) -> Any:
    return call(cloud, version, "POST", "/os-server-groups", {"server_group": group},
                status=status, **kw)


def test_2_64_create_show_list_have_policy_and_rules(cloud: InProcessCloud) -> None:
    created = _create_group(cloud, "2.64", {"name": "spread2", "policy": "anti-affinity",
                                            "rules": {"max_server_per_host": 2}}).get_json()
    S.validate(S.GET_SERVER_GROUP_V264, created)
    group = created["server_group"]
    assert group["policy"] == "anti-affinity"
    assert group["rules"] == {"max_server_per_host": 2}
    assert "policies" not in group and "metadata" not in group
    gid = group["id"]
    shown = call(cloud, "2.64", "GET", f"/os-server-groups/{gid}").get_json()
    S.validate(S.GET_SERVER_GROUP_V264, shown)
    assert shown["server_group"] == group
    listed = call(cloud, "2.64", "GET", "/os-server-groups").get_json()
    S.validate(S.LIST_SERVER_GROUPS_V264, listed)
    assert group in listed["server_groups"]
    # The same group before 2.64: policies and metadata, no policy or rules.
    old = call(cloud, "2.63", "GET", f"/os-server-groups/{gid}").get_json()
    S.validate(S.GET_SERVER_GROUP_V213, old)
    assert old["server_group"]["policies"] == ["anti-affinity"]
    assert old["server_group"]["metadata"] == {}
    S.validate(S.LIST_SERVER_GROUPS_V213,
               call(cloud, "2.63", "GET", "/os-server-groups").get_json())
    call(cloud, "2.64", "DELETE", f"/os-server-groups/{gid}", status=204)
    call(cloud, "2.64", "GET", f"/os-server-groups/{gid}", status=404)


def test_2_64_rules_default_to_empty(cloud: InProcessCloud) -> None:
    for policy in ("affinity", "soft-affinity", "soft-anti-affinity", "anti-affinity"):
        group = _create_group(cloud, "2.64", {"name": policy, "policy": policy}
                              ).get_json()["server_group"]
        assert (group["policy"], group["rules"]) == (policy, {})
    # An empty rules object is no rule, whatever the policy.
    group = _create_group(cloud, "2.64", {"name": "e", "policy": "affinity", "rules": {}}
                          ).get_json()["server_group"]
    assert group["rules"] == {}
    # A numeric string is accepted (Nova's positive_integer) and shown as an int.
    group = _create_group(cloud, "2.64", {"name": "s", "policy": "anti-affinity",
                                          "rules": {"max_server_per_host": "3"}}
                          ).get_json()["server_group"]
    assert group["rules"] == {"max_server_per_host": 3}


def test_2_63_still_takes_policies_only(cloud: InProcessCloud) -> None:
    before = group_count(cloud)
    resp = _create_group(cloud, "2.63", {"name": "x", "policy": "affinity"}, status=400)
    assert "'policies' is a required property" in fault_message(resp)
    _create_group(cloud, "2.63", {"name": "x", "policies": ["anti-affinity"],
                                  "rules": {"max_server_per_host": 2}}, status=400)
    assert group_count(cloud) == before
    group = _create_group(cloud, "2.63", {"name": "x", "policies": ["affinity"]}
                          ).get_json()
    S.validate(S.CREATE_SERVER_GROUP_V213, group)
    # Shown at 2.64 with policy and empty rules.
    shown = call(cloud, "2.64", "GET", f"/os-server-groups/{group['server_group']['id']}")
    assert shown.get_json()["server_group"]["rules"] == {}


@pytest.mark.parametrize("group, message", [
    ({"name": "x", "policies": ["anti-affinity"]}, "'policy' is a required property"),
    ({"name": "x", "policy": "anti-affinity", "policies": ["anti-affinity"]},
     "Additional properties"),
    ({"name": "x"}, "'policy' is a required property"),
    ({"name": "x", "policy": "spread"}, "is not one of"),
    ({"name": "x", "policy": ["anti-affinity"]}, "policy"),
    ({"name": "x", "policy": "affinity", "rules": {"max_server_per_host": 2}},
     "Only anti-affinity policy supports rules."),
    ({"name": "x", "policy": "soft-anti-affinity", "rules": {"max_server_per_host": 2}},
     "Only anti-affinity policy supports rules."),
    ({"name": "x", "policy": "anti-affinity", "rules": {"max_server_per_host": 0}},
     "max_server_per_host"),
    ({"name": "x", "policy": "anti-affinity", "rules": {"max_server_per_host": "0"}},
     "less than the minimum of 1"),
    ({"name": "x", "policy": "anti-affinity", "rules": {"max_server_per_host": -1}},
     "max_server_per_host"),
    ({"name": "x", "policy": "anti-affinity", "rules": {"max_server_per_host": "two"}},
     "max_server_per_host"),
    ({"name": "x", "policy": "anti-affinity", "rules": {"max_server_per_host": 1.5}},
     "max_server_per_host"),
    ({"name": "x", "policy": "anti-affinity", "rules": {"max_servers": 2}},
     "Additional properties"),
    ({"name": "x", "policy": "anti-affinity", "rules": []}, "rules"),
])
def test_2_64_bad_groups_are_400_and_create_nothing(cloud: InProcessCloud,
                                                    group: dict[str, Any],
                                                    message: str) -> None:
    before = group_count(cloud)
    resp = _create_group(cloud, "2.64", group, status=400)
    assert message in fault_message(resp)
    assert "badRequest" in resp.get_json()
    assert group_count(cloud) == before


def test_2_64_members_see_their_groups(cloud: InProcessCloud, member: str) -> None:
    group = _create_group(cloud, "2.64", {"name": "mine", "policy": "anti-affinity",
                                          "rules": {"max_server_per_host": 5}},
                          token=member).get_json()["server_group"]
    shown = call(cloud, "2.64", "GET", f"/os-server-groups/{group['id']}",
                 token=member).get_json()["server_group"]
    assert shown["rules"] == {"max_server_per_host": 5}


# -- 2.64: the scheduler keeps max_server_per_host ----------------------------------------

def test_anti_affinity_filter_honours_the_groups_rules(cloud: InProcessCloud) -> None:
    """The rule stored with the group reaches the filter (for_scheduling)."""
    group = db_groups.group_create(cloud.db, name="r", policy="anti-affinity",
                                   project_id=None, user_id=None,
                                   rules={"max_server_per_host": 3})
    with cloud.db.read() as s:
        info = db_groups.for_scheduling(s, group["uuid"])
    assert info is not None and info["max_per_host"] == 3
    plain = db_groups.group_create(cloud.db, name="p", policy="anti-affinity",
                                   project_id=None, user_id=None)
    with cloud.db.read() as s:
        assert db_groups.for_scheduling(s, plain["uuid"])["max_per_host"] == 1
    f = ServerGroupAntiAffinityFilter()
    for placed, passes in ((0, True), (2, True), (3, False), (4, False)):
        req = SchedulingRequest(resources={}, group=GroupInfo(
            uuid=group["uuid"], policy="anti-affinity", max_per_host=info["max_per_host"]))
        req.group.hosts["h1"] = placed
        assert f.passes(_fake_host("h1"), req) is passes
        assert f.passes(_fake_host("h2"), req)  # no member there
    # Placing members of the request counts (multi-create spreads by the rule).
    req = SchedulingRequest(resources={}, group=GroupInfo(uuid="g", policy="anti-affinity",
                                                          max_per_host=2))
    h1 = _fake_host("h1")
    assert f.passes(h1, req)
    req.placed(h1)
    assert f.passes(h1, req)
    req.placed(h1)
    assert not f.passes(h1, req)
    req.unplaced(h1)
    assert f.passes(h1, req)


class _FakeHost:
    def __init__(self, host: str) -> None:
        self.host = host


def _fake_host(name: str) -> Any:
    return _FakeHost(name)


def _boot(cloud: InProcessCloud, image: str, name: str, group: str, wait: str = "ACTIVE",
          **server: Any) -> Any:
    resp = cloud.compute("POST", "/servers", {
        "server": {"name": name, "flavorRef": "1", "imageRef": image, **server},
        "os:scheduler_hints": {"group": group}})
    assert resp.status_code == 202, resp.get_data(as_text=True)
    body = resp.get_json()
    if "server" not in body:
        return body
    return cloud.wait_for(body["server"]["id"], wait)


def test_2_64_anti_affinity_with_max_two_per_host(cloud: InProcessCloud, image: str) -> None:
    group = _create_group(cloud, "2.64", {"name": "two-each", "policy": "anti-affinity",
                                          "rules": {"max_server_per_host": 2}}
                          ).get_json()["server_group"]
    servers = [_boot(cloud, image, f"two-{i}", group["id"]) for i in range(4)]
    hosts = sorted(host_of(s) for s in servers)
    assert hosts == ["host1", "host1", "host2", "host2"]
    extra = _boot(cloud, image, "two-4", group["id"], wait="ERROR")
    assert extra["fault"]["message"].startswith("No valid host was found")
    members = call(cloud, "2.64", "GET", f"/os-server-groups/{group['id']}"
                   ).get_json()["server_group"]["members"]
    assert set(members) == {s["id"] for s in servers} | {extra["id"]}
    # Freeing a slot lets the next member in.
    assert cloud.compute("DELETE", f"/servers/{servers[0]['id']}").status_code == 204
    cloud.wait_for(servers[0]["id"], "DELETED")
    again = _boot(cloud, image, "two-5", group["id"])
    assert host_of(again) == host_of(servers[0])


def test_2_64_multi_create_spreads_by_the_rule(cloud: InProcessCloud, image: str) -> None:
    group = _create_group(cloud, "2.64", {"name": "multi", "policy": "anti-affinity",
                                          "rules": {"max_server_per_host": 2}}
                          ).get_json()["server_group"]
    _boot(cloud, image, "multi", group["id"], min_count=4)
    members = call(cloud, "2.64", "GET", f"/os-server-groups/{group['id']}"
                   ).get_json()["server_group"]["members"]
    assert len(members) == 4
    hosts = sorted(host_of(cloud.wait_for(m, "ACTIVE")) for m in members)
    assert hosts == ["host1", "host1", "host2", "host2"]


def test_plain_anti_affinity_still_one_per_host(cloud: InProcessCloud, image: str) -> None:
    group = _create_group(cloud, "2.64", {"name": "one-each", "policy": "anti-affinity"}
                          ).get_json()["server_group"]
    servers = [_boot(cloud, image, f"one-{i}", group["id"]) for i in range(2)]
    assert sorted(host_of(s) for s in servers) == list(HOSTS)
    extra = _boot(cloud, image, "one-2", group["id"], wait="ERROR")
    assert extra["fault"]["message"].startswith("No valid host was found")


# -- instance actions: 2.51, 2.58, 2.62 -------------------------------------------------------

@pytest.fixture(scope="module")
def acted(cloud: InProcessCloud, image: str) -> dict[str, Any]:
    """A server created, stopped and started: three actions."""
    server = cloud.boot("acted", image=image)
    for action, status in (("os-stop", "SHUTOFF"), ("os-start", "ACTIVE")):
        resp = cloud.compute("POST", f"/servers/{server['id']}/action", {action: None})
        assert resp.status_code == 202, resp.get_data(as_text=True)
        cloud.wait_for(server["id"], status)
    return cloud.wait_for(server["id"], "ACTIVE")


def _actions(cloud: InProcessCloud, version: str, server_id: str, query: str = "",
             **kw: Any) -> dict[str, Any]:
    return call(cloud, version, "GET", f"/servers/{server_id}/os-instance-actions{query}",
                **kw).get_json()


def _show(cloud: InProcessCloud, version: str, server_id: str, request_id: str,
          **kw: Any) -> dict[str, Any]:
    return call(cloud, version, "GET",
                f"/servers/{server_id}/os-instance-actions/{request_id}",
                **kw).get_json()["instanceAction"]


def _create_request_id(cloud: InProcessCloud, server_id: str) -> str:
    listed = _actions(cloud, "2.1", server_id)["instanceActions"]
    return next(a["request_id"] for a in listed if a["action"] == "create")


def test_2_51_events_for_owners_without_traceback(cloud: InProcessCloud, acted: dict[str, Any],
                                                  member: str) -> None:
    sid = acted["id"]
    rid = _create_request_id(cloud, sid)
    assert "events" not in _show(cloud, "2.50", sid, rid, token=member)
    action = _show(cloud, "2.51", sid, rid, token=member)
    S.validate(S.SHOW_INSTANCE_ACTION_V251, {"instanceAction": action})
    assert action["events"] and all("traceback" not in e for e in action["events"])
    # Admins (the events policy) see the traceback at every version.
    for version in ("2.50", "2.51"):
        admin = _show(cloud, version, sid, rid)
        assert admin["events"] and all("traceback" in e for e in admin["events"])
        assert [e["event"] for e in admin["events"]] == [e["event"] for e in action["events"]]


def test_2_58_updated_at_and_paging(cloud: InProcessCloud, acted: dict[str, Any]) -> None:
    sid = acted["id"]
    old = _actions(cloud, "2.57", sid)
    S.validate(S.LIST_INSTANCE_ACTIONS, old)
    assert [a["action"] for a in old["instanceActions"]] == ["start", "stop", "create"]
    # Before 2.58 paging parameters (and anything else) are ignored.
    assert _actions(cloud, "2.57", sid, "?limit=1&foo=bar") == old
    full = _actions(cloud, "2.58", sid)
    S.validate(S.LIST_INSTANCE_ACTIONS_V258, full)
    assert "links" not in full
    actions = full["instanceActions"]
    assert [a["action"] for a in actions] == ["start", "stop", "create"]
    assert all(a["updated_at"] for a in actions)
    shown = _show(cloud, "2.58", sid, actions[0]["request_id"])
    S.validate(S.SHOW_INSTANCE_ACTION_V258, {"instanceAction": shown})
    assert shown["updated_at"] == actions[0]["updated_at"]
    assert "updated_at" not in _show(cloud, "2.57", sid, actions[0]["request_id"])

    page = _actions(cloud, "2.58", sid, "?limit=2")
    S.validate(S.LIST_INSTANCE_ACTIONS_V258, page)
    assert page["instanceActions"] == actions[:2]
    (link,) = page["links"]
    assert link["rel"] == "next"
    parts = urlsplit(link["href"])
    assert parts.path.endswith(f"/v2.1/servers/{sid}/os-instance-actions")
    assert parse_qs(parts.query) == {"limit": ["2"], "marker": [actions[1]["request_id"]]}
    rest = _actions(cloud, "2.58", sid, f"?{parts.query}")
    assert rest == {"instanceActions": actions[2:]}
    assert _actions(cloud, "2.58", sid, f"?marker={actions[2]['request_id']}") == {
        "instanceActions": []}
    assert _actions(cloud, "2.58", sid, "?limit=0") == {"instanceActions": []}

    # changes-since: the actions updated at or after it.
    newest = actions[0]["updated_at"]
    since = _actions(cloud, "2.58", sid, f"?changes-since={newest}")["instanceActions"]
    assert [a["request_id"] for a in since] == [actions[0]["request_id"]]
    future = (utcnow() + datetime.timedelta(days=1)).isoformat() + "Z"
    assert _actions(cloud, "2.58", sid, f"?changes-since={future}") == {"instanceActions": []}
    assert len(_actions(cloud, "2.58", sid, "?changes-since=2000-01-01T00:00:00Z")[
        "instanceActions"]) == 3


@pytest.mark.parametrize("query, message", [
    ("?marker=no-such-request", "Marker no-such-request could not be found."),
    ("?changes-since=yesterday", "changes-since"),
    ("?limit=-1", "limit"),
    ("?limit=abc", "limit"),
    ("?limit=1&limit=2", "limit"),
    ("?foo=bar", "Additional properties are not allowed ('foo' was unexpected)"),
    ("?changes-before=2020-01-01T00:00:00Z", "Additional properties"),
])
def test_2_58_bad_queries_are_400(cloud: InProcessCloud, acted: dict[str, Any], query: str,
                                  message: str) -> None:
    resp = call(cloud, "2.58", "GET", f"/servers/{acted['id']}/os-instance-actions{query}",
                status=400)
    assert message in fault_message(resp)


def test_2_62_event_host_and_host_id(cloud: InProcessCloud, acted: dict[str, Any],
                                     member: str) -> None:
    sid = acted["id"]
    rid = _create_request_id(cloud, sid)
    before = _show(cloud, "2.61", sid, rid)
    assert all("host" not in e and "hostId" not in e for e in before["events"])
    admin = _show(cloud, "2.62", sid, rid)
    S.validate(S.SHOW_INSTANCE_ACTION_V262, {"instanceAction": admin})
    assert admin["events"]
    for event in admin["events"]:
        assert event["host"] == host_of(acted)
        assert event["hostId"] == acted["hostId"] != ""
        assert "traceback" in event
    owner = _show(cloud, "2.62", sid, rid, token=member)
    S.validate(S.SHOW_INSTANCE_ACTION_V262, {"instanceAction": owner})
    assert all("host" not in e and "traceback" not in e for e in owner["events"])
    owner_ids = {e["event"]: e["hostId"] for e in owner["events"]}
    assert all(owner_ids[e["event"]] == e["hostId"] for e in admin["events"])


# -- 2.59: migrations paging and uuid ------------------------------------------------------

@pytest.fixture(scope="module")
def history(cloud: InProcessCloud, image: str) -> dict[str, Any]:
    """Five finished migrations of one server (oldest first) and one in progress
    (on hosts no compute runs, so nothing acts on it)."""
    server = cloud.boot("migrated", image=image)
    base = utcnow() - datetime.timedelta(hours=1)
    rows = []
    with cloud.db.write() as s:
        for i in range(5):
            when = base + datetime.timedelta(minutes=i)
            m = Migration(uuid=new_uuid(), instance_uuid=server["id"], status="confirmed",
                          migration_type="resize", source_compute="old1", dest_compute="old2",
                          source_node="old1", dest_node="old2", created_at=when,
                          updated_at=when + datetime.timedelta(seconds=30))
            s.add(m)
            s.flush()
            rows.append({"id": m.id, "uuid": m.uuid, "updated_at": m.updated_at})
        running = Migration(uuid=new_uuid(), instance_uuid=server["id"], status="migrating",
                            migration_type="migration", source_compute="gone1",
                            dest_compute="gone2", source_node="gone1", dest_node="gone2",
                            created_at=base + datetime.timedelta(minutes=10))
        s.add(running)
        s.flush()
        rows.append({"id": running.id, "uuid": running.uuid, "updated_at": None})
    return {"server": server, "rows": rows}


def _migrations(cloud: InProcessCloud, version: str, query: str = "",
                status: int = 200) -> Any:
    return call(cloud, version, "GET", f"/os-migrations{query}", status=status)


def test_2_59_uuid_and_paging(cloud: InProcessCloud, history: dict[str, Any]) -> None:
    sid, rows = history["server"]["id"], history["rows"]
    newest_first = [r["uuid"] for r in reversed(rows)]
    old = _migrations(cloud, "2.58", f"?instance_uuid={sid}&limit=1&foo=1").get_json()
    S.validate(S.LIST_MIGRATIONS_V223, old)
    assert len(old["migrations"]) == 6 and "migrations_links" not in old
    assert all("uuid" not in m for m in old["migrations"])
    assert [m["id"] for m in old["migrations"]] == [r["id"] for r in reversed(rows)]

    full = _migrations(cloud, "2.59", f"?instance_uuid={sid}").get_json()
    S.validate(S.LIST_MIGRATIONS_V259, full)
    assert [m["uuid"] for m in full["migrations"]] == newest_first
    assert "migrations_links" not in full

    page = _migrations(cloud, "2.59", f"?instance_uuid={sid}&limit=4").get_json()
    S.validate(S.LIST_MIGRATIONS_V259, page)
    assert [m["uuid"] for m in page["migrations"]] == newest_first[:4]
    (link,) = page["migrations_links"]
    parts = urlsplit(link["href"])
    assert link["rel"] == "next" and parts.path.endswith("/v2.1/os-migrations")
    assert parse_qs(parts.query) == {"instance_uuid": [sid], "limit": ["4"],
                                     "marker": [newest_first[3]]}
    rest = _migrations(cloud, "2.59", f"?{parts.query}").get_json()
    assert [m["uuid"] for m in rest["migrations"]] == newest_first[4:]
    assert "migrations_links" not in rest
    # changes-since: updated at or after it (the one without updated_at never).
    since = rows[3]["updated_at"].isoformat()
    recent = _migrations(cloud, "2.59", f"?instance_uuid={sid}&changes-since={since}")
    assert [m["uuid"] for m in recent.get_json()["migrations"]] == [
        rows[4]["uuid"], rows[3]["uuid"]]
    # A marker is found whatever the other filters select.
    other = _migrations(cloud, "2.59", f"?status=migrating&marker={rows[0]['uuid']}")
    assert other.get_json()["migrations"] == []
    newer = _migrations(cloud, "2.59", f"?status=confirmed&marker={rows[-1]['uuid']}")
    assert [m["uuid"] for m in newer.get_json()["migrations"]][:5] == newest_first[1:]


@pytest.mark.parametrize("query, message", [
    ("?marker=" + "6b0a3b3c-8d55-4f0c-9d3e-5a4b9b7f1e01",
     "Marker 6b0a3b3c-8d55-4f0c-9d3e-5a4b9b7f1e01 could not be found."),
    ("?changes-since=not-a-time", "changes-since"),
    ("?limit=-2", "limit"),
    ("?foo=bar", "Additional properties are not allowed ('foo' was unexpected)"),
    ("?marker=a&marker=b", "marker"),
])
def test_2_59_bad_queries_are_400(cloud: InProcessCloud, history: dict[str, Any],
                                  query: str, message: str) -> None:
    assert message in fault_message(_migrations(cloud, "2.59", query, status=400))


def test_2_59_known_filters_and_hidden_still_pass(cloud: InProcessCloud,
                                                  history: dict[str, Any]) -> None:
    sid = history["server"]["id"]
    body = _migrations(cloud, "2.59", f"?hidden=0&host=gone1&status=migrating&"
                                      f"source_compute=gone1&migration_type=migration&"
                                      f"instance_uuid={sid}").get_json()
    assert [m["uuid"] for m in body["migrations"]] == [history["rows"][-1]["uuid"]]


def test_2_59_server_migrations_have_uuid(cloud: InProcessCloud,
                                          history: dict[str, Any]) -> None:
    sid, running = history["server"]["id"], history["rows"][-1]
    path = f"/servers/{sid}/migrations"
    old = call(cloud, "2.58", "GET", path).get_json()
    S.validate(S.LIST_SERVER_MIGRATIONS, old)
    assert [m["id"] for m in old["migrations"]] == [running["id"]]
    listed = call(cloud, "2.59", "GET", path).get_json()
    S.validate(S.LIST_SERVER_MIGRATIONS_V259, listed)
    assert [m["uuid"] for m in listed["migrations"]] == [running["uuid"]]
    shown = call(cloud, "2.59", "GET", f"{path}/{running['id']}").get_json()
    S.validate(S.GET_SERVER_MIGRATION_V259, shown)
    assert shown["migration"]["uuid"] == running["uuid"]
    old_shown = call(cloud, "2.58", "GET", f"{path}/{running['id']}").get_json()
    S.validate(S.GET_SERVER_MIGRATION, old_shown)


# -- 2.66: changes-before (servers, instance actions, migrations) ------------------------
# (2.65, aborting queued live migrations, changes nothing here: no live migration.)

WINDOW_ERROR = "The value of changes-since must be less than or equal to changes-before."


def iso(when: datetime.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def stamped(cloud: InProcessCloud, image: str) -> dict[str, Any]:
    """Three servers with known update times: old (T), deleted (T+5 min,
    deleted), new (T+10 min)."""
    base = (utcnow() - datetime.timedelta(days=2)).replace(microsecond=0)
    servers = {name: cloud.boot(f"w-{name}", image=image)["id"]
               for name in ("old", "deleted", "new")}
    assert cloud.compute("DELETE", f"/servers/{servers['deleted']}").status_code == 204
    cloud.wait_for(servers["deleted"], "DELETED")
    with cloud.db.write() as s:
        for minutes, name in ((0, "old"), (5, "deleted"), (10, "new")):
            s.execute(update(Instance).where(Instance.uuid == servers[name]).values(
                updated_at=base + datetime.timedelta(minutes=minutes)))
    return {"base": base, **servers}


def _names(cloud: InProcessCloud, version: str, query: str, **kw: Any) -> list[str]:
    body = call(cloud, version, "GET", f"/servers/detail?name=%5Ew-&{query}", **kw).get_json()
    return sorted(s["name"] for s in body["servers"])


def test_2_66_servers_changes_before(cloud: InProcessCloud, stamped: dict[str, Any],
                                member: str) -> None:
    base = stamped["base"]
    before = iso(base + datetime.timedelta(minutes=6))
    # 2.65: an unknown filter, dropped: the live servers, whatever their time.
    assert _names(cloud, "2.65", f"changes-before={before}") == ["w-new", "w-old"]
    # 2.66: updated at or before it, deleted ones too (as changes-since).
    assert _names(cloud, "2.66", f"changes-before={before}") == ["w-deleted", "w-old"]
    assert _names(cloud, "2.66", f"changes-before={iso(base)}") == ["w-old"]
    since = iso(base + datetime.timedelta(minutes=1))
    assert _names(cloud, "2.66", f"changes-since={since}&changes-before={before}") == [
        "w-deleted"]
    # A member keeps it (Nova adds it to the filters non-admins may use).
    assert _names(cloud, "2.66", f"changes-before={before}", token=member) == [
        "w-deleted", "w-old"]
    resp = call(cloud, "2.66", "GET", f"/servers?changes-since={before}&changes-before={since}",
                status=400)
    assert fault_message(resp) == WINDOW_ERROR
    resp = call(cloud, "2.66", "GET", "/servers?changes-before=yesterday", status=400)
    assert "changes-before" in fault_message(resp)


def test_2_66_instance_actions_changes_before(cloud: InProcessCloud, acted: dict[str, Any]) -> None:
    sid = acted["id"]
    base = (utcnow() - datetime.timedelta(days=1)).replace(microsecond=0)
    listed = _actions(cloud, "2.66", sid)["instanceActions"]
    order = [a["request_id"] for a in reversed(listed)]  # create, stop, start
    with cloud.db.write() as s:
        for minutes, request_id in zip((0, 5, 10), order):
            s.execute(update(InstanceAction).where(
                InstanceAction.instance_uuid == sid, InstanceAction.request_id == request_id
            ).values(updated_at=base + datetime.timedelta(minutes=minutes)))
    before = iso(base + datetime.timedelta(minutes=6))
    query = f"?changes-before={before}"
    assert "changes-before" in fault_message(_raw_actions(cloud, "2.65", sid, query, 400))
    got = _actions(cloud, "2.66", sid, query)["instanceActions"]
    assert [a["request_id"] for a in got] == [order[1], order[0]]
    since = iso(base + datetime.timedelta(minutes=1))
    got = _actions(cloud, "2.66", sid, f"{query}&changes-since={since}")["instanceActions"]
    assert [a["request_id"] for a in got] == [order[1]]
    resp = _raw_actions(cloud, "2.66", sid, f"?changes-since={before}&changes-before={since}",
                        400)
    assert fault_message(resp) == WINDOW_ERROR
    assert "changes-before" in fault_message(
        _raw_actions(cloud, "2.66", sid, "?changes-before=a&changes-before=b", 400))


def _raw_actions(cloud: InProcessCloud, version: str, sid: str, query: str,
                 status: int) -> Any:
    return call(cloud, version, "GET", f"/servers/{sid}/os-instance-actions{query}",
                status=status)


def test_2_66_migrations_changes_before(cloud: InProcessCloud, history: dict[str, Any]) -> None:
    sid, rows = history["server"]["id"], history["rows"]
    before = rows[1]["updated_at"].isoformat()
    query = f"?instance_uuid={sid}&changes-before={before}"
    assert "changes-before" in fault_message(_migrations(cloud, "2.65", query, status=400))
    got = _migrations(cloud, "2.66", query).get_json()["migrations"]
    # At or before it, newest first; the one never updated (null) not at all.
    assert [m["uuid"] for m in got] == [rows[1]["uuid"], rows[0]["uuid"]]
    since = rows[1]["updated_at"].isoformat()
    got = _migrations(cloud, "2.66", f"{query}&changes-since={since}").get_json()["migrations"]
    assert [m["uuid"] for m in got] == [rows[1]["uuid"]]
    resp = _migrations(cloud, "2.66", f"?changes-since={rows[2]['updated_at'].isoformat()}"
                                      f"&changes-before={before}", status=400)
    assert fault_message(resp) == WINDOW_ERROR
