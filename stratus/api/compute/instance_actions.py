"""``/v2.1/servers/{id}/os-instance-actions``: the actions recorded for a
server (Nova's instance_actions.py); from 2.21 a deleted server's actions too.

Events are part of an action's body for those the ``events`` policy allows
(admins; with ``traceback``, and from 2.62 the compute ``host``); from 2.51
every caller who may see the action gets them, without ``traceback``. 2.58
adds ``updated_at`` to actions and pages the list (``limit``, ``marker`` a
request id, ``changes-since``; strict query; a ``next`` link when a page is
full), newest first. 2.62 adds every event's ``hostId`` (the host hashed
with the server's project, as the server's ``hostId``).
"""
from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from stratus import exception
from stratus.api.compute import list_query, microversion
from stratus.api.compute.common import can, get_server, limit_and_marker, next_link, owner_target
from stratus.api.compute.views.servers import host_id, isotime_us
from stratus.api.wsgi import Request, Route, json_response

ACTION_KEYS = ("action", "instance_uuid", "request_id", "user_id", "project_id",
               "start_time", "message")
ACTION_KEYS_V258 = ACTION_KEYS + ("updated_at",)
EVENT_KEYS = ("event", "start_time", "finish_time", "result", "traceback")
_TIME_KEYS = frozenset(["start_time", "finish_time", "updated_at"])
POLICY_LIST = "os_compute_api:os-instance-actions:list"
POLICY_SHOW = "os_compute_api:os-instance-actions:show"
POLICY_EVENTS = "os_compute_api:os-instance-actions:events"
DELETED_SERVERS_VERSION = "2.21"
EVENTS_FOR_ALL_VERSION = "2.51"    # events for non-admins (no traceback)
PAGING_VERSION = "2.58"            # limit/marker/changes-since, updated_at, links
# (changes-before from 2.66: list_query.CHANGES_BEFORE_VERSION)
EVENT_HOST_VERSION = "2.62"        # hostId for all, host for the events policy


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


def format_action(raw: dict[str, Any], keys: tuple[str, ...] = ACTION_KEYS) -> dict[str, Any]:
    return {key: _value(raw, key) for key in keys}


def format_event(raw: dict[str, Any], project_id: str | None = None,
                 show_traceback: bool = True, show_host: bool = False,
                 show_host_id: bool = False) -> dict[str, Any]:
    """Nova's ``_format_event``: ``hostId`` hashes the host with ``project_id``."""
    event = {key: _value(raw, key) for key in EVENT_KEYS
             if key != "traceback" or show_traceback}
    if show_host:
        event["host"] = raw.get("host")
    if show_host_id:
        event["hostId"] = host_id(project_id, raw.get("host"))
    return event


def _action_keys(req: Request) -> tuple[str, ...]:
    return ACTION_KEYS_V258 if microversion.is_supported(req, PAGING_VERSION) else ACTION_KEYS


def _page(req: Request, server_id: str,
          actions: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """2.58: the page of ``actions`` (newest first) the query asks for, and its links."""
    since, before = list_query.changes_window(req)
    limit, marker = limit_and_marker(req)
    rest = list_query.after_marker(actions, marker, lambda a: a["request_id"])
    page = list_query.updated_within(rest, since, before)[:limit]
    links = next_link(req, f"servers/{server_id}/os-instance-actions", page, limit,
                      marker_key="request_id")
    return page, links


def index(req: Request, server_id: str) -> Response:
    paged = microversion.is_supported(req, PAGING_VERSION)
    if paged:  # Nova validates the query before it looks the server up
        list_query.check_strict(req, list_query.paging_params(req))
        list_query.changes_window(req)
        limit_and_marker(req)
    get_server(req, server_id, POLICY_LIST, read_deleted=_deleted_too(req))
    actions = req.state.compute_api.get_actions(req.context, server_id, _deleted_too(req))
    links: list[dict[str, str]] = []
    if paged:
        actions, links = _page(req, server_id, actions)
    body: dict[str, Any] = {"instanceActions": [format_action(a, _action_keys(req))
                                                for a in actions]}
    if links:
        body["links"] = links
    return json_response(body)


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
    action = format_action(raw, _action_keys(req))
    # Nova: the events policy shows every event detail (the traceback, from
    # 2.62 the host); from 2.51 the others see events without them. hostId is
    # for everyone from 2.62.
    full = can(req, POLICY_EVENTS, owner_target(instance))
    if full or microversion.is_supported(req, EVENTS_FOR_ALL_VERSION):
        project_id = action["project_id"] or instance.get("project_id")
        with_host = microversion.is_supported(req, EVENT_HOST_VERSION)
        action["events"] = [format_event(e, project_id, show_traceback=full,
                                         show_host=full and with_host,
                                         show_host_id=with_host)
                            for e in raw.get("events") or ()]
    return json_response({"instanceAction": action})
