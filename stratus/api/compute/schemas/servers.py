"""Nova's server request schemas at microversion 2.1
(``nova/api/openstack/compute/schemas/servers.py`` ``base_create`` with the
2.1 extension schemas merged in, ``base_update``, ``reboot``, and
``schemas/server_metadata.py``), with their microversions up to 2.63 (create:
2.19, 2.32, 2.33, 2.37, 2.42, 2.52, 2.57, 2.63; rebuild: 2.19, 2.54, 2.57,
2.63; migrate: 2.56), plus the query-parameter rules of ``GET /servers``.

``validate_*`` run the schema and then the checks Nova adds to jsonschema
(see :mod:`stratus.api.compute.schemas`).
"""
from __future__ import annotations

import copy
import functools
from typing import Any

from stratus import exception
from stratus.api.compute import common
from stratus.api.compute.parameter_types import hostname
from stratus.api.compute.schemas import (accessIPv4, accessIPv6, admin_password, boolean,
                                         check_base64, check_description, check_minimum,
                                         check_name, description, disk_config,
                                         flavor_ref, image_id_or_empty_string, ip_address,
                                         metadata, name, personality, positive_integer)
from stratus.db.tags import MAX_TAG_COUNT

MAX_INT = 0x7FFFFFFF

# Block device mappings (legacy and v2), as Nova validates them
# (nova/api/openstack/compute/schemas/servers.py); clients such as the openstack
# CLI send a v2 mapping for the image even for a plain local-disk boot. Which
# mappings Stratus can honour is decided by the controller (servers.boot_image_ref).
legacy_block_device_mapping: dict[str, Any] = {
    "type": "object",
    "properties": {
        "virtual_name": {"type": "string", "maxLength": 255},
        "volume_id": {"type": "string", "format": "uuid"},
        "snapshot_id": {"type": "string", "format": "uuid"},
        "volume_size": {"type": ["integer", "string"], "pattern": "^[0-9]+$",
                        "minimum": 1, "maximum": MAX_INT},
        # Nova's pattern, '_-r' range included.
        "device_name": {"type": "string", "minLength": 1, "maxLength": 255,
                        "pattern": "^[a-zA-Z0-9._-r/]*$"},
        "delete_on_termination": boolean,
        "no_device": {},
        "connection_info": {"type": "string", "maxLength": 16777215},
    },
    "additionalProperties": False,
}

block_device_mapping_v2: dict[str, Any] = copy.deepcopy(legacy_block_device_mapping)
block_device_mapping_v2["properties"].update({
    "source_type": {"type": "string", "enum": ["volume", "image", "snapshot", "blank"]},
    "uuid": {"type": "string", "minLength": 1, "maxLength": 255,
             "pattern": "^[a-zA-Z0-9._-]*$"},
    "image_id": {"type": "string", "format": "uuid"},
    "destination_type": {"type": "string", "enum": ["local", "volume"]},
    "guest_format": {"type": "string", "maxLength": 255},
    "device_type": {"type": "string", "maxLength": 255},
    "disk_bus": {"type": "string", "maxLength": 255},
    "boot_index": {"type": ["integer", "string", "null"], "pattern": "^-?[0-9]+$"},
})

_network_item: dict[str, Any] = {
    "type": "object",
    "properties": {
        "fixed_ip": ip_address,
        "port": {"oneOf": [{"type": "string", "format": "uuid"}, {"type": "null"}]},
        "uuid": {"type": "string"},
    },
    "additionalProperties": False,
}

# scheduler hints are free-form past the few Nova names (additionalProperties True).
_scheduler_hints: dict[str, Any] = {
    "type": "object",
    "properties": {
        "group": {"type": "string", "format": "uuid"},
        "different_host": {"oneOf": [{"type": "string", "format": "uuid"},
                                     {"type": "array",
                                      "items": {"type": "string", "format": "uuid"}}]},
        "same_host": {"type": ["string", "array"],
                      "items": {"type": "string", "format": "uuid"}},
        "query": {"type": ["string", "object"]},
        "target_cell": name,
        "different_cell": {"type": ["string", "array"], "items": {"type": "string"}},
        "build_near_host_ip": ip_address,
        "cidr": {"type": "string", "pattern": "^/[0-9a-f.:]+$"},
    },
    "additionalProperties": True,
}

create: dict[str, Any] = {
    "type": "object",
    "properties": {
        "server": {
            "type": "object",
            "properties": {
                "name": name,
                "imageRef": image_id_or_empty_string,
                "flavorRef": flavor_ref,
                "adminPass": admin_password,
                "metadata": metadata,
                # Nova 2.1 takes a list; "auto"/"none" (2.37+) are accepted too
                # so a client that always sends them (openstacksdk's
                # networks="none" at whatever version it negotiated) is not
                # turned away.
                "networks": {
                    "oneOf": [
                        {"type": "array", "items": _network_item},
                        {"type": "string", "enum": ["none", "auto"]},
                    ],
                },
                "OS-DCF:diskConfig": disk_config,
                "accessIPv4": accessIPv4,
                "accessIPv6": accessIPv6,
                "personality": personality,
                "availability_zone": name,
                "block_device_mapping": {"type": "array",
                                         "items": legacy_block_device_mapping},
                "block_device_mapping_v2": {"type": "array",
                                            "items": block_device_mapping_v2},
                "config_drive": boolean,
                "key_name": name,
                "min_count": positive_integer,
                "max_count": positive_integer,
                "return_reservation_id": boolean,
                "security_groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"name": name},
                        "additionalProperties": False,
                    },
                },
                "user_data": {"type": "string", "format": "base64", "maxLength": 65535},
            },
            "required": ["name", "flavorRef"],
            "additionalProperties": False,
        },
        "os:scheduler_hints": _scheduler_hints,
        "OS-SCH-HNT:scheduler_hints": _scheduler_hints,
    },
    "required": ["server"],
    "additionalProperties": False,
}

update: dict[str, Any] = {
    "type": "object",
    "properties": {
        "server": {
            "type": "object",
            "properties": {
                "name": name,
                "OS-DCF:diskConfig": disk_config,
                "accessIPv4": accessIPv4,
                "accessIPv6": accessIPv6,
            },
            "additionalProperties": False,
        },
    },
    "required": ["server"],
    "additionalProperties": False,
}

reboot: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reboot": {
            "type": "object",
            "properties": {
                "type": {"type": "string",
                         "enum": ["HARD", "Hard", "hard", "SOFT", "Soft", "soft"]},
            },
            "required": ["type"],
            "additionalProperties": False,
        },
    },
    "required": ["reboot"],
    "additionalProperties": False,
}

# Microversion 2.19: a description on create, update and rebuild.
DESCRIPTION_VERSION = (2, 19)
update_v219: dict[str, Any] = copy.deepcopy(update)
update_v219["properties"]["server"]["properties"]["description"] = description

# -- server metadata (schemas/server_metadata.py) ------------------------------

metadata_set: dict[str, Any] = {  # POST (create/merge) and PUT (update_all/replace)
    "type": "object",
    "properties": {"metadata": metadata},
    "required": ["metadata"],
    "additionalProperties": False,
}

_metadata_one = copy.deepcopy(metadata)
_metadata_one.update({"minProperties": 1, "maxProperties": 1})

metadata_item: dict[str, Any] = {  # PUT /metadata/{key}
    "type": "object",
    "properties": {"meta": _metadata_one},
    "required": ["meta"],
    "additionalProperties": False,
}

# -- GET /servers query parameters -----------------------------------------------

# Sort keys Nova 2.1 accepts; the IGNORED ones are accepted and dropped.
SORT_KEYS_IGNORED: frozenset[str] = frozenset([
    "architecture", "cell_name", "cleaned", "default_ephemeral_device",
    "default_swap_device", "deleted", "deleted_at", "disable_terminate",
    "ephemeral_gb", "ephemeral_key_uuid", "id", "key_data", "launched_on",
    "locked", "memory_mb", "os_type", "reservation_id", "root_gb",
    "shutdown_terminate", "user_data", "vcpus", "vm_mode",
])
# Valid in Nova but not a column here (flavors are inlined): accepted and
# dropped like the ignored ones.
SORT_KEYS_ABSENT: frozenset[str] = frozenset([
    "instance_type_id",
])
SORT_KEYS: list[str] = [
    "access_ip_v4", "access_ip_v6", "auto_disk_config", "availability_zone",
    "config_drive", "created_at", "display_description", "display_name", "host",
    "hostname", "image_ref", "instance_type_id", "kernel_id", "key_name",
    "launch_index", "launched_at", "locked_by", "node", "power_state", "progress",
    "project_id", "ramdisk_id", "root_device_name", "task_state", "terminated_at",
    "updated_at", "user_id", "uuid", "vm_state",
] + sorted(SORT_KEYS_IGNORED)
SORT_KEYS_ADMIN_ONLY: frozenset[str] = frozenset(["host", "node"])
# From 2.73 ``locked`` is a sort key that sorts (Nova's
# SERVER_LIST_IGNORE_SORT_KEY_V273), no longer one dropped.
SORT_KEYS_IGNORED_V273: frozenset[str] = SORT_KEYS_IGNORED - {"locked"}

# Filters a non-admin may use; every other query parameter is dropped for them.
USER_FILTERS: frozenset[str] = frozenset([
    "reservation_id", "name", "status", "image", "flavor", "ip", "changes-since",
    "all_tenants",
])
# From microversion 2.5 non-admins may filter by ip6 too.
IP6_FILTER_VERSION = (2, 5)
USER_FILTERS_V25: frozenset[str] = USER_FILTERS | {"ip6"}
CHANGES_BEFORE_VERSION = (2, 66)
USER_FILTERS_V266: frozenset[str] = USER_FILTERS_V25 | {"changes-before"}
# From 2.73 anyone may filter by ``locked`` (a strict boolean).
LOCKED_FILTER_VERSION = (2, 73)
USER_FILTERS_V273: frozenset[str] = USER_FILTERS_V266 | {"locked"}
# Filters naming joined tables: a 400 for admins (non-admins never get this far).
JOINED_TABLE_FILTERS: frozenset[str] = frozenset([
    "block_device_mapping", "services", "metadata", "system_metadata", "info_cache",
    "security_groups", "pci_devices",
])

# 2.75: the list's query is validated strictly (Nova's query_params_v275,
# ``additionalProperties: false``): an unknown parameter is a 400, and so is a
# sort key Nova only dropped before (VALID_SORT_KEYS_V275 = the 2.73 valid keys
# minus SERVER_LIST_IGNORE_SORT_KEY_V273). Names starting with "_" and the
# joined-table ones still pass the schema (a 400 "Invalid filter field" later,
# for those who may filter by anything).
STRICT_LIST_QUERY_VERSION = (2, 75)
SORT_KEYS_V275: list[str] = [k for k in SORT_KEYS if k not in SORT_KEYS_IGNORED_V273]
LIST_QUERY_PARAMS_V275: tuple[str, ...] = (
    "user_id", "project_id", "tenant_id", "launch_index", "image_ref", "image",
    "kernel_id", "ramdisk_id", "hostname", "key_name", "power_state", "vm_state",
    "task_state", "host", "node", "flavor", "reservation_id", "launched_at",
    "terminated_at", "availability_zone", "name", "display_name", "description",
    "display_description", "locked_by", "uuid", "root_device_name", "config_drive",
    "access_ip_v4", "access_ip_v6", "auto_disk_config", "progress", "sort_dir",
    "all_tenants", "soft_deleted", "deleted", "status", "changes-since", "ip", "ip6",
    "created_at", "limit", "marker", "tags", "tags-any", "not-tags", "not-tags-any",
    "changes-before", "locked",
) + tuple(sorted(JOINED_TABLE_FILTERS))
_QUERY_STRING: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
list_query_v275: dict[str, Any] = {
    "type": "object",
    "properties": {
        **{name: _QUERY_STRING for name in LIST_QUERY_PARAMS_V275},
        "sort_key": {"type": "array", "items": {"type": "string", "enum": SORT_KEYS_V275}},
    },
    "patternProperties": {"^_": _QUERY_STRING},
    "additionalProperties": False,
}


# -- validation entry points --------------------------------------------------------

# -- the create schema's microversions -------------------------------------------
# 2.32: an optional device ``tag`` on each network and block device mapping;
# 2.33: the mapping's tag is gone again (a Nova bug, fixed in 2.42);
# 2.37: ``networks`` is required, a list (uuids now strictly UUIDs, no tag:
#       the same bug) or "auto"/"none".
DEVICE_TAGS_VERSION = (2, 32)
BDM_TAG_REMOVED_VERSION = (2, 33)
NETWORKS_REQUIRED_VERSION = (2, 37)

# The create and rebuild schemas' later microversions (Nova's base_create_v242
# ... v263 and base_rebuild_v254 ... v263); names as the controllers test them.
DEVICE_TAGS_RESTORED_VERSION = "2.42"  # tag on networks[] and block_device_mapping_v2[] again
TAGS_AT_CREATE_VERSION = "2.52"        # server tags at create
REBUILD_KEY_NAME_VERSION = "2.54"      # key_name (or null) on rebuild
MIGRATE_HOST_VERSION = "2.56"          # {"migrate": {"host": ...}}
PERSONALITY_REMOVED_VERSION = "2.57"   # no personality on create/rebuild; user_data on rebuild
REBUILD_USER_DATA_VERSION = PERSONALITY_REMOVED_VERSION
TRUSTED_CERTS_VERSION = "2.63"         # trusted_image_certificates on create and rebuild
BDM_VOLUME_TYPE_VERSION = "2.67"       # volume_type on block_device_mapping_v2[]
LOCKED_REASON_VERSION = "2.73"         # {"lock": {"locked_reason": ...}}; the locked filter/sort
HOST_AT_CREATE_VERSION = "2.74"        # host / hypervisor_hostname on create
FULL_UPDATE_ANSWER_VERSION = "2.75"    # PUT and rebuild answer GET /servers/{id}'s body


def at_least(version: tuple[int, int], since: str) -> bool:
    """Whether ``version`` is ``since`` ("2.52") or later."""
    major, minor = since.split(".")
    return tuple(version) >= (int(major), int(minor))

# Nova's parameter_types.tag (also the server tags' of 2.26).
tag: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 60,
                       "pattern": "^[^,/]*$"}

# 2.52: the server tags a create may carry (as ``PUT /servers/{id}/tags``).
server_tags: dict[str, Any] = {"type": "array", "items": tag, "maxItems": MAX_TAG_COUNT}

# Nova's parameter_types.trusted_certs (2.63): 1-50 unique non-empty ids, or null.
trusted_certs: dict[str, Any] = {
    "type": ["array", "null"], "minItems": 1, "maxItems": 50, "uniqueItems": True,
    "items": {"type": "string", "minLength": 1},
}

# Nova's parameter_types.name_or_none (rebuild's key_name, 2.54).
name_or_none: dict[str, Any] = {"oneOf": [name, {"type": "null"}]}

# Nova's rebuild user_data (2.57): base64 up to 65535 characters, or null to unset.
user_data_or_none: dict[str, Any] = {"oneOf": [
    {"type": "string", "format": "base64", "maxLength": 65535}, {"type": "null"}]}


@functools.lru_cache(maxsize=None)
def _create_variant(network_tag: bool, bdm_tag: bool, networks_required: bool,
                    with_description: bool, server_tags_allowed: bool = False,
                    personality_allowed: bool = True,
                    trusted_certs_allowed: bool = False,
                    bdm_volume_type: bool = False,
                    host_at_create: bool = False) -> dict[str, Any]:
    schema = copy.deepcopy(create)
    server = schema["properties"]["server"]
    if with_description:
        server["properties"]["description"] = description
    if networks_required:
        item = copy.deepcopy(_network_item)
        item["properties"]["uuid"] = {"type": "string", "format": "uuid"}
        if network_tag:  # 2.42
            item["properties"]["tag"] = tag
        server["properties"]["networks"] = {"oneOf": [
            {"type": "array", "items": item},
            {"type": "string", "enum": ["none", "auto"]},
        ]}
        server["required"] = [*server["required"], "networks"]
    elif network_tag:
        server["properties"]["networks"]["oneOf"][0]["items"]["properties"]["tag"] = tag
    if bdm_tag:
        server["properties"]["block_device_mapping_v2"]["items"]["properties"]["tag"] = tag
    if server_tags_allowed:
        server["properties"]["tags"] = server_tags
    if not personality_allowed:
        del server["properties"]["personality"]
    if trusted_certs_allowed:
        server["properties"]["trusted_image_certificates"] = trusted_certs
    if bdm_volume_type:  # Nova's parameter_types.volume_type
        server["properties"]["block_device_mapping_v2"]["items"]["properties"][
            "volume_type"] = {"type": ["string", "null"], "minLength": 0, "maxLength": 255}
    if host_at_create:  # 2.74: Nova's parameter_types.hostname, both
        server["properties"]["host"] = hostname
        server["properties"]["hypervisor_hostname"] = hostname
    return schema


def create_schema(version: tuple[int, int] = (2, 1)) -> dict[str, Any]:
    """Nova's server create schema at ``version`` (2.1 up to 2.74's changes)."""
    version = tuple(version)  # type: ignore[assignment]
    tags_restored = at_least(version, DEVICE_TAGS_RESTORED_VERSION)
    return _create_variant(
        network_tag=DEVICE_TAGS_VERSION <= version < NETWORKS_REQUIRED_VERSION or tags_restored,
        bdm_tag=DEVICE_TAGS_VERSION <= version < BDM_TAG_REMOVED_VERSION or tags_restored,
        networks_required=version >= NETWORKS_REQUIRED_VERSION,
        with_description=version >= DESCRIPTION_VERSION,
        server_tags_allowed=at_least(version, TAGS_AT_CREATE_VERSION),
        personality_allowed=not at_least(version, PERSONALITY_REMOVED_VERSION),
        trusted_certs_allowed=at_least(version, TRUSTED_CERTS_VERSION),
        bdm_volume_type=at_least(version, BDM_VOLUME_TYPE_VERSION),
        host_at_create=at_least(version, HOST_AT_CREATE_VERSION))


def validate_create(body: Any, version: tuple[int, int] = (2, 1)) -> None:
    common.validate(create_schema(version), body)
    server = body["server"]
    if "description" in server:
        check_description(server["description"])
    for field in ("name", "key_name", "availability_zone"):
        if field in server:
            check_name(server[field])
    for group in server.get("security_groups", ()):
        if "name" in group:
            check_name(group["name"])
    if "user_data" in server:
        check_base64("user_data", server["user_data"])
    for item in server.get("personality", ()):
        if "contents" in item:
            check_base64("contents", item["contents"])
    for field in ("min_count", "max_count"):
        if field in server:
            check_minimum(field, server[field], 1)
    for mapping in [*server.get("block_device_mapping", ()),
                    *server.get("block_device_mapping_v2", ())]:
        if "volume_size" in mapping:
            check_minimum("volume_size", mapping["volume_size"], 1)


def validate_update(body: Any, version: tuple[int, int] = (2, 1)) -> None:
    common.validate(update_v219 if version >= DESCRIPTION_VERSION else update, body)
    if "name" in body["server"]:
        check_name(body["server"]["name"])
    if "description" in body["server"]:
        check_description(body["server"]["description"])


# Nova's get_console_output schema (microversion 2.1).
get_console_output: dict[str, Any] = {
    "type": "object",
    "properties": {
        "os-getConsoleOutput": {
            "type": "object",
            "properties": {
                "length": {
                    "oneOf": [{"type": "integer", "minimum": -1},
                              {"type": "string", "pattern": "^-?[0-9]+$"},
                              {"type": "null"}],
                },
            },
            "additionalProperties": False,
        },
    },
    "required": ["os-getConsoleOutput"],
    "additionalProperties": False,
}


def validate_get_console_output(body: Any) -> None:
    common.validate(get_console_output, body)
    length = body["os-getConsoleOutput"].get("length")
    if isinstance(length, str) and int(length) < -1:
        raise exception.ValidationError(
            "Invalid input for field/attribute length. Value: "
            f"{length}. {length} is less than the minimum of -1")


# Nova's rebuild schema (microversion 2.1).
rebuild: dict[str, Any] = {
    "type": "object",
    "properties": {
        "rebuild": {
            "type": "object",
            "properties": {
                "imageRef": {"type": "string", "minLength": 1},
                "name": {"type": "string", "minLength": 1, "maxLength": 255},
                "adminPass": {"type": "string"},
                "metadata": {
                    "type": "object",
                    "patternProperties": {
                        "^[a-zA-Z0-9-_:. ]{1,255}$": {"type": "string", "maxLength": 255}},
                    "additionalProperties": False,
                },
                "personality": {"type": "array", "maxItems": 5, "items": {
                    "type": "object",
                    "properties": {"path": {"type": "string"},
                                   "contents": {"type": "string"}},
                    "additionalProperties": False}},
                "preserve_ephemeral": {"type": "boolean"},
                "accessIPv4": {"type": ["string", "null"]},
                "accessIPv6": {"type": ["string", "null"]},
                "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
            },
            "required": ["imageRef"],
            "additionalProperties": False,
        },
    },
    "required": ["rebuild"],
    "additionalProperties": False,
}


rebuild_v219: dict[str, Any] = copy.deepcopy(rebuild)
rebuild_v219["properties"]["rebuild"]["properties"]["description"] = description


@functools.lru_cache(maxsize=None)
def _rebuild_variant(with_description: bool, key_name: bool, user_data: bool,
                     with_trusted_certs: bool) -> dict[str, Any]:
    schema = copy.deepcopy(rebuild_v219 if with_description else rebuild)
    props = schema["properties"]["rebuild"]["properties"]
    if key_name:  # 2.54
        props["key_name"] = name_or_none
    if user_data:  # 2.57: personality goes, user_data comes
        del props["personality"]
        props["user_data"] = user_data_or_none
    if with_trusted_certs:  # 2.63
        props["trusted_image_certificates"] = trusted_certs
    return schema


def rebuild_schema(version: tuple[int, int] = (2, 1)) -> dict[str, Any]:
    """Nova's rebuild schema at ``version`` (2.19, 2.54, 2.57, 2.63)."""
    version = tuple(version)  # type: ignore[assignment]
    return _rebuild_variant(
        with_description=version >= DESCRIPTION_VERSION,
        key_name=at_least(version, REBUILD_KEY_NAME_VERSION),
        user_data=at_least(version, REBUILD_USER_DATA_VERSION),
        with_trusted_certs=at_least(version, TRUSTED_CERTS_VERSION))


def validate_rebuild(body: Any, version: tuple[int, int] = (2, 1)) -> None:
    common.validate(rebuild_schema(version), body)
    args = body["rebuild"]
    if "name" in args:
        check_name(args["name"])
    if "description" in args:
        check_description(args["description"])
    if isinstance(args.get("key_name"), str):
        check_name(args["key_name"])
    if isinstance(args.get("user_data"), str):
        check_base64("user_data", args["user_data"])


# Nova's rescue schema (microversion 2.1).
rescue: dict[str, Any] = {
    "type": "object",
    "properties": {
        "rescue": {
            "type": ["object", "null"],
            "properties": {
                "adminPass": {"type": "string"},
                "rescue_image_ref": {"type": "string", "format": "uuid"},
            },
            "additionalProperties": False,
        },
    },
    "required": ["rescue"],
    "additionalProperties": False,
}


def validate_rescue(body: Any) -> None:
    common.validate(rescue, body)


# Nova's createImage schema (microversion 2.1).
create_image: dict[str, Any] = {
    "type": "object",
    "properties": {
        "createImage": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 255,
                         "pattern": "^(?! )[\\S ]*(?<! )$"},
                "metadata": {
                    "type": "object",
                    "patternProperties": {
                        "^[a-zA-Z0-9-_:. ]{1,255}$": {"type": "string", "maxLength": 255}},
                    "additionalProperties": False,
                },
            },
            "required": ["name"],
            "additionalProperties": False,
        },
    },
    "required": ["createImage"],
    "additionalProperties": False,
}


def validate_create_image(body: Any) -> None:
    common.validate(create_image, body)


# Nova's createBackup schema (os-create-backup, microversion 2.1): ``rotation``
# is parameter_types.non_negative_integer (an integer or a digit string).
create_backup: dict[str, Any] = {
    "type": "object",
    "properties": {
        "createBackup": {
            "type": "object",
            "properties": {
                "name": name,
                "backup_type": {"type": "string"},
                "rotation": {"type": ["integer", "string"], "pattern": "^[0-9]*$",
                             "minimum": 0, "minLength": 1},
                "metadata": {"type": "object"},
            },
            "required": ["name", "backup_type", "rotation"],
            "additionalProperties": False,
        },
    },
    "required": ["createBackup"],
    "additionalProperties": False,
}


def validate_create_backup(body: Any) -> None:
    common.validate(create_backup, body)
    check_name(body["createBackup"]["name"])


def validate_reboot(body: Any) -> None:
    common.validate(reboot, body)


def validate_metadata_set(body: Any) -> None:
    common.validate(metadata_set, body)


def validate_metadata_item(body: Any) -> None:
    common.validate(metadata_item, body)


# Nova's resize schema (microversion 2.1; OS-DCF:diskConfig accepted).
resize: dict[str, Any] = {
    "type": "object",
    "properties": {
        "resize": {
            "type": "object",
            "properties": {
                "flavorRef": {"type": ["string", "integer"], "minLength": 1},
                "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
            },
            "required": ["flavorRef"],
            "additionalProperties": False,
        },
    },
    "required": ["resize"],
    "additionalProperties": False,
}


def validate_resize(body: Any) -> None:
    common.validate(resize, body)


def _null_action(name: str) -> Any:
    def validator(body: Any) -> None:
        if body[name] is not None and body[name] != {}:
            raise exception.Invalid(f"Invalid input for field/attribute {name}. "
                                    f"Value: {body[name]}. {body[name]!r} is not of type "
                                    f"'null'")
    return validator


_validate_migrate_null = _null_action("migrate")

# Nova's migrate_v2_56: null, or an object with an optional host (an FQDN-ish
# name, or null for "the scheduler picks").
migrate_v256: dict[str, Any] = {
    "type": "object",
    "properties": {
        "migrate": {
            "type": ["object", "null"],
            "properties": {"host": {**hostname, "type": ["string", "null"]}},
            "additionalProperties": False,
        },
    },
    "required": ["migrate"],
    "additionalProperties": False,
}


def validate_migrate(body: Any, version: tuple[int, int] = (2, 1)) -> None:
    """Before 2.56 the argument is null (or {}); from 2.56 it may name a host."""
    if at_least(version, MIGRATE_HOST_VERSION):
        common.validate(migrate_v256, body)
    else:
        _validate_migrate_null(body)


# Nova's lock_server.lock_v2_73: null, or an object with an optional reason of
# 1-255 characters. Before 2.73 Nova does not look at the argument at all
# (any value is taken, a reason in it is ignored).
lock_v273: dict[str, Any] = {
    "type": "object",
    "properties": {
        "lock": {
            "type": ["object", "null"],
            "properties": {
                "locked_reason": {"type": "string", "minLength": 1, "maxLength": 255},
            },
            "additionalProperties": False,
        },
    },
    "required": ["lock"],
    "additionalProperties": False,
}


def validate_lock(body: Any, version: tuple[int, int] = (2, 1)) -> None:
    if at_least(version, LOCKED_REASON_VERSION):
        common.validate(lock_v273, body)


validate_confirm_resize = _null_action("confirmResize")
validate_revert_resize = _null_action("revertResize")


# Nova's reset_server_state.reset_state (os-admin-actions).
reset_state: dict[str, Any] = {
    "type": "object",
    "properties": {
        "os-resetState": {
            "type": "object",
            "properties": {"state": {"type": "string", "enum": ["active", "error"]}},
            "required": ["state"],
            "additionalProperties": False,
        },
    },
    "required": ["os-resetState"],
    "additionalProperties": False,
}


def validate_reset_state(body: Any) -> None:
    common.validate(reset_state, body)


# Nova's trigger_crash_dump schema (microversion 2.17): the argument is null.
trigger_crash_dump: dict[str, Any] = {
    "type": "object",
    "properties": {"trigger_crash_dump": {"type": "null"}},
    "required": ["trigger_crash_dump"],
    "additionalProperties": False,
}


def validate_trigger_crash_dump(body: Any) -> None:
    common.validate(trigger_crash_dump, body)
