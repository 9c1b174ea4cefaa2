"""The servers API at microversion 2.1: request schemas, the server views, and
the controllers (servers, actions, metadata, instance actions) driven over
WSGI against the real ComputeAPI on SQLite."""
from __future__ import annotations

import datetime
import hashlib
import time
from typing import Any, Iterator

import jsonschema
import orjson
import pytest
from werkzeug.test import Client

from stratus import exception
from stratus.api import wsgi
from stratus.api.compute.app import build_compute_app
from stratus.api.compute.common import ComputeState
from stratus.api.compute.schemas import is_valid_name
from stratus.api.compute.schemas import servers as schema
from stratus.api.compute.views.servers import ServerViewBuilder
from stratus.compute import vm_states
from stratus.compute.api import ComputeAPI
from stratus.context import RequestContext
from stratus.db import flavors as db_flavors
from stratus.db import instances as db_instances
from stratus.db import keypairs as db_keypairs
from stratus.rpc.transport import get_transport

ROOT = "http://cloud.example/compute"
IMAGE_ID = "6b0a3b3c-8d55-4f0c-9d3e-5a4b9b7f1e01"
NOW = datetime.datetime(2026, 11, 24, 18, 1, 5, 123456)

# -- response schemas (Nova 2.1 server bodies, as tempest checks them) ----------

LINKS = {"type": "array", "items": {
    "type": "object", "properties": {"href": {"type": "string"}, "rel": {"type": "string"}},
    "required": ["href", "rel"], "additionalProperties": False}}
DATE_TIME = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"}
MICRO_TIME = {"type": ["string", "null"],
              "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$"}
CORE_SERVER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "status": {"type": "string"},
        "image": {"oneOf": [
            {"type": "object", "properties": {"id": {"type": "string"}, "links": LINKS},
             "required": ["id", "links"], "additionalProperties": False},
            {"type": ["string", "null"]}]},
        "flavor": {"type": "object",
                   "properties": {"id": {"type": "string"}, "links": LINKS},
                   "additionalProperties": False},
        "fault": {"type": "object",
                  "properties": {"code": {"type": "integer"}, "created": DATE_TIME,
                                 "message": {"type": "string"}, "details": {"type": "string"}},
                  "required": ["code", "created", "message"], "additionalProperties": False},
        "user_id": {"type": "string"}, "tenant_id": {"type": "string"},
        "created": DATE_TIME, "updated": DATE_TIME, "progress": {"type": "integer"},
        "metadata": {"type": "object"}, "links": LINKS, "addresses": {"type": "object"},
        "hostId": {"type": "string"}, "OS-DCF:diskConfig": {"enum": ["AUTO", "MANUAL"]},
        "accessIPv4": {"type": "string"}, "accessIPv6": {"type": "string"},
    },
    "required": ["id", "name", "status", "image", "flavor", "user_id", "tenant_id", "created",
                 "updated", "metadata", "links", "addresses", "hostId"],
    "additionalProperties": False,
}
DETAIL_SERVER: dict[str, Any] = {
    **CORE_SERVER,
    "properties": {
        **CORE_SERVER["properties"],
        "key_name": {"type": ["string", "null"]},
        "security_groups": {"type": "array"},
        "OS-SRV-USG:launched_at": MICRO_TIME, "OS-SRV-USG:terminated_at": MICRO_TIME,
        "OS-EXT-AZ:availability_zone": {"type": "string"},
        "OS-EXT-STS:task_state": {"type": ["string", "null"]},
        "OS-EXT-STS:vm_state": {"type": "string"},
        "OS-EXT-STS:power_state": {"type": "integer"},
        "OS-EXT-SRV-ATTR:host": {"type": ["string", "null"]},
        "OS-EXT-SRV-ATTR:instance_name": {"type": "string"},
        "OS-EXT-SRV-ATTR:hypervisor_hostname": {"type": ["string", "null"]},
        "os-extended-volumes:volumes_attached": {"type": "array"},
        "config_drive": {"type": "string"},
    },
}
DETAIL_KEYS_USER = {
    "id", "name", "status", "tenant_id", "user_id", "metadata", "hostId", "image", "flavor",
    "created", "updated", "addresses", "accessIPv4", "accessIPv6", "links",
    "OS-DCF:diskConfig", "OS-EXT-AZ:availability_zone", "config_drive", "key_name",
    "OS-SRV-USG:launched_at", "OS-SRV-USG:terminated_at", "OS-EXT-STS:task_state",
    "OS-EXT-STS:vm_state", "OS-EXT-STS:power_state", "os-extended-volumes:volumes_attached",
}
ADMIN_KEYS = {"OS-EXT-SRV-ATTR:host", "OS-EXT-SRV-ATTR:instance_name",
              "OS-EXT-SRV-ATTR:hypervisor_hostname"}


def conforms(body: Any, body_schema: dict[str, Any]) -> None:
    jsonschema.Draft4Validator(body_schema).validate(body)


def make_instance(**overrides: Any) -> dict[str, Any]:
    """An instance dict as ComputeAPI returns it."""
    inst: dict[str, Any] = {
        "id": 42, "uuid": "0d6a3f53-9a6b-4c46-8f6b-2d7b1c3f9a10", "user_id": "u1",
        "project_id": "p1", "display_name": "web-1", "display_description": "web-1",
        "hostname": "web-1", "host": "compute1", "node": "compute1.example",
        "launched_on": "compute1", "availability_zone": "nova", "image_ref": IMAGE_ID,
        "flavor": {"flavorid": "2", "name": "m1.small"}, "vcpus": 1, "memory_mb": 2048,
        "root_gb": 20, "ephemeral_gb": 0, "vm_state": "active", "task_state": None,
        "power_state": 1, "key_name": "mykey", "key_data": "ssh-rsa AAA", "user_data": None,
        "config_drive": "", "locked": False, "locked_by": None, "reservation_id": "r-1",
        "launch_index": 0, "access_ip_v4": None, "access_ip_v6": None,
        "auto_disk_config": False, "progress": 0, "launched_at": NOW, "terminated_at": None,
        "deleted_at": None, "deleted": False, "request_spec": None, "created_at": NOW,
        "updated_at": NOW + datetime.timedelta(seconds=3), "metadata": {"role": "web"},
        "fault": None,
    }
    inst.update(overrides)
    return inst


# == schemas ========================================================================

def create_body(**server: Any) -> dict[str, Any]:
    return {"server": {"name": "vm", "imageRef": IMAGE_ID, "flavorRef": "1", **server}}


def test_create_schema_accepts_what_openstackclient_sends() -> None:
    schema.validate_create(create_body(
        min_count=1, max_count="2", metadata={"role": "db", "a:b.c d-e_f": "x"},
        key_name="mykey", availability_zone="nova", user_data="aGVsbG8=",
        config_drive="true", return_reservation_id=False, accessIPv4="10.0.0.1",
        accessIPv6="::1", adminPass="secret", security_groups=[{"name": "default"}],
        networks=[{"uuid": IMAGE_ID}], personality=[], **{"OS-DCF:diskConfig": "AUTO"}))
    schema.validate_create(create_body(networks="auto", flavorRef=2))
    schema.validate_create(create_body(networks="none", imageRef=""))
    schema.validate_create({**create_body(), "os:scheduler_hints": {"anything": [1]}})


@pytest.mark.parametrize("server, fragment", [
    ({"name": "x" * 256}, "is too long"),
    ({"name": ""}, "Invalid input for field/attribute name."),
    ({"imageRef": "not-a-uuid"}, "imageRef"),
    ({"flavorRef": ""}, "flavorRef"),
    ({"description": "not at 2.1"}, "Additional properties are not allowed"),
    ({"min_count": 0}, "less than the minimum of 1"),
    ({"min_count": "0"}, "Invalid input for field/attribute min_count. Value: 0. "
                         "0 is less than the minimum of 1"),
    ({"max_count": "two"}, "max_count"),
    ({"metadata": {"": "empty key"}}, "metadata"),
    ({"metadata": {"k" * 256: "v"}}, "metadata"),
    ({"metadata": {"slash/key": "v"}}, "metadata"),
    ({"metadata": {"k": "v" * 256}}, "is too long"),
    ({"metadata": {"k": 1}}, "is not of type 'string'"),
    ({"user_data": "abc"}, "Invalid input for field/attribute user_data. Value: abc. "
                           "'abc' is not a 'base64'"),
    ({"user_data": "QUJD" * 16384}, "is too long"),
    ({"config_drive": "maybe"}, "config_drive"),
    ({"accessIPv4": "300.1.1.1"}, "accessIPv4"),
    ({"accessIPv6": "1.2.3.4"}, "accessIPv6"),
    ({"networks": "all"}, "'all' is not one of ['none', 'auto']"),
    ({"networks": [{"uuid": IMAGE_ID, "bogus": 1}]}, "'bogus' was unexpected"),
    ({"security_groups": [{"id": "x"}]}, "security_groups"),
    ({"OS-DCF:diskConfig": "auto"}, "OS-DCF:diskConfig"),
    ({"key_name": " padded"}, "An invalid 'name' value was provided. The name must be: "
                              "printable characters. Can not start or end with whitespace."),
])
def test_create_schema_rejects(server: dict[str, Any], fragment: str) -> None:
    with pytest.raises(exception.ValidationError) as err:
        schema.validate_create(create_body(**server))
    assert err.value.code == 400
    assert fragment in err.value.message


def test_create_schema_requires_name_and_flavor_and_the_server_key() -> None:
    for body in ({"server": {"flavorRef": "1"}}, {"server": {"name": "x"}}, {},
                 {**create_body(), "extra": 1}, []):
        with pytest.raises(exception.ValidationError):
            schema.validate_create(body)


@pytest.mark.parametrize("name, valid", [
    ("web server 1", True), ("ünïcødé", True), ("a", True), (" lead", False),
    ("trail ", False), ("tab\tinside", False), ("new\nline", False),
    ("\u00a0nbsp", False), ("emoji\U0001F600", False),
])
def test_server_name_rules(name: str, valid: bool) -> None:
    assert is_valid_name(name) is valid


def test_update_and_reboot_and_metadata_schemas() -> None:
    schema.validate_update({"server": {"name": "new", "accessIPv4": "1.2.3.4",
                                       "OS-DCF:diskConfig": "MANUAL"}})
    for bad in ({"server": {"description": "x"}}, {"server": {"name": "x" * 300}},
                {"server": {"accessIPv6": "nope"}}, {"name": "x"}):
        with pytest.raises(exception.ValidationError):
            schema.validate_update(bad)
    for kind in ("SOFT", "Hard", "soft"):
        schema.validate_reboot({"reboot": {"type": kind}})
    for bad in ({"reboot": {"type": "COLD"}}, {"reboot": {}}, {"reboot": None},
                {"reboot": {"type": "SOFT", "force": True}}):
        with pytest.raises(exception.ValidationError):
            schema.validate_reboot(bad)
    schema.validate_metadata_set({"metadata": {}})
    schema.validate_metadata_item({"meta": {"k": "v"}})
    for bad in ({"meta": {}}, {"meta": {"a": "1", "b": "2"}}, {"metadata": {"k": "v"}}):
        with pytest.raises(exception.ValidationError):
            schema.validate_metadata_item(bad)


# == views ==========================================================================

def test_list_entry_is_id_name_links() -> None:
    view = ServerViewBuilder(ROOT, is_admin=False)
    inst = make_instance()
    assert view.basic(inst) == {
        "id": inst["uuid"], "name": "web-1",
        "links": [{"rel": "self", "href": f"{ROOT}/v2.1/servers/{inst['uuid']}"},
                  {"rel": "bookmark", "href": f"{ROOT}/servers/{inst['uuid']}"}]}


def test_detail_view_for_a_user() -> None:
    inst = make_instance()
    server = ServerViewBuilder(ROOT, is_admin=False).show(inst)
    conforms(server, DETAIL_SERVER)
    assert set(server) == DETAIL_KEYS_USER | {"progress"}
    assert server["status"] == "ACTIVE"
    assert server["hostId"] == hashlib.sha224(b"p1compute1").hexdigest()
    assert server["image"] == {"id": IMAGE_ID, "links": [
        {"rel": "bookmark", "href": f"{ROOT}/images/{IMAGE_ID}"}]}
    assert server["flavor"] == {"id": "2", "links": [
        {"rel": "bookmark", "href": f"{ROOT}/flavors/2"}]}
    assert server["created"] == "2026-11-24T18:01:05Z"
    assert server["updated"] == "2026-11-24T18:01:08Z"
    assert server["OS-SRV-USG:launched_at"] == "2026-11-24T18:01:05.123456"
    assert server["OS-SRV-USG:terminated_at"] is None
    assert server["accessIPv4"] == "" and server["accessIPv6"] == ""
    assert server["OS-DCF:diskConfig"] == "MANUAL"
    assert server["OS-EXT-AZ:availability_zone"] == "nova"
    assert server["OS-EXT-STS:vm_state"] == "active"
    assert server["OS-EXT-STS:power_state"] == 1
    assert server["os-extended-volumes:volumes_attached"] == []
    assert server["metadata"] == {"role": "web"} and server["addresses"] == {}
    assert server["key_name"] == "mykey" and server["config_drive"] == ""
    assert server["tenant_id"] == "p1" and server["user_id"] == "u1"
    assert "security_groups" not in server  # Nova shows them only for ports it has


def test_detail_view_for_an_admin_adds_server_attributes() -> None:
    server = ServerViewBuilder(ROOT, is_admin=True).show(make_instance())
    conforms(server, DETAIL_SERVER)
    assert set(server) == DETAIL_KEYS_USER | ADMIN_KEYS | {"progress"}
    assert server["OS-EXT-SRV-ATTR:host"] == "compute1"
    assert server["OS-EXT-SRV-ATTR:hypervisor_hostname"] == "compute1.example"
    assert server["OS-EXT-SRV-ATTR:instance_name"] == "instance-0000002a"


def test_unscheduled_server_has_empty_host_id_and_no_image() -> None:
    inst = make_instance(host=None, node=None, image_ref="", vm_state="building",
                         task_state="scheduling", updated_at=None, launched_at=None,
                         access_ip_v4="10.0.0.5", auto_disk_config=True, progress=None,
                         config_drive="True")
    server = ServerViewBuilder(ROOT, is_admin=True).show(inst)
    conforms(server, DETAIL_SERVER)
    assert server["status"] == "BUILD" and server["progress"] == 0
    assert server["hostId"] == "" and server["image"] == ""
    assert server["updated"] == server["created"]
    assert server["accessIPv4"] == "10.0.0.5" and server["OS-DCF:diskConfig"] == "AUTO"
    assert server["OS-EXT-STS:task_state"] == "scheduling"
    assert server["OS-EXT-SRV-ATTR:host"] is None and server["config_drive"] == "True"


@pytest.mark.parametrize("vm_state, task_state, status, has_progress", [
    ("stopped", None, "SHUTOFF", False),
    ("paused", None, "PAUSED", False),
    ("active", "rebooting", "REBOOT", False),
    ("resized", None, "VERIFY_RESIZE", True),
    ("active", "powering-off", "ACTIVE", True),
    ("error", None, "ERROR", False),
])
def test_status_and_progress(vm_state: str, task_state: str | None, status: str,
                             has_progress: bool) -> None:
    server = ServerViewBuilder(ROOT, False).show(
        make_instance(vm_state=vm_state, task_state=task_state))
    assert server["status"] == status
    assert ("progress" in server) is has_progress


def test_fault_only_for_error_and_deleted_and_details_hidden_for_500s() -> None:
    fault = {"code": 500, "message": "No valid host was found.", "details": "Traceback...",
             "created": NOW}
    user, admin = ServerViewBuilder(ROOT, False), ServerViewBuilder(ROOT, True)
    errored = make_instance(vm_state="error", fault=fault)
    assert user.show(errored)["fault"] == {"code": 500, "created": "2026-11-24T18:01:05Z",
                                           "message": "No valid host was found."}
    assert admin.show(errored)["fault"]["details"] == "Traceback..."
    assert user.show(make_instance(vm_state="error", fault={**fault, "code": 400}))[
        "fault"]["details"] == "Traceback..."
    deleted = make_instance(deleted=True, vm_state="deleted", fault=fault)
    assert user.show(deleted)["status"] == "DELETED" and "fault" in user.show(deleted)
    assert "fault" not in user.show(make_instance(fault=fault))  # ACTIVE: no fault
    assert "fault" not in user.show(make_instance(vm_state="error"))
    conforms(admin.show(errored), DETAIL_SERVER)


def test_update_view_is_the_core_body() -> None:
    server = ServerViewBuilder(ROOT, True).core(make_instance(flavor={}))
    conforms(server, CORE_SERVER)
    assert server["flavor"] == {}


def test_create_view() -> None:
    inst = make_instance()
    body = ServerViewBuilder(ROOT, False).create(inst, [{"name": "default"}], "pw")
    assert body == {"id": inst["uuid"], "links": ServerViewBuilder(ROOT, False).links(
        inst["uuid"]), "OS-DCF:diskConfig": "MANUAL",
        "security_groups": [{"name": "default"}], "adminPass": "pw"}


def test_detail_of_1000_servers_renders_fast() -> None:
    instances = [make_instance(id=i, uuid=f"00000000-0000-4000-8000-{i:012d}",
                               host=f"compute{i % 20}") for i in range(1000)]
    view = ServerViewBuilder(ROOT, is_admin=True)
    view.detail(instances[:10])  # warm up
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        orjson.dumps({"servers": ServerViewBuilder(ROOT, True).detail(instances)})
        best = min(best, time.perf_counter() - started)
    assert best < 0.05, f"rendering 1000 servers took {best * 1000:.1f} ms"


# == controllers over WSGI, against the real ComputeAPI ==============================

USERS = {
    "alice": RequestContext(user_id="alice", project_id="proj-a", roles=["member"]),
    "bob": RequestContext(user_id="bob", project_id="proj-b", roles=["member"]),
    "admin": RequestContext(user_id="admin", project_id="proj-admin", roles=["admin"],
                            is_admin=True),
}
IMAGES = {IMAGE_ID: {"id": IMAGE_ID, "status": "active", "min_ram": 0, "min_disk": 0,
                     "properties": {}}}


def image_get(ctx: RequestContext, image_id: str) -> dict[str, Any]:
    """The image service as ComputeAPI sees it: one active public image."""
    if image_id not in IMAGES:
        raise exception.ImageNotFound(image_id=image_id)
    return IMAGES[image_id]


def authenticate(req: wsgi.Request) -> RequestContext | None:
    user = USERS.get(req.headers.get("X-Auth-Token", ""))
    if user is None:
        return None
    return RequestContext(user_id=user.user_id, project_id=user.project_id,
                          roles=list(user.roles), is_admin=user.is_admin)


class Api:
    """A werkzeug client speaking to the compute routes as one of USERS."""

    def __init__(self, app: wsgi.App, db: Any) -> None:
        self.client = Client(app)
        self.db = db

    def request(self, method: str, path: str, user: str = "alice", body: Any = None,
                raw: bytes | None = None) -> Any:
        data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
        resp = self.client.open("/compute" + path, method=method, data=data,
                                headers={"X-Auth-Token": user,
                                         "Content-Type": "application/json"})
        resp.json_body = orjson.loads(resp.data) if resp.data else None
        return resp

    def create(self, user: str = "alice", **server: Any) -> dict[str, Any]:
        resp = self.request("POST", "/v2.1/servers", user, create_body(**server))
        assert resp.status_code == 202, resp.data
        return resp.json_body["server"]

    def set_state(self, server_id: str, **updates: Any) -> None:
        db_instances.instance_update(self.db, server_id, updates)


@pytest.fixture
def api(conf: Any, sqlite_db: Any) -> Iterator[Api]:
    conf.api.public_url = "http://cloud.example"
    transport = get_transport("memory://")
    db_flavors.flavor_create(sqlite_db, name="m1.tiny", memory_mb=512, vcpus=1, root_gb=1,
                             flavorid="1")
    compute_api = ComputeAPI(conf, sqlite_db, transport, image_get=image_get)
    app = build_compute_app(ComputeState(conf=conf, db=sqlite_db, compute_api=compute_api),
                            authenticate)
    dispatcher = wsgi.PrefixDispatcher({"/compute": app})
    yield Api(dispatcher, sqlite_db)  # type: ignore[arg-type]
    transport.cleanup()


def fault(resp: Any, code: int) -> str:
    assert resp.status_code == code, resp.data
    (name, body), = resp.json_body.items()
    assert name == wsgi.FAULT_NAMES[code] and body["code"] == code
    return body["message"]


def test_create_answers_202_with_location_and_password(api: Api) -> None:
    resp = api.request("POST", "/v2.1/servers", body=create_body(name="web"))
    assert resp.status_code == 202
    server = resp.json_body["server"]
    assert set(server) == {"id", "links", "OS-DCF:diskConfig", "security_groups", "adminPass"}
    assert resp.headers["Location"] == f"{ROOT}/v2.1/servers/{server['id']}"
    assert server["security_groups"] == [{"name": "default"}]
    assert len(server["adminPass"]) == 12
    given = api.create(adminPass="s3cret", security_groups=[{"name": "web"}])
    assert given["adminPass"] == "s3cret" and given["security_groups"] == [{"name": "web"}]


def test_create_with_reservation_id_and_several_servers(api: Api) -> None:
    resp = api.request("POST", "/v2.1/servers",
                       body=create_body(name="many", min_count=2, max_count="3",
                                        return_reservation_id="True"))
    assert resp.status_code == 202
    reservation = resp.json_body["reservation_id"]
    assert set(resp.json_body) == {"reservation_id"}
    listed = api.request("GET", f"/v2.1/servers?reservation_id={reservation}").json_body
    assert sorted(s["name"] for s in listed["servers"]) == ["many-1", "many-2", "many-3"]


@pytest.mark.parametrize("server, code, message", [
    ({"flavorRef": "99"}, 400, "Flavor 99 could not be found."),
    ({"imageRef": "11111111-2222-4333-8444-555555555555"}, 400,
     "Can not find requested image"),
    ({"key_name": "nokey"}, 400, "Invalid key_name provided."),
    ({"imageRef": ""}, 400, "Missing imageRef attribute"),
    ({"min_count": 3, "max_count": 2}, 400, "min_count must be <= max_count"),
    ({"name": "n" * 300}, 400, "is too long"),
    ({"networks": [{"fixed_ip": "10.0.0.1"}]}, 400, "Bad network format: missing 'uuid'"),
    ({"networks": [{"uuid": "net"}]}, 400, "network uuid is not in proper format (net)"),
])
def test_create_errors(api: Api, server: dict[str, Any], code: int, message: str) -> None:
    resp = api.request("POST", "/v2.1/servers", body=create_body(**server))
    assert message in fault(resp, code)
    assert api.request("GET", "/v2.1/servers").json_body == {"servers": []}


OSC_BOOT_MAPPING = {"uuid": IMAGE_ID, "boot_index": 0, "source_type": "image",
                    "destination_type": "local", "delete_on_termination": True}


def test_create_accepts_the_image_boot_mapping_openstackclient_sends(api: Api) -> None:
    with_ref = api.create(name="cli", block_device_mapping_v2=[OSC_BOOT_MAPPING])
    only_bdm = api.create(name="bdm", imageRef="",
                          block_device_mapping_v2=[dict(OSC_BOOT_MAPPING, boot_index="0")])
    for created in (with_ref, only_bdm):
        server = api.request("GET", f"/v2.1/servers/{created['id']}").json_body["server"]
        assert server["image"]["id"] == IMAGE_ID


@pytest.mark.parametrize("server", [
    {"block_device_mapping_v2": [{"source_type": "volume", "destination_type": "volume",
                                  "uuid": IMAGE_ID, "boot_index": 0}]},
    {"block_device_mapping_v2": [OSC_BOOT_MAPPING, {"source_type": "blank",
                                                    "destination_type": "local",
                                                    "boot_index": -1, "volume_size": 1}]},
    {"block_device_mapping_v2": [dict(OSC_BOOT_MAPPING, destination_type="volume")]},
    {"block_device_mapping": [{"volume_id": IMAGE_ID, "device_name": "vda"}]},
])
def test_create_refuses_mappings_it_cannot_honour(api: Api, server: dict[str, Any]) -> None:
    resp = api.request("POST", "/v2.1/servers", body=create_body(**server))
    assert fault(resp, 400).startswith("Block Device Mapping is Invalid")
    assert api.request("GET", "/v2.1/servers").json_body == {"servers": []}


def test_create_schema_checks_block_device_mappings() -> None:
    schema.validate_create(create_body(block_device_mapping=[], block_device_mapping_v2=[]))
    for mapping in ({"source_type": "tape"}, {"boot_index": "first"}, {"volume_size": "0"},
                    {"uuid": "has space"}, {"unknown": 1}):
        with pytest.raises(exception.ValidationError):
            schema.validate_create(create_body(block_device_mapping_v2=[mapping]))


def test_create_with_keypair_and_flavor_href(api: Api) -> None:
    db_keypairs.keypair_create(api.db, user_id="alice", name="mykey",
                               public_key="ssh-ed25519 AAAAC3Nza alice", fingerprint="f")
    created = api.create(key_name="mykey", flavorRef=f"{ROOT}/flavors/1",
                         metadata={"k": "v"}, accessIPv4="192.0.2.7")
    server = api.request("GET", f"/v2.1/servers/{created['id']}").json_body["server"]
    assert server["key_name"] == "mykey" and server["flavor"]["id"] == "1"
    assert server["metadata"] == {"k": "v"} and server["accessIPv4"] == "192.0.2.7"


def test_malformed_and_empty_bodies_are_400(api: Api) -> None:
    assert fault(api.request("POST", "/v2.1/servers", raw=b"{not json"), 400)
    assert fault(api.request("POST", "/v2.1/servers", raw=b""), 400)


def test_show_is_the_detail_view_and_hides_other_projects(api: Api) -> None:
    created = api.create(name="mine")
    resp = api.request("GET", f"/v2.1/servers/{created['id']}")
    assert resp.status_code == 200
    server = resp.json_body["server"]
    conforms(server, DETAIL_SERVER)
    assert set(server) == DETAIL_KEYS_USER | {"progress"}
    assert server["status"] == "BUILD" and server["name"] == "mine"
    assert server["tenant_id"] == "proj-a" and server["user_id"] == "alice"
    assert server["image"]["id"] == IMAGE_ID and server["hostId"] == ""
    admin_view = api.request("GET", f"/v2.1/servers/{created['id']}", "admin").json_body
    assert ADMIN_KEYS <= set(admin_view["server"])
    assert "could not be found" in fault(
        api.request("GET", f"/v2.1/servers/{created['id']}", "bob"), 404)
    assert fault(api.request("GET", "/v2.1/servers/not-a-uuid"), 404) == \
        "Instance not-a-uuid could not be found."


def test_list_and_detail_are_per_project(api: Api) -> None:
    mine = api.create(name="a1")
    theirs = api.create("bob", name="b1")
    listed = api.request("GET", "/v2.1/servers").json_body
    assert listed == {"servers": [{"id": mine["id"], "name": "a1", "links": mine["links"]}]}
    detail = api.request("GET", "/v2.1/servers/detail").json_body
    assert [s["id"] for s in detail["servers"]] == [mine["id"]]
    conforms(detail["servers"][0], DETAIL_SERVER)
    everyone = api.request("GET", "/v2.1/servers?all_tenants=1", "admin").json_body
    assert {s["id"] for s in everyone["servers"]} == {mine["id"], theirs["id"]}
    just_bob = api.request("GET", "/v2.1/servers/detail?all_tenants&project_id=proj-b",
                           "admin").json_body
    assert [s["id"] for s in just_bob["servers"]] == [theirs["id"]]
    assert api.request("GET", "/v2.1/servers", "admin").json_body == {"servers": []}
    assert "get_all_tenants" in fault(api.request("GET", "/v2.1/servers?all_tenants=1"), 403)
    assert api.request("GET", "/v2.1/servers?all_tenants=0").json_body["servers"] != []
    assert "Unrecognized value 'maybe'" in fault(
        api.request("GET", "/v2.1/servers?all_tenants=maybe", "admin"), 400)
    # admin-only filters are dropped for users, as Nova does
    assert len(api.request("GET", "/v2.1/servers?host=nowhere").json_body["servers"]) == 1
    assert api.request("GET", "/v2.1/servers?host=nowhere&all_tenants",
                       "admin").json_body == {"servers": []}


def test_list_filters(api: Api) -> None:
    web = api.create(name="web-1")
    db = api.create(name="db-1")
    api.set_state(db["id"], vm_state=vm_states.ACTIVE, task_state=None)

    def names(query: str) -> list[str]:
        resp = api.request("GET", f"/v2.1/servers?{query}")
        assert resp.status_code == 200, resp.data
        return sorted(s["name"] for s in resp.json_body["servers"])

    assert names("name=^web") == ["web-1"]
    assert names("status=ACTIVE") == ["db-1"]
    assert names("status=build") == ["web-1"]
    assert names("status=NOT_A_STATUS") == []
    assert names(f"image={IMAGE_ID}") == ["db-1", "web-1"]
    assert names("image=11111111-2222-4333-8444-555555555555") == []
    assert names("flavor=1") == ["db-1", "web-1"] and names("flavor=2") == []
    assert names("unknown_filter=1") == ["db-1", "web-1"]
    assert "Only administrators may list deleted instances" in fault(
        api.request("GET", "/v2.1/servers?status=DELETED"), 403)
    assert "'regex'" in fault(api.request("GET", "/v2.1/servers?name=[unclosed"), 400)
    assert "Invalid filter field: metadata." == fault(
        api.request("GET", "/v2.1/servers?metadata=x", "admin"), 400)
    assert web["id"]


def test_a_catastrophic_name_regex_is_a_400_within_its_budget(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """``(a|aa)+$`` against 40 a's and a "!" backtracks for minutes; the list
    gives up after NAME_FILTER_BUDGET seconds with a 400 instead of holding
    an API thread, and an ordinary pattern on the same names still works."""
    from stratus.db import instances as db_instances

    monkeypatch.setattr(db_instances, "NAME_FILTER_BUDGET", 0.3)
    api.create(name="a" * 40 + "!")
    started = time.monotonic()
    resp = api.request("GET", "/v2.1/servers?name=(a%7Caa)%2B%24")
    assert time.monotonic() - started < 5
    assert "takes too long to match" in fault(resp, 400)
    resp = api.request("GET", "/v2.1/servers?name=%5Ea%2B!%24")
    assert [s["name"] for s in resp.json_body["servers"]] == ["a" * 40 + "!"]


def test_list_filters_by_several_statuses(api: Api) -> None:
    """Nova ORs repeated status filters (ComputeAPI gets them as a list)."""
    api.create(name="building")
    active = api.create(name="running")
    api.set_state(active["id"], vm_state=vm_states.ACTIVE, task_state=None)
    for query, expected in (("status=ACTIVE&status=BUILD", ["building", "running"]),
                            ("status=ACTIVE&status=NOT_A_STATUS", ["running"])):
        resp = api.request("GET", f"/v2.1/servers?{query}")
        assert resp.status_code == 200, resp.data
        assert sorted(s["name"] for s in resp.json_body["servers"]) == expected


def test_changes_since_includes_deleted_servers(api: Api) -> None:
    before = "2000-01-01T00:00:00Z"
    kept = api.create(name="kept")
    gone = api.create(name="gone")
    assert api.request("DELETE", f"/v2.1/servers/{gone['id']}").status_code == 204
    servers_ = api.request("GET", f"/v2.1/servers/detail?changes-since={before}"
                           ).json_body["servers"]
    status = {s["id"]: s["status"] for s in servers_}
    assert status == {kept["id"]: "BUILD", gone["id"]: "DELETED"}
    future = api.request("GET", "/v2.1/servers?changes-since=2999-01-01T00:00:00").json_body
    assert future == {"servers": []}
    assert fault(api.request("GET", "/v2.1/servers?changes-since=yesterday"), 400) == (
        "Invalid input for query parameters changes-since. Value: yesterday. "
        "'yesterday' is not a 'date-time'")


def test_pagination_with_limit_and_marker(api: Api) -> None:
    ids = [api.create(name=f"s{i}")["id"] for i in range(3)]
    page = api.request("GET", "/v2.1/servers?limit=2&sort_key=display_name&sort_dir=asc"
                       ).json_body
    assert [s["name"] for s in page["servers"]] == ["s0", "s1"]
    (link,) = page["servers_links"]
    assert link["rel"] == "next"
    assert link["href"].startswith(f"{ROOT}/v2.1/servers?")
    assert f"marker={ids[1]}" in link["href"] and "limit=2" in link["href"]
    rest = api.request("GET", link["href"].split("/compute", 1)[1]).json_body
    assert [s["name"] for s in rest["servers"]] == ["s2"]
    assert "servers_links" not in rest
    detail = api.request("GET", "/v2.1/servers/detail?limit=1").json_body
    assert detail["servers_links"][0]["href"].startswith(f"{ROOT}/v2.1/servers/detail?")
    assert api.request("GET", "/v2.1/servers?limit=0").json_body == {"servers": []}
    assert "marker [nope] not found" in fault(
        api.request("GET", "/v2.1/servers?marker=nope"), 400)
    assert "limit" in fault(api.request("GET", "/v2.1/servers?limit=-1"), 400)


def test_sorting(api: Api) -> None:
    for name in ("b", "c", "a"):
        api.create(name=name)

    def order(query: str, user: str = "alice") -> list[str]:
        resp = api.request("GET", f"/v2.1/servers?{query}", user)
        assert resp.status_code == 200, resp.data
        return [s["name"] for s in resp.json_body["servers"]]

    assert order("") == ["a", "c", "b"]  # newest first
    assert order("sort_key=display_name") == ["c", "b", "a"]
    assert order("sort_key=display_name&sort_dir=asc") == ["a", "b", "c"]
    assert order("sort_key=deleted&sort_key=display_name&sort_dir=desc&sort_dir=asc") \
        == ["a", "b", "c"]  # ignored keys drop their direction too
    assert order("sort_dir=asc") == ["b", "c", "a"]
    assert order("sort_key=host", "admin") == []
    assert "is not one of" in fault(api.request("GET", "/v2.1/servers?sort_key=bogus"), 400)
    assert fault(api.request("GET", "/v2.1/servers?sort_key=host"), 403) == \
        "Only administrators can sort servers by host"
    assert "Unknown sort direction" in fault(
        api.request("GET", "/v2.1/servers?sort_dir=up"), 400)
    assert "Sort direction size exceeds sort key size" in fault(
        api.request("GET", "/v2.1/servers?sort_key=uuid&sort_dir=asc&sort_dir=desc"), 400)


def test_update_renames_and_returns_the_core_view(api: Api) -> None:
    created = api.create(name="old")
    resp = api.request("PUT", f"/v2.1/servers/{created['id']}",
                       body={"server": {"name": "new", "accessIPv4": "198.51.100.1",
                                        "accessIPv6": "2001:db8::1"}})
    assert resp.status_code == 200
    server = resp.json_body["server"]
    conforms(server, CORE_SERVER)
    assert server["name"] == "new" and server["accessIPv4"] == "198.51.100.1"
    assert server["accessIPv6"] == "2001:db8::1"
    shown = api.request("GET", f"/v2.1/servers/{created['id']}").json_body["server"]
    assert shown["name"] == "new"
    assert fault(api.request("PUT", f"/v2.1/servers/{created['id']}",
                             body={"server": {"name": " x"}}), 400)
    assert fault(api.request("PUT", f"/v2.1/servers/{created['id']}", "bob",
                             body={"server": {"name": "x"}}), 404)


def test_delete(api: Api) -> None:
    created = api.create()
    assert fault(api.request("DELETE", f"/v2.1/servers/{created['id']}", "bob"), 404)
    resp = api.request("DELETE", f"/v2.1/servers/{created['id']}")
    assert resp.status_code == 204 and resp.data == b""
    assert fault(api.request("GET", f"/v2.1/servers/{created['id']}"), 404)
    assert fault(api.request("DELETE", "/v2.1/servers/123"), 404)


# -- actions -------------------------------------------------------------------------

def action(api: Api, server_id: str, body: Any, user: str = "alice") -> Any:
    return api.request("POST", f"/v2.1/servers/{server_id}/action", user, body)


def test_action_body_must_name_one_known_action(api: Api) -> None:
    created = api.create()
    assert fault(action(api, created["id"], {"os-explode": None}), 400) == \
        "There is no such action: os-explode"
    assert fault(action(api, created["id"], {"os-stop": None, "os-start": None}), 400) == \
        "Malformed request body"
    assert fault(action(api, created["id"], {}), 400) == "Malformed request body"
    assert fault(api.request("POST", f"/v2.1/servers/{created['id']}/action",
                             raw=b"not json"), 400) == "Malformed request body"
    assert fault(action(api, created["id"], {"reboot": {"type": "COLD"}}), 400)
    assert fault(action(api, "not-a-uuid", {"os-stop": None}), 404)
    # an unknown action is a 400 even for a server that does not exist, as in Nova
    assert fault(action(api, "not-a-uuid", {"os-explode": None}), 400)


def test_power_actions_follow_the_state_rules(api: Api) -> None:
    created = api.create()
    sid = created["id"]
    assert "while it is in vm_state building" in fault(action(api, sid, {"os-stop": None}),
                                                      409)
    api.set_state(sid, vm_state=vm_states.ACTIVE, task_state=None, host="compute1")
    resp = action(api, sid, {"os-stop": None})
    assert resp.status_code == 202 and resp.data == b""
    server = api.request("GET", f"/v2.1/servers/{sid}").json_body["server"]
    assert server["OS-EXT-STS:task_state"] == vm_states.POWERING_OFF
    assert fault(action(api, sid, {"os-start": None}), 409)
    api.set_state(sid, vm_state=vm_states.STOPPED, task_state=None)
    assert action(api, sid, {"os-start": None}).status_code == 202
    api.set_state(sid, vm_state=vm_states.ACTIVE, task_state=None)
    assert action(api, sid, {"reboot": {"type": "soft"}}).status_code == 202
    server = api.request("GET", f"/v2.1/servers/{sid}").json_body["server"]
    assert server["status"] == "REBOOT"
    assert action(api, sid, {"reboot": {"type": "HARD"}}).status_code == 202
    assert api.request("GET", f"/v2.1/servers/{sid}").json_body["server"]["status"] == \
        "HARD_REBOOT"
    for name, vm_state in (("pause", vm_states.ACTIVE), ("unpause", vm_states.PAUSED),
                           ("suspend", vm_states.ACTIVE), ("resume", vm_states.SUSPENDED)):
        api.set_state(sid, vm_state=vm_state, task_state=None)
        assert action(api, sid, {name: None}).status_code == 202, name
    assert fault(action(api, sid, {"os-stop": None}, "bob"), 404)


def test_lock_blocks_other_actions_for_users(api: Api) -> None:
    sid = api.create()["id"]
    api.set_state(sid, vm_state=vm_states.ACTIVE, task_state=None, host="compute1")
    assert action(api, sid, {"lock": None}).status_code == 202
    assert fault(action(api, sid, {"os-stop": None}), 409) == f"Instance {sid} is locked"
    assert fault(api.request("DELETE", f"/v2.1/servers/{sid}"), 409)
    assert action(api, sid, {"unlock": None}).status_code == 202
    assert action(api, sid, {"os-stop": None}).status_code == 202


# -- metadata --------------------------------------------------------------------------

def test_server_metadata(api: Api) -> None:
    sid = api.create(metadata={"a": "1", "b": "2"})["id"]
    base = f"/v2.1/servers/{sid}/metadata"
    assert api.request("GET", base).json_body == {"metadata": {"a": "1", "b": "2"}}
    merged = api.request("POST", base, body={"metadata": {"b": "3", "c": "4"}})
    assert merged.status_code == 200
    assert merged.json_body == {"metadata": {"a": "1", "b": "3", "c": "4"}}
    replaced = api.request("PUT", base, body={"metadata": {"z": "26"}})
    assert replaced.status_code == 200 and replaced.json_body == {"metadata": {"z": "26"}}
    assert api.request("GET", f"{base}/z").json_body == {"meta": {"z": "26"}}
    assert fault(api.request("GET", f"{base}/nope"), 404) == "Metadata item was not found"
    item = api.request("PUT", f"{base}/y", body={"meta": {"y": "25"}})
    assert item.status_code == 200 and item.json_body == {"meta": {"y": "25"}}
    assert fault(api.request("PUT", f"{base}/x", body={"meta": {"y": "1"}}), 400) == \
        "Request body and URI mismatch"
    assert fault(api.request("PUT", f"{base}/x", body={"meta": {"x": "1", "y": "2"}}), 400)
    assert fault(api.request("POST", base, body={"metadata": {"k": "v" * 256}}), 400)
    deleted = api.request("DELETE", f"{base}/z")
    assert deleted.status_code == 204 and deleted.data == b""
    assert fault(api.request("DELETE", f"{base}/z"), 404) == "Metadata item was not found"
    assert api.request("GET", base).json_body == {"metadata": {"y": "25"}}
    shown = api.request("GET", f"/v2.1/servers/{sid}").json_body["server"]
    assert shown["metadata"] == {"y": "25"}
    assert fault(api.request("GET", base, "bob"), 404)
    assert fault(api.request("GET", "/v2.1/servers/bad/metadata"), 404)


# -- instance actions ---------------------------------------------------------------------

ACTION_KEYS = {"action", "instance_uuid", "request_id", "user_id", "project_id",
               "start_time", "message"}


def test_instance_actions(api: Api) -> None:
    resp = api.request("POST", "/v2.1/servers", body=create_body())
    sid = resp.json_body["server"]["id"]
    request_id = resp.headers["x-openstack-request-id"]
    api.set_state(sid, vm_state=vm_states.ACTIVE, task_state=None, host="compute1")
    stop = action(api, sid, {"os-stop": None})
    listed = api.request("GET", f"/v2.1/servers/{sid}/os-instance-actions").json_body
    actions = listed["instanceActions"]
    assert [a["action"] for a in actions] == ["stop", "create"]
    assert set(actions[1]) == ACTION_KEYS
    assert actions[1]["request_id"] == request_id and actions[1]["instance_uuid"] == sid
    assert actions[0]["request_id"] == stop.headers["x-openstack-request-id"]
    assert actions[1]["user_id"] == "alice" and actions[1]["project_id"] == "proj-a"
    datetime.datetime.strptime(actions[1]["start_time"], "%Y-%m-%dT%H:%M:%S.%f")

    db_instances.action_event_start(api.db, sid, request_id, "compute_build_and_run_instance",
                                    "compute1")
    db_instances.action_event_finish(api.db, sid, request_id,
                                     "compute_build_and_run_instance", "Error", "Traceback x")
    path = f"/v2.1/servers/{sid}/os-instance-actions/{request_id}"
    user_view = api.request("GET", path).json_body["instanceAction"]
    assert set(user_view) == ACTION_KEYS  # no events for users at 2.1
    assert user_view["message"] == "Error"
    admin_view = api.request("GET", path, "admin").json_body["instanceAction"]
    (event,) = admin_view["events"]
    assert set(event) == {"event", "start_time", "finish_time", "result", "traceback"}
    assert event["result"] == "Error" and event["traceback"] == "Traceback x"
    datetime.datetime.strptime(event["finish_time"], "%Y-%m-%dT%H:%M:%S.%f")
    assert fault(api.request("GET", f"/v2.1/servers/{sid}/os-instance-actions/req-nope"),
                 404) == "Action req-nope not found"
    assert fault(api.request("GET", f"/v2.1/servers/{sid}/os-instance-actions", "bob"), 404)


# == end to end: the in-process cloud (scheduler, conductor, fake compute) ===============

def test_server_lifecycle_in_the_cloud(cloud: Any) -> None:
    server = cloud.boot(name="e2e", metadata={"role": "web"})
    conforms(server, DETAIL_SERVER)
    assert server["status"] == "ACTIVE" and server["OS-EXT-STS:power_state"] == 1
    assert server["OS-EXT-SRV-ATTR:host"] == "host1"  # the cloud's token is an admin's
    assert server["hostId"] == hashlib.sha224(
        (server["tenant_id"] + "host1").encode()).hexdigest()
    assert server["OS-SRV-USG:launched_at"] is not None and server["progress"] == 0
    sid = server["id"]

    def act(body: Any) -> None:
        resp = cloud.compute("POST", f"/servers/{sid}/action", body)
        assert resp.status_code == 202, resp.get_data(as_text=True)

    act({"os-stop": None})
    assert cloud.wait_for(sid, "SHUTOFF")["OS-EXT-STS:power_state"] == 4
    act({"os-start": None})
    cloud.wait_for(sid, "ACTIVE")
    act({"reboot": {"type": "SOFT"}})
    cloud.wait_for(sid, "ACTIVE")
    listed = cloud.compute("GET", "/servers/detail").get_json()["servers"]
    assert [s["id"] for s in listed] == [sid]
    actions = cloud.compute("GET", f"/servers/{sid}/os-instance-actions").get_json()
    assert [a["action"] for a in actions["instanceActions"]] == \
        ["reboot", "start", "stop", "create"]
    assert cloud.compute("DELETE", f"/servers/{sid}").status_code == 204
    assert cloud.wait_for(sid, "DELETED") == {}
