"""Glance's image JSON schemas (``GET /v2/schemas/image(s)``) and input checks.

The published schema is Glance's; the same schema validates the image a
create or a patch would produce, so a client that reads the schema knows
exactly what the server accepts.
"""
from __future__ import annotations

import copy
from typing import Any

import jsonschema

from stratus import exception

DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso",
                "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
VISIBILITIES = ("public", "private", "shared", "community")
STATUSES = ("queued", "saving", "active", "killed", "deleted", "pending_delete",
            "deactivated", "uploading", "importing")
UUID_PATTERN = ("^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}"
                "-([0-9a-fA-F]){12}$")

# Set by the server only: a create or patch naming them is a 403.
READ_ONLY = ("checksum", "created_at", "direct_url", "file", "os_hash_algo",
             "os_hash_value", "schema", "self", "size", "status", "updated_at",
             "virtual_size", "locations")
# Never accepted as properties: a 403.
RESERVED = ("deleted", "deleted_at", "location")
RESERVED_PREFIX = "os_glance"

# Base (non-extra) attributes an image always shows.
BASE_ATTRIBUTES = ("id", "name", "status", "visibility", "protected", "os_hidden",
                   "checksum", "os_hash_algo", "os_hash_value", "size", "virtual_size",
                   "min_disk", "min_ram", "disk_format", "container_format", "owner",
                   "created_at", "updated_at", "tags", "self", "file", "schema")
# Base attributes a client may write.
WRITABLE = ("name", "visibility", "protected", "os_hidden", "min_disk", "min_ram",
            "disk_format", "container_format", "owner", "tags", "id")


def _nullable_string(description: str, max_length: int = 255) -> dict[str, Any]:
    return {"type": ["null", "string"], "maxLength": max_length, "description": description}


_PROPERTIES: dict[str, Any] = {
    "id": {"type": "string", "pattern": UUID_PATTERN,
           "description": "An identifier for the image"},
    "name": _nullable_string("Descriptive name for the image"),
    "status": {"type": "string", "readOnly": True, "enum": list(STATUSES),
               "description": "Status of the image"},
    "visibility": {"type": "string", "enum": list(VISIBILITIES),
                   "description": "Scope of image accessibility"},
    "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
    "os_hidden": {"type": "boolean",
                  "description": "If true, image will not appear in default image list "
                                 "response."},
    "checksum": {"type": ["null", "string"], "readOnly": True, "maxLength": 32,
                 "description": "md5 hash of image contents."},
    "os_hash_algo": {"type": ["null", "string"], "readOnly": True, "maxLength": 64,
                     "description": "Algorithm to calculate the os_hash_value"},
    "os_hash_value": {"type": ["null", "string"], "readOnly": True, "maxLength": 128,
                      "description": "Hexdigest of the image contents using the algorithm "
                                     "specified by the os_hash_algo"},
    "owner": _nullable_string("Owner of the image"),
    "size": {"type": ["null", "integer"], "readOnly": True,
             "description": "Size of image file in bytes"},
    "virtual_size": {"type": ["null", "integer"], "readOnly": True,
                     "description": "Virtual size of image in bytes"},
    "container_format": {"type": ["null", "string"],
                         "enum": [None, *CONTAINER_FORMATS],
                         "description": "Format of the container"},
    "disk_format": {"type": ["null", "string"], "enum": [None, *DISK_FORMATS],
                    "description": "Format of the disk"},
    "created_at": {"type": "string", "readOnly": True,
                   "description": "Date and time of image registration"},
    "updated_at": {"type": "string", "readOnly": True,
                   "description": "Date and time of the last image modification"},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 255},
             "description": "List of strings related to the image"},
    "direct_url": {"type": "string", "readOnly": True,
                   "description": "URL to access the image file kept in external store"},
    "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot "
                                                  "image."},
    "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required "
                                                   "to boot image."},
    "self": {"type": "string", "readOnly": True, "description": "An image self url"},
    "file": {"type": "string", "readOnly": True, "description": "An image file url"},
    "schema": {"type": "string", "readOnly": True, "description": "An image schema url"},
    "locations": {
        "type": "array", "description": "A set of URLs to access the image file kept in "
                                        "external store",
        "items": {"type": "object", "required": ["url", "metadata"],
                  "properties": {"url": {"type": "string", "maxLength": 255},
                                 "metadata": {"type": "object"}}}},
    # Common optional properties Glance documents in its schema (not base).
    "architecture": {"type": "string", "is_base": False,
                     "description": "Operating system architecture as specified in "
                                    "https://docs.openstack.org/python-glanceclient/latest/"
                                    "cli/property-keys.html"},
    "os_distro": {"type": "string", "is_base": False,
                  "description": "Common name of operating system distribution as "
                                 "specified in https://docs.openstack.org/"
                                 "python-glanceclient/latest/cli/property-keys.html"},
    "os_version": {"type": "string", "is_base": False,
                   "description": "Operating system version as specified by the "
                                  "distributor"},
    "instance_uuid": {"type": "string", "is_base": False,
                      "description": "Metadata which can be used to record which instance "
                                     "this image is associated with. (Informational only, "
                                     "does not create an instance snapshot.)"},
    "kernel_id": {"type": ["null", "string"], "pattern": UUID_PATTERN, "is_base": False,
                  "description": "ID of image stored in Glance that should be used as the "
                                 "kernel when booting an AMI-style image."},
    "ramdisk_id": {"type": ["null", "string"], "pattern": UUID_PATTERN, "is_base": False,
                   "description": "ID of image stored in Glance that should be used as the "
                                  "ramdisk when booting an AMI-style image."},
}


def image_schema() -> dict[str, Any]:
    """Glance's ``image`` schema."""
    return {
        "name": "image",
        "properties": copy.deepcopy(_PROPERTIES),
        "additionalProperties": {"type": "string"},
        "links": [{"rel": "self", "href": "{self}"},
                  {"rel": "enclosure", "href": "{file}"},
                  {"rel": "describedby", "href": "{schema}"}],
    }


def _collection_schema(name: str, item: dict[str, Any]) -> dict[str, Any]:
    """Glance's schema of a collection ``name`` of ``item``s, with its links."""
    return {
        "name": name,
        "properties": {
            name: {"type": "array", "items": item},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"},
        },
        "links": [{"rel": "first", "href": "{first}"},
                  {"rel": "next", "href": "{next}"},
                  {"rel": "describedby", "href": "{schema}"}],
    }


def images_schema() -> dict[str, Any]:
    """Glance's ``images`` (collection) schema."""
    return _collection_schema("images", image_schema())


# What a client may set: the schema without read-only attributes, plus the
# bounds Glance checks outside its schema.
_WRITE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {k: {kk: vv for kk, vv in v.items() if kk not in ("readOnly", "is_base")}
                   for k, v in _PROPERTIES.items() if not v.get("readOnly")},
    "additionalProperties": {"type": "string", "maxLength": 65535},
}
_WRITE_SCHEMA["properties"]["min_ram"]["minimum"] = 0
_WRITE_SCHEMA["properties"]["min_disk"]["minimum"] = 0
_WRITE_SCHEMA["properties"]["min_ram"]["maximum"] = 2 ** 31 - 1
_WRITE_SCHEMA["properties"]["min_disk"]["maximum"] = 2 ** 31 - 1
_WRITE_SCHEMA["properties"]["tags"]["maxItems"] = 128
_WRITE_VALIDATOR = jsonschema.Draft4Validator(_WRITE_SCHEMA)


def check_writable_names(names: Any) -> None:
    """403 for read-only or reserved attribute names, 400 for bad property names."""
    for name in names:
        if name in READ_ONLY:
            raise exception.Forbidden(f"Attribute '{name}' is read-only.")
        if name in RESERVED or name.startswith(RESERVED_PREFIX):
            raise exception.Forbidden(f"Attribute '{name}' is reserved.")
        if not name or len(name) > 255:
            raise exception.Invalid(f"Invalid property name {name!r}.")


def validate_image(values: dict[str, Any]) -> None:
    """400 when ``values`` (writable attributes and extra properties) break the schema."""
    error = jsonschema.exceptions.best_match(_WRITE_VALIDATOR.iter_errors(values))
    if error is None:
        return
    where = "/".join(str(p) for p in error.absolute_path)
    detail = f"{error.message}" + (f" (at '{where}')" if where else "")
    raise exception.Invalid(f"Provided object does not match schema 'image': {detail}")


# -- members --------------------------------------------------------------------

def member_schema() -> dict[str, Any]:
    """Glance's ``member`` schema."""
    return {
        "name": "member",
        "properties": {
            "created_at": {"type": "string", "description": "Date and time of image member "
                                                            "creation"},
            "image_id": {"type": "string", "pattern": UUID_PATTERN,
                         "description": "An identifier for the image"},
            "member_id": {"type": "string", "description": "An identifier for the image "
                                                           "member (tenantId)"},
            "status": {"type": "string", "enum": ["pending", "accepted", "rejected"],
                       "description": "The status of this image member"},
            "updated_at": {"type": "string", "description": "Date and time of last "
                                                            "modification of image member"},
            "schema": {"type": "string"},
        },
        "additionalProperties": False,
    }


def members_schema() -> dict[str, Any]:
    """Glance's ``members`` (collection) schema."""
    return _collection_schema("members", member_schema())
