"""Stratus' compute responses against tempest's v2.1 response schemas (see
tests/compute_schemas.py), on the in-process cloud with real services: every
body is validated whole (required fields, types, formats, no extra keys), and
every compute answer carries Nova's request-id and microversion headers
(servers, flavors, key pairs, limits, quota sets, services, hypervisors,
zones, aggregates, instance actions, the image proxy, usage, versions).
Also the Keystone wire format of the read-only catalog API (services,
endpoints, regions)."""
from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests import compute_schemas as S
from tests.cloud import InProcessCloud

REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
VARY = {"openstack-api-version", "x-openstack-nova-api-version"}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One cloud for the module: the tests below only add to it."""
    c = InProcessCloud(tmp_path_factory.mktemp("wire"), hosts=("host1", "host2"))
    yield c
    c.close()


def check_headers(resp: Any, versioned: bool = True) -> None:
    """Nova 2.1 sends x-openstack-request-id and x-compute-request-id (the same
    id), and on versioned resources the microversion headers and Vary."""
    rid = resp.headers.get("x-openstack-request-id")
    assert rid and REQUEST_ID.match(rid), dict(resp.headers)
    assert resp.headers.get("x-compute-request-id") == rid
    if versioned:
        assert resp.headers["OpenStack-API-Version"] == "compute 2.1"
        assert resp.headers["X-OpenStack-Nova-API-Version"] == "2.1"
        vary = {v.strip().lower() for v in resp.headers["Vary"].split(",")}
        assert vary >= VARY


def call(cloud: InProcessCloud, method: str, path: str, schema: dict[str, Any] | None,
         status: int = 200, body: Any = None, token: str | None = None) -> Any:
    resp = cloud.compute(method, path, body, token=token)
    assert resp.status_code == status, (method, path, resp.get_data(as_text=True))
    check_headers(resp)
    if schema is None:
        return None
    data = resp.get_json()
    S.validate(schema, data)
    return data


@pytest.fixture(scope="module")
def member(cloud: InProcessCloud) -> str:
    """A token of a plain member of the admin project."""
    ident = "/identity/v3"
    user = cloud.request("POST", f"{ident}/users", {"user": {
        "name": "wire-member", "password": "pw", "domain_id": "default"}}).get_json()["user"]
    role = cloud.request("GET", f"{ident}/roles?name=member").get_json()["roles"][0]
    project = cloud.request("GET", f"{ident}/projects?name=admin").get_json()["projects"][0]
    resp = cloud.request("PUT", f"{ident}/projects/{project['id']}/users/{user['id']}/roles/"
                                f"{role['id']}")
    assert resp.status_code == 204
    return cloud.token("wire-member", "pw", "admin")


def test_versions(cloud: InProcessCloud) -> None:
    resp = cloud.client.get("/compute/")
    assert resp.status_code == 200
    check_headers(resp, versioned=False)
    S.validate(S.LIST_VERSIONS, resp.get_json())
    resp = cloud.client.get("/compute/v2.1/")
    assert resp.status_code == 200
    S.validate(S.GET_ONE_VERSION, resp.get_json())
    assert resp.get_json()["version"]["version"] == "2.75"


def test_servers_and_actions(cloud: InProcessCloud, member: str) -> None:
    image = cloud.create_image("wire-image")
    created = call(cloud, "POST", "/servers", S.CREATE_SERVER, 202, {"server": {
        "name": "wire", "flavorRef": "1", "imageRef": image, "metadata": {"a": "b"},
        "accessIPv4": "192.0.2.10", "accessIPv6": "2001:db8::10"}})
    assert created["server"]["security_groups"] == [{"name": "default"}]
    sid = created["server"]["id"]
    # BUILD then ACTIVE: both states validate.
    call(cloud, "GET", f"/servers/{sid}", S.GET_SERVER)
    server = cloud.wait_for(sid, "ACTIVE")
    shown = call(cloud, "GET", f"/servers/{sid}", S.GET_SERVER)["server"]
    assert shown["accessIPv4"] == "192.0.2.10" and shown["OS-EXT-STS:power_state"] == 1
    assert server["OS-EXT-SRV-ATTR:host"] in ("host1", "host2")

    listed = call(cloud, "GET", "/servers", S.LIST_SERVERS)
    assert sid in [s["id"] for s in listed["servers"]]
    call(cloud, "GET", "/servers/detail", S.LIST_SERVERS_DETAIL)
    paged = call(cloud, "GET", "/servers/detail?limit=1", S.LIST_SERVERS_DETAIL)
    assert paged["servers_links"][0]["rel"] == "next"
    call(cloud, "GET", "/servers?limit=1", S.LIST_SERVERS)
    updated = call(cloud, "PUT", f"/servers/{sid}", S.UPDATE_SERVER,
                   body={"server": {"name": "wire2"}})
    assert updated["server"]["name"] == "wire2"

    for action, status in (({"os-stop": None}, "SHUTOFF"), ({"os-start": None}, "ACTIVE"),
                           ({"reboot": {"type": "HARD"}}, "ACTIVE"),
                           ({"pause": None}, "PAUSED"), ({"unpause": None}, "ACTIVE"),
                           ({"suspend": None}, "SUSPENDED"), ({"resume": None}, "ACTIVE"),
                           ({"lock": None}, "ACTIVE"), ({"unlock": None}, "ACTIVE")):
        resp = cloud.compute("POST", f"/servers/{sid}/action", action)
        assert resp.status_code == 202 and resp.get_data() == b"", action
        check_headers(resp)
        cloud.wait_for(sid, status)
        call(cloud, "GET", f"/servers/{sid}", S.GET_SERVER)

    call(cloud, "GET", f"/servers/{sid}/metadata", S.SERVER_METADATA)
    call(cloud, "POST", f"/servers/{sid}/metadata", S.SERVER_METADATA,
         body={"metadata": {"k": "v"}})
    call(cloud, "PUT", f"/servers/{sid}/metadata", S.SERVER_METADATA,
         body={"metadata": {"k": "v", "x": "y"}})
    call(cloud, "GET", f"/servers/{sid}/metadata/k", S.SERVER_METADATA_ITEM)
    call(cloud, "PUT", f"/servers/{sid}/metadata/k", S.SERVER_METADATA_ITEM,
         body={"meta": {"k": "w"}})
    call(cloud, "DELETE", f"/servers/{sid}/metadata/k", None, 204)

    actions = call(cloud, "GET", f"/servers/{sid}/os-instance-actions",
                   S.LIST_INSTANCE_ACTIONS)["instanceActions"]
    assert [a["action"] for a in actions][-1] == "create"
    for action in actions:
        shown_action = call(cloud, "GET", f"/servers/{sid}/os-instance-actions/"
                                          f"{action['request_id']}", S.SHOW_INSTANCE_ACTION)
        assert "events" in shown_action["instanceAction"]  # admin sees events at 2.1
    assert any(a["action"] == "stop" for a in actions)

    # A non-admin sees neither OS-EXT-SRV-ATTR nor events, and still fits the schemas.
    token = member
    member_view = call(cloud, "GET", f"/servers/{sid}", S.GET_SERVER, token=token)["server"]
    assert not [k for k in member_view if k.startswith("OS-EXT-SRV-ATTR")]
    call(cloud, "GET", "/servers/detail", S.LIST_SERVERS_DETAIL, token=token)
    first = call(cloud, "GET", f"/servers/{sid}/os-instance-actions/{actions[-1]['request_id']}",
                 S.SHOW_INSTANCE_ACTION, token=token)
    assert "events" not in first["instanceAction"]

    call(cloud, "DELETE", f"/servers/{sid}", None, 204)
    cloud.wait_for(sid, "DELETED")


def test_quota_sets(cloud: InProcessCloud, member: str) -> None:
    project = cloud.project_id()
    shown = call(cloud, "GET", f"/os-quota-sets/{project}", S.GET_QUOTA_SET)["quota_set"]
    assert shown["id"] == project and shown["instances"] == 10
    call(cloud, "GET", f"/os-quota-sets/{project}/defaults", S.GET_QUOTA_SET)
    call(cloud, "GET", f"/os-quota-sets/{project}/detail", S.GET_QUOTA_SET_DETAILS)
    updated = call(cloud, "PUT", f"/os-quota-sets/{project}", S.UPDATE_QUOTA_SET,
                   body={"quota_set": {"key_pairs": 50}})["quota_set"]
    assert updated["key_pairs"] == 50
    call(cloud, "GET", f"/os-quota-sets/{project}", S.GET_QUOTA_SET, token=member)
    call(cloud, "DELETE", f"/os-quota-sets/{project}", None, 202)
    assert call(cloud, "GET", f"/os-quota-sets/{project}", S.GET_QUOTA_SET)[
        "quota_set"]["key_pairs"] == 100


def test_server_in_error_has_a_fault(cloud: InProcessCloud) -> None:
    flavor = call(cloud, "POST", "/flavors", S.GET_FLAVOR, body={"flavor": {
        "name": "wire-huge", "ram": 10 ** 8, "vcpus": 1, "disk": 1}})["flavor"]
    # Past any host's memory, not past the project's quota: NoValidHost, ERROR.
    call(cloud, "PUT", f"/os-quota-sets/{cloud.project_id()}", S.UPDATE_QUOTA_SET,
         body={"quota_set": {"ram": -1}})
    image = cloud.create_image("wire-image-2")
    created = call(cloud, "POST", "/servers", S.CREATE_SERVER, 202, {"server": {
        "name": "nohost", "flavorRef": flavor["id"], "imageRef": image}})
    sid = created["server"]["id"]
    cloud.wait_for(sid, "ERROR")
    server = call(cloud, "GET", f"/servers/{sid}", S.GET_SERVER)["server"]
    assert server["fault"]["code"] == 500 and "progress" not in server
    detail = call(cloud, "GET", "/servers/detail", S.LIST_SERVERS_DETAIL)
    assert sid in [s["id"] for s in detail["servers"]]
    call(cloud, "DELETE", f"/servers/{sid}", None, 204)
    cloud.wait_for(sid, "DELETED")
    call(cloud, "DELETE", f"/os-quota-sets/{cloud.project_id()}", None, 202)


def test_flavors_extra_specs_and_access(cloud: InProcessCloud) -> None:
    call(cloud, "GET", "/flavors", S.LIST_FLAVORS)
    call(cloud, "GET", "/flavors/detail", S.LIST_FLAVORS_DETAIL)
    paged = call(cloud, "GET", "/flavors?limit=2", S.LIST_FLAVORS)
    assert paged["flavors_links"][0]["rel"] == "next"
    call(cloud, "GET", "/flavors/detail?limit=2", S.LIST_FLAVORS_DETAIL)
    call(cloud, "GET", "/flavors/1", S.GET_FLAVOR)
    flavor = call(cloud, "POST", "/flavors", S.GET_FLAVOR, body={"flavor": {
        "name": "wire-private", "ram": 64, "vcpus": 1, "disk": 0, "swap": 16,
        "os-flavor-access:is_public": False}})["flavor"]
    assert flavor["swap"] == 16
    fid = flavor["id"]
    call(cloud, "POST", f"/flavors/{fid}/os-extra_specs", S.FLAVOR_EXTRA_SPECS,
         body={"extra_specs": {"hw:cpu_policy": "dedicated", "k": "v"}})
    call(cloud, "GET", f"/flavors/{fid}/os-extra_specs", S.FLAVOR_EXTRA_SPECS)
    call(cloud, "GET", f"/flavors/{fid}/os-extra_specs/k", S.FLAVOR_EXTRA_SPEC_KEY)
    call(cloud, "PUT", f"/flavors/{fid}/os-extra_specs/k", S.FLAVOR_EXTRA_SPEC_KEY,
         body={"k": "w"})
    call(cloud, "DELETE", f"/flavors/{fid}/os-extra_specs/k", None)
    project = cloud.request("GET", "/identity/v3/projects?name=admin").get_json()[
        "projects"][0]["id"]
    added = call(cloud, "POST", f"/flavors/{fid}/action", S.FLAVOR_ACCESS,
                 body={"addTenantAccess": {"tenant": project}})
    assert added["flavor_access"] == [{"flavor_id": fid, "tenant_id": project}]
    call(cloud, "GET", f"/flavors/{fid}/os-flavor-access", S.FLAVOR_ACCESS)
    call(cloud, "POST", f"/flavors/{fid}/action", S.FLAVOR_ACCESS,
         body={"removeTenantAccess": {"tenant": project}})
    call(cloud, "DELETE", f"/flavors/{fid}", None, 202)


def test_keypairs(cloud: InProcessCloud) -> None:
    created = call(cloud, "POST", "/os-keypairs", S.CREATE_KEYPAIR,
                   body={"keypair": {"name": "wire-gen"}})["keypair"]
    assert "private_key" in created
    imported = call(cloud, "POST", "/os-keypairs", S.CREATE_KEYPAIR, body={"keypair": {
        "name": "wire-imp", "public_key": created["public_key"]}})["keypair"]
    assert "private_key" not in imported
    call(cloud, "GET", "/os-keypairs", S.LIST_KEYPAIRS)
    call(cloud, "GET", "/os-keypairs/wire-gen", S.GET_KEYPAIR)
    call(cloud, "DELETE", "/os-keypairs/wire-gen", None, 202)
    call(cloud, "DELETE", "/os-keypairs/wire-imp", None, 202)


def test_limits_services_hypervisors_zones_aggregates(cloud: InProcessCloud) -> None:
    call(cloud, "GET", "/limits", S.GET_LIMITS)
    services = call(cloud, "GET", "/os-services", S.LIST_SERVICES)["services"]
    assert {s["binary"] for s in services} >= {"stratus-compute", "stratus-conductor",
                                               "stratus-scheduler"}
    call(cloud, "GET", "/os-services?binary=nova-compute&host=host1", S.LIST_SERVICES)
    call(cloud, "PUT", "/os-services/disable", S.ENABLE_DISABLE_SERVICE,
         body={"host": "host2", "binary": "nova-compute"})
    call(cloud, "PUT", "/os-services/enable", S.ENABLE_DISABLE_SERVICE,
         body={"host": "host2", "binary": "nova-compute"})

    hypervisors = call(cloud, "GET", "/os-hypervisors", S.LIST_HYPERVISORS)["hypervisors"]
    assert len(hypervisors) == 2
    call(cloud, "GET", "/os-hypervisors/detail", S.LIST_HYPERVISORS_DETAIL)
    call(cloud, "GET", f"/os-hypervisors/{hypervisors[0]['id']}", S.GET_HYPERVISOR)
    call(cloud, "GET", "/os-hypervisors/statistics", S.HYPERVISOR_STATISTICS)
    call(cloud, "GET", "/os-hypervisors/host/search", S.LIST_HYPERVISORS)
    call(cloud, "GET", "/os-hypervisors/host/servers", S.HYPERVISORS_SERVERS)
    # No driver reports its uptime: Nova's 501, which clients expect.
    resp = cloud.compute("GET", f"/os-hypervisors/{hypervisors[0]['id']}/uptime")
    assert resp.status_code == 501 and "notImplemented" in resp.get_json()
    assert cloud.compute("GET", "/os-hypervisors/999/uptime").status_code == 404

    call(cloud, "GET", "/os-availability-zone", S.LIST_AVAILABILITY_ZONES)
    call(cloud, "GET", "/os-availability-zone/detail", S.LIST_AVAILABILITY_ZONES_DETAIL)
    assert call(cloud, "GET", "/os-aggregates", S.LIST_AGGREGATES) == {"aggregates": []}
    assert cloud.compute("GET", "/os-aggregates/1").status_code == 404


def test_image_proxy(cloud: InProcessCloud) -> None:
    image = cloud.create_image("wire-proxy")
    call(cloud, "GET", "/images", S.LIST_IMAGES)
    call(cloud, "GET", "/images/detail", S.LIST_IMAGES_DETAIL)
    call(cloud, "GET", f"/images/{image}", S.GET_IMAGE)
    call(cloud, "POST", f"/images/{image}/metadata", S.IMAGE_METADATA,
         body={"metadata": {"os_distro": "cirros"}})
    call(cloud, "GET", f"/images/{image}/metadata", S.IMAGE_METADATA)
    call(cloud, "GET", f"/images/{image}/metadata/os_distro", S.IMAGE_METADATA_ITEM)


def test_errors_carry_the_headers_too(cloud: InProcessCloud) -> None:
    resp = cloud.compute("GET", "/servers/00000000-0000-0000-0000-000000000000")
    assert resp.status_code == 404 and "itemNotFound" in resp.get_json()
    check_headers(resp)
    resp = cloud.compute("GET", "/servers", headers={"OpenStack-API-Version": "compute 2.999"})
    assert resp.status_code == 406
    check_headers(resp, versioned=False)


# -- identity: the catalog in Keystone's wire format -------------------------------------

def test_identity_catalog_api(cloud: InProcessCloud, member: str) -> None:
    v3 = "http://127.0.0.1:8774/identity/v3"

    def get(path: str, token: str | None = None, status: int = 200) -> Any:
        resp = cloud.request("GET", f"/identity/v3{path}", token=token)
        assert resp.status_code == status, (path, resp.get_data(as_text=True))
        return resp.get_json()

    services = get("/services")
    assert services["links"] == {"self": f"{v3}/services", "previous": None, "next": None}
    by_type = {s["type"]: s for s in services["services"]}
    assert set(by_type) == {"identity", "compute", "image"}
    compute = by_type["compute"]
    assert compute == {"id": compute["id"], "type": "compute", "name": "nova",
                       "description": "", "enabled": True,
                       "links": {"self": f"{v3}/services/{compute['id']}"}}
    assert get(f"/services/{compute['id']}") == {"service": compute}
    assert get("/services?type=image")["services"] == [by_type["image"]]
    get("/services/nope", status=404)

    endpoints = get("/endpoints")["endpoints"]
    assert len(endpoints) == 9
    mine = get(f"/endpoints?service_id={compute['id']}&interface=public")["endpoints"]
    assert len(mine) == 1
    endpoint = mine[0]
    assert endpoint == {"id": endpoint["id"], "interface": "public", "region": "RegionOne",
                        "region_id": "RegionOne", "service_id": compute["id"],
                        "url": "http://127.0.0.1:8774/compute/v2.1", "enabled": True,
                        "links": {"self": f"{v3}/endpoints/{endpoint['id']}"}}
    assert get(f"/endpoints/{endpoint['id']}") == {"endpoint": endpoint}
    # The token's catalog names the same ids.
    catalog = get("/auth/catalog")["catalog"]
    assert {c["id"] for c in catalog} == set(by_type[t]["id"] for t in by_type)
    assert {e["id"] for c in catalog for e in c["endpoints"]} == {e["id"] for e in endpoints}

    regions = get("/regions")
    assert regions["regions"] == [{"id": "RegionOne", "description": "",
                                   "parent_region_id": None,
                                   "links": {"self": f"{v3}/regions/RegionOne"}}]
    assert get("/regions/RegionOne")["region"]["id"] == "RegionOne"
    get("/regions/Elsewhere", status=404)

    # Services and endpoints are for admins; regions for anyone.
    token = member
    assert get("/services", token=token, status=403)["error"]["code"] == 403
    get("/endpoints", token=token, status=403)
    get("/regions", token=token)


def test_a_build_fits_the_schemas_in_every_state(cloud: InProcessCloud) -> None:
    """Poll a build as fast as possible: BUILD/spawning, ACTIVE, then deleting."""
    image = cloud.create_image("wire-poll")
    sid = call(cloud, "POST", "/servers", S.CREATE_SERVER, 202, {"server": {
        "name": "poll", "flavorRef": "1", "imageRef": image}})["server"]["id"]
    seen = set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        server = call(cloud, "GET", f"/servers/{sid}", S.GET_SERVER)["server"]
        seen.add(server["status"])
        if server["status"] == "ACTIVE" and server["OS-EXT-STS:task_state"] is None:
            break
    assert "ACTIVE" in seen
    call(cloud, "DELETE", f"/servers/{sid}", None, 204)
    resp = cloud.compute("GET", f"/servers/{sid}")
    if resp.status_code == 200:
        S.validate(S.GET_SERVER, resp.get_json())
    cloud.wait_for(sid, "DELETED")


def test_simple_tenant_usage(cloud: InProcessCloud, member: str) -> None:
    import datetime

    from stratus.api.compute import simple_tenant_usage as stu

    image = cloud.create_image("wire-usage")
    kept = cloud.boot("usage-kept", flavor="42", image=image)
    gone = cloud.boot("usage-gone", flavor="42", image=image)
    call(cloud, "DELETE", f"/servers/{gone['id']}", None, 204)
    cloud.wait_for(gone["id"], "DELETED")
    start = (datetime.datetime.utcnow() - datetime.timedelta(hours=1)).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")
    end = (datetime.datetime.utcnow() + datetime.timedelta(hours=1)).strftime(
        "%Y-%m-%dT%H:%M:%S")

    listed = call(cloud, "GET", f"/os-simple-tenant-usage?start={start}&end={end}&detailed=1",
                  S.LIST_TENANT_USAGE)["tenant_usages"]
    [usage] = [u for u in listed if u["tenant_id"] == kept["tenant_id"]]
    servers = {s["instance_id"]: s for s in usage["server_usages"]}
    assert {kept["id"], gone["id"]} <= set(servers)
    assert (servers[gone["id"]]["state"], servers[kept["id"]]["state"]) == ("terminated",
                                                                           "active")
    assert servers[gone["id"]]["ended_at"] and servers[kept["id"]]["ended_at"] is None
    assert (servers[kept["id"]]["flavor"], servers[kept["id"]]["memory_mb"],
            servers[kept["id"]]["vcpus"], servers[kept["id"]]["local_gb"]) == (
        "m1.nano", 128, 1, 1)
    assert usage["total_hours"] > 0 and usage["total_memory_mb_usage"] == pytest.approx(
        sum(s["memory_mb"] * s["hours"] for s in usage["server_usages"]))
    brief = call(cloud, "GET", f"/os-simple-tenant-usage?start={start}&end={end}",
                 S.LIST_TENANT_USAGE)["tenant_usages"]
    assert all("server_usages" not in u for u in brief)

    shown = call(cloud, "GET", f"/os-simple-tenant-usage/{kept['tenant_id']}?start={start}",
                 S.GET_TENANT_USAGE)["tenant_usage"]
    assert shown["tenant_id"] == kept["tenant_id"] and len(shown["server_usages"]) >= 2
    # A project's readers may see its usage, not the list; no usage is {}.
    call(cloud, "GET", f"/os-simple-tenant-usage/{kept['tenant_id']}", S.GET_TENANT_USAGE,
         token=member)
    call(cloud, "GET", "/os-simple-tenant-usage", None, 403, token=member)
    assert call(cloud, "GET", "/os-simple-tenant-usage/nobody", None) is None
    assert cloud.compute("GET", "/os-simple-tenant-usage/nobody").get_json() == {
        "tenant_usage": {}}
    assert cloud.compute("GET", "/os-simple-tenant-usage?start=yesterday").status_code == 400
    assert cloud.compute("GET", f"/os-simple-tenant-usage?start={end}&end={start}"
                         ).status_code == 400

    # The hours inside the period, as Nova counts them.
    t = datetime.datetime(2026, 1, 1)
    hour = datetime.timedelta(hours=1)
    assert stu._hours(t, None, t - hour, t + 2 * hour) == 2.0
    assert stu._hours(t, t + hour, t - hour, t + 2 * hour) == 1.0
    assert stu._hours(t - 5 * hour, None, t, t + hour) == 1.0
    assert stu._hours(t, t + hour, t + 2 * hour, t + 3 * hour) == 0.0
    assert stu._hours(None, None, t, t + hour) == 0.0
