"""``POST /v2.1/servers/{id}/action``: the server actions of microversion 2.1
that Stratus implements (os-stop, os-start, reboot, pause, unpause, suspend,
resume, lock, unlock). Each answers 202 with an empty body.

As in Nova's wsgi layer, the body must be a JSON object with exactly one key
(else 400 "Malformed request body"), and the key must name an action (else
400 "There is no such action: X") before the server is looked up.
"""
from __future__ import annotations

from typing import Any, Callable

import orjson
from werkzeug.wrappers import Response

from stratus import exception
from stratus.api.compute import common
from stratus.api.compute.schemas import servers as schema
from stratus.api.wsgi import Request, Route, empty_response

ActionHandler = Callable[[Request, str, Any], None]
POLICY_UNLOCK_OVERRIDE = "os_compute_api:os-lock-server:unlock:unlock_override"


def routes() -> list[Route]:
    return [Route("POST", "/v2.1/servers/<server_id>/action", server_action)]


def parse_action(data: bytes) -> tuple[str, Any]:
    """(action name, its argument) from a request body, Nova's action_peek."""
    try:
        body = orjson.loads(data) if data else None
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict) or len(body) != 1:
        raise exception.Invalid("Malformed request body")
    name = next(iter(body))
    return name, body


def _stop(req: Request, server_id: str, body: Any) -> None:
    req.state.compute_api.stop(req.context, server_id)


def _start(req: Request, server_id: str, body: Any) -> None:
    req.state.compute_api.start(req.context, server_id)


def _reboot(req: Request, server_id: str, body: Any) -> None:
    req.state.compute_api.reboot(req.context, server_id, body["reboot"]["type"].upper())


def _unlock(req: Request, server_id: str, body: Any) -> None:
    instance = req.state.compute_api.get(req.context, server_id)
    if not req.state.compute_api.is_expected_locked_by(req.context, instance):
        # A lock taken from another project (an admin's) needs unlock_override.
        common.authorize(req, POLICY_UNLOCK_OVERRIDE, {"project_id": instance["project_id"]})
    req.state.compute_api.unlock(req.context, server_id)


def _simple(method: str) -> ActionHandler:
    def handler(req: Request, server_id: str, body: Any) -> None:
        getattr(req.state.compute_api, method)(req.context, server_id)
    handler.__name__ = f"_{method}"
    return handler


# action name -> (body validator or None, handler, policy rule); the rule's
# target is the server's project and user (Nova's).
ACTIONS: dict[str, tuple[Callable[[Any], None] | None, ActionHandler, str]] = {
    "os-stop": (None, _stop, "os_compute_api:servers:stop"),
    "os-start": (None, _start, "os_compute_api:servers:start"),
    "reboot": (schema.validate_reboot, _reboot, "os_compute_api:servers:reboot"),
    "pause": (None, _simple("pause"), "os_compute_api:os-pause-server:pause"),
    "unpause": (None, _simple("unpause"), "os_compute_api:os-pause-server:unpause"),
    "suspend": (None, _simple("suspend"), "os_compute_api:os-suspend-server:suspend"),
    "resume": (None, _simple("resume"), "os_compute_api:os-suspend-server:resume"),
    "lock": (None, _simple("lock"), "os_compute_api:os-lock-server:lock"),
    "unlock": (None, _unlock, "os_compute_api:os-lock-server:unlock"),
}


def server_action(req: Request, server_id: str) -> Response:
    name, body = parse_action(req.get_data(cache=True))
    if name not in ACTIONS:
        raise exception.Invalid(f"There is no such action: {name}")
    validator, handler, rule = ACTIONS[name]
    if validator is not None:
        validator(body)
    common.get_server(req, server_id, rule)
    handler(req, server_id, body)
    return empty_response(202)
