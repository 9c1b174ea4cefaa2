"""``/v2.1/servers/{id}/tags`` (microversion 2.26, Nova's server_tags.py).

``GET /tags`` lists a server's tags, ``PUT /tags`` replaces them all (200 and
the new list), ``DELETE /tags`` removes them all (204); ``GET /tags/{tag}``
answers 204 when the server has the tag (404 otherwise), ``PUT /tags/{tag}``
adds one (201 with a Location, 204 if it was there), ``DELETE /tags/{tag}``
removes one (204). A tag is 1-60 characters without '/' or ','; a server has
at most 50. Changes need the server ACTIVE, PAUSED, SUSPENDED or STOPPED
(else 409). Before 2.26 every route is a 404.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

import jsonschema
from werkzeug.wrappers import Response

from stratus import exception
from stratus.api.compute import common, microversion
from stratus.api.compute.schemas.servers import tag as tag_type
from stratus.api.compute.views.servers import TAGS_VERSION
from stratus.api.wsgi import Request, Route, empty_response, json_response
from stratus.compute import vm_states
from stratus.db import tags as db_tags

POLICY_INDEX = "os_compute_api:os-server-tags:index"
POLICY_SHOW = "os_compute_api:os-server-tags:show"
POLICY_UPDATE = "os_compute_api:os-server-tags:update"
POLICY_UPDATE_ALL = "os_compute_api:os-server-tags:update_all"
POLICY_DELETE = "os_compute_api:os-server-tags:delete"
POLICY_DELETE_ALL = "os_compute_api:os-server-tags:delete_all"
# The states in which Nova lets a server's tags change.
TAGGABLE_STATES = frozenset([vm_states.ACTIVE, vm_states.PAUSED, vm_states.SUSPENDED,
                             vm_states.STOPPED])

UPDATE_ALL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "tags": {"type": "array", "items": tag_type, "maxItems": db_tags.MAX_TAG_COUNT},
    },
    "required": ["tags"],
    "additionalProperties": False,
}
UPDATE_SCHEMA: dict[str, Any] = {"type": "null"}  # PUT /tags/{tag} takes no body


def routes() -> list[Route]:
    base = "/v2.1/servers/<server_id>/tags"
    only_in = microversion.only_in
    return [
        Route("GET", base, only_in(index, since=TAGS_VERSION)),
        Route("PUT", base, only_in(update_all, since=TAGS_VERSION)),
        Route("DELETE", base, only_in(delete_all, since=TAGS_VERSION)),
        Route("GET", base + "/<tag>", only_in(show, since=TAGS_VERSION)),
        Route("PUT", base + "/<tag>", only_in(update, since=TAGS_VERSION)),
        Route("DELETE", base + "/<tag>", only_in(delete, since=TAGS_VERSION)),
    ]


def _changeable(req: Request, server_id: str, rule: str, action: str) -> dict[str, Any]:
    """The server, once the rule allows the change and its state does."""
    instance = common.get_server(req, server_id, rule)
    if instance["vm_state"] not in TAGGABLE_STATES:
        raise exception.InstanceInvalidState(action=action, instance_uuid=server_id,
                                             attr="vm_state", state=instance["vm_state"])
    return instance


def index(req: Request, server_id: str) -> Response:
    common.get_server(req, server_id, POLICY_INDEX)
    return json_response({"tags": db_tags.tags_get(req.state.db, server_id)})


def show(req: Request, server_id: str, tag: str) -> Response:
    common.get_server(req, server_id, POLICY_SHOW)
    if not db_tags.tag_exists(req.state.db, server_id, tag):
        raise exception.NotFound(f"Server {server_id} has no tag '{tag}'")
    return empty_response(204)


def update(req: Request, server_id: str, tag: str) -> Response:
    if req.get_data(cache=True):
        common.validate(UPDATE_SCHEMA, req.json_body())
    _changeable(req, server_id, POLICY_UPDATE, "update tag")
    try:
        jsonschema.validate(tag, tag_type)
    except jsonschema.ValidationError as exc:
        raise exception.Invalid(
            f"Tag '{tag}' is invalid. It must be a non empty string without characters "
            f"'/' and ','. Validation error message: {exc.message}")
    if not db_tags.tag_add(req.state.db, server_id, tag):
        return empty_response(204)
    location = f"{common.link_prefixes(req)[0]}/servers/{server_id}/tags/{quote(tag)}"
    return empty_response(201, headers={"Location": location})


def update_all(req: Request, server_id: str) -> Response:
    body = req.json_body()
    common.validate(UPDATE_ALL_SCHEMA, body)
    _changeable(req, server_id, POLICY_UPDATE_ALL, "update tags")
    return json_response({"tags": db_tags.tags_set(req.state.db, server_id, body["tags"])})


def delete(req: Request, server_id: str, tag: str) -> Response:
    _changeable(req, server_id, POLICY_DELETE, "delete tag")
    db_tags.tag_delete(req.state.db, server_id, tag)
    return empty_response(204)


def delete_all(req: Request, server_id: str) -> Response:
    _changeable(req, server_id, POLICY_DELETE_ALL, "delete tags")
    db_tags.tags_delete_all(req.state.db, server_id)
    return empty_response(204)
