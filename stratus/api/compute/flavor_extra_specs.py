"""``/flavors/{flavor_id}/os-extra_specs``: a flavor's key/value properties.

Anyone who can see the flavor may read them; only admins write. Writes echo
the request body back, as Nova does (numbers are stored as strings).
"""
from __future__ import annotations

import copy
from typing import Any

from werkzeug.wrappers import Response

from stratus import exception
from stratus.api.compute import parameter_types
from stratus.api.compute.common import authorize, validate
from stratus.api.wsgi import Request, Route, empty_response, json_response
from stratus.db import flavors as db_flavors

POLICY_INDEX = "os_compute_api:os-flavor-extra-specs:index"
POLICY_SHOW = "os_compute_api:os-flavor-extra-specs:show"
POLICY_CREATE = "os_compute_api:os-flavor-extra-specs:create"
POLICY_UPDATE = "os_compute_api:os-flavor-extra-specs:update"
POLICY_DELETE = "os_compute_api:os-flavor-extra-specs:delete"

_KEY_PATTERN = "^[a-zA-Z0-9-_:. ]{1,255}$"


def _metadata_schema() -> dict[str, Any]:
    """Nova's ``metadata`` whose values may also be numbers."""
    schema = copy.deepcopy(parameter_types.metadata)
    schema["patternProperties"][_KEY_PATTERN]["type"] = ["string", "number"]
    return schema


CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"extra_specs": _metadata_schema()},
    "required": ["extra_specs"],
    "additionalProperties": False,
}

UPDATE_SCHEMA: dict[str, Any] = {**_metadata_schema(), "minProperties": 1, "maxProperties": 1}


def _stored_values(specs: dict[str, Any]) -> dict[str, str]:
    """Values as stored: strings (the schema admits only strings and numbers).

    orjson reads integers beyond 64 bits as floats, so a number's text is
    always far below the 255 characters a value may have.
    """
    return {key: value if isinstance(value, str) else str(value)
            for key, value in specs.items()}


def index(req: Request, flavor_id: str) -> Response:
    authorize(req, POLICY_INDEX)
    specs = db_flavors.extra_specs_get(req.state.db, flavor_id, req.context)
    return json_response({"extra_specs": specs})


def create(req: Request, flavor_id: str) -> Response:
    body = req.json_body()
    validate(CREATE_SCHEMA, body)
    authorize(req, POLICY_CREATE)
    specs = _stored_values(body["extra_specs"])
    db_flavors.extra_specs_update_or_create(req.state.db, flavor_id, specs, req.context)
    return json_response(body)


def show(req: Request, flavor_id: str, key: str) -> Response:
    authorize(req, POLICY_SHOW)
    specs = db_flavors.extra_specs_get(req.state.db, flavor_id, req.context)
    if key not in specs:
        raise db_flavors.FlavorExtraSpecsNotFound(flavor_id=flavor_id, key=key)
    return json_response({key: specs[key]})


def update(req: Request, flavor_id: str, key: str) -> Response:
    body = req.json_body()
    validate(UPDATE_SCHEMA, body)
    authorize(req, POLICY_UPDATE)
    specs = _stored_values(body)
    if key not in specs:
        raise exception.Invalid("Request body and URI mismatch")
    db_flavors.extra_specs_update_or_create(req.state.db, flavor_id, specs, req.context)
    return json_response(body)


def delete(req: Request, flavor_id: str, key: str) -> Response:
    authorize(req, POLICY_DELETE)
    db_flavors.extra_spec_delete(req.state.db, flavor_id, key, req.context)
    return empty_response(200)


def routes() -> list[Route]:
    return [
        Route("GET", "/flavors/<flavor_id>/os-extra_specs", index),
        Route("POST", "/flavors/<flavor_id>/os-extra_specs", create),
        Route("GET", "/flavors/<flavor_id>/os-extra_specs/<key>", show),
        Route("PUT", "/flavors/<flavor_id>/os-extra_specs/<key>", update),
        Route("DELETE", "/flavors/<flavor_id>/os-extra_specs/<key>", delete),
    ]
