"""``/os-aggregates`` at microversion 2.1 (Nova's aggregates.py); admin only.

Host aggregates group compute hosts and carry metadata the scheduler reads:
``availability_zone`` (also settable as the aggregate's own field) puts the
hosts in that zone, other keys feed AggregateInstanceExtraSpecsFilter,
AggregateMultiTenancyIsolation (``filter_tenant_id*``) and the per-aggregate
weigher multipliers (``ram_weight_multiplier``...). Actions on
``POST /os-aggregates/{id}/action``: ``add_host``, ``remove_host``,
``set_metadata`` (a null value deletes a key). A host belongs to one zone:
adding it to an aggregate of another zone is refused (400). Every aggregate
body has the aggregate's ``uuid`` from 2.41 (``AGGREGATE_UUID_VERSION``);
create answers without ``hosts`` and ``metadata``, as Nova does; delete
answers 200.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

from werkzeug.wrappers import Response

from stratus import exception
from stratus.api.compute import microversion, parameter_types
from stratus.api.compute.common import authorize, validate
from stratus.api.compute.schemas import check_name, name as name_type
from stratus.api.wsgi import Request, Route, json_response
from stratus.db import aggregates as db_aggregates
from stratus.db import services as db_services
from stratus.utils import isotime_us

POLICY_INDEX = "os_compute_api:os-aggregates:index"
POLICY_CREATE = "os_compute_api:os-aggregates:create"
POLICY_SHOW = "os_compute_api:os-aggregates:show"
POLICY_UPDATE = "os_compute_api:os-aggregates:update"
POLICY_DELETE = "os_compute_api:os-aggregates:delete"
POLICY_ADD_HOST = "os_compute_api:os-aggregates:add_host"
POLICY_REMOVE_HOST = "os_compute_api:os-aggregates:remove_host"
POLICY_SET_METADATA = "os_compute_api:os-aggregates:set_metadata"
COMPUTE_BINARY = "stratus-compute"
INTERNAL_ZONE = "internal"
AGGREGATE_UUID_VERSION = "2.41"

_ZONE = {"type": ["string", "null"], "minLength": 1, "maxLength": 255}
_NAME_PADDED = {"type": "string", "minLength": 1, "maxLength": 255}
_METADATA_WITH_NULL = copy.deepcopy(parameter_types.metadata)
_METADATA_WITH_NULL["patternProperties"]["^[a-zA-Z0-9-_:. ]{1,255}$"]["type"] = [
    "string", "null"]


def _body(key: str, properties: dict[str, Any], required: list[str] | None = None,
          **extra: Any) -> dict[str, Any]:
    inner: dict[str, Any] = {"type": "object", "properties": properties,
                             "additionalProperties": False, **extra}
    if required:
        inner["required"] = required
    return {"type": "object", "properties": {key: inner}, "required": [key],
            "additionalProperties": False}


CREATE_SCHEMA = _body("aggregate", {"name": name_type, "availability_zone": _ZONE}, ["name"])
UPDATE_SCHEMA = _body("aggregate", {"name": _NAME_PADDED, "availability_zone": _ZONE},
                      anyOf=[{"required": ["name"]}, {"required": ["availability_zone"]}])
ADD_HOST_SCHEMA = _body("add_host", {"host": parameter_types.hostname}, ["host"])
REMOVE_HOST_SCHEMA = _body("remove_host", {"host": parameter_types.hostname}, ["host"])
SET_METADATA_SCHEMA = _body("set_metadata", {"metadata": _METADATA_WITH_NULL}, ["metadata"])


def view(req: Request, agg: dict[str, Any], full: bool = True) -> dict[str, Any]:
    body = {"id": agg["id"], "name": agg["name"],
            "availability_zone": agg["availability_zone"],
            "created_at": isotime_us(agg["created_at"]),
            "updated_at": isotime_us(agg["updated_at"]),
            "deleted": False, "deleted_at": None}
    if full:
        body.update(hosts=agg["hosts"], metadata=agg["metadata"])
    if microversion.is_supported(req, AGGREGATE_UUID_VERSION):
        body["uuid"] = agg["uuid"]
    return body


def _aggregate_id(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise db_aggregates.AggregateNotFound(aggregate_id=value)


def _check_zone(zone: str | None) -> None:
    if zone == INTERNAL_ZONE:
        raise exception.Invalid(f"Aggregates cannot be in the {INTERNAL_ZONE} "
                                f"availability zone.")


# -- collection ------------------------------------------------------------------

def index(req: Request) -> Response:
    authorize(req, POLICY_INDEX)
    return json_response({"aggregates": [view(req, a) for a in
                                         db_aggregates.aggregate_get_all(req.state.db)]})


def create(req: Request) -> Response:
    authorize(req, POLICY_CREATE)
    body = req.json_body()
    validate(CREATE_SCHEMA, body)
    values = body["aggregate"]
    check_name(values["name"])
    _check_zone(values.get("availability_zone"))
    agg = db_aggregates.aggregate_create(req.state.db, values["name"].strip(),
                                         values.get("availability_zone"))
    return json_response({"aggregate": view(req, agg, full=False)})


# -- one aggregate -------------------------------------------------------------------

def show(req: Request, aggregate_id: str) -> Response:
    authorize(req, POLICY_SHOW)
    agg = db_aggregates.aggregate_get(req.state.db, _aggregate_id(aggregate_id))
    return json_response({"aggregate": view(req, agg)})


def update(req: Request, aggregate_id: str) -> Response:
    authorize(req, POLICY_UPDATE)
    body = req.json_body()
    validate(UPDATE_SCHEMA, body)
    values = dict(body["aggregate"])
    if "name" in values:
        values["name"] = values["name"].strip()
        if not values["name"]:
            raise exception.ValidationError("Invalid input for field/attribute name. "
                                            "Value: . '' is too short")
    _check_zone(values.get("availability_zone"))
    agg = db_aggregates.aggregate_update(req.state.db, _aggregate_id(aggregate_id), values)
    return json_response({"aggregate": view(req, agg)})


def delete(req: Request, aggregate_id: str) -> Response:
    authorize(req, POLICY_DELETE)
    db_aggregates.aggregate_delete(req.state.db, _aggregate_id(aggregate_id))
    return Response(status=200)


# -- actions -------------------------------------------------------------------------

def _add_host(req: Request, agg_id: int, body: dict[str, Any]) -> dict[str, Any]:
    validate(ADD_HOST_SCHEMA, body)
    host = body["add_host"]["host"]
    if not db_services.service_get_all(req.state.db, binary=COMPUTE_BINARY, host=host):
        raise exception.ComputeHostNotFound(host=host)
    return db_aggregates.aggregate_add_host(req.state.db, agg_id, host)


def _remove_host(req: Request, agg_id: int, body: dict[str, Any]) -> dict[str, Any]:
    validate(REMOVE_HOST_SCHEMA, body)
    host = body["remove_host"]["host"]
    try:
        return db_aggregates.aggregate_remove_host(req.state.db, agg_id, host)
    except db_aggregates.AggregateHostNotFound:
        raise exception.NotFound(f"Cannot remove host {host} in aggregate {agg_id}")


def _set_metadata(req: Request, agg_id: int, body: dict[str, Any]) -> dict[str, Any]:
    validate(SET_METADATA_SCHEMA, body)
    metadata = body["set_metadata"]["metadata"]
    _check_zone(metadata.get(db_aggregates.AZ_KEY))
    return db_aggregates.aggregate_set_metadata(req.state.db, agg_id, metadata)


# action -> (its policy rule, its handler)
_ACTIONS: dict[str, tuple[str, Callable[[Request, int, dict[str, Any]], dict[str, Any]]]] = {
    "add_host": (POLICY_ADD_HOST, _add_host),
    "remove_host": (POLICY_REMOVE_HOST, _remove_host),
    "set_metadata": (POLICY_SET_METADATA, _set_metadata)}


def action(req: Request, aggregate_id: str) -> Response:
    body = req.json_body()
    name = next((key for key in _ACTIONS if isinstance(body, dict) and key in body), None)
    if name is None:
        raise exception.Invalid("There is no such action: "
                                f"{', '.join(body) if isinstance(body, dict) else body}")
    rule, handler = _ACTIONS[name]
    authorize(req, rule)
    agg = handler(req, _aggregate_id(aggregate_id), body)
    return json_response({"aggregate": view(req, agg)})


def routes() -> list[Route]:
    return [
        Route("GET", "/os-aggregates", index),
        Route("POST", "/os-aggregates", create),
        Route("GET", "/os-aggregates/<aggregate_id>", show),
        Route("PUT", "/os-aggregates/<aggregate_id>", update),
        Route("DELETE", "/os-aggregates/<aggregate_id>", delete),
        Route("POST", "/os-aggregates/<aggregate_id>/action", action),
    ]
