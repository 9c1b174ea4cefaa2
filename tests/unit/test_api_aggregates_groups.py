"""os-aggregates and os-server-groups (2.1 wire format) on the in-process cloud,
and what the scheduler makes of them."""
from __future__ import annotations

from typing import Any

import pytest

from stratus.identity import backend
from tests.cloud import InProcessCloud

HOSTS = ("host1", "host2", "host3")


@pytest.fixture
def demo(cloud: InProcessCloud) -> str:
    project = backend.create_project(cloud.db, "demo")
    user = backend.create_user(cloud.db, "demo", "pw")
    backend.grant_role(cloud.db, user["id"], project["id"], "member")
    return cloud.token("demo", "pw", "demo")


def call(cloud: InProcessCloud, method: str, path: str, body: Any = None, code: int = 200,
         token: str | None = None) -> Any:
    resp = cloud.compute(method, path, body, token=token)
    assert resp.status_code == code, resp.get_data(as_text=True)
    return resp.get_json() if resp.get_data() else None


def action(cloud, agg_id, body, code=200):
    return call(cloud, "POST", f"/os-aggregates/{agg_id}/action", body, code)


# -- aggregates ------------------------------------------------------------------------

def test_aggregate_lifecycle_and_wire_format(cloud):
    created = call(cloud, "POST", "/os-aggregates",
                   {"aggregate": {"name": "rack1", "availability_zone": "az1"}})["aggregate"]
    assert set(created) == {"id", "name", "availability_zone", "created_at", "updated_at",
                            "deleted", "deleted_at"}
    assert (created["name"], created["availability_zone"], created["deleted"]) == (
        "rack1", "az1", False)
    agg_id = created["id"]
    shown = call(cloud, "GET", f"/os-aggregates/{agg_id}")["aggregate"]
    assert shown["hosts"] == [] and shown["metadata"] == {"availability_zone": "az1"}
    added = action(cloud, agg_id, {"add_host": {"host": "host1"}})["aggregate"]
    assert added["hosts"] == ["host1"]
    action(cloud, agg_id, {"add_host": {"host": "host1"}}, 409)
    action(cloud, agg_id, {"add_host": {"host": "nohost"}}, 404)
    meta = action(cloud, agg_id, {"set_metadata": {"metadata": {"ssd": "true",
                                                                "gone": None}}})
    assert meta["aggregate"]["metadata"] == {"availability_zone": "az1", "ssd": "true"}
    meta = action(cloud, agg_id, {"set_metadata": {"metadata": {"ssd": None}}})
    assert meta["aggregate"]["metadata"] == {"availability_zone": "az1"}
    renamed = call(cloud, "PUT", f"/os-aggregates/{agg_id}",
                   {"aggregate": {"name": "rack-one"}})["aggregate"]
    assert renamed["name"] == "rack-one" and renamed["hosts"] == ["host1"]
    listed = call(cloud, "GET", "/os-aggregates")["aggregates"]
    assert [a["name"] for a in listed] == ["rack-one"]
    call(cloud, "DELETE", f"/os-aggregates/{agg_id}", code=400)  # still has a host
    action(cloud, agg_id, {"remove_host": {"host": "host1"}})
    action(cloud, agg_id, {"remove_host": {"host": "host1"}}, 404)
    call(cloud, "DELETE", f"/os-aggregates/{agg_id}")
    call(cloud, "GET", f"/os-aggregates/{agg_id}", code=404)


@pytest.mark.parametrize("body", [
    {}, {"aggregate": {}}, {"aggregate": {"name": ""}}, {"aggregate": {"name": " x"}},
    {"aggregate": {"name": "x", "extra": 1}}, {"aggregate": {"name": "x",
                                                             "availability_zone": ""}},
])
def test_aggregate_create_validation(cloud, body):
    call(cloud, "POST", "/os-aggregates", body, 400)


def test_aggregate_conflicts_and_zone_rules(cloud):
    a = call(cloud, "POST", "/os-aggregates", {"aggregate": {"name": "a",
                                                            "availability_zone": "az1"}})
    call(cloud, "POST", "/os-aggregates", {"aggregate": {"name": "a"}}, 409)
    b = call(cloud, "POST", "/os-aggregates", {"aggregate": {"name": "b",
                                                            "availability_zone": "az2"}})
    plain = call(cloud, "POST", "/os-aggregates", {"aggregate": {"name": "plain"}})
    a_id, b_id, plain_id = (x["aggregate"]["id"] for x in (a, b, plain))
    action(cloud, a_id, {"add_host": {"host": "host1"}})
    action(cloud, b_id, {"add_host": {"host": "host1"}}, 400)  # one zone per host
    action(cloud, plain_id, {"add_host": {"host": "host1"}})   # no zone: fine
    action(cloud, plain_id, {"set_metadata": {"metadata": {"availability_zone": "az2"}}}, 400)
    call(cloud, "PUT", f"/os-aggregates/{plain_id}",
         {"aggregate": {"availability_zone": "az1"}})
    call(cloud, "POST", "/os-aggregates", {"aggregate": {"name": "x",
                                                        "availability_zone": "internal"}},
         400)
    call(cloud, "POST", "/os-aggregates/999/action", {"add_host": {"host": "host1"}}, 404)
    call(cloud, "POST", f"/os-aggregates/{a_id}/action", {"bogus": {}}, 400)


def test_aggregates_are_admin_only(cloud, demo):
    call(cloud, "GET", "/os-aggregates", code=403, token=demo)
    call(cloud, "POST", "/os-aggregates", {"aggregate": {"name": "x"}}, 403, token=demo)


def test_zones_from_aggregates_show_and_schedule(cloud):
    agg = call(cloud, "POST", "/os-aggregates",
               {"aggregate": {"name": "east", "availability_zone": "east"}})["aggregate"]
    action(cloud, agg["id"], {"add_host": {"host": "host2"}})
    services = call(cloud, "GET", "/os-services?binary=nova-compute")["services"]
    assert {s["host"]: s["zone"] for s in services} == {"host1": "nova", "host2": "east",
                                                        "host3": "nova"}
    zones = call(cloud, "GET", "/os-availability-zone")["availabilityZoneInfo"]
    assert {z["zoneName"] for z in zones} == {"nova", "east"}
    detail = call(cloud, "GET", "/os-availability-zone/detail")["availabilityZoneInfo"]
    east = next(z for z in detail if z["zoneName"] == "east")
    assert list(east["hosts"]) == ["host2"]
    image = cloud.create_image()
    for _ in range(3):
        server = cloud.boot(image=image, availability_zone="east")
        assert server["OS-EXT-SRV-ATTR:host"] == "host2"
    for _ in range(3):
        server = cloud.boot(image=image, availability_zone="nova")
        assert server["OS-EXT-SRV-ATTR:host"] in ("host1", "host3")


def test_aggregate_metadata_isolates_tenants(tmp_path):
    c = InProcessCloud(tmp_path, hosts=HOSTS, overrides={
        ("scheduler", "host_state_max_age"): 0.0,
        ("filter_scheduler", "enabled_filters"): "ComputeFilter,RamFilter,"
                                                 "AggregateMultiTenancyIsolation"})
    try:
        agg = call(c, "POST", "/os-aggregates", {"aggregate": {"name": "private"}})["aggregate"]
        for host in ("host1", "host2"):
            action(c, agg["id"], {"add_host": {"host": host}})
        action(c, agg["id"], {"set_metadata": {"metadata": {"filter_tenant_id": "someone"}}})
        image = c.create_image()
        for _ in range(3):
            assert c.boot(image=image)["OS-EXT-SRV-ATTR:host"] == "host3"
    finally:
        c.close()


# -- server groups ------------------------------------------------------------------------

def test_server_group_lifecycle_and_wire_format(cloud, demo):
    created = call(cloud, "POST", "/os-server-groups", {"server_group": {
        "name": "web", "policies": ["anti-affinity"]}}, token=demo)["server_group"]
    assert set(created) == {"id", "name", "policies", "members", "metadata"}
    assert (created["name"], created["policies"], created["members"], created["metadata"]) == (
        "web", ["anti-affinity"], [], {})
    group_id = created["id"]
    assert call(cloud, "GET", f"/os-server-groups/{group_id}", token=demo)[
        "server_group"]["id"] == group_id
    assert [g["id"] for g in call(cloud, "GET", "/os-server-groups", token=demo)[
        "server_groups"]] == [group_id]
    # Another project does not see it; an admin does with all_projects.
    assert call(cloud, "GET", "/os-server-groups")["server_groups"] == []
    assert len(call(cloud, "GET", "/os-server-groups?all_projects=True")["server_groups"]) == 1
    call(cloud, "GET", "/os-server-groups?all_projects=1", code=403, token=demo)
    call(cloud, "DELETE", f"/os-server-groups/{group_id}", code=204, token=demo)
    call(cloud, "GET", f"/os-server-groups/{group_id}", code=404, token=demo)
    call(cloud, "GET", "/os-server-groups/not-a-uuid", code=404)


@pytest.mark.parametrize("body", [
    {"server_group": {"name": "x"}}, {"server_group": {"name": "x", "policies": []}},
    {"server_group": {"name": "x", "policies": ["bogus"]}},
    {"server_group": {"name": "x", "policies": ["affinity", "anti-affinity"]}},
    {"server_group": {"name": "", "policies": ["affinity"]}},
])
def test_server_group_validation(cloud, body):
    call(cloud, "POST", "/os-server-groups", body, 400)


def test_soft_policies_and_members_through_the_api(cloud):
    image = cloud.create_image()
    group = call(cloud, "POST", "/os-server-groups", {"server_group": {
        "name": "g", "policies": ["anti-affinity"]}})["server_group"]
    servers = []
    for i in range(3):
        resp = cloud.compute("POST", "/servers", {
            "server": {"name": f"m{i}", "flavorRef": "1", "imageRef": image},
            "os:scheduler_hints": {"group": group["id"]}})
        assert resp.status_code == 202
        servers.append(cloud.wait_for(resp.get_json()["server"]["id"], "ACTIVE"))
    assert len({s["OS-EXT-SRV-ATTR:host"] for s in servers}) == 3
    members = call(cloud, "GET", f"/os-server-groups/{group['id']}")["server_group"]["members"]
    assert sorted(members) == sorted(s["id"] for s in servers)
    cloud.compute("DELETE", f"/servers/{servers[0]['id']}")
    cloud.wait_for(servers[0]["id"], "DELETED")
    members = call(cloud, "GET", f"/os-server-groups/{group['id']}")["server_group"]["members"]
    assert servers[0]["id"] not in members and len(members) == 2
    # The soft policies exist from microversion 2.15 (a 400 before, as Nova).
    resp = cloud.compute("POST", "/os-server-groups", {"server_group": {
        "name": "s", "policies": ["soft-affinity"]}},
        headers={"OpenStack-API-Version": "compute 2.14"})
    assert resp.status_code == 400, resp.get_data(as_text=True)
    resp = cloud.compute("POST", "/os-server-groups", {"server_group": {
        "name": "s", "policies": ["soft-affinity"]}},
        headers={"OpenStack-API-Version": "compute 2.15"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    soft = resp.get_json()["server_group"]
    assert soft["policies"] == ["soft-affinity"]
    assert "project_id" in soft and "user_id" in soft  # 2.13
