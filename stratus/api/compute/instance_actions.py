"""``/v2.1/servers/{id}/os-instance-actions``: the actions recorded for a
server, as Nova's instance_actions.py at microversion 2.1; from 2.21 a deleted
server's actions too.

Events are part of an action's body only for admins at 2.1 (they became
visible to owners, without traceback, at 2.51).
"""
from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from stratus import exception
from stratus.api.compute import microversion
from stratus.api.compute.common import can, get_server, owner_target
from stratus.api.compute.views.servers import isotime_us
from stratus.api.wsgi import Request, Route, json_response

ACTION_KEYS = ("action", "instance_uuid", "request_id", "user_id", "project_id",
               "start_time", "message")
EVENT_KEYS = ("event", "start_time", "finish_time", "result", "traceback")
_TIME_KEYS = frozenset(["start_time", "finish_time"])
POLICY_LIST = "os_compute_api:os-instance-actions:list"
POLICY_SHOW = "os_compute_api:os-instance-actions:show"
POLICY_EVENTS = "os_compute_api:os-instance-actions:events"
DELETED_SERVERS_VERSION = "2.21"


def routes() -> list[Route]:
    base = "/v2.1/servers/<server_id>/os-instance-actions"
    return [Route("GET", base, index), Route("GET", base + "/<request_id>", show)]


def _deleted_too(req: Request) -> bool:
    return microversion.is_supported(req, DELETED_SERVERS_VERSION)


def _value(raw: dict[str, Any], key: str) -> Any:
    value = raw.get(key)
    if key in _TIME_KEYS and value is not None and not isinstance(value, str):
        return isotime_us(value)
    return value


def format_action(raw: dict[str, Any]) -> dict[str, Any]:
    return {key: _value(raw, key) for key in ACTION_KEYS}


def format_event(raw: dict[str, Any]) -> dict[str, Any]:
    return {key: _value(raw, key) for key in EVENT_KEYS}


def index(req: Request, server_id: str) -> Response:
    get_server(req, server_id, POLICY_LIST, read_deleted=_deleted_too(req))
    actions = req.state.compute_api.get_actions(req.context, server_id, _deleted_too(req))
    return json_response({"instanceActions": [format_action(a) for a in actions]})


def show(req: Request, server_id: str, request_id: str) -> Response:
    instance = get_server(req, server_id, POLICY_SHOW, read_deleted=_deleted_too(req))
    try:
        raw = req.state.compute_api.get_action(req.context, server_id, request_id,
                                               _deleted_too(req))
    except exception.InstanceNotFound:
        raise
    except exception.NotFound:
        raw = None
    if raw is None:
        raise exception.NotFound(f"Action {request_id} not found")
    action = format_action(raw)
    if can(req, POLICY_EVENTS, owner_target(instance)):
        action["events"] = [format_event(e) for e in raw.get("events") or ()]
    return json_response({"instanceAction": action})
