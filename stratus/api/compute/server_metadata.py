"""``/v2.1/servers/{id}/metadata``: Nova's server-metadata API.

GET lists, POST merges the given items, PUT replaces them all (both answer
200 with the resulting metadata); ``/metadata/{key}`` shows, sets (the body
must hold exactly that one key) and deletes one item.
"""
from __future__ import annotations

from werkzeug.wrappers import Response

from stratus import exception
from stratus.api.compute.common import get_server
from stratus.api.compute.schemas import servers as schema
from stratus.api.wsgi import Request, Route, empty_response, json_response

ITEM_NOT_FOUND = "Metadata item was not found"
POLICY_INDEX = "os_compute_api:server-metadata:index"
POLICY_SHOW = "os_compute_api:server-metadata:show"
POLICY_CREATE = "os_compute_api:server-metadata:create"
POLICY_UPDATE_ALL = "os_compute_api:server-metadata:update_all"
POLICY_UPDATE = "os_compute_api:server-metadata:update"
POLICY_DELETE = "os_compute_api:server-metadata:delete"


def routes() -> list[Route]:
    base = "/v2.1/servers/<server_id>/metadata"
    return [
        Route("GET", base, index),
        Route("POST", base, create),
        Route("PUT", base, update_all),
        Route("GET", base + "/<key>", show),
        Route("PUT", base + "/<key>", update),
        Route("DELETE", base + "/<key>", delete),
    ]


def index(req: Request, server_id: str) -> Response:
    metadata = get_server(req, server_id, POLICY_INDEX)["metadata"]
    return json_response({"metadata": metadata})


def create(req: Request, server_id: str) -> Response:
    """Merge: existing keys not in the body are kept (Nova answers 200)."""
    body = req.json_body()
    schema.validate_metadata_set(body)
    get_server(req, server_id, POLICY_CREATE)
    metadata = req.state.compute_api.update_metadata(req.context, server_id,
                                                     body["metadata"], replace=False)
    return json_response({"metadata": metadata})


def update_all(req: Request, server_id: str) -> Response:
    body = req.json_body()
    schema.validate_metadata_set(body)
    get_server(req, server_id, POLICY_UPDATE_ALL)
    metadata = req.state.compute_api.update_metadata(req.context, server_id,
                                                     body["metadata"], replace=True)
    return json_response({"metadata": metadata})


def show(req: Request, server_id: str, key: str) -> Response:
    metadata = get_server(req, server_id, POLICY_SHOW)["metadata"]
    if key not in metadata:
        raise exception.NotFound(ITEM_NOT_FOUND)
    return json_response({"meta": {key: metadata[key]}})


def update(req: Request, server_id: str, key: str) -> Response:
    body = req.json_body()
    schema.validate_metadata_item(body)
    item = body["meta"]
    if key not in item:
        raise exception.Invalid("Request body and URI mismatch")
    get_server(req, server_id, POLICY_UPDATE)
    req.state.compute_api.update_metadata(req.context, server_id, item, replace=False)
    return json_response({"meta": item})


def delete(req: Request, server_id: str, key: str) -> Response:
    get_server(req, server_id, POLICY_DELETE)
    req.state.compute_api.delete_metadata_item(req.context, server_id, key)
    return empty_response(204)
