"""``/flavors``: list, detail, show, create, update and delete (Nova's
flavors.py and flavor_manage.py).

Everyone may list and show the flavors they can see (public ones plus the
private ones their project was given); only admins create, update and
delete, and only admins may filter on ``is_public``.

From 2.55 (``FLAVOR_DESCRIPTION_VERSION``) every flavor body, the brief list
included, has a ``description``; create accepts one and ``PUT
/flavors/{flavor_id}`` changes it (404 before 2.55). From 2.61
(``FLAVOR_EXTRA_SPECS_VERSION``) the detailed bodies (detail, show, create,
update) carry ``extra_specs`` when the caller passes the
``os-flavor-extra-specs:index`` policy. From 2.75 (``SWAP_INTEGER_VERSION``)
a flavor without swap shows ``"swap": 0`` rather than ``""``.
"""
from __future__ import annotations

import copy
import unicodedata
from typing import Any

from werkzeug.wrappers import Response

from stratus import exception
from stratus.api.compute import microversion, parameter_types
from stratus.api.compute.common import (authorize, can, limit_and_marker, next_link,
                                        resource_links, validate)
from stratus.api.compute.schemas import check_description, check_name, name as name_type
from stratus.api.wsgi import Request, Route, empty_response, json_response
from stratus.db import flavors as db_flavors

POLICY_CREATE = "os_compute_api:os-flavor-manage:create"
POLICY_DELETE = "os_compute_api:os-flavor-manage:delete"
POLICY_UPDATE = "os_compute_api:os-flavor-manage:update"
# Who may see a flavor's extra specs in its body (2.61): who may list them.
POLICY_EXTRA_SPECS_INDEX = "os_compute_api:os-flavor-extra-specs:index"

FLAVOR_DESCRIPTION_VERSION = "2.55"
FLAVOR_EXTRA_SPECS_VERSION = "2.61"
SWAP_INTEGER_VERSION = "2.75"


# nova/api/openstack/compute/schemas/flavor_manage.py ``create`` (2.1-2.54).
CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "flavor": {
            "type": "object",
            "properties": {
                "name": name_type,
                "id": {"type": ["string", "number", "null"],
                       "minLength": 1, "maxLength": 255,
                       "pattern": "^(?! )[a-zA-Z0-9. _-]+(?<! )$"},
                "ram": parameter_types.positive_integer_param,
                "vcpus": parameter_types.positive_integer_param,
                "disk": parameter_types.non_negative_integer_param,
                "OS-FLV-EXT-DATA:ephemeral": parameter_types.non_negative_integer_param,
                "swap": parameter_types.non_negative_integer_param,
                "rxtx_factor": {"type": ["number", "string"],
                                "pattern": r"^[0-9]+(\.[0-9]+)?$",
                                "minimum": 0, "exclusiveMinimum": True,
                                "maximum": parameter_types.SQL_SP_FLOAT_MAX},
                "os-flavor-access:is_public": parameter_types.boolean,
            },
            "required": ["name", "ram", "vcpus", "disk"],
            "additionalProperties": False,
        },
    },
    "required": ["flavor"],
    "additionalProperties": False,
}

# 2.55: an optional description, at most 65535 characters (a TEXT column);
# printable (check_flavor_description), or null.
FLAVOR_DESCRIPTION: dict[str, Any] = {"type": ["string", "null"], "minLength": 0,
                                      "maxLength": 65535}
CREATE_SCHEMA_V255: dict[str, Any] = copy.deepcopy(CREATE_SCHEMA)
CREATE_SCHEMA_V255["properties"]["flavor"]["properties"]["description"] = FLAVOR_DESCRIPTION
# flavor_manage.update_v2_55: the description is all there is to update.
UPDATE_SCHEMA_V255: dict[str, Any] = {
    "type": "object",
    "properties": {
        "flavor": {
            "type": "object",
            "properties": {"description": FLAVOR_DESCRIPTION},
            "required": ["description"],
            "additionalProperties": False,
        },
    },
    "required": ["flavor"],
    "additionalProperties": False,
}


# Nova builds its description pattern from the Basic Multilingual Plane only.
_BMP_LIMIT = 0xFFFF


def check_flavor_description(value: Any) -> None:
    """Nova's ``valid_description_regex``: printable characters of the BMP,
    no separator but the space kind (``Zs``); same 400 as a server's."""
    check_description(value)
    if isinstance(value, str) and any(
            ord(ch) >= _BMP_LIMIT or unicodedata.category(ch) in ("Zl", "Zp")
            for ch in value):
        raise exception.ValidationError(
            f"Invalid input for field/attribute description. Value: {value}. "
            f"{value!r} does not match the printable characters pattern")


# -- views ---------------------------------------------------------------------

def _shows_description(req: Request) -> bool:
    return microversion.is_supported(req, FLAVOR_DESCRIPTION_VERSION)


def shows_extra_specs(req: Request) -> bool:
    """Nova's ``context.can(os-flavor-extra-specs:index, fatal=False)`` from 2.61."""
    return (microversion.is_supported(req, FLAVOR_EXTRA_SPECS_VERSION)
            and can(req, POLICY_EXTRA_SPECS_INDEX))


def flavor_view(req: Request, flavor: dict[str, Any],
                extra_specs: bool = False) -> dict[str, Any]:
    """A flavor as ``GET /flavors/{id}`` shows it (swap is "" when 0 before
    2.75, 0 from 2.75), with ``description`` from 2.55 and, when
    ``extra_specs``, its extra specs."""
    no_swap: int | str = 0 if microversion.is_supported(req, SWAP_INTEGER_VERSION) else ""
    view = {
        "id": flavor["flavorid"],
        "name": flavor["name"],
        "ram": flavor["memory_mb"],
        "disk": flavor["root_gb"],
        "swap": flavor["swap"] or no_swap,
        "OS-FLV-EXT-DATA:ephemeral": flavor["ephemeral_gb"],
        "OS-FLV-DISABLED:disabled": flavor["disabled"],
        "vcpus": flavor["vcpus"],
        "os-flavor-access:is_public": flavor["is_public"],
        "rxtx_factor": flavor["rxtx_factor"] or "",
        "links": resource_links(req, "flavors", flavor["flavorid"]),
    }
    if _shows_description(req):
        view["description"] = flavor["description"]
    if extra_specs:
        view["extra_specs"] = dict(flavor["extra_specs"])
    return view


def flavor_brief_view(req: Request, flavor: dict[str, Any]) -> dict[str, Any]:
    view = {"id": flavor["flavorid"], "name": flavor["name"],
            "links": resource_links(req, "flavors", flavor["flavorid"])}
    if _shows_description(req):
        view["description"] = flavor["description"]
    return view


# -- queries -------------------------------------------------------------------

def _parse_is_public(raw: str | None) -> bool | None:
    if raw is None:
        return True  # only public flavors (and the project's private ones) by default
    if raw.strip().lower() == "none":
        return None
    try:
        return parameter_types.bool_from_string(raw)
    except ValueError:
        raise exception.Invalid(f"Invalid is_public filter [{raw}]")


def _int_filter(req: Request, name: str) -> int | None:
    raw = req.args.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise exception.Invalid(f"Invalid {name} filter [{raw}]")
    if abs(value) > parameter_types.SQL_INT_MAX:  # past the column's range
        raise exception.Invalid(f"Invalid {name} filter [{raw}]")
    return value


def _list(req: Request) -> tuple[list[dict[str, Any]], int]:
    limit, marker = limit_and_marker(req)
    ctx = req.context
    if ctx.is_admin:
        is_public = _parse_is_public(req.args.get("is_public"))
        disabled = None
    else:
        is_public, disabled = True, False
    flavors = db_flavors.flavor_get_all(
        req.state.db, ctx, is_public=is_public, disabled=disabled,
        min_memory_mb=_int_filter(req, "minRam"), min_root_gb=_int_filter(req, "minDisk"),
        sort_key=req.args.get("sort_key") or "flavorid",
        sort_dir=req.args.get("sort_dir") or "asc",
        limit=limit, marker=marker)
    return flavors, limit


def _list_body(req: Request, items: list[dict[str, Any]], limit: int,
               collection: str) -> dict[str, Any]:
    body: dict[str, Any] = {"flavors": items}
    links = next_link(req, collection, items, limit)
    if links:
        body["flavors_links"] = links
    return body


# -- handlers ------------------------------------------------------------------

def index(req: Request) -> Response:
    flavors, limit = _list(req)
    items = [flavor_brief_view(req, f) for f in flavors]
    return json_response(_list_body(req, items, limit, "flavors"))


def detail(req: Request) -> Response:
    flavors, limit = _list(req)
    extra_specs = shows_extra_specs(req)
    items = [flavor_view(req, f, extra_specs) for f in flavors]
    return json_response(_list_body(req, items, limit, "flavors/detail"))


def show(req: Request, flavor_id: str) -> Response:
    flavor = db_flavors.flavor_get_by_flavorid(req.state.db, flavor_id, req.context)
    return json_response({"flavor": flavor_view(req, flavor, shows_extra_specs(req))})


def _rxtx_factor(value: Any) -> float:
    try:
        factor = float(value)
    except (TypeError, ValueError):
        factor = -1.0
    if not 0 < factor <= parameter_types.SQL_SP_FLOAT_MAX:
        raise exception.Invalid(
            "Invalid input received: 'rxtx_factor' argument must be a float between 0 and "
            f"{parameter_types.SQL_SP_FLOAT_MAX:g}")
    return factor


def create(req: Request) -> Response:
    body = req.json_body()
    validate(CREATE_SCHEMA_V255 if _shows_description(req) else CREATE_SCHEMA, body)
    check_name(body["flavor"]["name"])
    check_flavor_description(body["flavor"].get("description"))
    authorize(req, POLICY_CREATE)
    vals = body["flavor"]
    flavor = db_flavors.flavor_create(
        req.state.db,
        name=vals["name"].strip(),
        flavorid=str(vals["id"]) if vals.get("id") else None,
        memory_mb=int(vals["ram"]),
        vcpus=int(vals["vcpus"]),
        root_gb=int(vals["disk"]),
        ephemeral_gb=int(vals.get("OS-FLV-EXT-DATA:ephemeral", 0)),
        swap=int(vals.get("swap", 0)),
        rxtx_factor=_rxtx_factor(vals.get("rxtx_factor", 1.0)),
        is_public=parameter_types.bool_from_string(
            vals.get("os-flavor-access:is_public", True)),
        description=vals.get("description"),
    )
    return json_response({"flavor": flavor_view(req, flavor, shows_extra_specs(req))})


def update(req: Request, flavor_id: str) -> Response:
    """``PUT /flavors/{flavor_id}`` (2.55): change the description."""
    body = req.json_body()
    validate(UPDATE_SCHEMA_V255, body)
    check_flavor_description(body["flavor"]["description"])
    authorize(req, POLICY_UPDATE)
    flavor = db_flavors.flavor_update_description(
        req.state.db, flavor_id, body["flavor"]["description"], req.context)
    return json_response({"flavor": flavor_view(req, flavor, shows_extra_specs(req))})


def delete(req: Request, flavor_id: str) -> Response:
    authorize(req, POLICY_DELETE)
    db_flavors.flavor_destroy(req.state.db, flavor_id)
    return empty_response(202)


def routes() -> list[Route]:
    return [
        Route("GET", "/flavors", index),
        Route("GET", "/flavors/detail", detail),
        Route("POST", "/flavors", create),
        Route("GET", "/flavors/<flavor_id>", show),
        Route("PUT", "/flavors/<flavor_id>",
              microversion.only_in(update, since=FLAVOR_DESCRIPTION_VERSION)),
        Route("DELETE", "/flavors/<flavor_id>", delete),
    ]
