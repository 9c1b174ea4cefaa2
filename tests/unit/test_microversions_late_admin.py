"""Microversions 2.41-2.61 of the admin resources: aggregate uuids (2.41),
os-services and os-hypervisors by uuid (2.53), flavor descriptions (2.55)
and extra specs (2.61), os-quota-class-sets (2.50, 2.57) and the 2.57 quota-
set and limits keys. Each change is checked at the version before it and at
the version itself, on the in-process cloud, bodies against tempest's
schemas. Every request names its version explicitly."""
from __future__ import annotations

import uuid
from typing import Any

import pytest

from stratus import policy
from stratus.db.models import Service
from stratus.utils import new_uuid, utcnow
from tests import compute_schemas as S
from tests.cloud import InProcessCloud
from tests.versioned import call, fault_message, module_cloud

UNKNOWN = "6b0a3b3c-8d55-4f0c-9d3e-5a4b9b7f1e01"
DEMO_PASSWORD = "late-admin-pw"


cloud = module_cloud("mvlateadmin", ("host1", "host2"))
@pytest.fixture(scope="module")
def image(cloud: InProcessCloud) -> str:
    """A public image (other projects boot from it too)."""
    image_id = cloud.create_image("late-admin")
    resp = cloud.request("PATCH", f"/image/v2/images/{image_id}", raw=b'[{"op": "replace", '
                         b'"path": "/visibility", "value": "public"}]', headers={
                             "Content-Type": "application/openstack-images-v2.1-json-patch"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return image_id


class Tenant:
    """A member and reader of a project of its own."""

    def __init__(self, cloud: InProcessCloud, name: str) -> None:
        from stratus.identity.bootstrap import bootstrap

        result = bootstrap(cloud.db, username=name, password=DEMO_PASSWORD,
                           project_name=name, roles=("member", "reader"))
        self.project_id = result.project_id
        self.token = cloud.token(name, DEMO_PASSWORD, name)


@pytest.fixture(scope="module")
def demo(cloud: InProcessCloud) -> Tenant:
    return Tenant(cloud, "late-demo")


def is_uuid(value: Any) -> bool:
    try:
        return str(uuid.UUID(str(value))) == value
    except ValueError:
        return False


# -- 2.41: aggregate uuids ------------------------------------------------------------

def test_2_41_aggregates_have_their_uuid_in_every_body(cloud: InProcessCloud) -> None:
    old = call(cloud, "2.40", "POST", "/os-aggregates",
               {"aggregate": {"name": "agg-240"}}).get_json()
    S.validate(S.CREATE_AGGREGATE, old)
    assert "uuid" not in old["aggregate"]
    created = call(cloud, "2.41", "POST", "/os-aggregates",
                   {"aggregate": {"name": "agg-241", "availability_zone": "z241"}}).get_json()
    S.validate(S.CREATE_AGGREGATE_V241, created)
    agg_id, agg_uuid = created["aggregate"]["id"], created["aggregate"]["uuid"]
    assert is_uuid(agg_uuid)
    base = f"/os-aggregates/{agg_id}"

    shown = call(cloud, "2.41", "GET", base).get_json()
    S.validate(S.GET_AGGREGATE_V241, shown)
    assert shown["aggregate"]["uuid"] == agg_uuid
    assert "uuid" not in call(cloud, "2.40", "GET", base).get_json()["aggregate"]

    listed = call(cloud, "2.41", "GET", "/os-aggregates").get_json()
    S.validate(S.LIST_AGGREGATES_V241, listed)
    assert {a["uuid"] for a in listed["aggregates"]} >= {agg_uuid}
    old_list = call(cloud, "2.40", "GET", "/os-aggregates").get_json()
    S.validate(S.LIST_AGGREGATES, old_list)
    assert all("uuid" not in a for a in old_list["aggregates"])

    updated = call(cloud, "2.41", "PUT", base, {"aggregate": {"name": "agg-241b"}}).get_json()
    S.validate(S.GET_AGGREGATE_V241, updated)
    assert updated["aggregate"]["uuid"] == agg_uuid
    for action in ({"add_host": {"host": "host1"}},
                   {"set_metadata": {"metadata": {"ssd": "true"}}},
                   {"remove_host": {"host": "host1"}}):
        body = call(cloud, "2.41", "POST", f"{base}/action", action).get_json()
        S.validate(S.GET_AGGREGATE_V241, body)
        assert body["aggregate"]["uuid"] == agg_uuid
        old_body = call(cloud, "2.40", "POST", f"/os-aggregates/{old['aggregate']['id']}"
                                              "/action", action).get_json()
        S.validate(S.LIST_AGGREGATES["properties"]["aggregates"]["items"],
                   old_body["aggregate"])
        assert "uuid" not in old_body["aggregate"]
    call(cloud, "2.41", "DELETE", base)
    call(cloud, "2.41", "DELETE", f"/os-aggregates/{old['aggregate']['id']}")


# -- 2.53: os-services by uuid ------------------------------------------------------------

def _services(cloud: InProcessCloud, version: str, query: str = "") -> list[dict[str, Any]]:
    return call(cloud, version, "GET", "/os-services" + query).get_json()["services"]


def _compute_service(cloud: InProcessCloud, host: str = "host2") -> dict[str, Any]:
    found = _services(cloud, "2.53", f"?binary=nova-compute&host={host}")
    assert len(found) == 1
    return found[0]


def test_2_53_services_list_ids_are_uuids(cloud: InProcessCloud) -> None:
    old = call(cloud, "2.52", "GET", "/os-services").get_json()
    S.validate(S.LIST_SERVICES_V211, old)
    assert all(isinstance(s["id"], int) for s in old["services"])
    new = call(cloud, "2.53", "GET", "/os-services").get_json()
    S.validate(S.LIST_SERVICES_V253, new)
    assert all(is_uuid(s["id"]) for s in new["services"])
    assert [s["host"] for s in new["services"]] == [s["host"] for s in old["services"]]


def test_2_53_update_a_service_by_uuid(cloud: InProcessCloud) -> None:
    service = _compute_service(cloud)
    path = f"/os-services/{service['id']}"
    body = call(cloud, "2.53", "PUT", path,
                {"status": "disabled", "disabled_reason": "maintenance"}).get_json()
    S.validate(S.UPDATE_SERVICE_V253, body)
    assert body["service"]["id"] == service["id"]
    assert (body["service"]["status"], body["service"]["disabled_reason"]) == (
        "disabled", "maintenance")
    assert _compute_service(cloud)["status"] == "disabled"

    body = call(cloud, "2.53", "PUT", path, {"forced_down": True}).get_json()
    S.validate(S.UPDATE_SERVICE_V253, body)
    assert body["service"]["forced_down"] is True and body["service"]["state"] == "down"
    assert body["service"]["status"] == "disabled"  # untouched

    body = call(cloud, "2.53", "PUT", path,
                {"status": "enabled", "forced_down": "false"}).get_json()
    S.validate(S.UPDATE_SERVICE_V253, body)
    assert body["service"]["status"] == "enabled"
    assert body["service"]["disabled_reason"] is None
    assert body["service"]["forced_down"] is False and body["service"]["state"] == "up"
    # A disable without a reason clears the old one.
    call(cloud, "2.53", "PUT", path, {"status": "disabled", "disabled_reason": "x"})
    body = call(cloud, "2.53", "PUT", path, {"status": "disabled"}).get_json()
    assert body["service"]["disabled_reason"] is None
    call(cloud, "2.53", "PUT", path, {"status": "enabled"})


@pytest.mark.parametrize("body,expected", [
    ({"status": "enabled", "disabled_reason": "why"},
     "Specifying 'disabled_reason' with status 'enabled' is invalid."),
    ({}, "No updates were requested. Fields 'status' or 'forced_down' should be "
         "specified."),
    ({"disabled_reason": "only a reason"}, "No updates were requested."),
    ({"status": "off"}, "Invalid input for field/attribute status."),
    ({"forced_down": "maybe"}, "Invalid input for field/attribute forced_down."),
    ({"status": "disabled", "disabled_reason": ""},
     "Invalid input for field/attribute disabled_reason."),
    ({"status": "disabled", "host": "host2"},
     "Additional properties are not allowed ('host' was unexpected)"),
])
def test_2_53_bad_service_updates_change_nothing(cloud: InProcessCloud, body: dict[str, Any],
                                                 expected: str) -> None:
    before = _compute_service(cloud)
    resp = call(cloud, "2.53", "PUT", f"/os-services/{before['id']}", body, status=400)
    assert expected in fault_message(resp)
    after = _compute_service(cloud)
    assert {k: after[k] for k in ("status", "disabled_reason", "forced_down")} == \
        {k: before[k] for k in ("status", "disabled_reason", "forced_down")}


def test_2_53_service_ids_and_paths(cloud: InProcessCloud) -> None:
    # Not a uuid: 400, as Nova; an unknown uuid: 404.
    resp = call(cloud, "2.53", "PUT", "/os-services/1", {"status": "enabled"}, status=400)
    assert fault_message(resp) == "Invalid uuid 1"
    resp = call(cloud, "2.53", "PUT", f"/os-services/{UNKNOWN}", {"status": "enabled"},
                status=404)
    assert fault_message(resp) == f"Service {UNKNOWN} could not be found."
    # The action-named paths are gone: at 2.53 "disable" is an id (Nova's routes).
    for action in ("enable", "disable", "disable-log-reason", "force-down"):
        resp = call(cloud, "2.53", "PUT", f"/os-services/{action}",
                    {"host": "host2", "binary": "nova-compute"}, status=400)
        assert "Additional properties are not allowed" in fault_message(resp)
        resp = call(cloud, "2.53", "PUT", f"/os-services/{action}", {"status": "enabled"},
                    status=400)
        assert fault_message(resp) == f"Invalid uuid {action}"
    # ...while 2.52 still has them, and no uuid path.
    service = _compute_service(cloud)
    call(cloud, "2.52", "PUT", "/os-services/enable",
         {"host": "host2", "binary": "nova-compute"})
    resp = call(cloud, "2.52", "PUT", f"/os-services/{service['id']}",
                {"host": "host2", "binary": "nova-compute"}, status=404)
    assert fault_message(resp) == "Unknown action"
    # Only compute services can be updated.
    scheduler = next(s for s in _services(cloud, "2.53") if s["binary"] != "stratus-compute")
    resp = call(cloud, "2.53", "PUT", f"/os-services/{scheduler['id']}",
                {"status": "disabled"}, status=400)
    assert fault_message(resp) == (f"Updating a {scheduler['binary']} service is not "
                                   f"supported. Only stratus-compute services can be updated.")
    # Admin only.
    from stratus.identity.bootstrap import bootstrap
    bootstrap(cloud.db, username="svc-member", password=DEMO_PASSWORD,
              project_name="svc-member", roles=("member",))
    token = cloud.token("svc-member", DEMO_PASSWORD, "svc-member")
    call(cloud, "2.53", "PUT", f"/os-services/{service['id']}", {"status": "disabled"},
         status=403, token=token)
    assert _compute_service(cloud)["status"] == "enabled"


def _fake_service(cloud: InProcessCloud, host: str) -> dict[str, Any]:
    with cloud.db.write() as s:
        svc = Service(uuid=new_uuid(), host=host, binary="stratus-compute",
                      topic="compute", created_at=utcnow())
        s.add(svc)
        s.flush()
        return {"id": svc.id, "uuid": svc.uuid}


def test_2_53_delete_a_service_by_uuid(cloud: InProcessCloud) -> None:
    gone = _fake_service(cloud, "gone-253")
    resp = call(cloud, "2.53", "DELETE", f"/os-services/{gone['id']}", status=400)
    assert fault_message(resp) == f"Invalid uuid {gone['id']}"
    resp = call(cloud, "2.52", "DELETE", f"/os-services/{gone['uuid']}", status=400)
    assert "id must be an integer" in fault_message(resp)
    agg = call(cloud, "2.53", "POST", "/os-aggregates",
               {"aggregate": {"name": "agg-of-gone"}}).get_json()["aggregate"]
    touched = call(cloud, "2.53", "POST", f"/os-aggregates/{agg['id']}/action",
                   {"add_host": {"host": "gone-253"}}).get_json()["aggregate"]["updated_at"]
    call(cloud, "2.53", "DELETE", f"/os-services/{gone['uuid']}", status=204)
    assert "gone-253" not in {s["host"] for s in _services(cloud, "2.53")}
    # As Nova, the host leaves its aggregates with its service.
    left = call(cloud, "2.53", "GET", f"/os-aggregates/{agg['id']}").get_json()["aggregate"]
    assert left["hosts"] == [] and left["updated_at"] > touched  # the schedulers re-read
    call(cloud, "2.53", "DELETE", f"/os-aggregates/{agg['id']}")
    resp = call(cloud, "2.53", "DELETE", f"/os-services/{gone['uuid']}", status=404)
    assert fault_message(resp) == f"Service {gone['uuid']} not found."
    old = _fake_service(cloud, "gone-252")
    call(cloud, "2.52", "DELETE", f"/os-services/{old['id']}", status=204)


# -- 2.53: os-hypervisors by uuid ---------------------------------------------------------

def _hypervisors(cloud: InProcessCloud, version: str, path: str = "/os-hypervisors/detail"
                 ) -> list[dict[str, Any]]:
    return call(cloud, version, "GET", path).get_json()["hypervisors"]


def test_2_53_hypervisor_ids_are_uuids(cloud: InProcessCloud) -> None:
    old = _hypervisors(cloud, "2.52")
    assert all(isinstance(h["id"], int) and isinstance(h["service"]["id"], int) for h in old)
    brief = call(cloud, "2.53", "GET", "/os-hypervisors").get_json()
    S.validate(S.LIST_HYPERVISORS_V253, brief)
    detail = call(cloud, "2.53", "GET", "/os-hypervisors/detail").get_json()
    S.validate(S.LIST_HYPERVISORS_DETAIL_V253, detail)
    services = {s["host"]: s["id"] for s in _services(cloud, "2.53", "?binary=nova-compute")}
    for hyp in detail["hypervisors"]:
        assert is_uuid(hyp["id"]) and "servers" not in hyp
        assert hyp["service"]["id"] == services[hyp["service"]["host"]]
    assert [h["id"] for h in brief["hypervisors"]] == [h["id"] for h in detail["hypervisors"]]
    assert [h["hypervisor_hostname"] for h in detail["hypervisors"]] == [
        h["hypervisor_hostname"] for h in old]

    first = detail["hypervisors"][0]
    shown = call(cloud, "2.53", "GET", f"/os-hypervisors/{first['id']}").get_json()
    S.validate(S.GET_HYPERVISOR_V253, shown)
    assert shown["hypervisor"]["id"] == first["id"] and "servers" not in shown["hypervisor"]
    resp = call(cloud, "2.53", "GET", f"/os-hypervisors/{old[0]['id']}", status=400)
    assert fault_message(resp) == f"Invalid uuid {old[0]['id']}"
    resp = call(cloud, "2.53", "GET", f"/os-hypervisors/{UNKNOWN}", status=404)
    assert fault_message(resp) == f"Hypervisor with ID '{UNKNOWN}' could not be found."
    call(cloud, "2.52", "GET", f"/os-hypervisors/{first['id']}", status=404)
    assert call(cloud, "2.52", "GET", f"/os-hypervisors/{old[0]['id']}").get_json()[
        "hypervisor"]["id"] == old[0]["id"]
    # Uptime: by uuid from 2.53 (501: no driver reports it), 400 for an integer.
    call(cloud, "2.53", "GET", f"/os-hypervisors/{first['id']}/uptime", status=501)
    resp = call(cloud, "2.53", "GET", f"/os-hypervisors/{old[0]['id']}/uptime", status=400)
    assert fault_message(resp) == f"Invalid uuid {old[0]['id']}"
    call(cloud, "2.53", "GET", f"/os-hypervisors/{UNKNOWN}/uptime", status=404)
    call(cloud, "2.52", "GET", f"/os-hypervisors/{old[0]['id']}/uptime", status=501)


def test_2_53_hypervisors_with_servers_and_pattern(cloud: InProcessCloud,
                                                   image: str) -> None:
    server = cloud.boot("on-a-hypervisor", image=image)
    host = call(cloud, "2.53", "GET", f"/servers/{server['id']}").get_json()["server"][
        "OS-EXT-SRV-ATTR:host"]
    listed = call(cloud, "2.53", "GET", "/os-hypervisors?with_servers=true").get_json()
    S.validate(S.LIST_HYPERVISORS_V253, listed)
    hosting = [h for h in listed["hypervisors"] if "servers" in h]
    assert {"name": "on-a-hypervisor", "uuid": server["id"]} in [
        s for h in hosting for s in h["servers"]]
    detail = call(cloud, "2.53", "GET", "/os-hypervisors/detail?with_servers=1").get_json()
    S.validate(S.LIST_HYPERVISORS_DETAIL_V253, detail)
    node = next(h for h in detail["hypervisors"] if h["service"]["host"] == host)
    assert server["id"] in [s["uuid"] for s in node["servers"]]
    shown = call(cloud, "2.53", "GET",
                 f"/os-hypervisors/{node['id']}?with_servers=yes").get_json()
    S.validate(S.GET_HYPERVISOR_V253, shown)
    assert server["id"] in [s["uuid"] for s in shown["hypervisor"]["servers"]]
    assert "servers" not in call(cloud, "2.53", "GET",
                                 f"/os-hypervisors/{node['id']}?with_servers=false"
                                 ).get_json()["hypervisor"]

    # hypervisor_hostname_pattern: the matching nodes, no paging links.
    name = node["hypervisor_hostname"]
    matched = call(cloud, "2.53", "GET",
                   f"/os-hypervisors?hypervisor_hostname_pattern={name}").get_json()
    S.validate(S.LIST_HYPERVISORS_V253, matched)
    assert [h["hypervisor_hostname"] for h in matched["hypervisors"]] == [name]
    both = call(cloud, "2.53", "GET", "/os-hypervisors/detail?hypervisor_hostname_pattern="
                                      f"{name}&with_servers=true").get_json()
    assert server["id"] in [s["uuid"] for s in both["hypervisors"][0]["servers"]]
    resp = call(cloud, "2.53", "GET", "/os-hypervisors?hypervisor_hostname_pattern=nomatch",
                status=404)
    assert fault_message(resp) == "No hypervisor matching 'nomatch' could be found."
    for paging in ("limit=1", f"marker={node['id']}"):
        resp = call(cloud, "2.53", "GET", "/os-hypervisors/detail?hypervisor_hostname_pattern="
                                          f"{name}&{paging}", status=400)
        assert fault_message(resp) == ("Paging over hypervisors with the "
                                       "hypervisor_hostname_pattern query parameter is not "
                                       "supported.")
    # Before 2.53 the pattern and with_servers are ignored.
    old = call(cloud, "2.52", "GET",
               "/os-hypervisors?hypervisor_hostname_pattern=nomatch&with_servers=1").get_json()
    assert len(old["hypervisors"]) == 2 and all("servers" not in h for h in old["hypervisors"])
    assert cloud.compute("DELETE", f"/servers/{server['id']}").status_code == 204
    cloud.wait_for(server["id"], "DELETED")


@pytest.mark.parametrize("path,expected", [
    ("/os-hypervisors?foo=1", "Additional properties are not allowed ('foo' was unexpected)"),
    ("/os-hypervisors/detail?with_servers=maybe",
     "Invalid input for query parameters with_servers. Value: maybe."),
    ("/os-hypervisors?limit=-1", "Invalid input for query parameters limit. Value: -1."),
    ("/os-hypervisors?with_servers=1&with_servers=0",
     "Invalid input for query parameters with_servers."),
    ("/os-hypervisors?hypervisor_hostname_pattern=bad%20name",
     "Invalid input for query parameters hypervisor_hostname_pattern."),
    ("/os-hypervisors/detail?marker=nope", "marker [nope] not found"),
])
def test_2_53_hypervisor_query_validation(cloud: InProcessCloud, path: str,
                                          expected: str) -> None:
    resp = call(cloud, "2.53", "GET", path, status=400)
    assert expected in fault_message(resp)


def test_2_53_hypervisor_show_query_validation(cloud: InProcessCloud) -> None:
    hyp = _hypervisors(cloud, "2.53")[0]
    resp = call(cloud, "2.53", "GET", f"/os-hypervisors/{hyp['id']}?foo=1", status=400)
    assert fault_message(resp) == "Additional properties are not allowed ('foo' was unexpected)"
    # Before 2.53, unknown parameters are ignored.
    call(cloud, "2.52", "GET", "/os-hypervisors?foo=1")
    call(cloud, "2.52", "GET", f"/os-hypervisors/{_hypervisors(cloud, '2.52')[0]['id']}?foo=1")


def test_2_53_hypervisor_paging_by_uuid(cloud: InProcessCloud) -> None:
    all_ids = [h["id"] for h in _hypervisors(cloud, "2.53", "/os-hypervisors")]
    page = call(cloud, "2.53", "GET", "/os-hypervisors?limit=1").get_json()
    S.validate(S.LIST_HYPERVISORS_V253, page)
    assert [h["id"] for h in page["hypervisors"]] == all_ids[:1]
    href = page["hypervisors_links"][0]["href"]
    assert f"marker={all_ids[0]}" in href
    rest = call(cloud, "2.53", "GET", f"/os-hypervisors?marker={all_ids[0]}").get_json()
    assert [h["id"] for h in rest["hypervisors"]] == all_ids[1:]
    detail = call(cloud, "2.53", "GET",
                  f"/os-hypervisors/detail?limit=5&marker={all_ids[0]}").get_json()
    assert [h["id"] for h in detail["hypervisors"]] == all_ids[1:]
    resp = call(cloud, "2.53", "GET", f"/os-hypervisors?marker={UNKNOWN}", status=400)
    assert fault_message(resp) == f"marker [{UNKNOWN}] not found"


def test_2_53_search_and_servers_routes_are_gone(cloud: InProcessCloud) -> None:
    name = _hypervisors(cloud, "2.52")[0]["hypervisor_hostname"]
    found = call(cloud, "2.52", "GET", f"/os-hypervisors/{name}/search").get_json()
    S.validate(S.LIST_HYPERVISORS, found)
    call(cloud, "2.52", "GET", f"/os-hypervisors/{name}/servers")
    for route in ("search", "servers"):
        resp = call(cloud, "2.53", "GET", f"/os-hypervisors/{name}/{route}", status=404)
        assert fault_message(resp) == "The resource could not be found."


# -- 2.55: flavor descriptions ------------------------------------------------------------

def _create_flavor(cloud: InProcessCloud, version: str, name: str, status: int = 200,
                   **extra: Any) -> Any:
    return call(cloud, version, "POST", "/flavors", {"flavor": {
        "name": name, "ram": 64, "vcpus": 1, "disk": 1, **extra}}, status=status)


def test_2_55_flavor_descriptions(cloud: InProcessCloud) -> None:
    resp = _create_flavor(cloud, "2.54", "desc-254", status=400, description="nope")
    assert "Additional properties are not allowed" in fault_message(resp)
    old = _create_flavor(cloud, "2.54", "desc-254").get_json()
    S.validate(S.GET_FLAVOR, old)
    assert "description" not in old["flavor"]
    created = _create_flavor(cloud, "2.55", "desc-255", id="desc-255",
                             description="Small flavor, ünïcode ok").get_json()
    S.validate(S.GET_FLAVOR_V255, created)
    assert created["flavor"]["description"] == "Small flavor, ünïcode ok"
    shown = call(cloud, "2.55", "GET", "/flavors/desc-255").get_json()
    S.validate(S.GET_FLAVOR_V255, shown)
    assert shown["flavor"]["description"] == "Small flavor, ünïcode ok"
    assert "description" not in call(cloud, "2.54", "GET", "/flavors/desc-255").get_json()[
        "flavor"]

    brief = call(cloud, "2.55", "GET", "/flavors").get_json()
    S.validate(S.LIST_FLAVORS_V255, brief)
    by_id = {f["id"]: f for f in brief["flavors"]}
    assert by_id["desc-255"]["description"] == "Small flavor, ünïcode ok"
    assert by_id[old["flavor"]["id"]]["description"] is None
    assert all("extra_specs" not in f for f in brief["flavors"])
    old_brief = call(cloud, "2.54", "GET", "/flavors").get_json()
    S.validate(S.LIST_FLAVORS, old_brief)
    assert all("description" not in f for f in old_brief["flavors"])
    detail = call(cloud, "2.55", "GET", "/flavors/detail").get_json()
    S.validate(S.LIST_FLAVORS_DETAIL_V255, detail)
    assert all("extra_specs" not in f for f in detail["flavors"])


def test_2_55_update_a_flavor_description(cloud: InProcessCloud, demo: Tenant) -> None:
    _create_flavor(cloud, "2.55", "upd-255", id="upd-255")
    path = "/flavors/upd-255"
    resp = call(cloud, "2.54", "PUT", path, {"flavor": {"description": "x"}}, status=404)
    assert fault_message(resp) == "The resource could not be found."
    updated = call(cloud, "2.55", "PUT", path, {"flavor": {"description": "new"}}).get_json()
    S.validate(S.GET_FLAVOR_V255, updated)
    assert updated["flavor"]["description"] == "new"
    assert "extra_specs" not in updated["flavor"]
    assert call(cloud, "2.55", "GET", path).get_json()["flavor"]["description"] == "new"
    cleared = call(cloud, "2.55", "PUT", path, {"flavor": {"description": None}}).get_json()
    assert cleared["flavor"]["description"] is None
    call(cloud, "2.55", "PUT", path, {"flavor": {"description": "kept"}})

    for bad, expected in (
            ({"flavor": {}}, "'description' is a required property"),
            ({"flavor": {"description": "x", "name": "y"}}, "Additional properties"),
            ({"flavor": {"description": "x" * 65536}}, "is too long"),
            ({"flavor": {"description": "bell\x07"}}, "printable characters"),
            ({"flavor": {"description": "emoji \U0001F600"}}, "printable characters"),
            ({"flavor": {"description": "line\u2028sep"}}, "printable characters"),
            ({"description": "x"}, "'flavor' is a required property")):
        resp = call(cloud, "2.55", "PUT", path, bad, status=400)
        assert expected in fault_message(resp), bad
    call(cloud, "2.55", "PUT", path, {"flavor": {"description": "x"}}, status=403,
         token=demo.token)
    resp = call(cloud, "2.55", "PUT", "/flavors/no-such", {"flavor": {"description": "x"}},
                status=404)
    assert "no-such" in fault_message(resp)
    assert call(cloud, "2.55", "GET", path).get_json()["flavor"]["description"] == "kept"
    # The longest description there may be, and the same checks on create.
    call(cloud, "2.55", "PUT", path, {"flavor": {"description": "d" * 65535}})
    _create_flavor(cloud, "2.55", "too-long", status=400, description="x" * 65536)
    _create_flavor(cloud, "2.55", "ctrl", status=400, description="tab\tno")
    names = {f["name"] for f in call(cloud, "2.55", "GET", "/flavors").get_json()["flavors"]}
    assert not {"too-long", "ctrl"} & names


# -- 2.61: flavor extra specs in flavor bodies --------------------------------------------

def test_2_61_flavor_bodies_carry_extra_specs(cloud: InProcessCloud, demo: Tenant) -> None:
    created = _create_flavor(cloud, "2.61", "specs-261", id="specs-261").get_json()
    S.validate(S.GET_FLAVOR_V261, created)
    assert created["flavor"]["extra_specs"] == {}
    call(cloud, "2.61", "POST", "/flavors/specs-261/os-extra_specs",
         {"extra_specs": {"hw:cpu_policy": "dedicated", "quota:cpu_shares": 2048}})
    expected = {"hw:cpu_policy": "dedicated", "quota:cpu_shares": "2048"}
    shown = call(cloud, "2.61", "GET", "/flavors/specs-261").get_json()
    S.validate(S.GET_FLAVOR_V261, shown)
    assert shown["flavor"]["extra_specs"] == expected
    assert "extra_specs" not in call(cloud, "2.60", "GET", "/flavors/specs-261").get_json()[
        "flavor"]
    detail = call(cloud, "2.61", "GET", "/flavors/detail").get_json()
    S.validate(S.LIST_FLAVORS_DETAIL_V261, detail)
    assert all("extra_specs" in f for f in detail["flavors"])
    assert {f["id"]: f for f in detail["flavors"]}["specs-261"]["extra_specs"] == expected
    old_detail = call(cloud, "2.60", "GET", "/flavors/detail").get_json()
    S.validate(S.LIST_FLAVORS_DETAIL_V255, old_detail)
    brief = call(cloud, "2.61", "GET", "/flavors").get_json()
    S.validate(S.LIST_FLAVORS_V255, brief)
    assert all("extra_specs" not in f for f in brief["flavors"])
    updated = call(cloud, "2.61", "PUT", "/flavors/specs-261",
                   {"flavor": {"description": "pinned"}}).get_json()
    S.validate(S.GET_FLAVOR_V261, updated)
    assert updated["flavor"]["extra_specs"] == expected
    # A project reader passes os-flavor-extra-specs:index by default.
    as_member = call(cloud, "2.61", "GET", "/flavors/specs-261", token=demo.token).get_json()
    assert as_member["flavor"]["extra_specs"] == expected


def test_2_61_extra_specs_follow_the_index_policy(cloud: InProcessCloud,
                                                  tmp_path: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _create_flavor(cloud, "2.61", "nospecs-261", id="nospecs-261")
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"os_compute_api:os-flavor-extra-specs:index": "!"\n')
    monkeypatch.setattr(policy, "_enforcer", policy.Enforcer(policy_file=str(policy_file)))
    shown = call(cloud, "2.61", "GET", "/flavors/nospecs-261").get_json()
    S.validate(S.GET_FLAVOR_V261, shown)
    assert "extra_specs" not in shown["flavor"]
    detail = call(cloud, "2.61", "GET", "/flavors/detail").get_json()
    assert all("extra_specs" not in f for f in detail["flavors"])
    updated = call(cloud, "2.61", "PUT", "/flavors/nospecs-261",
                   {"flavor": {"description": "d"}}).get_json()
    assert "extra_specs" not in updated["flavor"]


# -- os-quota-class-sets (2.50, 2.57) and the 2.57 quota keys ------------------------------

def _class_path(name: str = "default") -> str:
    return f"/os-quota-class-sets/{name}"


def test_quota_class_keys_by_version(cloud: InProcessCloud, demo: Tenant) -> None:
    for version, schema, keys in (
            ("2.49", S.GET_QUOTA_CLASS_SET, S.QUOTA_CLASS_KEYS_V21),
            ("2.50", S.GET_QUOTA_CLASS_SET_V250, S.QUOTA_CLASS_KEYS_V250),
            ("2.56", S.GET_QUOTA_CLASS_SET_V250, S.QUOTA_CLASS_KEYS_V250),
            ("2.57", S.GET_QUOTA_CLASS_SET_V257, S.QUOTA_CLASS_KEYS_V257)):
        shown = call(cloud, version, "GET", _class_path("gold")).get_json()
        S.validate(schema, shown)
        assert set(shown["quota_class_set"]) == set(keys) | {"id"}, version
        assert shown["quota_class_set"]["id"] == "gold"
    shown = call(cloud, "2.1", "GET", _class_path()).get_json()["quota_class_set"]
    assert shown["cores"] == -1 and shown["key_pairs"] == 100  # the [quota] options
    call(cloud, "2.57", "GET", _class_path(), status=403, token=demo.token)
    call(cloud, "2.57", "PUT", _class_path(), {"quota_class_set": {"cores": 1}},
         status=403, token=demo.token)


def test_quota_class_updates_by_version(cloud: InProcessCloud) -> None:
    path = _class_path("silver")
    # 2.1: the legacy keys (networks and server groups accepted, not all shown).
    body = call(cloud, "2.1", "PUT", path, {"quota_class_set": {
        "floating_ips": 5, "networks": 3, "server_groups": 7, "injected_files": "4"}}
    ).get_json()
    S.validate(S.UPDATE_QUOTA_CLASS_SET, body)
    assert body["quota_class_set"]["floating_ips"] == 5
    assert body["quota_class_set"]["injected_files"] == 4
    assert call(cloud, "2.50", "GET", path).get_json()["quota_class_set"]["server_groups"] == 7
    # 2.50: no network quotas.
    for key in ("fixed_ips", "floating_ips", "networks", "security_groups",
                "security_group_rules"):
        resp = call(cloud, "2.50", "PUT", path, {"quota_class_set": {key: 1}}, status=400)
        assert "Additional properties are not allowed" in fault_message(resp)
    body = call(cloud, "2.50", "PUT", path, {"quota_class_set": {
        "server_group_members": 9, "injected_file_path_bytes": 128}}).get_json()
    S.validate(S.UPDATE_QUOTA_CLASS_SET_V250, body)
    assert body["quota_class_set"]["server_group_members"] == 9
    # 2.57: no personality quotas either.
    for key in ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes"):
        call(cloud, "2.57", "PUT", path, {"quota_class_set": {key: 1}}, status=400)
    body = call(cloud, "2.57", "PUT", path, {"quota_class_set": {"instances": 3}}).get_json()
    S.validate(S.UPDATE_QUOTA_CLASS_SET_V257, body)
    assert body["quota_class_set"]["instances"] == 3
    before = call(cloud, "2.57", "GET", path).get_json()
    for bad in ({"quota_class_set": {"cores": -2}}, {"quota_class_set": {"cores": "-2"}},
                {"quota_class_set": {"cores": "many"}},
                {"quota_class_set": {"cores": 2 ** 31}}, {"quota_class_set": {"force": True}},
                {"quota_class_set": {"cores": 1, "bogus": 1}}, {"cores": 1}, []):
        resp = call(cloud, "2.57", "PUT", path, bad, status=400)
        assert fault_message(resp)
    assert call(cloud, "2.57", "GET", path).get_json() == before
    resp = call(cloud, "2.57", "PUT", _class_path("x" * 256),
                {"quota_class_set": {"cores": 1}}, status=400)
    assert "quota_class_name has more than 255 characters" in fault_message(resp)


def test_default_quota_class_overrides_the_config_defaults(cloud: InProcessCloud,
                                                           image: str) -> None:
    tenant = Tenant(cloud, "late-class")
    project = tenant.project_id
    try:
        body = call(cloud, "2.57", "PUT", _class_path(), {"quota_class_set": {
            "instances": 0, "key_pairs": 42}}).get_json()
        assert body["quota_class_set"]["instances"] == 0
        defaults = call(cloud, "2.57", "GET", f"/os-quota-sets/{project}/defaults").get_json()
        assert defaults["quota_set"]["key_pairs"] == 42
        assert defaults["quota_set"]["instances"] == 0
        shown = call(cloud, "2.57", "GET", f"/os-quota-sets/{project}").get_json()
        assert shown["quota_set"]["key_pairs"] == 42
        detail = call(cloud, "2.57", "GET", f"/os-quota-sets/{project}/detail").get_json()
        assert detail["quota_set"]["instances"]["limit"] == 0
        limits = call(cloud, "2.57", "GET", "/limits",
                      token=tenant.token).get_json()["limits"]["absolute"]
        assert (limits["maxTotalInstances"], limits["maxTotalKeypairs"]) == (0, 42)
        # Enforced: the project has no limit of its own, so the class's 0 holds...
        resp = cloud.compute("POST", "/servers", {"server": {
            "name": "over", "flavorRef": "1", "imageRef": image}}, token=tenant.token)
        assert resp.status_code == 403, resp.get_data(as_text=True)
        assert "Quota exceeded for instances" in fault_message(resp)
        # ...a project limit beats it, and another class changes nothing.
        call(cloud, "2.57", "PUT", f"/os-quota-sets/{project}",
             {"quota_set": {"instances": 1}})
        call(cloud, "2.57", "PUT", _class_path("gold"), {"quota_class_set": {"instances": 0}})
        assert call(cloud, "2.57", "GET", f"/os-quota-sets/{project}").get_json()[
            "quota_set"]["instances"] == 1
        server = cloud.compute("POST", "/servers", {"server": {
            "name": "fits", "flavorRef": "1", "imageRef": image}}, token=tenant.token)
        assert server.status_code == 202, server.get_data(as_text=True)
        cloud.compute("DELETE", f"/servers/{server.get_json()['server']['id']}")
        # An unknown class shows the default class's values.
        assert call(cloud, "2.57", "GET", _class_path("bronze")).get_json()[
            "quota_class_set"]["key_pairs"] == 42
    finally:
        call(cloud, "2.57", "PUT", _class_path(), {"quota_class_set": {
            "instances": -1, "key_pairs": 100}})


def test_2_57_quota_sets_drop_the_personality_quotas(cloud: InProcessCloud) -> None:
    project = cloud.project_id()
    base = f"/os-quota-sets/{project}"
    personality = {"injected_files", "injected_file_content_bytes",
                   "injected_file_path_bytes"}
    for suffix in ("", "/defaults"):
        old = call(cloud, "2.56", "GET", base + suffix).get_json()
        assert personality <= set(old["quota_set"])
        new = call(cloud, "2.57", "GET", base + suffix).get_json()
        S.validate(S.GET_QUOTA_SET_V257, new)
        assert not personality & set(new["quota_set"])
    detail = call(cloud, "2.57", "GET", base + "/detail").get_json()
    S.validate(S.GET_QUOTA_SET_DETAILS_V257, detail)
    assert not personality & set(detail["quota_set"])
    assert personality <= set(call(cloud, "2.56", "GET", base + "/detail").get_json()[
        "quota_set"])
    for key in sorted(personality):
        resp = call(cloud, "2.57", "PUT", base, {"quota_set": {key: 3}}, status=400)
        assert "Additional properties are not allowed" in fault_message(resp)
    updated = call(cloud, "2.56", "PUT", base, {"quota_set": {"injected_files": 6}}).get_json()
    assert updated["quota_set"]["injected_files"] == 6
    updated = call(cloud, "2.57", "PUT", base, {"quota_set": {"metadata_items": 129}}
                   ).get_json()
    S.validate(S.UPDATE_QUOTA_SET_V257, updated)
    call(cloud, "2.57", "DELETE", base, status=202)


def test_2_57_limits_drop_max_personality(cloud: InProcessCloud) -> None:
    old = call(cloud, "2.56", "GET", "/limits").get_json()["limits"]["absolute"]
    assert {"maxPersonality", "maxPersonalitySize"} <= set(old)
    new = call(cloud, "2.57", "GET", "/limits").get_json()
    S.validate(S.GET_LIMITS_V257, new)
    assert not {"maxPersonality", "maxPersonalitySize"} & set(new["limits"]["absolute"])
