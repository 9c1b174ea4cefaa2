"""``/os-quota-class-sets/{id}`` (Nova's quota_classes.py); admin only.

GET shows a quota class's limits: its own rows, else the ``default``
class's, else the ``[quota]`` options. PUT sets some of them (no usage
check, no ``force``) and answers the class's limits without ``id``. Only the
``default`` class matters for enforcement: its rows are the defaults every
project without its own limit gets (os-quota-sets, /limits, the quota
checks); other classes are stored and shown, as in Nova.

The keys shown and accepted depend on the version: before 2.50 Nova's
legacy set (the nova-network quotas, no server group quotas; PUT accepts
those and ``networks`` too); from 2.50 (``QUOTA_CLASS_SERVER_GROUPS_VERSION``)
``server_groups`` and ``server_group_members`` are shown and the network
quotas are gone (a 400 in a PUT); from 2.57
(``QUOTA_CLASS_NO_PERSONALITY_VERSION``) the ``injected_file*`` quotas too.
"""
from __future__ import annotations

import copy
from typing import Any

from werkzeug.wrappers import Response

from stratus import exception
from stratus.api.compute import microversion
from stratus.api.compute.common import authorize, validate
from stratus.api.compute.parameter_types import MAX_INT
from stratus.api.wsgi import Request, Route, json_response
from stratus.quota import COMPUTE_NAMES, QuotaEngine

POLICY_SHOW = "os_compute_api:os-quota-class-sets:show"
POLICY_UPDATE = "os_compute_api:os-quota-class-sets:update"

QUOTA_CLASS_SERVER_GROUPS_VERSION = "2.50"
QUOTA_CLASS_NO_PERSONALITY_VERSION = "2.57"

# Nova's EXTENDED_QUOTAS (not shown before 2.50), FILTERED_QUOTAS_2_50 and _2_57.
SERVER_GROUP_QUOTAS: tuple[str, ...] = ("server_groups", "server_group_members")
NETWORK_QUOTAS: tuple[str, ...] = ("fixed_ips", "floating_ips", "networks",
                                   "security_group_rules", "security_groups")
PERSONALITY_QUOTAS: tuple[str, ...] = ("injected_files", "injected_file_content_bytes",
                                       "injected_file_path_bytes")
MAX_CLASS_NAME_LENGTH = 255

# nova/api/openstack/compute/schemas/quota_sets.py common_quota / quota_resources.
_QUOTA_VALUE: dict[str, Any] = {
    "type": ["integer", "string"], "pattern": "^-?[0-9]+$", "minimum": -1, "maximum": MAX_INT,
}
_RESOURCES: tuple[str, ...] = COMPUTE_NAMES + ("networks",)


def _update_schema(excluded: tuple[str, ...]) -> dict[str, Any]:
    """nova/api/openstack/compute/schemas/quota_classes.py update(_v250, _v257)."""
    return {
        "type": "object",
        "properties": {
            "quota_class_set": {
                "type": "object",
                "properties": {name: copy.deepcopy(_QUOTA_VALUE) for name in _RESOURCES
                               if name not in excluded},
                "additionalProperties": False,
            },
        },
        "required": ["quota_class_set"],
        "additionalProperties": False,
    }


UPDATE_SCHEMA = _update_schema(())
UPDATE_SCHEMA_V250 = _update_schema(NETWORK_QUOTAS)
UPDATE_SCHEMA_V257 = _update_schema(NETWORK_QUOTAS + PERSONALITY_QUOTAS)


def _schema_and_hidden(req: Request) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The PUT schema of the request's version and the quotas it does not show."""
    if microversion.is_supported(req, QUOTA_CLASS_NO_PERSONALITY_VERSION):
        return UPDATE_SCHEMA_V257, NETWORK_QUOTAS + PERSONALITY_QUOTAS
    if microversion.is_supported(req, QUOTA_CLASS_SERVER_GROUPS_VERSION):
        return UPDATE_SCHEMA_V250, NETWORK_QUOTAS
    return UPDATE_SCHEMA, SERVER_GROUP_QUOTAS


def _quota_class_set(req: Request, class_name: str) -> dict[str, int]:
    """The class's limits as the request's version shows them (Nova's order)."""
    _, hidden = _schema_and_hidden(req)
    with req.state.db.read() as s:
        limits = QuotaEngine(req.state.conf).class_limits(s, class_name)
    return {name: limits[name] for name in COMPUTE_NAMES if name not in hidden}


def _check_class_name(class_name: str) -> None:
    """Nova's check_string_length(id, 'quota_class_name', 1, 255)."""
    if len(class_name) > MAX_CLASS_NAME_LENGTH:
        raise exception.Invalid(f"Invalid input received: quota_class_name has more than "
                                f"{MAX_CLASS_NAME_LENGTH} characters.")


def _values(quota_class_set: dict[str, Any]) -> dict[str, int]:
    """The limits to set; the schema let through only integers (or their
    text), and Nova also bounds their text (``"-5"`` is a 400)."""
    values: dict[str, int] = {}
    for name, raw in quota_class_set.items():
        value = int(raw)
        if value < -1:
            raise exception.ValidationError(
                f"Invalid input for field/attribute {name}. Value: {raw}. "
                f"{value} is less than the minimum of -1")
        if value > MAX_INT:
            raise exception.ValidationError(
                f"Invalid input for field/attribute {name}. Value: {raw}. "
                f"{value} is greater than the maximum of {MAX_INT}")
        values[name] = value
    return values


def show(req: Request, class_name: str) -> Response:
    authorize(req, POLICY_SHOW, {"quota_class": class_name})
    return json_response({"quota_class_set": {"id": class_name,
                                              **_quota_class_set(req, class_name)}})


def update(req: Request, class_name: str) -> Response:
    body = req.json_body()
    schema, _ = _schema_and_hidden(req)
    validate(schema, body)
    values = _values(body["quota_class_set"])
    authorize(req, POLICY_UPDATE, {"quota_class": class_name})
    _check_class_name(class_name)
    QuotaEngine(req.state.conf).update_class(req.state.db, class_name, values)
    # Nova's update answer has no "id".
    return json_response({"quota_class_set": _quota_class_set(req, class_name)})


def routes() -> list[Route]:
    return [
        Route("GET", "/os-quota-class-sets/<class_name>", show),
        Route("PUT", "/os-quota-class-sets/<class_name>", update),
    ]
