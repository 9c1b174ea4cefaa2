"""Compute API v2.1: versions, microversions, flavors (+ extra specs, access),
keypairs, os-services, os-hypervisors, os-availability-zone and limits.

Runs the real app (build_compute_app) over a SQLite database, with a fake
authenticator that builds the RequestContext from X-Test-* headers. Body
key sets are checked against tempest's v2.1 response schemas.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import func, select
from sqlalchemy import update as sql_update
from werkzeug.test import Client

from stratus import conf as stratus_conf
from stratus import exception as exception_types
from stratus.api.compute import hypervisors as hypervisors_api
from stratus.api.compute import microversion
from stratus.api.compute import services as services_api
from stratus.api.compute.app import build_compute_app, resource_routes
from stratus.api.compute.common import ComputeState
from stratus.api.wsgi import NUL_REFUSED, Request
from stratus.context import RequestContext
from stratus.db import Database
from stratus.db import flavors as db_flavors
from stratus.db import keypairs as db_keypairs
from stratus.db import services as db_services
from stratus.db.models import Allocation, Flavor, Instance, KeyPair, Project, Service
from stratus.quota import QuotaEngine
from stratus.utils import new_uuid, utcnow

PUBLIC_URL = "http://api.example.test:8774"
BASE = PUBLIC_URL + "/compute"

ADMIN = {"X-Test-User": "admin-user", "X-Test-Project": "admin-project",
         "X-Test-Roles": "admin,member"}
DEMO = {"X-Test-User": "demo-user", "X-Test-Project": "demo-project", "X-Test-Roles": "member"}
ALT = {"X-Test-User": "alt-user", "X-Test-Project": "alt-project", "X-Test-Roles": "member"}

VERSION_HEADERS = ("OpenStack-API-Version", "X-OpenStack-Nova-API-Version", "Vary")

# tempest/lib/api_schema/response/compute/v2_1/flavors.py common_flavor_info
FLAVOR_KEYS = {"id", "name", "links", "ram", "vcpus", "swap", "disk",
               "OS-FLV-DISABLED:disabled", "os-flavor-access:is_public", "rxtx_factor",
               "OS-FLV-EXT-DATA:ephemeral"}
# tempest .../hypervisors.py hypervisor_detail
HYPERVISOR_DETAIL_KEYS = {"status", "state", "cpu_info", "current_workload",
                          "disk_available_least", "host_ip", "free_disk_gb", "free_ram_mb",
                          "hypervisor_hostname", "hypervisor_type", "hypervisor_version", "id",
                          "local_gb", "local_gb_used", "memory_mb", "memory_mb_used",
                          "running_vms", "service", "vcpus", "vcpus_used"}
STATISTICS_KEYS = {"count", "current_workload", "disk_available_least", "free_disk_gb",
                   "free_ram_mb", "local_gb", "local_gb_used", "memory_mb", "memory_mb_used",
                   "running_vms", "vcpus", "vcpus_used"}
# tempest .../services.py list_services
SERVICE_KEYS = {"id", "zone", "host", "state", "binary", "status", "updated_at",
                "disabled_reason"}
# tempest .../limits.py get_limit (all properties)
LIMIT_KEYS = {"maxTotalRAMSize", "totalCoresUsed", "maxTotalInstances", "maxTotalFloatingIps",
              "totalSecurityGroupsUsed", "maxTotalCores", "totalFloatingIpsUsed",
              "maxSecurityGroups", "maxServerMeta", "maxPersonality", "maxImageMeta",
              "maxPersonalitySize", "maxSecurityGroupRules", "maxTotalKeypairs",
              "totalRAMUsed", "totalInstancesUsed", "maxServerGroupMembers",
              "maxServerGroups", "totalServerGroupsUsed"}


def fake_authenticate(req: Request) -> RequestContext | None:
    user = req.headers.get("X-Test-User")
    if not user:
        return None
    roles = [r for r in req.headers.get("X-Test-Roles", "").split(",") if r]
    return RequestContext(user_id=user, project_id=req.headers.get("X-Test-Project"),
                          roles=roles, is_admin="admin" in roles)


class Api:
    """A werkzeug test client speaking JSON, with the test auth headers."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def call(self, method: str, path: str, who: dict[str, str] | None = None,
             body: Any = None, raw: bytes | None = None,
             headers: dict[str, str] | None = None) -> Any:
        all_headers = dict(ADMIN if who is None else who)
        all_headers.update(headers or {})
        data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        return self.client.open(path, method=method, headers=all_headers, data=data)

    def get(self, path: str, who: dict[str, str] | None = None, **kw: Any) -> Any:
        return self.call("GET", path, who, **kw)

    def post(self, path: str, body: Any, who: dict[str, str] | None = None, **kw: Any) -> Any:
        return self.call("POST", path, who, body=body, **kw)

    def put(self, path: str, body: Any, who: dict[str, str] | None = None, **kw: Any) -> Any:
        return self.call("PUT", path, who, body=body, **kw)

    def delete(self, path: str, who: dict[str, str] | None = None, **kw: Any) -> Any:
        return self.call("DELETE", path, who, **kw)


@pytest.fixture
def db(sqlite_db: Database) -> Database:
    return sqlite_db


@pytest.fixture
def conf() -> Any:
    c = stratus_conf.new()
    c.set("api", "public_url", PUBLIC_URL)
    c.set("api", "max_limit", 1000)
    stratus_conf.finalize(c)
    return c


@pytest.fixture
def api(db: Database, conf: Any) -> Api:
    db_flavors.ensure_default_flavors(db)
    with db.write() as s:
        for pid in ("admin-project", "demo-project", "alt-project"):
            s.add(Project(id=pid, name=pid))
    app = build_compute_app(ComputeState(conf=conf, db=db, compute_api=None), fake_authenticate)
    return Api(Client(app))


def body_of(resp: Any) -> Any:
    return orjson.loads(resp.get_data())


def fault(resp: Any, code: int, name: str) -> str:
    """Assert a Nova fault body; return its message."""
    assert resp.status_code == code, resp.get_data(as_text=True)
    payload = body_of(resp)
    assert list(payload) == [name]
    assert payload[name]["code"] == code
    return payload[name]["message"]


def flavor_count(db: Database) -> int:
    with db.read() as s:
        return s.scalar(select(func.count(Flavor.id)))


def add_instance(db: Database, *, project_id: str, vcpus: int, memory_mb: int,
                 host: str | None = None, deleted: bool = False,
                 task_state: str | None = None, name: str = "vm") -> str:
    uuid = new_uuid()
    with db.write() as s:
        s.add(Instance(uuid=uuid, user_id="demo-user", project_id=project_id,
                       display_name=name, flavor={}, vcpus=vcpus, memory_mb=memory_mb,
                       host=host, vm_state="active", task_state=task_state,
                       deleted=deleted))
    return uuid


def set_last_seen(db: Database, service_id: int, age_seconds: float) -> None:
    with db.write() as s:
        svc = s.get(Service, service_id)
        svc.last_seen_up = utcnow() - datetime.timedelta(seconds=age_seconds)
        svc.updated_at = svc.last_seen_up


# -- versions --------------------------------------------------------------------

def test_root_lists_versions_without_auth(api: Api) -> None:
    resp = api.get("/", who={})
    assert resp.status_code == 200
    versions = body_of(resp)["versions"]
    assert [v["id"] for v in versions] == ["v2.0", "v2.1"]
    v20, v21 = versions
    for v in versions:
        assert set(v) == {"id", "status", "version", "min_version", "updated", "links"}
    assert (v20["status"], v20["version"], v20["min_version"]) == ("SUPPORTED", "", "")
    assert v20["links"] == [{"rel": "self", "href": BASE + "/v2/"}]
    assert (v21["status"], v21["version"], v21["min_version"]) == (
        "CURRENT", microversion.MAX_VERSION, "2.1")
    assert v21["updated"] == "2013-07-23T11:33:21Z"
    assert v21["links"] == [{"rel": "self", "href": BASE + "/v2.1/"}]
    assert "OpenStack-API-Version" not in resp.headers


@pytest.mark.parametrize("path", ["/v2.1", "/v2.1/"])
def test_v21_version_document(api: Api, path: str) -> None:
    resp = api.get(path, who={})
    assert resp.status_code == 200
    version = body_of(resp)["version"]
    assert set(version) == {"id", "status", "version", "min_version", "updated", "links",
                            "media-types"}
    assert version["id"] == "v2.1"
    assert version["links"][0] == {"rel": "self", "href": BASE + "/v2.1/"}
    assert version["links"][1]["rel"] == "describedby"
    assert version["media-types"] == [
        {"base": "application/json",
         "type": "application/vnd.openstack.compute+json;version=2.1"}]


def test_resources_require_a_token(api: Api) -> None:
    msg = fault(api.get("/v2.1/flavors", who={}), 401, "unauthorized")
    assert "authentication" in msg


# -- microversions -----------------------------------------------------------------

def assert_version_headers(resp: Any, version: str) -> None:
    assert resp.headers["OpenStack-API-Version"] == f"compute {version}"
    assert resp.headers["X-OpenStack-Nova-API-Version"] == version
    vary = {v.strip() for v in resp.headers["Vary"].split(",")}
    assert vary == {"OpenStack-API-Version", "X-OpenStack-Nova-API-Version"}


@pytest.mark.parametrize(("headers", "version"), [
    ({}, "2.1"),
    ({"OpenStack-API-Version": "compute 2.1"}, "2.1"),
    ({"OpenStack-API-Version": "compute 2.10"}, "2.10"),
    ({"OpenStack-API-Version": "compute latest"}, microversion.MAX_VERSION),
    ({"OpenStack-API-Version": "image 2.5, compute 2.1"}, "2.1"),
    ({"OpenStack-API-Version": "volume 3.0"}, "2.1"),
    ({"X-OpenStack-Nova-API-Version": "2.1"}, "2.1"),
    ({"X-OpenStack-Nova-API-Version": "2.19"}, "2.19"),
    ({"X-OpenStack-Nova-API-Version": "latest"}, microversion.MAX_VERSION),
])
def test_negotiated_version(api: Api, headers: dict[str, str], version: str) -> None:
    resp = api.get("/v2.1/flavors", headers=headers)
    assert resp.status_code == 200
    assert_version_headers(resp, version)


@pytest.mark.parametrize("headers", [
    {"OpenStack-API-Version": "compute 2.999"},
    {"X-OpenStack-Nova-API-Version": "2.999"},
    {"OpenStack-API-Version": "compute 2.999", "X-OpenStack-Nova-API-Version": "2.1"},
])
def test_unsupported_version_is_406(api: Api, headers: dict[str, str]) -> None:
    resp = api.get("/v2.1/flavors", headers=headers)
    msg = fault(resp, 406, "computeFault")
    assert msg == ("Version 2.999 is not supported by the API. "
                   f"Minimum is 2.1 and maximum is {microversion.MAX_VERSION}.")
    assert_version_headers(resp, "2.999")


@pytest.mark.parametrize("value", ["compute garbage", "compute 2", "compute 2.01",
                                   "compute", "compute 1.x"])
def test_malformed_version_is_400(api: Api, value: str) -> None:
    msg = fault(api.get("/v2.1/flavors", headers={"OpenStack-API-Version": value}),
                400, "badRequest")
    assert "is of invalid format. Must be of format MajorNum.MinorNum." in msg


def test_versions_below_minimum_are_406(api: Api) -> None:
    fault(api.get("/v2.1/flavors", headers={"OpenStack-API-Version": "compute 2.0"}),
          406, "computeFault")


def test_latest_follows_max_version(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(microversion, "MAX_VERSION", "2.11")
    resp = api.get("/v2.1/flavors", headers={"OpenStack-API-Version": "compute latest"})
    assert_version_headers(resp, "2.11")
    assert body_of(api.get("/", who={}))["versions"][1]["version"] == "2.11"


def test_faults_of_versioned_resources_carry_version_headers(api: Api) -> None:
    resp = api.get("/v2.1/flavors/does-not-exist")
    assert fault(resp, 404, "itemNotFound") == "Flavor does-not-exist could not be found."
    assert_version_headers(resp, "2.1")


def test_api_version_compares_with_tuples() -> None:
    v = microversion.APIVersion.parse("2.11")
    assert v > (2, 9) and v == (2, 11) and str(v) == "2.11"
    with pytest.raises(microversion.InvalidVersionString):
        microversion.APIVersion.parse("2.011")


def test_missing_resource_modules_are_skipped() -> None:
    routes = resource_routes(("flavors", "no_such_module_here"))
    assert routes and all(r.path.startswith(("/v2.1/flavors", "/v2.1/<project_id:url_project_id>/flavors"))
                          for r in routes)


# -- flavors ---------------------------------------------------------------------------

def test_default_flavors_are_devstacks_and_seeded_once(db: Database) -> None:
    assert db_flavors.ensure_default_flavors(db) == 7
    assert db_flavors.ensure_default_flavors(db) == 0
    tiny = db_flavors.flavor_get_by_flavorid(db, "1")
    assert (tiny["name"], tiny["memory_mb"], tiny["vcpus"], tiny["root_gb"]) == (
        "m1.tiny", 512, 1, 1)
    names = {f["flavorid"]: f["name"] for f in db_flavors.flavor_get_all(db, None)}
    assert names == {"1": "m1.tiny", "2": "m1.small", "3": "m1.medium", "4": "m1.large",
                     "5": "m1.xlarge", "42": "m1.nano", "84": "m1.micro"}


def test_flavor_list_and_detail_shapes(api: Api) -> None:
    resp = api.get("/v2.1/flavors", who=DEMO)
    assert resp.status_code == 200
    body = body_of(resp)
    assert set(body) == {"flavors"}
    first = body["flavors"][0]
    assert set(first) == {"id", "name", "links"}
    assert first["links"] == [{"rel": "self", "href": BASE + "/v2.1/flavors/1"},
                              {"rel": "bookmark", "href": BASE + "/flavors/1"}]
    detail = body_of(api.get("/v2.1/flavors/detail", who=DEMO))["flavors"]
    assert len(detail) == 7
    for flavor in detail:
        assert set(flavor) == FLAVOR_KEYS
    tiny = body_of(api.get("/v2.1/flavors/1", who=DEMO))["flavor"]
    assert set(tiny) == FLAVOR_KEYS
    assert tiny == {**tiny, "id": "1", "name": "m1.tiny", "ram": 512, "vcpus": 1, "disk": 1,
                    "swap": "", "OS-FLV-EXT-DATA:ephemeral": 0,
                    "OS-FLV-DISABLED:disabled": False, "os-flavor-access:is_public": True,
                    "rxtx_factor": 1.0}


def test_flavor_create_show_delete(api: Api, db: Database) -> None:
    req = {"flavor": {"name": "custom", "id": "c1", "ram": "1024", "vcpus": 2, "disk": 10,
                      "OS-FLV-EXT-DATA:ephemeral": 5, "swap": 512, "rxtx_factor": 2.5,
                      "os-flavor-access:is_public": "false"}}
    resp = api.post("/v2.1/flavors", req)
    assert resp.status_code == 200
    flavor = body_of(resp)["flavor"]
    assert set(flavor) == FLAVOR_KEYS
    assert flavor == {**flavor, "id": "c1", "name": "custom", "ram": 1024, "vcpus": 2,
                      "disk": 10, "OS-FLV-EXT-DATA:ephemeral": 5, "swap": 512,
                      "rxtx_factor": 2.5, "os-flavor-access:is_public": False}
    assert body_of(api.get("/v2.1/flavors/c1"))["flavor"] == flavor
    resp = api.delete("/v2.1/flavors/c1")
    assert resp.status_code == 202 and resp.get_data() == b""
    fault(api.get("/v2.1/flavors/c1"), 404, "itemNotFound")
    fault(api.delete("/v2.1/flavors/c1"), 404, "itemNotFound")


@pytest.mark.parametrize("given_id", [None, "absent"])
def test_flavor_create_without_id_gets_a_uuid(api: Api, given_id: str | None) -> None:
    flavor: dict[str, Any] = {"name": "auto-id", "ram": 64, "vcpus": 1, "disk": 0}
    if given_id is None:
        flavor["id"] = None
    flavor_id = body_of(api.post("/v2.1/flavors", {"flavor": flavor}))["flavor"]["id"]
    assert len(flavor_id) == 36 and flavor_id.count("-") == 4


def test_flavor_create_numeric_id_is_a_string(api: Api) -> None:
    body = body_of(api.post("/v2.1/flavors", {"flavor": {"name": "n", "id": 77, "ram": 64,
                                                         "vcpus": 1, "disk": 0}}))
    assert body["flavor"]["id"] == "77"


def test_flavor_create_conflicts(api: Api, db: Database) -> None:
    msg = fault(api.post("/v2.1/flavors", {"flavor": {"name": "m1.tiny", "ram": 64,
                                                      "vcpus": 1, "disk": 0}}),
                409, "conflictingRequest")
    assert msg == "Flavor with name m1.tiny already exists."
    msg = fault(api.post("/v2.1/flavors", {"flavor": {"name": "other", "id": "1", "ram": 64,
                                                      "vcpus": 1, "disk": 0}}),
                409, "conflictingRequest")
    assert msg == "Flavor with ID 1 already exists."
    assert flavor_count(db) == 7


@pytest.mark.parametrize("flavor, field", [
    ({"name": "x" * 300, "ram": 64, "vcpus": 1, "disk": 0}, "name"),
    ({"name": "", "ram": 64, "vcpus": 1, "disk": 0}, "name"),
    ({"name": "neg", "ram": -1, "vcpus": 1, "disk": 0}, "ram"),
    ({"name": "zero", "ram": 0, "vcpus": 1, "disk": 0}, "ram"),
    ({"name": "str", "ram": "lots", "vcpus": 1, "disk": 0}, "ram"),
    ({"name": "cpu", "ram": 64, "vcpus": 0, "disk": 0}, "vcpus"),
    ({"name": "disk", "ram": 64, "vcpus": 1, "disk": -5}, "disk"),
    ({"name": "big", "ram": 2 ** 31, "vcpus": 1, "disk": 0}, "ram"),
    ({"name": "rx", "ram": 64, "vcpus": 1, "disk": 0, "rxtx_factor": 0}, "rxtx_factor"),
    ({"name": "id", "id": " bad id", "ram": 64, "vcpus": 1, "disk": 0}, "id"),
    ({"name": "pub", "ram": 64, "vcpus": 1, "disk": 0,
      "os-flavor-access:is_public": "maybe"}, "os-flavor-access:is_public"),
])
def test_flavor_create_bad_input_changes_nothing(api: Api, db: Database,
                                                 flavor: dict[str, Any], field: str) -> None:
    msg = fault(api.post("/v2.1/flavors", {"flavor": flavor}), 400, "badRequest")
    assert msg.startswith(f"Invalid input for field/attribute {field}.")
    assert flavor_count(db) == 7


NAME_MESSAGE = ("An invalid 'name' value was provided. The name must be: printable "
                "characters. Can not start or end with whitespace.")


@pytest.mark.parametrize("name", [" padded", "padded ", "tab\tinside", "nul\x00"])
def test_flavor_and_keypair_names_must_be_printable(api: Api, db: Database, name: str) -> None:
    # NUL characters are refused by every API before the handler (wsgi.has_nul).
    message = NUL_REFUSED if "\x00" in name else NAME_MESSAGE
    flavor = {"flavor": {"name": name, "ram": 64, "vcpus": 1, "disk": 0}}
    assert fault(api.post("/v2.1/flavors", flavor), 400, "badRequest") == message
    assert fault(api.post("/v2.1/os-keypairs", {"keypair": {"name": name}}),
                 400, "badRequest") == message
    assert flavor_count(db) == 7


def test_flavor_name_may_hold_unicode_and_inner_spaces(api: Api) -> None:
    flavor = {"flavor": {"name": "größe mittel", "ram": 64, "vcpus": 1, "disk": 0}}
    assert body_of(api.post("/v2.1/flavors", flavor))["flavor"]["name"] == "größe mittel"


@pytest.mark.parametrize("body", [
    {"flavor": {"name": "missing-ram", "vcpus": 1, "disk": 0}},
    {"flavor": {"name": "extra", "ram": 64, "vcpus": 1, "disk": 0, "color": "red"}},
    {"not-a-flavor": {}},
    ["flavor"],
])
def test_flavor_create_schema_violations(api: Api, db: Database, body: Any) -> None:
    fault(api.post("/v2.1/flavors", body), 400, "badRequest")
    assert flavor_count(db) == 7


def test_flavor_create_malformed_json(api: Api, db: Database) -> None:
    fault(api.call("POST", "/v2.1/flavors", raw=b'{"flavor": {"name": '), 400, "badRequest")
    fault(api.call("POST", "/v2.1/flavors", raw=b""), 400, "badRequest")
    assert flavor_count(db) == 7


def test_flavor_create_and_delete_are_admin_only(api: Api, db: Database) -> None:
    flavor = {"flavor": {"name": "mine", "ram": 64, "vcpus": 1, "disk": 0}}
    msg = fault(api.post("/v2.1/flavors", flavor, who=DEMO), 403, "forbidden")
    assert msg == "Policy doesn't allow os_compute_api:os-flavor-manage:create to be performed."
    msg = fault(api.delete("/v2.1/flavors/1", who=DEMO), 403, "forbidden")
    assert msg == "Policy doesn't allow os_compute_api:os-flavor-manage:delete to be performed."
    assert flavor_count(db) == 7


def test_flavor_paging_with_next_links(api: Api) -> None:
    page1 = body_of(api.get("/v2.1/flavors?limit=3"))
    assert [f["id"] for f in page1["flavors"]] == ["1", "2", "3"]
    assert page1["flavors_links"] == [
        {"rel": "next", "href": BASE + "/v2.1/flavors?limit=3&marker=3"}]
    page2 = body_of(api.get("/v2.1/flavors?limit=3&marker=3"))
    assert [f["id"] for f in page2["flavors"]] == ["4", "42", "5"]
    page3 = body_of(api.get("/v2.1/flavors?limit=3&marker=5"))
    assert [f["id"] for f in page3["flavors"]] == ["84"]
    assert "flavors_links" not in page3
    detail = body_of(api.get("/v2.1/flavors/detail?limit=2&sort_key=memory_mb&sort_dir=desc"))
    assert [f["id"] for f in detail["flavors"]] == ["5", "4"]
    assert detail["flavors_links"] == [{"rel": "next", "href": BASE + (
        "/v2.1/flavors/detail?limit=2&sort_key=memory_mb&sort_dir=desc&marker=4")}]
    rest = body_of(api.get("/v2.1/flavors/detail?sort_key=memory_mb&sort_dir=desc&marker=4"))
    assert [f["id"] for f in rest["flavors"]] == ["3", "2", "1", "84", "42"]


def test_flavor_list_max_limit_caps_page(api: Api, conf: Any) -> None:
    conf.set("api", "max_limit", 2)
    body = body_of(api.get("/v2.1/flavors?limit=50"))
    assert len(body["flavors"]) == 2 and body["flavors_links"][0]["rel"] == "next"


def test_flavor_list_filters(api: Api) -> None:
    def ids(query: str) -> list[str]:
        return [f["id"] for f in body_of(api.get("/v2.1/flavors" + query))["flavors"]]
    assert ids("?minRam=4096") == ["3", "4", "5"]
    assert ids("?minDisk=80") == ["4", "5"]
    assert ids("?minRam=2048&minDisk=40") == ["3", "4", "5"]


@pytest.mark.parametrize("query, message", [
    ("?minRam=big", "Invalid minRam filter [big]"),
    ("?minDisk=1.5", "Invalid minDisk filter [1.5]"),
    ("?marker=nope", "marker [nope] not found"),
    ("?sort_key=colour", "Sort key supplied is invalid: colour"),
    ("?sort_dir=sideways", "Unknown sort direction, must be 'desc' or 'asc'"),
    ("?is_public=perhaps", "Invalid is_public filter [perhaps]"),
])
def test_flavor_list_bad_queries(api: Api, query: str, message: str) -> None:
    assert fault(api.get("/v2.1/flavors" + query), 400, "badRequest") == message


@pytest.mark.parametrize("query", ["?limit=-1", "?limit=ten"])
def test_flavor_list_bad_limit(api: Api, query: str) -> None:
    fault(api.get("/v2.1/flavors" + query), 400, "badRequest")


def make_private_flavor(api: Api, flavor_id: str = "priv") -> None:
    resp = api.post("/v2.1/flavors", {"flavor": {"name": f"private-{flavor_id}",
                                                 "id": flavor_id, "ram": 64, "vcpus": 1,
                                                 "disk": 0,
                                                 "os-flavor-access:is_public": False}})
    assert resp.status_code == 200


def test_private_flavor_visibility(api: Api) -> None:
    make_private_flavor(api)
    def ids(query: str, who: dict[str, str]) -> list[str]:
        return [f["id"] for f in body_of(api.get("/v2.1/flavors" + query, who=who))["flavors"]]
    # Admin: public by default; is_public=false only private; none all of them.
    assert "priv" not in ids("", ADMIN)
    assert ids("?is_public=false", ADMIN) == ["priv"]
    assert len(ids("?is_public=None", ADMIN)) == 8
    # Others: never private ones they were not given, whatever they ask.
    assert "priv" not in ids("?is_public=false", DEMO)
    fault(api.get("/v2.1/flavors/priv", who=DEMO), 404, "itemNotFound")
    resp = api.post("/v2.1/flavors/priv/action", {"addTenantAccess": {"tenant": "demo-project"}})
    assert resp.status_code == 200
    assert "priv" in ids("", DEMO)
    assert body_of(api.get("/v2.1/flavors/priv", who=DEMO))["flavor"]["id"] == "priv"
    assert "priv" not in ids("", ALT)
    fault(api.get("/v2.1/flavors/priv", who=ALT), 404, "itemNotFound")


def test_disabled_flavors_hidden_from_non_admin_lists(api: Api, db: Database) -> None:
    with db.write() as s:
        s.scalars(select(Flavor).where(Flavor.flavorid == "2")).one().disabled = True
    assert "2" not in [f["id"] for f in body_of(api.get("/v2.1/flavors", who=DEMO))["flavors"]]
    assert "2" in [f["id"] for f in body_of(api.get("/v2.1/flavors"))["flavors"]]
    shown = body_of(api.get("/v2.1/flavors/2", who=DEMO))["flavor"]
    assert shown["OS-FLV-DISABLED:disabled"] is True


def test_flavor_lookup_for_servers(db: Database) -> None:
    db_flavors.ensure_default_flavors(db)
    tiny = db_flavors.flavor_get_by_flavorid(db, 1, RequestContext(project_id="p"))
    assert tiny["extra_specs"] == {"hw_rng:allowed": "True"}
    assert tiny["projects"] == []


# -- extra specs ------------------------------------------------------------------------

def test_extra_specs_crud(api: Api) -> None:
    assert body_of(api.get("/v2.1/flavors/3/os-extra_specs", who=DEMO)) == {
        "extra_specs": {"hw_rng:allowed": "True"}}
    resp = api.post("/v2.1/flavors/3/os-extra_specs",
                    {"extra_specs": {"hw:cpu_policy": "dedicated", "quota:cpu_shares": 1024}})
    assert resp.status_code == 200
    assert body_of(resp) == {"extra_specs": {"hw:cpu_policy": "dedicated",
                                             "quota:cpu_shares": 1024}}
    assert body_of(api.get("/v2.1/flavors/3/os-extra_specs")) == {"extra_specs": {
        "hw_rng:allowed": "True", "hw:cpu_policy": "dedicated", "quota:cpu_shares": "1024"}}
    assert body_of(api.get("/v2.1/flavors/3/os-extra_specs/hw:cpu_policy", who=DEMO)) == {
        "hw:cpu_policy": "dedicated"}
    resp = api.put("/v2.1/flavors/3/os-extra_specs/hw:cpu_policy",
                   {"hw:cpu_policy": "shared"})
    assert resp.status_code == 200 and body_of(resp) == {"hw:cpu_policy": "shared"}
    assert body_of(api.get("/v2.1/flavors/3/os-extra_specs/hw:cpu_policy")) == {
        "hw:cpu_policy": "shared"}
    resp = api.delete("/v2.1/flavors/3/os-extra_specs/hw:cpu_policy")
    assert resp.status_code == 200
    msg = fault(api.get("/v2.1/flavors/3/os-extra_specs/hw:cpu_policy"), 404, "itemNotFound")
    assert msg == "Flavor 3 has no extra specs with key hw:cpu_policy."
    fault(api.delete("/v2.1/flavors/3/os-extra_specs/hw:cpu_policy"), 404, "itemNotFound")
    fault(api.get("/v2.1/flavors/999/os-extra_specs"), 404, "itemNotFound")


def test_extra_specs_writes_are_admin_only(api: Api) -> None:
    fault(api.post("/v2.1/flavors/3/os-extra_specs", {"extra_specs": {"a": "b"}}, who=DEMO),
          403, "forbidden")
    fault(api.put("/v2.1/flavors/3/os-extra_specs/a", {"a": "b"}, who=DEMO), 403, "forbidden")
    fault(api.delete("/v2.1/flavors/3/os-extra_specs/hw_rng:allowed", who=DEMO),
          403, "forbidden")
    assert body_of(api.get("/v2.1/flavors/3/os-extra_specs"))["extra_specs"] == {
        "hw_rng:allowed": "True"}


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/v2.1/flavors/3/os-extra_specs", {"extra_specs": {"bad/key!": "v"}}),
    ("POST", "/v2.1/flavors/3/os-extra_specs", {"extra_specs": {"k": "v" * 256}}),
    ("POST", "/v2.1/flavors/3/os-extra_specs", {"extra_specs": {"k": ["list"]}}),
    ("POST", "/v2.1/flavors/3/os-extra_specs", {"extra_specs": {"k": True}}),
    ("POST", "/v2.1/flavors/3/os-extra_specs", {"specs": {}}),
    ("PUT", "/v2.1/flavors/3/os-extra_specs/k", {"other": "v"}),
    ("PUT", "/v2.1/flavors/3/os-extra_specs/k", {"k": "v", "j": "w"}),
    ("PUT", "/v2.1/flavors/3/os-extra_specs/k", {}),
])
def test_extra_specs_bad_input(api: Api, method: str, path: str, body: Any) -> None:
    fault(api.call(method, path, body=body), 400, "badRequest")
    assert body_of(api.get("/v2.1/flavors/3/os-extra_specs"))["extra_specs"] == {
        "hw_rng:allowed": "True"}


def test_extra_spec_update_uri_mismatch_message(api: Api) -> None:
    msg = fault(api.put("/v2.1/flavors/3/os-extra_specs/k", {"other": "v"}), 400, "badRequest")
    assert msg == "Request body and URI mismatch"


# -- flavor access ------------------------------------------------------------------------

def test_flavor_access_add_list_remove(api: Api) -> None:
    make_private_flavor(api)
    assert body_of(api.get("/v2.1/flavors/priv/os-flavor-access")) == {"flavor_access": []}
    resp = api.post("/v2.1/flavors/priv/action", {"addTenantAccess": {"tenant": "demo-project"}})
    assert resp.status_code == 200
    assert body_of(resp) == {"flavor_access": [{"flavor_id": "priv",
                                                "tenant_id": "demo-project"}]}
    api.post("/v2.1/flavors/priv/action", {"addTenantAccess": {"tenant": "alt-project"}})
    listed = body_of(api.get("/v2.1/flavors/priv/os-flavor-access"))["flavor_access"]
    assert {a["tenant_id"] for a in listed} == {"demo-project", "alt-project"}
    assert all(set(a) == {"flavor_id", "tenant_id"} for a in listed)
    msg = fault(api.post("/v2.1/flavors/priv/action",
                         {"addTenantAccess": {"tenant": "demo-project"}}),
                409, "conflictingRequest")
    assert msg == ("Flavor access already exists for flavor priv and project "
                   "demo-project combination.")
    resp = api.post("/v2.1/flavors/priv/action",
                    {"removeTenantAccess": {"tenant": "demo-project"}})
    assert body_of(resp) == {"flavor_access": [{"flavor_id": "priv",
                                                "tenant_id": "alt-project"}]}
    msg = fault(api.post("/v2.1/flavors/priv/action",
                         {"removeTenantAccess": {"tenant": "demo-project"}}),
                404, "itemNotFound")
    assert msg == "Flavor access not found for priv / demo-project combination."


def test_flavor_access_errors(api: Api) -> None:
    make_private_flavor(api)
    msg = fault(api.get("/v2.1/flavors/1/os-flavor-access"), 404, "itemNotFound")
    assert msg == "Access list not available for public flavors."
    fault(api.get("/v2.1/flavors/nope/os-flavor-access"), 404, "itemNotFound")
    msg = fault(api.post("/v2.1/flavors/priv/action",
                         {"addTenantAccess": {"tenant": "no-such-project"}}),
                400, "badRequest")
    assert msg == "Project ID no-such-project is not a valid project."
    assert fault(api.post("/v2.1/flavors/priv/action", {"explode": {}}),
                 400, "badRequest") == "There is no such action: explode"
    assert fault(api.post("/v2.1/flavors/priv/action", {"a": {}, "b": {}}),
                 400, "badRequest") == "Malformed request body"
    fault(api.post("/v2.1/flavors/priv/action", {"addTenantAccess": {"tenant": ""}}),
          400, "badRequest")
    fault(api.post("/v2.1/flavors/priv/action", {"addTenantAccess": {}}), 400, "badRequest")
    fault(api.post("/v2.1/flavors/nope/action", {"addTenantAccess": {"tenant": "alt-project"}}),
          404, "itemNotFound")
    for body in ({"addTenantAccess": {"tenant": "demo-project"}},
                 {"removeTenantAccess": {"tenant": "demo-project"}}):
        fault(api.post("/v2.1/flavors/priv/action", body, who=DEMO), 403, "forbidden")
    fault(api.get("/v2.1/flavors/priv/os-flavor-access", who=DEMO), 403, "forbidden")
    assert body_of(api.get("/v2.1/flavors/priv/os-flavor-access")) == {"flavor_access": []}


def test_access_to_public_flavor(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    # At 2.1 Nova accepts it; from 2.7 on it is a conflict.
    resp = api.post("/v2.1/flavors/1/action", {"addTenantAccess": {"tenant": "demo-project"}})
    assert resp.status_code == 200
    monkeypatch.setattr(microversion, "MAX_VERSION", "2.7")
    resp = api.post("/v2.1/flavors/1/action", {"addTenantAccess": {"tenant": "alt-project"}},
                    headers={"OpenStack-API-Version": "compute 2.7"})
    assert fault(resp, 409, "conflictingRequest") == "Can not add access to a public flavor."


# -- keypairs -------------------------------------------------------------------------------

def md5_fingerprint(public_key: str) -> str:
    digest = hashlib.md5(base64.b64decode(public_key.split()[1])).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


def openssh_public_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    text = key.public_bytes(serialization.Encoding.OpenSSH,
                            serialization.PublicFormat.OpenSSH).decode()
    return text + " someone@example"


def test_keypair_generate(api: Api) -> None:
    resp = api.post("/v2.1/os-keypairs", {"keypair": {"name": "gen-key"}}, who=DEMO)
    assert resp.status_code == 200
    keypair = body_of(resp)["keypair"]
    assert set(keypair) == {"name", "public_key", "fingerprint", "user_id", "private_key"}
    assert keypair["user_id"] == "demo-user" and keypair["name"] == "gen-key"
    assert keypair["public_key"].startswith("ssh-rsa ")
    assert keypair["public_key"].endswith(" Generated-by-Nova")
    assert keypair["fingerprint"] == md5_fingerprint(keypair["public_key"])
    private = serialization.load_pem_private_key(keypair["private_key"].encode(), None)
    assert private.key_size == 2048
    assert keypair["private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    derived = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                serialization.PublicFormat.OpenSSH).decode()
    assert keypair["public_key"].split()[:2] == derived.split()


def test_keypair_import_list_show_delete(api: Api) -> None:
    public_key = openssh_public_key()
    resp = api.post("/v2.1/os-keypairs", {"keypair": {"name": "imported key",
                                                      "public_key": public_key}}, who=DEMO)
    assert resp.status_code == 200
    created = body_of(resp)["keypair"]
    assert set(created) == {"name", "public_key", "fingerprint", "user_id"}
    assert created["public_key"] == public_key
    assert created["fingerprint"] == md5_fingerprint(public_key)

    listed = body_of(api.get("/v2.1/os-keypairs", who=DEMO))
    assert listed == {"keypairs": [{"keypair": {"name": "imported key",
                                                "public_key": public_key,
                                                "fingerprint": created["fingerprint"]}}]}
    assert body_of(api.get("/v2.1/os-keypairs", who=ALT)) == {"keypairs": []}

    shown = body_of(api.get("/v2.1/os-keypairs/imported%20key", who=DEMO))["keypair"]
    assert set(shown) == {"public_key", "name", "fingerprint", "user_id", "deleted",
                          "created_at", "updated_at", "deleted_at", "id"}
    assert (shown["deleted"], shown["deleted_at"], shown["updated_at"]) == (False, None, None)
    assert isinstance(shown["id"], int) and shown["user_id"] == "demo-user"
    datetime.datetime.strptime(shown["created_at"], "%Y-%m-%dT%H:%M:%S.%f")
    fault(api.get("/v2.1/os-keypairs/imported%20key", who=ALT), 404, "itemNotFound")
    fault(api.delete("/v2.1/os-keypairs/imported%20key", who=ALT), 404, "itemNotFound")

    resp = api.delete("/v2.1/os-keypairs/imported%20key", who=DEMO)
    assert resp.status_code == 202 and resp.get_data() == b""
    msg = fault(api.get("/v2.1/os-keypairs/imported%20key", who=DEMO), 404, "itemNotFound")
    assert msg == "Keypair imported key not found for user demo-user"


def test_keypair_duplicate_name_is_409_per_user(api: Api) -> None:
    public_key = openssh_public_key()
    body = {"keypair": {"name": "dup", "public_key": public_key}}
    assert api.post("/v2.1/os-keypairs", body, who=DEMO).status_code == 200
    msg = fault(api.post("/v2.1/os-keypairs", body, who=DEMO), 409, "conflictingRequest")
    assert msg == "Key pair 'dup' already exists."
    assert api.post("/v2.1/os-keypairs", body, who=ALT).status_code == 200


@pytest.mark.parametrize("keypair, message", [
    ({"name": "bad", "public_key": "ssh-rsa not-base64!!"},
     "Keypair data is invalid: failed to generate fingerprint"),
    ({"name": "bad", "public_key": "garbage"},
     "Keypair data is invalid: failed to generate fingerprint"),
    ({"name": "bad", "public_key": ""},
     "Keypair data is invalid: failed to generate fingerprint"),
    ({"name": "semi;colon"}, "Keypair data is invalid: Keypair name contains unsafe characters"),
    ({"name": "dots.not.ok"}, "Keypair data is invalid: Keypair name contains unsafe characters"),
])
def test_keypair_bad_input(api: Api, db: Database, keypair: dict[str, Any],
                           message: str) -> None:
    assert fault(api.post("/v2.1/os-keypairs", {"keypair": keypair}, who=DEMO),
                 400, "badRequest") == message
    with db.read() as s:
        assert s.scalar(select(func.count(KeyPair.id))) == 0


@pytest.mark.parametrize("body", [
    {"keypair": {"name": "k" * 256}},
    {"keypair": {"name": ""}},
    {"keypair": {"name": " lead"}},
    {"keypair": {}},
    {"keypair": {"name": "k", "type": "ssh"}},
    {"name": "k"},
])
def test_keypair_schema_violations(api: Api, db: Database, body: Any) -> None:
    fault(api.post("/v2.1/os-keypairs", body, who=DEMO), 400, "badRequest")
    with db.read() as s:
        assert s.scalar(select(func.count(KeyPair.id))) == 0


def test_keypair_quota(api: Api, db: Database) -> None:
    with db.write() as s:
        for i in range(100):
            s.add(KeyPair(name=f"k{i}", user_id="demo-user", fingerprint="f", public_key="p"))
    msg = fault(api.post("/v2.1/os-keypairs", {"keypair": {"name": "one-more",
                                                           "public_key": openssh_public_key()}},
                         who=DEMO), 403, "forbidden")
    assert msg == "Quota exceeded, too many key pairs."


# -- os-services ------------------------------------------------------------------------

@pytest.fixture
def services(db: Database) -> dict[str, dict[str, Any]]:
    made = {
        "compute1": db_services.service_heartbeat(db, "host1", "stratus-compute", "compute"),
        "compute2": db_services.service_heartbeat(db, "host2", "stratus-compute", "compute",
                                                  availability_zone="az2"),
        "scheduler": db_services.service_heartbeat(db, "ctl", "stratus-scheduler", "scheduler"),
        "conductor": db_services.service_heartbeat(db, "ctl", "stratus-conductor", "conductor"),
    }
    set_last_seen(db, made["compute2"]["id"], 3600)  # long silent: down
    return made


def test_services_list(api: Api, services: dict[str, dict[str, Any]]) -> None:
    listed = body_of(api.get("/v2.1/os-services"))["services"]
    assert len(listed) == 4
    by_id = {s["id"]: s for s in listed}
    for svc in listed:
        assert set(svc) == SERVICE_KEYS
        datetime.datetime.strptime(svc["updated_at"], "%Y-%m-%dT%H:%M:%S.%f")
    c1 = by_id[services["compute1"]["id"]]
    assert (c1["binary"], c1["host"], c1["zone"], c1["state"], c1["status"],
            c1["disabled_reason"]) == ("stratus-compute", "host1", "nova", "up", "enabled", None)
    c2 = by_id[services["compute2"]["id"]]
    assert (c2["zone"], c2["state"]) == ("az2", "down")
    assert by_id[services["scheduler"]["id"]]["zone"] == "internal"


def test_services_filters(api: Api, services: dict[str, dict[str, Any]]) -> None:
    def hosts(query: str) -> list[str]:
        return sorted(s["host"] for s in body_of(api.get("/v2.1/os-services" + query))["services"])
    assert hosts("?host=ctl") == ["ctl", "ctl"]
    assert hosts("?binary=stratus-compute") == ["host1", "host2"]
    assert hosts("?binary=nova-compute") == ["host1", "host2"]
    assert hosts("?binary=nova-compute&host=host2") == ["host2"]
    assert hosts("?host=nowhere") == []


def test_service_state_follows_heartbeats_and_forced_down(
        api: Api, db: Database, conf: Any, services: dict[str, dict[str, Any]]) -> None:
    def state() -> dict[int, str]:
        return {s["id"]: s["state"] for s in body_of(api.get("/v2.1/os-services"))["services"]}
    c1 = services["compute1"]["id"]
    set_last_seen(db, c1, 30)
    assert state()[c1] == "up"
    conf.set("DEFAULT", "service_down_time", 20)
    assert state()[c1] == "down"
    conf.set("DEFAULT", "service_down_time", 60)
    db_services.service_update(db, c1, forced_down=True)
    assert state()[c1] == "down"


def test_service_disable_enable(api: Api, db: Database,
                                services: dict[str, dict[str, Any]]) -> None:
    resp = api.put("/v2.1/os-services/disable", {"host": "host1", "binary": "nova-compute"})
    assert resp.status_code == 200
    assert body_of(resp) == {"service": {"host": "host1", "binary": "nova-compute",
                                         "status": "disabled"}}
    assert db_services.service_get(db, services["compute1"]["id"])["disabled"] is True
    resp = api.put("/v2.1/os-services/disable-log-reason",
                   {"host": "host1", "binary": "stratus-compute", "disabled_reason": "maint"})
    assert body_of(resp) == {"service": {"host": "host1", "binary": "stratus-compute",
                                         "status": "disabled", "disabled_reason": "maint"}}
    listed = {s["host"]: s for s in body_of(
        api.get("/v2.1/os-services?binary=nova-compute"))["services"]}
    assert (listed["host1"]["status"], listed["host1"]["disabled_reason"]) == (
        "disabled", "maint")
    resp = api.put("/v2.1/os-services/enable", {"host": "host1", "binary": "nova-compute"})
    assert body_of(resp) == {"service": {"host": "host1", "binary": "nova-compute",
                                         "status": "enabled"}}
    svc = db_services.service_get(db, services["compute1"]["id"])
    assert (svc["disabled"], svc["disabled_reason"]) == (False, None)


def test_service_update_errors(api: Api, db: Database,
                               services: dict[str, dict[str, Any]]) -> None:
    assert fault(api.put("/v2.1/os-services/disable-log-reason",
                         {"host": "host1", "binary": "nova-compute"}),
                 400, "badRequest") == "Missing disabled reason field"
    msg = fault(api.put("/v2.1/os-services/disable",
                        {"host": "ctl", "binary": "stratus-scheduler"}), 400, "badRequest")
    assert "Only stratus-compute services can be updated." in msg
    assert fault(api.put("/v2.1/os-services/disable",
                         {"host": "ghost", "binary": "nova-compute"}),
                 404, "itemNotFound") == "Could not find binary nova-compute on host ghost."
    assert fault(api.put("/v2.1/os-services/reboot", {"host": "host1", "binary": "nova-compute"}),
                 404, "itemNotFound") == "Unknown action"
    # force-down only exists from 2.11; its field is unknown before.
    fault(api.put("/v2.1/os-services/force-down",
                  {"host": "host1", "binary": "nova-compute"}), 404, "itemNotFound")
    fault(api.put("/v2.1/os-services/force-down",
                  {"host": "host1", "binary": "nova-compute", "forced_down": True}),
          400, "badRequest")
    fault(api.put("/v2.1/os-services/disable", {"host": "host1"}), 400, "badRequest")
    fault(api.put("/v2.1/os-services/disable", {"host": "bad host!", "binary": "x"}),
          400, "badRequest")
    fault(api.put("/v2.1/os-services/disable", {"host": "host1", "binary": "nova-compute"},
                  who=DEMO), 403, "forbidden")
    assert all(not s["disabled"] for s in db_services.service_get_all(db))


def test_service_force_down_from_2_11(api: Api, db: Database, monkeypatch: pytest.MonkeyPatch,
                                      services: dict[str, dict[str, Any]]) -> None:
    monkeypatch.setattr(microversion, "MAX_VERSION", "2.11")
    v211 = {"OpenStack-API-Version": "compute 2.11"}
    resp = api.put("/v2.1/os-services/force-down",
                   {"host": "host1", "binary": "nova-compute", "forced_down": "true"},
                   headers=v211)
    assert body_of(resp) == {"service": {"host": "host1", "binary": "nova-compute",
                                         "forced_down": True}}
    listed = {s["id"]: s for s in body_of(api.get("/v2.1/os-services", headers=v211))["services"]}
    c1 = listed[services["compute1"]["id"]]
    assert (c1["forced_down"], c1["state"]) == (True, "down")
    assert "forced_down" not in body_of(api.get("/v2.1/os-services"))["services"][0]


def test_service_delete(api: Api, db: Database, services: dict[str, dict[str, Any]]) -> None:
    db_services.compute_node_update(db, "host1", "node1", {"vcpus": 4, "memory_mb": 1024,
                                                           "local_gb": 10})
    sched = services["scheduler"]["id"]
    resp = api.delete(f"/v2.1/os-services/{sched}")
    assert resp.status_code == 204 and resp.get_data() == b""
    assert fault(api.delete(f"/v2.1/os-services/{sched}"), 404,
                 "itemNotFound") == f"Service {sched} not found."
    assert fault(api.delete("/v2.1/os-services/abc"), 400,
                 "badRequest") == "Invalid input received: id must be an integer"
    fault(api.delete(f"/v2.1/os-services/{services['conductor']['id']}", who=DEMO),
          403, "forbidden")

    compute1 = services["compute1"]["id"]
    vm = add_instance(db, project_id="demo-project", vcpus=1, memory_mb=64, host="host1")
    msg = fault(api.delete(f"/v2.1/os-services/{compute1}"), 409, "conflictingRequest")
    assert msg.startswith("Unable to delete compute service that is hosting instances.")
    with db.write() as s:
        s.scalars(select(Instance).where(Instance.uuid == vm)).one().deleted = True
    assert api.delete(f"/v2.1/os-services/{compute1}").status_code == 204
    assert db_services.compute_node_get_all(db, host="host1") == []
    assert len(db_services.service_get_all(db)) == 2


# -- os-hypervisors -------------------------------------------------------------------------

@pytest.fixture
def hypervisors(db: Database, services: dict[str, dict[str, Any]]) -> dict[str, Any]:
    node1 = db_services.compute_node_update(db, "host1", "host1.example", {
        "vcpus": 16, "memory_mb": 32768, "local_gb": 500, "hypervisor_type": "fake",
        "hypervisor_version": 1000, "host_ip": "192.0.2.10", "cpu_info": "{}",
        "reserved_memory_mb": 512, "reserved_disk_mb": 2048})
    node2 = db_services.compute_node_update(db, "host2", "host2.example", {
        "vcpus": 8, "memory_mb": 8192, "local_gb": 100, "host_ip": "192.0.2.11"})
    orphan = db_services.compute_node_update(db, "gone", "gone.example", {"vcpus": 1})
    vm1 = add_instance(db, project_id="demo-project", vcpus=2, memory_mb=2048, host="host1",
                       name="web", task_state="rebooting")
    vm2 = add_instance(db, project_id="demo-project", vcpus=4, memory_mb=4096, host="host1",
                       name="db")
    with db.write() as s:
        s.add(Allocation(consumer_uuid=vm1, compute_node_id=node1["id"], vcpus=2,
                         memory_mb=2048, disk_gb=20))
        s.add(Allocation(consumer_uuid=vm2, compute_node_id=node1["id"], vcpus=4,
                         memory_mb=4096, disk_gb=40))
    return {"node1": node1, "node2": node2, "orphan": orphan, "vm1": vm1, "vm2": vm2}


def test_hypervisor_list(api: Api, hypervisors: dict[str, Any]) -> None:
    listed = body_of(api.get("/v2.1/os-hypervisors"))["hypervisors"]
    assert listed == [
        {"id": hypervisors["node1"]["id"], "hypervisor_hostname": "host1.example",
         "state": "up", "status": "enabled"},
        {"id": hypervisors["node2"]["id"], "hypervisor_hostname": "host2.example",
         "state": "down", "status": "enabled"},
    ]


def test_hypervisor_detail_and_show(api: Api, db: Database,
                                    hypervisors: dict[str, Any],
                                    services: dict[str, dict[str, Any]]) -> None:
    detail = body_of(api.get("/v2.1/os-hypervisors/detail"))["hypervisors"]
    assert len(detail) == 2
    for hyp in detail:
        assert set(hyp) == HYPERVISOR_DETAIL_KEYS
    node1 = detail[0]
    assert node1 == {
        "id": hypervisors["node1"]["id"], "hypervisor_hostname": "host1.example",
        "state": "up", "status": "enabled", "vcpus": 16, "memory_mb": 32768,
        "local_gb": 500, "vcpus_used": 6, "memory_mb_used": 512 + 6144,
        "local_gb_used": 2 + 60, "free_ram_mb": 32768 - 6656, "free_disk_gb": 500 - 62,
        "disk_available_least": 438, "running_vms": 2, "current_workload": 1,
        "hypervisor_type": "fake", "hypervisor_version": 1000, "cpu_info": "{}",
        "host_ip": "192.0.2.10",
        "service": {"id": services["compute1"]["id"], "host": "host1",
                    "disabled_reason": None}}
    assert (detail[1]["vcpus_used"], detail[1]["running_vms"]) == (0, 0)

    shown = body_of(api.get(f"/v2.1/os-hypervisors/{hypervisors['node1']['id']}"))
    assert shown == {"hypervisor": node1}
    msg = fault(api.get("/v2.1/os-hypervisors/abc"), 404, "itemNotFound")
    assert msg == "Hypervisor with ID 'abc' could not be found."
    fault(api.get(f"/v2.1/os-hypervisors/{hypervisors['orphan']['id']}"), 404, "itemNotFound")

    # Disabling the service shows on its hypervisor.
    api.put("/v2.1/os-services/disable-log-reason",
            {"host": "host1", "binary": "nova-compute", "disabled_reason": "maint"})
    shown = body_of(api.get(f"/v2.1/os-hypervisors/{hypervisors['node1']['id']}"))["hypervisor"]
    assert (shown["status"], shown["service"]["disabled_reason"]) == ("disabled", "maint")


def test_hypervisor_statistics(api: Api, hypervisors: dict[str, Any]) -> None:
    stats = body_of(api.get("/v2.1/os-hypervisors/statistics"))["hypervisor_statistics"]
    assert set(stats) == STATISTICS_KEYS
    assert stats == {"count": 2, "vcpus": 24, "memory_mb": 40960, "local_gb": 600,
                     "vcpus_used": 6, "memory_mb_used": 6656, "local_gb_used": 62,
                     "free_ram_mb": 40960 - 6656, "free_disk_gb": 600 - 62,
                     "disk_available_least": 538, "running_vms": 2, "current_workload": 1}
    api.put("/v2.1/os-services/disable", {"host": "host2", "binary": "nova-compute"})
    stats = body_of(api.get("/v2.1/os-hypervisors/statistics"))["hypervisor_statistics"]
    assert (stats["count"], stats["vcpus"]) == (1, 16)


def test_hypervisor_search_and_servers(api: Api, hypervisors: dict[str, Any]) -> None:
    found = body_of(api.get("/v2.1/os-hypervisors/host1/search"))["hypervisors"]
    assert [h["hypervisor_hostname"] for h in found] == ["host1.example"]
    assert set(found[0]) == {"id", "hypervisor_hostname", "state", "status"}
    assert len(body_of(api.get("/v2.1/os-hypervisors/example/search"))["hypervisors"]) == 2
    assert fault(api.get("/v2.1/os-hypervisors/zzz/search"), 404,
                 "itemNotFound") == "No hypervisor matching 'zzz' could be found."
    with_servers = body_of(api.get("/v2.1/os-hypervisors/example/servers"))["hypervisors"]
    by_name = {h["hypervisor_hostname"]: h for h in with_servers}
    assert sorted(by_name["host1.example"]["servers"], key=lambda s: s["name"]) == [
        {"name": "db", "uuid": hypervisors["vm2"]}, {"name": "web", "uuid": hypervisors["vm1"]}]
    assert "servers" not in by_name["host2.example"]


@pytest.mark.parametrize("path", ["/v2.1/os-hypervisors", "/v2.1/os-hypervisors/detail",
                                  "/v2.1/os-hypervisors/1", "/v2.1/os-hypervisors/statistics",
                                  "/v2.1/os-hypervisors/host/search"])
def test_hypervisors_are_admin_only(api: Api, path: str) -> None:
    msg = fault(api.get(path, who=DEMO), 403, "forbidden")
    assert msg.startswith("Policy doesn't allow os_compute_api:os-hypervisors:")


# -- availability zones ------------------------------------------------------------------

def test_availability_zone_list(api: Api, db: Database,
                                services: dict[str, dict[str, Any]]) -> None:
    body = body_of(api.get("/v2.1/os-availability-zone", who=DEMO))
    assert body == {"availabilityZoneInfo": [
        {"zoneName": "az2", "zoneState": {"available": True}, "hosts": None},
        {"zoneName": "nova", "zoneState": {"available": True}, "hosts": None}]}
    db_services.service_update(db, services["compute2"]["id"], disabled=True)
    body = body_of(api.get("/v2.1/os-availability-zone", who=DEMO))
    assert body["availabilityZoneInfo"] == [
        {"zoneName": "nova", "zoneState": {"available": True}, "hosts": None},
        {"zoneName": "az2", "zoneState": {"available": False}, "hosts": None}]


def test_availability_zone_detail(api: Api, services: dict[str, dict[str, Any]]) -> None:
    info = body_of(api.get("/v2.1/os-availability-zone/detail"))["availabilityZoneInfo"]
    zones = {z["zoneName"]: z for z in info}
    assert set(zones) == {"internal", "nova", "az2"}
    assert all(z["zoneState"] == {"available": True} for z in info)
    internal = zones["internal"]["hosts"]
    assert set(internal) == {"ctl"}
    assert set(internal["ctl"]) == {"stratus-scheduler", "stratus-conductor"}
    entry = zones["nova"]["hosts"]["host1"]["stratus-compute"]
    assert set(entry) == {"available", "active", "updated_at"}
    assert (entry["available"], entry["active"]) == (True, True)
    assert zones["az2"]["hosts"]["host2"]["stratus-compute"]["available"] is False
    msg = fault(api.get("/v2.1/os-availability-zone/detail", who=DEMO), 403, "forbidden")
    assert msg == ("Policy doesn't allow os_compute_api:os-availability-zone:detail "
                   "to be performed.")


# -- limits ------------------------------------------------------------------------------

def test_limits_defaults_and_usage(api: Api, db: Database) -> None:
    add_instance(db, project_id="demo-project", vcpus=2, memory_mb=2048)
    add_instance(db, project_id="demo-project", vcpus=4, memory_mb=512)
    add_instance(db, project_id="demo-project", vcpus=8, memory_mb=8192, deleted=True)
    add_instance(db, project_id="alt-project", vcpus=1, memory_mb=64)
    limits = body_of(api.get("/v2.1/limits", who=DEMO))
    assert set(limits) == {"limits"} and set(limits["limits"]) == {"rate", "absolute"}
    assert limits["limits"]["rate"] == []
    absolute = limits["limits"]["absolute"]
    assert set(absolute) == LIMIT_KEYS
    assert absolute == {
        "maxTotalInstances": 10, "maxTotalCores": 20, "maxTotalRAMSize": 51200,
        "maxServerMeta": 128, "maxImageMeta": 128, "maxPersonality": 5,
        "maxPersonalitySize": 10240, "maxTotalKeypairs": 100, "maxServerGroups": 10,
        # nova-network's leftovers are unlimited in current Nova (nova/quota.py)
        "maxServerGroupMembers": 10, "maxSecurityGroups": -1, "maxSecurityGroupRules": -1,
        "maxTotalFloatingIps": -1, "totalInstancesUsed": 2, "totalCoresUsed": 6,
        "totalRAMUsed": 2560, "totalFloatingIpsUsed": 0, "totalSecurityGroupsUsed": 0,
        "totalServerGroupsUsed": 0}
    alt = body_of(api.get("/v2.1/limits?tenant_id=alt-project"))["limits"]["absolute"]
    assert (alt["totalInstancesUsed"], alt["totalCoresUsed"], alt["totalRAMUsed"]) == (1, 1, 64)
    msg = fault(api.get("/v2.1/limits?tenant_id=alt-project", who=DEMO), 403, "forbidden")
    assert msg == "Policy doesn't allow os_compute_api:limits:other_project to be performed."


def test_unknown_paths_and_methods(api: Api) -> None:
    fault(api.get("/v2.1/no-such-thing"), 404, "itemNotFound")
    fault(api.call("PATCH", "/v2.1/flavors/1", body={}), 405, "badMethod")


# -- the queries on every database backend ---------------------------------------------------

def test_flavor_queries_on_every_backend(database: Database) -> None:
    db = database
    assert db_flavors.ensure_default_flavors(db) == 7
    demo = RequestContext(user_id="u", project_id="demo-project")
    admin = RequestContext(user_id="a", project_id="admin-project", is_admin=True)
    db_flavors.flavor_create(db, name="private", flavorid="p1", memory_mb=64, vcpus=1,
                             root_gb=0, is_public=False)
    with pytest.raises(db_flavors.FlavorIdExists):
        db_flavors.flavor_create(db, name="again", flavorid="p1", memory_mb=64, vcpus=1,
                                 root_gb=0)
    with pytest.raises(db_flavors.FlavorExists):
        db_flavors.flavor_create(db, name="private", memory_mb=64, vcpus=1, root_gb=0)

    def ids(ctx: RequestContext, **kw: Any) -> list[str]:
        return [f["flavorid"] for f in db_flavors.flavor_get_all(db, ctx, **kw)]
    assert ids(demo) == ["1", "2", "3", "4", "42", "5", "84"]
    assert ids(admin, is_public=False) == ["p1"]
    assert ids(admin, is_public=None, sort_key="memory_mb", sort_dir="desc",
               limit=3) == ["5", "4", "3"]
    assert ids(admin, is_public=None, sort_key="memory_mb", sort_dir="desc",
               marker="42") == ["p1"]
    assert ids(admin, sort_key="vcpus", marker="2") == ["42", "84", "3", "4", "5"]
    assert ids(demo, min_memory_mb=8192, min_root_gb=100) == ["5"]
    with pytest.raises(db_flavors.MarkerNotFound):
        ids(demo, marker="p1")  # a marker the context cannot see
    with pytest.raises(exception_types.FlavorNotFound):
        db_flavors.flavor_get_by_flavorid(db, "p1", demo)

    assert db_flavors.flavor_access_add(db, "p1", "demo-project") == ["demo-project"]
    with pytest.raises(db_flavors.FlavorAccessExists):
        db_flavors.flavor_access_add(db, "p1", "demo-project")
    assert "p1" in ids(demo)
    assert db_flavors.flavor_get_by_flavorid(db, "p1", demo)["projects"] == ["demo-project"]
    assert db_flavors.flavor_access_remove(db, "p1", "demo-project") == []
    with pytest.raises(db_flavors.FlavorAccessNotFound):
        db_flavors.flavor_access_remove(db, "p1", "demo-project")

    specs = db_flavors.extra_specs_update_or_create(db, "p1", {"a": "1", "b": "2"})
    assert specs == {"a": "1", "b": "2"}
    assert db_flavors.extra_specs_update_or_create(db, "p1", {"a": "9"}) == {"a": "9", "b": "2"}
    db_flavors.extra_spec_delete(db, "p1", "a")
    assert db_flavors.extra_specs_get(db, "p1") == {"b": "2"}
    with pytest.raises(db_flavors.FlavorExtraSpecsNotFound):
        db_flavors.extra_spec_delete(db, "p1", "a")

    db_flavors.flavor_access_add(db, "p1", "demo-project")
    db_flavors.flavor_destroy(db, "p1")
    with pytest.raises(exception_types.FlavorNotFound):
        db_flavors.flavor_get_by_flavorid(db, "p1")
    assert db_flavors.ensure_default_flavors(db) == 0


def test_keypair_queries_on_every_backend(database: Database) -> None:
    db = database
    made = db_keypairs.keypair_create(db, user_id="u1", name="k", public_key="pk",
                                      fingerprint="fp", max_per_user=2)
    assert (made["name"], made["type"], made["user_id"]) == ("k", "ssh", "u1")
    with pytest.raises(db_keypairs.KeyPairExists):
        db_keypairs.keypair_create(db, user_id="u1", name="k", public_key="pk",
                                   fingerprint="fp")
    db_keypairs.keypair_create(db, user_id="u1", name="j", public_key="pk", fingerprint="fp",
                               max_per_user=2)
    with pytest.raises(db_keypairs.KeypairLimitExceeded):
        db_keypairs.keypair_create(db, user_id="u1", name="x", public_key="pk",
                                   fingerprint="fp", max_per_user=2)
    db_keypairs.keypair_create(db, user_id="u2", name="k", public_key="pk2", fingerprint="fp2")
    assert [k["name"] for k in db_keypairs.keypair_get_all(db, "u1")] == ["j", "k"]
    assert db_keypairs.keypair_count(db, "u1") == 2
    assert db_keypairs.keypair_get(db, "u2", "k")["public_key"] == "pk2"
    db_keypairs.keypair_destroy(db, "u1", "k")
    with pytest.raises(exception_types.KeypairNotFound):
        db_keypairs.keypair_get(db, "u1", "k")
    with pytest.raises(exception_types.KeypairNotFound):
        db_keypairs.keypair_destroy(db, "u1", "k")


def test_usage_queries_on_every_backend(database: Database) -> None:
    db = database
    svc = db_services.service_heartbeat(db, "h1", "stratus-compute", "compute")
    node = db_services.compute_node_update(db, "h1", "h1", {"vcpus": 4})
    add_instance(db, project_id="p", vcpus=2, memory_mb=128, host="h1", task_state="spawning")
    add_instance(db, project_id="p", vcpus=1, memory_mb=64, host="h1", deleted=True)
    with db.read() as s:
        usage = QuotaEngine.usage(s, "p")
    assert {k: v for k, v in usage.items() if v} == {"instances": 1, "cores": 2, "ram": 128}
    assert usage["floating_ips"] == usage["security_groups"] == usage["server_groups"] == 0
    assert hypervisors_api.host_workloads(db) == {"h1": 1}
    with db.write() as s:
        s.add(Allocation(consumer_uuid=new_uuid(), compute_node_id=node["id"], vcpus=1))
    with pytest.raises(exception_types.Conflict):
        services_api.destroy_service(db, svc["id"])
    with db.write() as s:
        s.execute(sql_update(Instance).values(deleted=True))
    services_api.destroy_service(db, svc["id"])
    assert db_services.compute_node_get_all(db) == []
    assert db_services.allocation_usage(db) == {}
