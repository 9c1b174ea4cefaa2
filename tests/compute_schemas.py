"""The compute API v2.1 response schemas that tempest checks Nova against
(``tempest/lib/api_schema/response/compute/v2_1``), restated as facts: which
fields a body must have, their JSON types, and which bodies allow nothing
else (``additionalProperties: False``). Used by tests/unit/test_wire_format.py.

:func:`validate` runs a schema with the formats tempest uses: ``uri``,
``ipv4``/``ipv6`` and ``iso8601-date-time`` (what ``iso8601.parse_date``
accepts: ``2026-11-24T18:01:05Z`` and ``2026-11-24T18:01:05.123456``).
"""
from __future__ import annotations

import copy
import datetime
import ipaddress
from typing import Any
from urllib.parse import urlsplit

import jsonschema

FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("iso8601-date-time", raises=ValueError)
def _iso8601(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return "T" in value


@FORMATS.checks("uri", raises=ValueError)
def _uri(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme in ("http", "https") and parts.netloc)


@FORMATS.checks("ipv4", raises=ValueError)
def _ipv4(value: Any) -> bool:
    return not isinstance(value, str) or bool(ipaddress.IPv4Address(value))


@FORMATS.checks("ipv6", raises=ValueError)
def _ipv6(value: Any) -> bool:
    return not isinstance(value, str) or bool(ipaddress.IPv6Address(value))


def validate(schema: dict[str, Any], body: Any) -> None:
    """Raise jsonschema.ValidationError when ``body`` breaks ``schema``."""
    jsonschema.Draft4Validator(schema, format_checker=FORMATS).validate(body)


def obj(properties: dict[str, Any], required: list[str] | tuple[str, ...] = (),
        closed: bool = True) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


def body(key: str, inner: dict[str, Any], *optional: str, **more: Any) -> dict[str, Any]:
    """``{key: inner}`` (plus optional top-level keys), nothing else."""
    props = {key: inner, **{k: LINKS for k in optional}, **more}
    return obj(props, [key])


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
BOOLEAN = {"type": "boolean"}
NULLABLE_STRING = {"type": ["string", "null"]}
DATE_TIME = {"type": "string", "format": "iso8601-date-time"}
DATE_TIME_OR_NULL = {"type": ["string", "null"], "format": "iso8601-date-time"}
LINKS = array(obj({"href": {"type": "string", "format": "uri"}, "rel": STRING},
                  ["href", "rel"]))
IP_ADDRESS = {"oneOf": [{"type": "string", "oneOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
                        {"type": "null"}]}
ACCESS_IP_V4 = {"type": "string", "oneOf": [{"format": "ipv4"}, {"enum": [""]}]}
ACCESS_IP_V6 = {"type": "string", "oneOf": [{"format": "ipv6"}, {"enum": [""]}]}
POWER_STATE = {"type": "integer", "enum": [0, 1, 3, 4, 6, 7]}
ADDRESSES = {"type": "object", "patternProperties": {"^[a-zA-Z0-9-_.]+$": array(obj(
    {"version": INTEGER, "addr": {"type": "string",
                                  "oneOf": [{"format": "ipv4"}, {"format": "ipv6"}]}},
    ["version", "addr"]))}}

# -- versions ------------------------------------------------------------------------
_VERSION = obj({
    "id": STRING,
    "links": array(obj({"href": {"type": "string", "format": "uri"}, "rel": STRING,
                        "type": STRING}, ["href", "rel"])),
    "status": STRING, "updated": DATE_TIME, "version": STRING, "min_version": STRING,
    "media-types": {"type": "array"},
}, ["id", "links", "status", "updated"])
LIST_VERSIONS = body("versions", array(_VERSION))
GET_ONE_VERSION = obj({"version": _VERSION})

# -- servers -------------------------------------------------------------------------
CREATE_SERVER = body("server", obj({
    "id": STRING, "security_groups": {"type": "array"}, "links": LINKS,
    "OS-DCF:diskConfig": STRING, "adminPass": STRING,
}, ["id", "links", "adminPass"]))

LIST_SERVERS = body("servers", array(obj({"id": STRING, "links": LINKS, "name": STRING},
                                         ["id", "links", "name"])), "servers_links")

_FLAVOR_REF = obj({"id": STRING, "links": LINKS})
_IMAGE_REF = {"oneOf": [obj({"id": STRING, "links": LINKS}, ["id", "links"]),
                        {"type": ["string", "null"]}]}
_FAULT = obj({"code": INTEGER, "created": STRING, "message": STRING, "details": STRING},
             ["code", "created", "message"])
COMMON_SERVER = obj({
    "id": STRING, "name": STRING, "status": STRING, "image": _IMAGE_REF,
    "flavor": _FLAVOR_REF, "fault": _FAULT, "user_id": STRING, "tenant_id": STRING,
    "created": DATE_TIME, "updated": DATE_TIME, "progress": INTEGER,
    "metadata": {"type": "object"}, "links": LINKS, "addresses": ADDRESSES,
    "hostId": STRING, "OS-DCF:diskConfig": STRING, "accessIPv4": ACCESS_IP_V4,
    "accessIPv6": ACCESS_IP_V6,
}, ["id", "name", "status", "image", "flavor", "user_id", "tenant_id", "created", "updated",
    "metadata", "links", "addresses", "hostId"])
UPDATE_SERVER = body("server", COMMON_SERVER)

SERVER_DETAIL = copy.deepcopy(COMMON_SERVER)
SERVER_DETAIL["properties"].update({
    "key_name": NULLABLE_STRING,
    "security_groups": {"type": "array"},
    "OS-SRV-USG:launched_at": NULLABLE_STRING,
    "OS-SRV-USG:terminated_at": NULLABLE_STRING,
    "OS-EXT-AZ:availability_zone": STRING,
    "OS-EXT-STS:task_state": NULLABLE_STRING,
    "OS-EXT-STS:vm_state": STRING,
    "OS-EXT-STS:power_state": POWER_STATE,
    "OS-EXT-SRV-ATTR:host": NULLABLE_STRING,
    "OS-EXT-SRV-ATTR:instance_name": STRING,
    "OS-EXT-SRV-ATTR:hypervisor_hostname": NULLABLE_STRING,
    "os-extended-volumes:volumes_attached": array(obj({"id": STRING})),
    "config_drive": STRING,
})
_address_item = SERVER_DETAIL["properties"]["addresses"]["patternProperties"][
    "^[a-zA-Z0-9-_.]+$"]["items"]["properties"]
_address_item.update({"OS-EXT-IPS:type": STRING, "OS-EXT-IPS-MAC:mac_addr": {
    "type": "string", "pattern": "(?:[a-f0-9]{2}:){5}[a-f0-9]{2}"}})
GET_SERVER = body("server", SERVER_DETAIL)
LIST_SERVERS_DETAIL = body("servers", array(SERVER_DETAIL), "servers_links")

_METADATA = {"type": "object", "patternProperties": {"^.+$": STRING}}
SERVER_METADATA = body("metadata", _METADATA)
SERVER_METADATA_ITEM = body("meta", _METADATA)

_INSTANCE_ACTION = obj({
    "action": STRING, "request_id": STRING, "user_id": STRING, "project_id": STRING,
    "start_time": DATE_TIME, "message": NULLABLE_STRING, "instance_uuid": STRING,
}, ["action", "request_id", "user_id", "project_id", "start_time", "message",
    "instance_uuid"])
LIST_INSTANCE_ACTIONS = body("instanceActions", array(_INSTANCE_ACTION))
_ACTION_WITH_EVENTS = copy.deepcopy(_INSTANCE_ACTION)
_ACTION_WITH_EVENTS["properties"]["events"] = array(obj({
    "event": STRING, "start_time": DATE_TIME, "finish_time": DATE_TIME, "result": STRING,
    "traceback": NULLABLE_STRING,
}, ["event", "start_time", "finish_time", "result", "traceback"]))
SHOW_INSTANCE_ACTION = body("instanceAction", _ACTION_WITH_EVENTS)

# -- flavors -------------------------------------------------------------------------
LIST_FLAVORS = body("flavors", array(obj({"name": STRING, "links": LINKS, "id": STRING},
                                         ["name", "links", "id"])), "flavors_links")
_FLAVOR = obj({
    "name": STRING, "links": LINKS, "ram": INTEGER, "vcpus": INTEGER,
    "swap": {"type": ["integer", "string"]}, "disk": INTEGER, "id": STRING,
    "OS-FLV-DISABLED:disabled": BOOLEAN, "os-flavor-access:is_public": BOOLEAN,
    "rxtx_factor": {"type": "number"}, "OS-FLV-EXT-DATA:ephemeral": INTEGER,
}, ["name", "links", "ram", "vcpus", "swap", "disk", "id"])
LIST_FLAVORS_DETAIL = body("flavors", array(_FLAVOR), "flavors_links")
GET_FLAVOR = body("flavor", _FLAVOR)
_SPEC_KEYS = {"type": "object", "patternProperties": {r"^[a-zA-Z0-9_\-\. :]+$": STRING}}
FLAVOR_EXTRA_SPECS = body("extra_specs", _SPEC_KEYS)
FLAVOR_EXTRA_SPEC_KEY = _SPEC_KEYS
FLAVOR_ACCESS = body("flavor_access", array(obj({"flavor_id": STRING, "tenant_id": STRING},
                                                ["flavor_id", "tenant_id"])))

# -- keypairs ------------------------------------------------------------------------
GET_KEYPAIR = body("keypair", obj({
    "public_key": STRING, "name": STRING, "fingerprint": STRING, "user_id": STRING,
    "deleted": BOOLEAN, "created_at": DATE_TIME, "updated_at": DATE_TIME_OR_NULL,
    "deleted_at": DATE_TIME_OR_NULL, "id": INTEGER,
}, ["public_key", "name", "fingerprint", "user_id", "deleted", "created_at", "updated_at",
    "deleted_at", "id"]))
CREATE_KEYPAIR = body("keypair", obj({
    "fingerprint": STRING, "name": STRING, "public_key": STRING, "user_id": STRING,
    "private_key": STRING,
}, ["fingerprint", "name", "public_key", "user_id"]))
LIST_KEYPAIRS = body("keypairs", array(obj({"keypair": obj(
    {"public_key": STRING, "name": STRING, "fingerprint": STRING},
    ["public_key", "name", "fingerprint"])}, ["keypair"])))

# -- limits --------------------------------------------------------------------------
_ABSOLUTE_REQUIRED = ["maxImageMeta", "maxPersonality", "maxPersonalitySize",
                      "maxSecurityGroupRules", "maxSecurityGroups", "maxServerMeta",
                      "maxTotalCores", "maxTotalFloatingIps", "maxTotalInstances",
                      "maxTotalKeypairs", "maxTotalRAMSize", "totalCoresUsed",
                      "totalFloatingIpsUsed", "totalInstancesUsed", "totalRAMUsed",
                      "totalSecurityGroupsUsed"]
_ABSOLUTE = obj({name: INTEGER for name in _ABSOLUTE_REQUIRED + [
    "maxServerGroupMembers", "maxServerGroups", "totalServerGroupsUsed"]},
    _ABSOLUTE_REQUIRED)
_RATE = array(obj({"limit": array(obj({"next-available": STRING, "remaining": INTEGER,
                                       "unit": STRING, "value": INTEGER, "verb": STRING})),
                   "regex": STRING, "uri": STRING}))
GET_LIMITS = body("limits", obj({"absolute": _ABSOLUTE, "rate": _RATE}, ["absolute", "rate"]))

# -- services, hypervisors, availability zones, aggregates ---------------------------------
LIST_SERVICES = body("services", array(obj({
    "id": {"type": ["integer", "string"], "pattern": "^[a-zA-Z!]*@[0-9]+$"},
    "zone": STRING, "host": STRING, "state": STRING, "binary": STRING, "status": STRING,
    "updated_at": NULLABLE_STRING, "disabled_reason": NULLABLE_STRING,
}, ["id", "zone", "host", "state", "binary", "status", "updated_at", "disabled_reason"])))
ENABLE_DISABLE_SERVICE = body("service", obj(
    {"status": STRING, "binary": STRING, "host": STRING}, ["status", "binary", "host"]))

_HYPERVISOR_STATS_KEYS = ["count", "current_workload", "disk_available_least", "free_disk_gb",
                          "free_ram_mb", "local_gb", "local_gb_used", "memory_mb",
                          "memory_mb_used", "running_vms", "vcpus", "vcpus_used"]
HYPERVISOR_STATISTICS = body("hypervisor_statistics", obj(
    {k: ({"type": ["integer", "null"]} if k == "disk_available_least" else INTEGER)
     for k in _HYPERVISOR_STATS_KEYS}, _HYPERVISOR_STATS_KEYS))
_HYPERVISOR_DETAIL = obj({
    "status": STRING, "state": STRING, "cpu_info": STRING, "current_workload": INTEGER,
    "disk_available_least": {"type": ["integer", "null"]}, "host_ip": IP_ADDRESS,
    "free_disk_gb": INTEGER, "free_ram_mb": INTEGER, "hypervisor_hostname": STRING,
    "hypervisor_type": STRING, "hypervisor_version": INTEGER,
    "id": {"type": ["integer", "string"]}, "local_gb": INTEGER, "local_gb_used": INTEGER,
    "memory_mb": INTEGER, "memory_mb_used": INTEGER, "running_vms": INTEGER,
    "service": obj({"host": STRING, "id": {"type": ["integer", "string"]},
                    "disabled_reason": NULLABLE_STRING}, ["host", "id"]),
    "vcpus": INTEGER, "vcpus_used": INTEGER,
}, ["cpu_info", "current_workload", "disk_available_least", "host_ip", "free_disk_gb",
    "free_ram_mb", "hypervisor_hostname", "hypervisor_type", "hypervisor_version", "id",
    "local_gb", "local_gb_used", "memory_mb", "memory_mb_used", "running_vms", "service",
    "vcpus", "vcpus_used"])
LIST_HYPERVISORS_DETAIL = body("hypervisors", array(_HYPERVISOR_DETAIL))
GET_HYPERVISOR = body("hypervisor", _HYPERVISOR_DETAIL)
_HYPERVISOR_BRIEF = obj({"status": STRING, "state": STRING,
                         "id": {"type": ["integer", "string"]},
                         "hypervisor_hostname": STRING}, ["id", "hypervisor_hostname"])
LIST_HYPERVISORS = body("hypervisors", array(_HYPERVISOR_BRIEF))
_HYPERVISOR_WITH_SERVERS = copy.deepcopy(_HYPERVISOR_BRIEF)
_HYPERVISOR_WITH_SERVERS["properties"]["servers"] = array(obj({"uuid": STRING,
                                                              "name": STRING}))
HYPERVISORS_SERVERS = body("hypervisors", array(_HYPERVISOR_WITH_SERVERS))

_ZONE_STATE = obj({"available": BOOLEAN}, ["available"])
LIST_AVAILABILITY_ZONES = body("availabilityZoneInfo", array(obj(
    {"zoneName": STRING, "zoneState": _ZONE_STATE, "hosts": {"type": "null"}},
    ["zoneName", "zoneState", "hosts"])))
_ZONE_HOSTS = {"type": ["object", "null"], "patternProperties": {
    "^[a-zA-Z0-9-_.]+$": {"type": "object", "patternProperties": {"^.*$": obj(
        {"available": BOOLEAN, "active": BOOLEAN, "updated_at": DATE_TIME_OR_NULL},
        ["available", "active", "updated_at"])}}}}
LIST_AVAILABILITY_ZONES_DETAIL = body("availabilityZoneInfo", array(obj(
    {"zoneName": STRING, "zoneState": _ZONE_STATE, "hosts": _ZONE_HOSTS},
    ["zoneName", "zoneState", "hosts"])))

_AGGREGATE = obj({
    "availability_zone": NULLABLE_STRING, "created_at": STRING, "deleted": BOOLEAN,
    "deleted_at": NULLABLE_STRING, "id": INTEGER, "name": STRING,
    "updated_at": NULLABLE_STRING, "hosts": {"type": "array"}, "metadata": {"type": "object"},
}, ["availability_zone", "created_at", "deleted", "deleted_at", "id", "name", "updated_at",
    "hosts", "metadata"])
LIST_AGGREGATES = body("aggregates", array(_AGGREGATE))

# -- the compute image proxy ---------------------------------------------------------------
_IMAGE_LINKS = array(obj({"href": {"type": "string", "format": "uri"}, "rel": STRING,
                          "type": STRING}, ["href", "rel"]))
_IMAGE = obj({
    "id": STRING, "status": {"enum": ["ACTIVE", "SAVING", "DELETED", "ERROR", "UNKNOWN"]},
    "updated": STRING, "links": _IMAGE_LINKS, "name": NULLABLE_STRING, "created": STRING,
    "minDisk": INTEGER, "minRam": INTEGER, "progress": INTEGER, "metadata": {"type": "object"},
    "server": obj({"id": STRING, "links": LINKS}, ["id", "links"]),
    "OS-EXT-IMG-SIZE:size": {"type": ["integer", "null"]}, "OS-DCF:diskConfig": STRING,
}, ["id", "status", "updated", "links", "name", "created", "minDisk", "minRam", "progress",
    "metadata"])
GET_IMAGE = body("image", _IMAGE)
LIST_IMAGES = body("images", array(obj({"id": STRING, "links": _IMAGE_LINKS,
                                        "name": NULLABLE_STRING}, ["id", "links", "name"])),
                   "images_links")
LIST_IMAGES_DETAIL = body("images", array(_IMAGE), "images_links")
IMAGE_METADATA = body("metadata", {"type": "object"})
IMAGE_METADATA_ITEM = body("meta", {"type": "object"})

# -- os-simple-tenant-usage (before 2.40) -----------------------------------------------
_SERVER_USAGES = array({"type": "object", "properties": {
    "ended_at": {"oneOf": [STRING, {"type": "null"}]}, "flavor": STRING,
    "hours": {"type": "number"}, "instance_id": STRING, "local_gb": INTEGER,
    "memory_mb": INTEGER, "name": STRING, "started_at": STRING, "state": STRING,
    "tenant_id": STRING, "uptime": INTEGER, "vcpus": INTEGER,
}, "required": ["ended_at", "flavor", "hours", "instance_id", "local_gb", "memory_mb", "name",
                "started_at", "state", "tenant_id", "uptime", "vcpus"]})
_TENANT_USAGE = {"type": "object", "properties": {
    "server_usages": _SERVER_USAGES, "start": STRING, "stop": STRING, "tenant_id": STRING,
    "total_hours": {"type": "number"}, "total_local_gb_usage": {"type": "number"},
    "total_memory_mb_usage": {"type": "number"}, "total_vcpus_usage": {"type": "number"},
}, "required": ["start", "stop", "tenant_id", "total_hours", "total_local_gb_usage",
                "total_memory_mb_usage", "total_vcpus_usage"]}
LIST_TENANT_USAGE = {"type": "object", "properties": {"tenant_usages": array(_TENANT_USAGE)},
                     "required": ["tenant_usages"]}
_TENANT_USAGE_GET = copy.deepcopy(_TENANT_USAGE)
_TENANT_USAGE_GET["required"] = ["server_usages"] + _TENANT_USAGE["required"]
GET_TENANT_USAGE = {"type": "object", "properties": {"tenant_usage": _TENANT_USAGE_GET},
                    "required": ["tenant_usage"]}

# -- os-quota-sets ---------------------------------------------------------------------
_QUOTA_REQUIRED = ["instances", "cores", "ram", "floating_ips", "fixed_ips", "metadata_items",
                   "key_pairs", "security_groups", "security_group_rules", "injected_files",
                   "injected_file_content_bytes", "injected_file_path_bytes"]
_QUOTA_NAMES = _QUOTA_REQUIRED + ["server_group_members", "server_groups"]
UPDATE_QUOTA_SET = body("quota_set", obj({n: INTEGER for n in _QUOTA_NAMES}, _QUOTA_REQUIRED))
GET_QUOTA_SET = body("quota_set", obj({"id": STRING, **{n: INTEGER for n in _QUOTA_NAMES}},
                                      _QUOTA_REQUIRED + ["id"]))
_QUOTA_DETAIL = {"type": "object", "properties": {
    "reserved": INTEGER, "limit": INTEGER, "in_use": INTEGER}}
GET_QUOTA_SET_DETAILS = body("quota_set", obj(
    {"id": STRING, **{n: _QUOTA_DETAIL for n in _QUOTA_NAMES}}, _QUOTA_REQUIRED + ["id"]))

# -- microversions 2.2 to 2.19 (tempest's v2_2 ... v2_19 schemas) ---------------------


def _with(schema: dict[str, Any], path: tuple[str, ...], required: bool = True,
          **fields: Any) -> dict[str, Any]:
    """A copy of ``schema`` whose object at ``path`` (keys from the top,
    "items" for an array's items) has ``fields`` more, required or not."""
    new = copy.deepcopy(schema)
    target = new
    for key in path:
        target = target["properties"][key] if key != "items" else target["items"]
    target["properties"].update(fields)
    if required:
        target.setdefault("required", []).extend(fields)
    return new


# 2.2: key pairs have a type (create answers 201, delete 204).
CREATE_KEYPAIR_V22 = _with(CREATE_KEYPAIR, ("keypair",), type=STRING)
GET_KEYPAIR_V22 = _with(GET_KEYPAIR, ("keypair",), type=STRING)
LIST_KEYPAIRS_V22 = _with(LIST_KEYPAIRS, ("keypairs", "items", "keypair"), type=STRING)

# 2.3: more OS-EXT-SRV-ATTR attributes (not required: policy-dependent) and
# delete_on_termination in volumes_attached.
_V23 = {
    "OS-EXT-SRV-ATTR:reservation_id": NULLABLE_STRING,
    "OS-EXT-SRV-ATTR:launch_index": INTEGER,
    "OS-EXT-SRV-ATTR:kernel_id": NULLABLE_STRING,
    "OS-EXT-SRV-ATTR:ramdisk_id": NULLABLE_STRING,
    "OS-EXT-SRV-ATTR:hostname": STRING,
    "OS-EXT-SRV-ATTR:root_device_name": NULLABLE_STRING,
    "OS-EXT-SRV-ATTR:user_data": NULLABLE_STRING,
    "os-extended-volumes:volumes_attached": array(obj({"id": STRING,
                                                      "delete_on_termination": BOOLEAN})),
}
GET_SERVER_V23 = _with(GET_SERVER, ("server",), required=False, **_V23)
LIST_SERVERS_DETAIL_V23 = _with(LIST_SERVERS_DETAIL, ("servers", "items"), required=False,
                                **_V23)
# 2.9: locked (required) in show, detail, update and rebuild.
GET_SERVER_V29 = _with(GET_SERVER_V23, ("server",), locked=BOOLEAN)
LIST_SERVERS_DETAIL_V29 = _with(LIST_SERVERS_DETAIL_V23, ("servers", "items"), locked=BOOLEAN)
UPDATE_SERVER_V29 = _with(UPDATE_SERVER, ("server",), locked=BOOLEAN)
REBUILD_SERVER = _with(UPDATE_SERVER, ("server",), adminPass=STRING)
REBUILD_SERVER_V29 = _with(REBUILD_SERVER, ("server",), locked=BOOLEAN)
# 2.16: host_status in show and detail (not required: policy-dependent).
GET_SERVER_V216 = _with(GET_SERVER_V29, ("server",), required=False, host_status=STRING)
LIST_SERVERS_DETAIL_V216 = _with(LIST_SERVERS_DETAIL_V29, ("servers", "items"),
                                 required=False, host_status=STRING)
# 2.19: description (required) in show, detail, update and rebuild.
GET_SERVER_V219 = _with(GET_SERVER_V216, ("server",), description=NULLABLE_STRING)
LIST_SERVERS_DETAIL_V219 = _with(LIST_SERVERS_DETAIL_V216, ("servers", "items"),
                                 description=NULLABLE_STRING)
UPDATE_SERVER_V219 = _with(UPDATE_SERVER_V29, ("server",), description=NULLABLE_STRING)
REBUILD_SERVER_V219 = _with(REBUILD_SERVER_V29, ("server",), description=NULLABLE_STRING)

# Server groups (tempest's v2_1 and v2_13 server_groups).
_SERVER_GROUP = obj({"id": STRING, "name": STRING, "policies": array(STRING),
                     "members": array(STRING), "metadata": {"type": "object"}},
                    ["id", "name", "policies", "members", "metadata"])
GET_SERVER_GROUP = body("server_group", _SERVER_GROUP)
LIST_SERVER_GROUPS = body("server_groups", array(_SERVER_GROUP))
CREATE_SERVER_GROUP_V213 = _with(GET_SERVER_GROUP, ("server_group",), project_id=STRING,
                                 user_id=STRING)
GET_SERVER_GROUP_V213 = CREATE_SERVER_GROUP_V213
LIST_SERVER_GROUPS_V213 = _with(LIST_SERVER_GROUPS, ("server_groups", "items"),
                                project_id=STRING, user_id=STRING)

# -- microversions 2.51-2.64: instance actions, migrations, server groups ---------------
# (tempest's v2_23/v2_59 migrations, v2_51/v2_58/v2_62 instance_actions and v2_64
# server_groups; Nova's schemas/instance_actions.py and migrations.py responses.)
_MIGRATION = obj({
    "id": INTEGER, "status": NULLABLE_STRING, "instance_uuid": NULLABLE_STRING,
    "source_node": NULLABLE_STRING, "source_compute": NULLABLE_STRING,
    "dest_node": NULLABLE_STRING, "dest_compute": NULLABLE_STRING,
    "dest_host": NULLABLE_STRING, "old_instance_type_id": {"type": ["integer", "null"]},
    "new_instance_type_id": {"type": ["integer", "null"]}, "created_at": DATE_TIME,
    "updated_at": DATE_TIME_OR_NULL,
}, ["id", "status", "instance_uuid", "source_node", "source_compute", "dest_node",
    "dest_compute", "dest_host", "old_instance_type_id", "new_instance_type_id",
    "created_at", "updated_at"])
LIST_MIGRATIONS = body("migrations", array(_MIGRATION))
LIST_MIGRATIONS_V223 = _with(LIST_MIGRATIONS, ("migrations", "items"),
                             migration_type=NULLABLE_STRING)
LIST_MIGRATIONS_V223["properties"]["migrations"]["items"]["properties"]["links"] = LINKS
UUID = {"type": "string", "format": "uuid"}
# 2.59: uuid (required); migrations_links when a page is full.
LIST_MIGRATIONS_V259 = _with(LIST_MIGRATIONS_V223, ("migrations", "items"), uuid=UUID)
LIST_MIGRATIONS_V259["properties"]["migrations_links"] = LINKS
_SERVER_MIGRATION = obj({
    "id": INTEGER, "server_uuid": STRING, "status": STRING, "source_compute": NULLABLE_STRING,
    "source_node": NULLABLE_STRING, "dest_compute": NULLABLE_STRING,
    "dest_node": NULLABLE_STRING, "dest_host": NULLABLE_STRING, "created_at": DATE_TIME,
    "updated_at": DATE_TIME_OR_NULL,
    **{k: {"type": ["integer", "null"]} for k in (
        "disk_processed_bytes", "disk_remaining_bytes", "disk_total_bytes",
        "memory_processed_bytes", "memory_remaining_bytes", "memory_total_bytes")},
}, ["id", "server_uuid", "status", "source_compute", "source_node", "dest_compute",
    "dest_node", "dest_host", "created_at", "updated_at", "disk_processed_bytes",
    "disk_remaining_bytes", "disk_total_bytes", "memory_processed_bytes",
    "memory_remaining_bytes", "memory_total_bytes"])
LIST_SERVER_MIGRATIONS = body("migrations", array(_SERVER_MIGRATION))
GET_SERVER_MIGRATION = body("migration", _SERVER_MIGRATION)
LIST_SERVER_MIGRATIONS_V259 = _with(LIST_SERVER_MIGRATIONS, ("migrations", "items"), uuid=UUID)
GET_SERVER_MIGRATION_V259 = _with(GET_SERVER_MIGRATION, ("migration",), uuid=UUID)

# Instance actions. 2.51: events always there; traceback only for the events
# policy (admins), so not required.
_EVENT_V251 = obj({"event": STRING, "start_time": DATE_TIME, "finish_time": DATE_TIME_OR_NULL,
                   "result": NULLABLE_STRING, "traceback": NULLABLE_STRING},
                  ["event", "start_time", "finish_time", "result"])
_ACTION_V251 = copy.deepcopy(_INSTANCE_ACTION)
_ACTION_V251["properties"]["events"] = array(_EVENT_V251)
_ACTION_V251["required"].append("events")
SHOW_INSTANCE_ACTION_V251 = body("instanceAction", _ACTION_V251)
# 2.58: updated_at in list and show; links in the list.
LIST_INSTANCE_ACTIONS_V258 = _with(LIST_INSTANCE_ACTIONS, ("instanceActions", "items"),
                                   updated_at=DATE_TIME_OR_NULL)
LIST_INSTANCE_ACTIONS_V258["properties"]["links"] = LINKS
SHOW_INSTANCE_ACTION_V258 = _with(SHOW_INSTANCE_ACTION_V251, ("instanceAction",),
                                  updated_at=DATE_TIME_OR_NULL)
# 2.62: every event's hostId (required), host for the events policy.
SHOW_INSTANCE_ACTION_V262 = copy.deepcopy(SHOW_INSTANCE_ACTION_V258)
_EVENT_V262 = SHOW_INSTANCE_ACTION_V262["properties"]["instanceAction"]["properties"][
    "events"]["items"]
_EVENT_V262["properties"].update(hostId=STRING, host=NULLABLE_STRING)
_EVENT_V262["required"].append("hostId")

# Server groups 2.64: policy and rules instead of policies and metadata.
_SERVER_GROUP_V264 = obj({"id": STRING, "name": STRING, "policy": STRING,
                          "rules": {"type": "object"}, "members": array(STRING),
                          "project_id": STRING, "user_id": STRING},
                         ["id", "name", "policy", "rules", "members", "project_id", "user_id"])
GET_SERVER_GROUP_V264 = body("server_group", _SERVER_GROUP_V264)
LIST_SERVER_GROUPS_V264 = body("server_groups", array(_SERVER_GROUP_V264))


# -- Servers, microversions 2.26-2.63 (tempest's v2_26, v2_45, v2_47, v2_54, v2_57, v2_63) --
TAG_LIST = {"type": "array", "maxItems": 50,
            "items": {"type": "string", "pattern": "^[^,/]*$", "minLength": 1, "maxLength": 60}}
# 2.26: tags (required) in show, detail, update and rebuild.
GET_SERVER_V226 = _with(GET_SERVER_V219, ("server",), tags=TAG_LIST)
LIST_SERVERS_DETAIL_V226 = _with(LIST_SERVERS_DETAIL_V219, ("servers", "items"), tags=TAG_LIST)
UPDATE_SERVER_V226 = _with(UPDATE_SERVER_V219, ("server",), tags=TAG_LIST)
REBUILD_SERVER_V226 = _with(REBUILD_SERVER_V219, ("server",), tags=TAG_LIST)
# 2.45: createImage answers 202 with the image id, no Location.
CREATE_IMAGE_V245 = obj({"image_id": STRING}, ["image_id"])
# 2.47: the embedded flavor (extra_specs only when policy shows them).
EMBEDDED_FLAVOR = obj({
    "original_name": STRING, "disk": INTEGER, "ephemeral": INTEGER, "ram": INTEGER,
    "swap": INTEGER, "vcpus": INTEGER,
    "extra_specs": {"type": "object",
                    "patternProperties": {r"^[a-zA-Z0-9_\-\. :]+$": STRING}},
}, ["original_name", "disk", "ephemeral", "ram", "swap", "vcpus"])
GET_SERVER_V247 = _with(GET_SERVER_V226, ("server",), required=False, flavor=EMBEDDED_FLAVOR)
LIST_SERVERS_DETAIL_V247 = _with(LIST_SERVERS_DETAIL_V226, ("servers", "items"),
                                 required=False, flavor=EMBEDDED_FLAVOR)
UPDATE_SERVER_V247 = _with(UPDATE_SERVER_V226, ("server",), required=False,
                           flavor=EMBEDDED_FLAVOR)
REBUILD_SERVER_V247 = _with(REBUILD_SERVER_V226, ("server",), required=False,
                            flavor=EMBEDDED_FLAVOR)
# 2.54: key_name (required) in the rebuild answer.
KEY_NAME_OR_NULL = {"oneOf": [{"type": "string", "minLength": 1, "maxLength": 255},
                              {"type": "null"}]}
REBUILD_SERVER_V254 = _with(REBUILD_SERVER_V247, ("server",), key_name=KEY_NAME_OR_NULL)
# 2.57: user_data (required) in the rebuild answer.
USER_DATA_OR_NULL = {"oneOf": [{"type": "string", "maxLength": 65535}, {"type": "null"}]}
REBUILD_SERVER_V257 = _with(REBUILD_SERVER_V254, ("server",), user_data=USER_DATA_OR_NULL)
# 2.63: trusted_image_certificates (required) in show, detail, update and rebuild.
TRUSTED_CERTS = {"type": ["array", "null"], "minItems": 1, "maxItems": 50,
                 "uniqueItems": True, "items": {"type": "string", "minLength": 1}}
GET_SERVER_V263 = _with(GET_SERVER_V247, ("server",), trusted_image_certificates=TRUSTED_CERTS)
LIST_SERVERS_DETAIL_V263 = _with(LIST_SERVERS_DETAIL_V247, ("servers", "items"),
                                 trusted_image_certificates=TRUSTED_CERTS)
UPDATE_SERVER_V263 = _with(UPDATE_SERVER_V247, ("server",),
                           trusted_image_certificates=TRUSTED_CERTS)
REBUILD_SERVER_V263 = _with(REBUILD_SERVER_V257, ("server",),
                            trusted_image_certificates=TRUSTED_CERTS)
# 2.71: server_groups (required) in show, update and rebuild (not the lists).
SERVER_GROUPS = {"type": "array", "maxLength": 1, "items": {"type": "string", "format": "uuid"}}
GET_SERVER_V271 = _with(GET_SERVER_V263, ("server",), server_groups=SERVER_GROUPS)
UPDATE_SERVER_V271 = _with(UPDATE_SERVER_V263, ("server",), server_groups=SERVER_GROUPS)
REBUILD_SERVER_V271 = _with(REBUILD_SERVER_V263, ("server",), server_groups=SERVER_GROUPS)
# 2.73: locked_reason (required; a string or null) in show, detail, update and rebuild.
LOCKED_REASON = {"type": ["string", "null"]}
GET_SERVER_V273 = _with(GET_SERVER_V271, ("server",), locked_reason=LOCKED_REASON)
LIST_SERVERS_DETAIL_V273 = _with(LIST_SERVERS_DETAIL_V263, ("servers", "items"),
                                 locked_reason=LOCKED_REASON)
UPDATE_SERVER_V273 = _with(UPDATE_SERVER_V271, ("server",), locked_reason=LOCKED_REASON)
REBUILD_SERVER_V273 = _with(REBUILD_SERVER_V271, ("server",), locked_reason=LOCKED_REASON)
# 2.75 (tempest's v2_75): PUT answers GET's body; rebuild too, without
# OS-EXT-SRV-ATTR:user_data but with user_data and adminPass (both required).
UPDATE_SERVER_V275 = copy.deepcopy(GET_SERVER_V273)
_REBUILD_V275 = copy.deepcopy(GET_SERVER_V273)
del _REBUILD_V275["properties"]["server"]["properties"]["OS-EXT-SRV-ATTR:user_data"]
REBUILD_SERVER_V275 = _with(_REBUILD_V275, ("server",), user_data=USER_DATA_OR_NULL,
                            adminPass=STRING)

# -- microversions 2.41-2.61: admin resources (tempest's v2_41, v2_50, v2_53, v2_55,
#    v2_57 and v2_61 schemas) ---------------------------------------------------------
UUID_STRING = {"type": "string", "format": "uuid"}

# 2.41: aggregates carry their uuid (required) in every body.
_AGGREGATE_V241 = _with(_AGGREGATE, (), uuid=UUID_STRING)
GET_AGGREGATE_V241 = body("aggregate", _AGGREGATE_V241)
LIST_AGGREGATES_V241 = body("aggregates", array(_AGGREGATE_V241))
_CREATED_AGGREGATE = copy.deepcopy(_AGGREGATE)
for _key in ("hosts", "metadata"):
    del _CREATED_AGGREGATE["properties"][_key]
    _CREATED_AGGREGATE["required"].remove(_key)
CREATE_AGGREGATE = body("aggregate", _CREATED_AGGREGATE)
CREATE_AGGREGATE_V241 = body("aggregate", _with(_CREATED_AGGREGATE, (), uuid=UUID_STRING))

# 2.11 / 2.53: services have forced_down; from 2.53 the id is the uuid and a PUT
# answers the whole service.
_SERVICE_V211 = _with(LIST_SERVICES["properties"]["services"]["items"], (),
                      forced_down=BOOLEAN)
LIST_SERVICES_V211 = body("services", array(_SERVICE_V211))
_SERVICE_V253 = copy.deepcopy(_SERVICE_V211)
_SERVICE_V253["properties"]["id"] = UUID_STRING
LIST_SERVICES_V253 = body("services", array(_SERVICE_V253))
UPDATE_SERVICE_V253 = body("service", _SERVICE_V253)

# 2.53: hypervisor and service ids are uuids; servers when with_servers is asked.
_HYPERVISOR_SERVERS_V253 = array(obj({"uuid": UUID_STRING, "name": STRING}))
_HYPERVISOR_DETAIL_V253 = copy.deepcopy(_HYPERVISOR_DETAIL)
_HYPERVISOR_DETAIL_V253["properties"].update(
    id=UUID_STRING, cpu_info={"type": "object"}, servers=_HYPERVISOR_SERVERS_V253)
_HYPERVISOR_DETAIL_V253["properties"]["service"]["properties"]["id"] = UUID_STRING
GET_HYPERVISOR_V253 = body("hypervisor", _HYPERVISOR_DETAIL_V253)
LIST_HYPERVISORS_DETAIL_V253 = body("hypervisors", array(_HYPERVISOR_DETAIL_V253),
                                    "hypervisors_links")
_HYPERVISOR_BRIEF_V253 = copy.deepcopy(_HYPERVISOR_BRIEF)
_HYPERVISOR_BRIEF_V253["properties"].update(id=UUID_STRING, servers=_HYPERVISOR_SERVERS_V253)
LIST_HYPERVISORS_V253 = body("hypervisors", array(_HYPERVISOR_BRIEF_V253),
                             "hypervisors_links")

# 2.55: flavors have a description (required), the brief list included; 2.61:
# extra_specs in the detailed bodies (not required: policy-dependent).
FLAVOR_DESCRIPTION = {"type": ["string", "null"], "minLength": 0, "maxLength": 65535}
LIST_FLAVORS_V255 = _with(LIST_FLAVORS, ("flavors", "items"), description=FLAVOR_DESCRIPTION)
_FLAVOR_V255 = _with(_FLAVOR, (), description=FLAVOR_DESCRIPTION)
GET_FLAVOR_V255 = body("flavor", _FLAVOR_V255)
LIST_FLAVORS_DETAIL_V255 = body("flavors", array(_FLAVOR_V255), "flavors_links")
_FLAVOR_V261 = _with(_FLAVOR_V255, (), required=False, extra_specs={
    "type": "object", "patternProperties": {"^[a-zA-Z0-9-_:. ]{1,255}$": STRING}})
GET_FLAVOR_V261 = body("flavor", _FLAVOR_V261)
LIST_FLAVORS_DETAIL_V261 = body("flavors", array(_FLAVOR_V261), "flavors_links")
# 2.75: swap is an integer (0 when the flavor has none), never "".
_FLAVOR_V275 = copy.deepcopy(_FLAVOR_V261)
_FLAVOR_V275["properties"]["swap"] = INTEGER
GET_FLAVOR_V275 = body("flavor", _FLAVOR_V275)
LIST_FLAVORS_DETAIL_V275 = body("flavors", array(_FLAVOR_V275), "flavors_links")

# os-quota-class-sets: v2_1 (the legacy keys), v2_50 (server groups in, network
# quotas out) and v2_57 (no injected_file*). Updates answer without "id".
QUOTA_CLASS_KEYS_V21 = ["instances", "cores", "ram", "floating_ips", "fixed_ips",
                        "metadata_items", "key_pairs", "security_groups",
                        "security_group_rules", "injected_files",
                        "injected_file_content_bytes", "injected_file_path_bytes"]
QUOTA_CLASS_KEYS_V250 = [k for k in QUOTA_CLASS_KEYS_V21 if k not in (
    "floating_ips", "fixed_ips", "security_groups", "security_group_rules")] + [
    "server_groups", "server_group_members"]
QUOTA_CLASS_KEYS_V257 = [k for k in QUOTA_CLASS_KEYS_V250 if not k.startswith("injected_")]


def quota_class_set(keys: list[str], with_id: bool = True) -> dict[str, Any]:
    names = keys + (["id"] if with_id else [])
    return body("quota_class_set", obj({**{k: INTEGER for k in keys},
                                        **({"id": STRING} if with_id else {})}, names))


GET_QUOTA_CLASS_SET = quota_class_set(QUOTA_CLASS_KEYS_V21)
UPDATE_QUOTA_CLASS_SET = quota_class_set(QUOTA_CLASS_KEYS_V21, with_id=False)
GET_QUOTA_CLASS_SET_V250 = quota_class_set(QUOTA_CLASS_KEYS_V250)
UPDATE_QUOTA_CLASS_SET_V250 = quota_class_set(QUOTA_CLASS_KEYS_V250, with_id=False)
GET_QUOTA_CLASS_SET_V257 = quota_class_set(QUOTA_CLASS_KEYS_V257)
UPDATE_QUOTA_CLASS_SET_V257 = quota_class_set(QUOTA_CLASS_KEYS_V257, with_id=False)

# 2.57: os-quota-sets without injected_file* (on top of 2.36's removals) and
# limits without maxPersonality / maxPersonalitySize.
_QUOTA_REQUIRED_V257 = [k for k in _QUOTA_REQUIRED if k not in (
    "floating_ips", "fixed_ips", "security_groups", "security_group_rules",
    "injected_files", "injected_file_content_bytes", "injected_file_path_bytes")]
_QUOTA_NAMES_V257 = _QUOTA_REQUIRED_V257 + ["server_group_members", "server_groups"]
GET_QUOTA_SET_V257 = body("quota_set", obj({"id": STRING,
                                            **{n: INTEGER for n in _QUOTA_NAMES_V257}},
                                           _QUOTA_REQUIRED_V257 + ["id"]))
UPDATE_QUOTA_SET_V257 = body("quota_set", obj({n: INTEGER for n in _QUOTA_NAMES_V257},
                                              _QUOTA_REQUIRED_V257))
GET_QUOTA_SET_DETAILS_V257 = body("quota_set", obj(
    {"id": STRING, **{n: _QUOTA_DETAIL for n in _QUOTA_NAMES_V257}},
    _QUOTA_REQUIRED_V257 + ["id"]))
_ABSOLUTE_V257_NAMES = [n for n in _ABSOLUTE["properties"] if n not in (
    "maxImageMeta", "maxPersonality", "maxPersonalitySize", "maxSecurityGroupRules",
    "maxSecurityGroups", "maxTotalFloatingIps", "totalFloatingIpsUsed",
    "totalSecurityGroupsUsed")]
GET_LIMITS_V257 = body("limits", obj({
    "absolute": obj({n: INTEGER for n in _ABSOLUTE_V257_NAMES}, _ABSOLUTE_V257_NAMES),
    "rate": _RATE}, ["absolute", "rate"]))
