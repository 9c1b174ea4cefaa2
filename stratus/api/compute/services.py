"""``/os-services`` (Nova's services.py); admin only.

A service is "up" while its heartbeats are recent (``[DEFAULT]
service_down_time``) and it is not forced down. Compute services live in the
zone they report (default "nova"), all others in "internal". Before 2.53
service ids are the integer database ids and updates go through the
action-named paths ``PUT /os-services/{enable,disable,disable-log-reason}``
(and ``force-down`` from 2.11); they apply to compute services only.

From 2.53 (``SERVICE_UUID_VERSION``) a service's ``id`` is its uuid:
``PUT /os-services/{uuid}`` takes ``status`` (``disabled_reason`` only with
``disabled``) and/or ``forced_down`` and answers the whole service as GET
shows it; ``DELETE /os-services/{uuid}``. An id that is not a uuid is a
400 (Nova's ``Invalid uuid``): the action-named paths are no more, so a
``PUT /os-services/disable`` is an update of the service "disable", refused
as Nova refuses it (400).

Clients address the compute service as ``nova-compute``: a ``nova-*`` binary
in a request means the ``stratus-*`` service of the same name.
"""
from __future__ import annotations

from typing import Any, Callable

from sqlalchemy import delete as sql_delete, func, select, update as sql_update
from werkzeug.wrappers import Response

from stratus import exception
from stratus.api.compute import microversion, parameter_types
from stratus.api.compute.common import authorize, validate
from stratus.api.wsgi import Request, Route, empty_response, json_response
from stratus.db import aggregates as db_aggregates
from stratus.db import services as db_services
from stratus.db.models import (Aggregate, AggregateHost, Allocation, ComputeNode, Instance,
                               Service)
from stratus.db.session import Database
from stratus.utils import is_uuid_like, isotime_us, utcnow

COMPUTE_BINARY = "stratus-compute"
DEFAULT_ZONE = "nova"
INTERNAL_ZONE = "internal"

POLICY_LIST = "os_compute_api:os-services:list"
POLICY_UPDATE = "os_compute_api:os-services:update"
POLICY_DELETE = "os_compute_api:os-services:delete"

FORCED_DOWN_VERSION = "2.11"
SERVICE_UUID_VERSION = "2.53"

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


# nova/api/openstack/compute/schemas/services.py service_update_v2_53: nothing
# required (the service is on the path); status and/or forced_down.
UPDATE_SCHEMA_V253: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["enabled", "disabled"]},
        "disabled_reason": _REASON,
        "forced_down": parameter_types.boolean,
    },
    "additionalProperties": False,
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
    uuid_for_id = microversion.is_supported(req, SERVICE_UUID_VERSION)
    view = {
        "id": service["uuid"] if uuid_for_id else service["id"],
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
    if microversion.is_supported(req, SERVICE_UUID_VERSION):
        return update_by_uuid(req, action)
    body = req.json_body()
    schema = (UPDATE_SCHEMA_V211 if microversion.is_supported(req, FORCED_DOWN_VERSION)
              else UPDATE_SCHEMA)
    validate(schema, body)
    authorize(req, POLICY_UPDATE)
    handler = _actions(req).get(action)
    if handler is None:
        raise exception.NotFound("Unknown action")
    return json_response(handler(req, body))


# -- update by uuid (2.53) ------------------------------------------------------------

def _check_uuid(service_id: str) -> None:
    if not is_uuid_like(service_id):
        raise exception.Invalid(f"Invalid uuid {service_id}")


def _changes_v253(body: dict[str, Any]) -> dict[str, Any]:
    """The service columns a 2.53 update body sets; 400 for a reason with
    ``enabled`` or for a body that sets nothing (Nova's messages)."""
    values: dict[str, Any] = {}
    status = body.get("status")
    if status == "enabled":
        if body.get("disabled_reason"):
            raise exception.Invalid("Specifying 'disabled_reason' with status 'enabled' "
                                    "is invalid.")
        values.update(disabled=False, disabled_reason=None)
    elif status == "disabled":
        values.update(disabled=True, disabled_reason=body.get("disabled_reason"))
    if "forced_down" in body:
        values["forced_down"] = parameter_types.bool_from_string(body["forced_down"])
    if not values:
        raise exception.Invalid("No updates were requested. Fields 'status' or "
                                "'forced_down' should be specified.")
    return values


def update_by_uuid(req: Request, service_id: str) -> Response:
    """``PUT /os-services/{service_uuid}`` (2.53): the whole service back."""
    body = req.json_body()
    validate(UPDATE_SCHEMA_V253, body)
    _check_uuid(service_id)
    authorize(req, POLICY_UPDATE)
    service = db_services.service_get(req.state.db, service_id)
    if service["binary"] != COMPUTE_BINARY:
        raise exception.Invalid(f"Updating a {service['binary']} service is not supported. "
                                f"Only {COMPUTE_BINARY} services can be updated.")
    service = db_services.service_update(req.state.db, service_id, **_changes_v253(body))
    zones = db_aggregates.host_zones(req.state.db)
    view = service_view(req, service, zones)
    return json_response({"service": view})


# -- delete --------------------------------------------------------------------

def destroy_service(db: Database, service_id: int | str) -> None:
    """Delete a service (by id, or by uuid from 2.53); a compute service takes
    its compute nodes and its aggregate memberships with it.

    A compute service still hosting instances cannot go (409).
    """
    with db.write() as s:
        column = Service.id if isinstance(service_id, int) else Service.uuid
        service = s.scalars(select(Service).where(column == service_id)).one_or_none()
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
            # Nova removes the host from every aggregate it is in (touching them:
            # the schedulers re-read aggregates when one's updated_at moves).
            in_aggregates = select(AggregateHost.aggregate_id).where(
                AggregateHost.host == service.host)
            s.execute(sql_update(Aggregate).where(Aggregate.id.in_(in_aggregates))
                      .values(updated_at=utcnow()))
            s.execute(sql_delete(AggregateHost).where(AggregateHost.host == service.host))
        s.delete(service)


def delete(req: Request, service_id: str) -> Response:
    authorize(req, POLICY_DELETE)
    ident: int | str
    if microversion.is_supported(req, SERVICE_UUID_VERSION):
        _check_uuid(service_id)
        ident = service_id
    else:
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
