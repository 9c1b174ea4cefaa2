"""``/os-services`` before microversion 2.53 (Nova's services.py); admin only.

A service is "up" while its heartbeats are recent (``[DEFAULT]
service_down_time``) and it is not forced down. Compute services live in the
zone they report (default "nova"), all others in "internal". Service ids are
the integer database ids. Updates go through the action-named paths
``PUT /os-services/{enable,disable,disable-log-reason}`` (and ``force-down``
from 2.11) and apply to compute services only.

Clients address the compute service as ``nova-compute``: a ``nova-*`` binary
in a request means the ``stratus-*`` service of the same name.
"""
from __future__ import annotations

from typing import Any, Callable

from sqlalchemy import delete as sql_delete, func, select
from werkzeug.wrappers import Response

from stratus import exception
from stratus.api.compute import microversion, parameter_types
from stratus.api.compute.common import authorize, validate
from stratus.api.wsgi import Request, Route, empty_response, json_response
from stratus.db import aggregates as db_aggregates
from stratus.db import services as db_services
from stratus.db.models import Allocation, ComputeNode, Instance, Service
from stratus.db.session import Database
from stratus.utils import isotime_us

COMPUTE_BINARY = "stratus-compute"
DEFAULT_ZONE = "nova"
INTERNAL_ZONE = "internal"

POLICY_LIST = "os_compute_api:os-services:list"
POLICY_UPDATE = "os_compute_api:os-services:update"
POLICY_DELETE = "os_compute_api:os-services:delete"

FORCED_DOWN_VERSION = "2.11"

_REASON = {"type": "string", "minLength": 1, "maxLength": 255}
UPDATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "host": parameter_types.hostname,
        "binary": {"type": "string", "minLength": 1, "maxLength": 255},
        "disabled_reason": _REASON,
    },
    "required": ["host", "binary"],
    "additionalProperties": False,
}
UPDATE_SCHEMA_V211: dict[str, Any] = {
    **UPDATE_SCHEMA,
    "properties": {**UPDATE_SCHEMA["properties"], "forced_down": parameter_types.boolean},
}


class HostBinaryNotFound(exception.NotFound):
    msg_fmt = "Could not find binary %(binary)s on host %(host)s."


def canonical_binary(binary: str) -> str:
    """``nova-compute`` -> ``stratus-compute``; other names unchanged."""
    if binary.startswith("nova-"):
        return "stratus-" + binary[len("nova-"):]
    return binary


def service_zone(service: dict[str, Any], host_zones: dict[str, str] | None = None) -> str:
    """A compute service's zone: its host's aggregates' (``host_zones``), else its own."""
    if service["binary"] == COMPUTE_BINARY:
        return ((host_zones or {}).get(service["host"]) or service.get("availability_zone")
                or DEFAULT_ZONE)
    return INTERNAL_ZONE


def service_state(req: Request, service: dict[str, Any]) -> str:
    up = db_services.service_is_up(service, req.state.conf.DEFAULT.service_down_time)
    return "up" if up else "down"


def service_view(req: Request, service: dict[str, Any],
                 host_zones: dict[str, str] | None = None) -> dict[str, Any]:
    view = {
        "id": service["id"],
        "binary": service["binary"],
        "host": service["host"],
        "zone": service_zone(service, host_zones),
        "status": "disabled" if service["disabled"] else "enabled",
        "state": service_state(req, service),
        "updated_at": isotime_us(service["updated_at"]),
        "disabled_reason": service["disabled_reason"],
    }
    if microversion.is_supported(req, FORCED_DOWN_VERSION):
        view["forced_down"] = bool(service["forced_down"])
    return view


# -- list ----------------------------------------------------------------------

def index(req: Request) -> Response:
    authorize(req, POLICY_LIST)
    binary = req.args.get("binary") or None
    services = db_services.service_get_all(
        req.state.db, binary=canonical_binary(binary) if binary else None,
        host=req.args.get("host") or None)
    zones = db_aggregates.host_zones(req.state.db)
    return json_response({"services": [service_view(req, s, zones) for s in services]})


# -- update (action-named paths) ---------------------------------------------------

def _update_compute_service(req: Request, host: str, binary: str,
                            values: dict[str, Any]) -> None:
    if canonical_binary(binary) != COMPUTE_BINARY:
        raise exception.Invalid(f"Updating a {binary} service is not supported. "
                                f"Only {COMPUTE_BINARY} services can be updated.")
    found = db_services.service_get_all(req.state.db, binary=COMPUTE_BINARY, host=host)
    if not found:
        raise HostBinaryNotFound(binary=binary, host=host)
    db_services.service_update(req.state.db, found[0]["id"], **values)


def _enable_disable(req: Request, body: dict[str, Any], status: str,
                    values: dict[str, Any]) -> dict[str, Any]:
    reply: dict[str, Any] = {"host": body["host"], "binary": body["binary"], "status": status}
    if values.get("disabled_reason"):
        reply["disabled_reason"] = values["disabled_reason"]
    _update_compute_service(req, body["host"], body["binary"], values)
    return {"service": reply}


def _enable(req: Request, body: dict[str, Any]) -> dict[str, Any]:
    return _enable_disable(req, body, "enabled", {"disabled": False, "disabled_reason": None})


def _disable(req: Request, body: dict[str, Any]) -> dict[str, Any]:
    return _enable_disable(req, body, "disabled", {"disabled": True, "disabled_reason": None})


def _disable_log_reason(req: Request, body: dict[str, Any]) -> dict[str, Any]:
    if "disabled_reason" not in body:
        raise exception.Invalid("Missing disabled reason field")
    return _enable_disable(req, body, "disabled",
                           {"disabled": True, "disabled_reason": body["disabled_reason"]})


def _force_down(req: Request, body: dict[str, Any]) -> dict[str, Any]:
    if "forced_down" not in body:
        raise exception.Invalid("Missing forced_down field")
    forced_down = parameter_types.bool_from_string(body["forced_down"])
    _update_compute_service(req, body["host"], body["binary"], {"forced_down": forced_down})
    return {"service": {"host": body["host"], "binary": body["binary"],
                        "forced_down": forced_down}}


_Action = Callable[[Request, dict[str, Any]], dict[str, Any]]


def _actions(req: Request) -> dict[str, _Action]:
    actions: dict[str, _Action] = {"enable": _enable, "disable": _disable,
                                   "disable-log-reason": _disable_log_reason}
    if microversion.is_supported(req, FORCED_DOWN_VERSION):
        actions["force-down"] = _force_down
    return actions


def update(req: Request, action: str) -> Response:
    body = req.json_body()
    schema = (UPDATE_SCHEMA_V211 if microversion.is_supported(req, FORCED_DOWN_VERSION)
              else UPDATE_SCHEMA)
    validate(schema, body)
    authorize(req, POLICY_UPDATE)
    handler = _actions(req).get(action)
    if handler is None:
        raise exception.NotFound("Unknown action")
    return json_response(handler(req, body))


# -- delete --------------------------------------------------------------------

def destroy_service(db: Database, service_id: int) -> None:
    """Delete a service; a compute service takes its compute nodes with it.

    A compute service still hosting instances cannot go (409).
    """
    with db.write() as s:
        service = s.get(Service, service_id)
        if service is None:
            raise exception.NotFound(f"Service {service_id} not found.")
        if service.binary == COMPUTE_BINARY:
            hosted = s.scalar(select(func.count(Instance.id)).where(
                Instance.host == service.host, Instance.deleted.is_(False)))
            if hosted:
                raise exception.Conflict(
                    "Unable to delete compute service that is hosting instances. "
                    "Migrate or delete the instances first.")
            node_ids = select(ComputeNode.id).where(ComputeNode.host == service.host)
            s.execute(sql_delete(Allocation).where(Allocation.compute_node_id.in_(node_ids)))
            s.execute(sql_delete(ComputeNode).where(ComputeNode.host == service.host))
        s.delete(service)


def delete(req: Request, service_id: str) -> Response:
    authorize(req, POLICY_DELETE)
    try:
        ident = int(service_id)
    except ValueError:
        raise exception.Invalid("Invalid input received: id must be an integer")
    destroy_service(req.state.db, ident)
    return empty_response(204)


def routes() -> list[Route]:
    return [
        Route("GET", "/os-services", index),
        Route("PUT", "/os-services/<action>", update),
        Route("DELETE", "/os-services/<service_id>", delete),
    ]
