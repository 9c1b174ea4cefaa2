"""``/os-quota-sets/{project_id}`` at microversion 2.1 (Nova's quota_sets.py).

GET shows the project's limits, ``/defaults`` the defaults (the ``default``
quota class's limits over the ``[quota]`` options, see os-quota-class-sets),
``/detail`` each limit with its usage (``in_use``, ``limit``, ``reserved``);
PUT (admin) sets some of them and answers the whole set without ``id``,
refusing a limit below what the project already uses unless ``force``;
DELETE (admin) reverts the project to the defaults (202). An unknown project
is a 400, as Nova's check against Keystone. ``user_id`` is accepted and
ignored: quotas here are per project only (PUT with ``user_id`` sets the
project's limits). From 2.36 the network quotas leave the answers and the
PUT schema; from 2.57 the personality-file quotas (``injected_file*``) too.
"""
from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from stratus import exception
from stratus.api.compute import microversion, parameter_types
from stratus.api.compute.common import authorize, validate
from stratus.api.wsgi import Request, Route, empty_response, json_response
from stratus.db.models import Project
from stratus.quota import COMPUTE_NAMES, QuotaEngine

POLICY_SHOW = "os_compute_api:os-quota-sets:show"
POLICY_DEFAULTS = "os_compute_api:os-quota-sets:defaults"
POLICY_DETAIL = "os_compute_api:os-quota-sets:detail"
POLICY_UPDATE = "os_compute_api:os-quota-sets:update"
POLICY_DELETE = "os_compute_api:os-quota-sets:delete"
# 2.36: the nova-network quotas leave the answers and the PUT schema
# (Nova's FILTERED_QUOTAS_2_36 and update_v236, which also drops "networks").
NETWORK_QUOTAS_REMOVED_VERSION = "2.36"
NETWORK_QUOTAS: tuple[str, ...] = ("fixed_ips", "floating_ips", "security_group_rules",
                                   "security_groups")
# 2.57: personality files are gone, and so are their quotas (FILTERED_QUOTAS_2_57).
PERSONALITY_QUOTAS_REMOVED_VERSION = "2.57"
PERSONALITY_QUOTAS: tuple[str, ...] = ("injected_files", "injected_file_content_bytes",
                                       "injected_file_path_bytes")

_QUOTA_VALUE: dict[str, Any] = {
    "type": ["integer", "string"], "pattern": "^-?[0-9]+$",
    "minimum": -1, "maximum": parameter_types.MAX_INT,
}
UPDATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "quota_set": {
            "type": "object",
            "properties": {**{name: _QUOTA_VALUE for name in COMPUTE_NAMES},
                           "networks": _QUOTA_VALUE,
                           "force": parameter_types.boolean},
            "additionalProperties": False,
        },
    },
    "required": ["quota_set"],
    "additionalProperties": False,
}
UPDATE_SCHEMA_V236: dict[str, Any] = {
    **UPDATE_SCHEMA,
    "properties": {"quota_set": {
        **UPDATE_SCHEMA["properties"]["quota_set"],
        "properties": {k: v for k, v in UPDATE_SCHEMA["properties"]["quota_set"]
                       ["properties"].items() if k not in NETWORK_QUOTAS + ("networks",)},
    }},
}
UPDATE_SCHEMA_V257: dict[str, Any] = {
    **UPDATE_SCHEMA_V236,
    "properties": {"quota_set": {
        **UPDATE_SCHEMA_V236["properties"]["quota_set"],
        "properties": {k: v for k, v in UPDATE_SCHEMA_V236["properties"]["quota_set"]
                       ["properties"].items() if k not in PERSONALITY_QUOTAS},
    }},
}


def routes() -> list[Route]:
    base = "/os-quota-sets/<project_id>"
    return [
        Route("GET", base, show),
        Route("PUT", base, update),
        Route("DELETE", base, delete),
        Route("GET", base + "/defaults", defaults),
        Route("GET", base + "/detail", detail),
    ]


def _hidden(req: Request) -> tuple[str, ...]:
    """The quotas the request's version does not show."""
    if microversion.is_supported(req, PERSONALITY_QUOTAS_REMOVED_VERSION):
        return NETWORK_QUOTAS + PERSONALITY_QUOTAS
    if microversion.is_supported(req, NETWORK_QUOTAS_REMOVED_VERSION):
        return NETWORK_QUOTAS
    return ()


def _filtered(req: Request, quotas: dict[str, Any]) -> dict[str, Any]:
    """The quota set as the request's version shows it."""
    hidden = _hidden(req)
    return {k: v for k, v in quotas.items() if k not in hidden}


def _update_schema(req: Request) -> dict[str, Any]:
    if microversion.is_supported(req, PERSONALITY_QUOTAS_REMOVED_VERSION):
        return UPDATE_SCHEMA_V257
    if microversion.is_supported(req, NETWORK_QUOTAS_REMOVED_VERSION):
        return UPDATE_SCHEMA_V236
    return UPDATE_SCHEMA


def _verify_project(req: Request, project_id: str) -> None:
    """Nova asks Keystone whether the project exists: 400 when it does not."""
    with req.state.db.read() as s:
        if s.get(Project, project_id) is None:
            raise exception.Invalid(f"Project ID {project_id} is not a valid project.")


def _engine(req: Request) -> QuotaEngine:
    return QuotaEngine(req.state.conf)


def _limits(req: Request, project_id: str) -> dict[str, int]:
    with req.state.db.read() as s:
        return _engine(req).limits(s, project_id)


def show(req: Request, project_id: str) -> Response:
    authorize(req, POLICY_SHOW, {"project_id": project_id})
    _verify_project(req, project_id)
    return json_response({"quota_set": {"id": project_id,
                                        **_filtered(req, _limits(req, project_id))}})


def defaults(req: Request, project_id: str) -> Response:
    authorize(req, POLICY_DEFAULTS, {"project_id": project_id})
    _verify_project(req, project_id)
    with req.state.db.read() as s:
        values = _engine(req).defaults(s=s)
    return json_response({"quota_set": {"id": project_id, **_filtered(req, values)}})


def detail(req: Request, project_id: str) -> Response:
    authorize(req, POLICY_DETAIL, {"project_id": project_id})
    _verify_project(req, project_id)
    with req.state.db.read() as s:
        items = _engine(req).detail(s, project_id)
    return json_response({"quota_set": {"id": project_id, **_filtered(req, items)}})


def _parse_update(quota_set: dict[str, Any]) -> tuple[dict[str, int], bool]:
    """The limits to set (in body order) and ``force``; 400 for bad values."""
    if "networks" in quota_set:
        raise exception.Invalid("The networks quota is disabled")
    force = parameter_types.bool_from_string(quota_set.get("force", False))
    values: dict[str, int] = {}
    for name, raw in quota_set.items():
        if name == "force":
            continue
        value = int(raw)  # the schema's pattern let only integers through
        if value < -1:
            raise exception.Invalid(f"Quota limit {value} for {name} must be -1 or greater.")
        if value > parameter_types.MAX_INT:
            raise exception.Invalid(f"Quota limit {value} for {name} must be less than or "
                                    f"equal to {parameter_types.MAX_INT}.")
        values[name] = value
    return values, force


def update(req: Request, project_id: str) -> Response:
    body = req.json_body()
    validate(_update_schema(req), body)
    authorize(req, POLICY_UPDATE, {"project_id": project_id})
    _verify_project(req, project_id)
    values, force = _parse_update(body["quota_set"])
    _engine(req).update(req.state.db, project_id, values, force=force)
    # Nova's update answer has no "id".
    return json_response({"quota_set": _filtered(req, _limits(req, project_id))})


def delete(req: Request, project_id: str) -> Response:
    authorize(req, POLICY_DELETE, {"project_id": project_id})
    _engine(req).revert(req.state.db, project_id)
    return empty_response(202)
