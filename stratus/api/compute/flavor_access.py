"""Private flavors' access lists (Nova's flavor_access.py).

``GET /flavors/{id}/os-flavor-access`` and the ``addTenantAccess`` /
``removeTenantAccess`` actions of ``POST /flavors/{id}/action``; admin only.
"""
from __future__ import annotations

from typing import Any, Callable

from sqlalchemy import select
from werkzeug.wrappers import Response

from stratus import exception
from stratus.api.compute import microversion
from stratus.api.compute.common import authorize, validate
from stratus.api.wsgi import Request, Route, json_response
from stratus.db import flavors as db_flavors
from stratus.db.models import Project

POLICY_LIST = "os_compute_api:os-flavor-access"
POLICY_ADD = "os_compute_api:os-flavor-access:add_tenant_access"
POLICY_REMOVE = "os_compute_api:os-flavor-access:remove_tenant_access"

# From 2.7 on, giving a project access to a public flavor is a conflict.
PUBLIC_FLAVOR_CONFLICT_VERSION = "2.7"

_TENANT = {"type": "string", "minLength": 1, "maxLength": 255}


def _action_schema(action: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            action: {"type": "object", "properties": {"tenant": _TENANT},
                     "required": ["tenant"], "additionalProperties": False},
        },
        "required": [action],
        "additionalProperties": False,
    }


ADD_SCHEMA = _action_schema("addTenantAccess")
REMOVE_SCHEMA = _action_schema("removeTenantAccess")


def _access_body(flavor_id: str, projects: list[str]) -> dict[str, Any]:
    return {"flavor_access": [{"flavor_id": flavor_id, "tenant_id": p} for p in projects]}


def _verify_project(req: Request, project_id: str) -> None:
    """400 for a project the identity service does not know (Nova asks Keystone)."""
    with req.state.db.read() as s:
        if s.scalar(select(Project.id).where(Project.id == project_id)) is None:
            raise exception.Invalid(f"Project ID {project_id} is not a valid project.")


def index(req: Request, flavor_id: str) -> Response:
    authorize(req, POLICY_LIST)
    flavor = db_flavors.flavor_get_by_flavorid(req.state.db, flavor_id, req.context)
    if flavor["is_public"]:
        raise exception.NotFound("Access list not available for public flavors.")
    return json_response(_access_body(flavor["flavorid"], flavor["projects"]))


def _add_tenant_access(req: Request, flavor_id: str, body: dict[str, Any]) -> Response:
    validate(ADD_SCHEMA, body)
    authorize(req, POLICY_ADD)
    tenant = body["addTenantAccess"]["tenant"]
    _verify_project(req, tenant)
    flavor = db_flavors.flavor_get_by_flavorid(req.state.db, flavor_id, req.context)
    if (microversion.is_supported(req, PUBLIC_FLAVOR_CONFLICT_VERSION)
            and flavor["is_public"]):
        raise exception.Conflict("Can not add access to a public flavor.")
    projects = db_flavors.flavor_access_add(req.state.db, flavor["flavorid"], tenant,
                                            req.context)
    return json_response(_access_body(flavor["flavorid"], projects))


def _remove_tenant_access(req: Request, flavor_id: str, body: dict[str, Any]) -> Response:
    validate(REMOVE_SCHEMA, body)
    authorize(req, POLICY_REMOVE)
    tenant = body["removeTenantAccess"]["tenant"]
    _verify_project(req, tenant)
    flavor = db_flavors.flavor_get_by_flavorid(req.state.db, flavor_id, req.context)
    projects = db_flavors.flavor_access_remove(req.state.db, flavor["flavorid"], tenant,
                                               req.context)
    return json_response(_access_body(flavor["flavorid"], projects))


_ACTIONS: dict[str, Callable[[Request, str, dict[str, Any]], Response]] = {
    "addTenantAccess": _add_tenant_access,
    "removeTenantAccess": _remove_tenant_access,
}


def action(req: Request, flavor_id: str) -> Response:
    """``POST /flavors/{id}/action``: the body's single key names the action."""
    body = req.json_body()
    if not isinstance(body, dict) or len(body) != 1:
        raise exception.Invalid("Malformed request body")
    name = next(iter(body))
    handler = _ACTIONS.get(name)
    if handler is None:
        raise exception.Invalid(f"There is no such action: {name}")
    return handler(req, flavor_id, body)


def routes() -> list[Route]:
    return [
        Route("GET", "/flavors/<flavor_id>/os-flavor-access", index),
        Route("POST", "/flavors/<flavor_id>/action", action),
    ]
