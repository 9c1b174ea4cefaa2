"""Helpers every compute API resource uses: validation, policy, paging, links."""
from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlencode

import jsonschema

from stratus import exception, policy
from stratus.api.compute.parameter_types import SQL_INT_MAX
from stratus.api.compute.query import query_error
from stratus.api.wsgi import Request
from stratus.utils import is_uuid_like


@dataclasses.dataclass
class ComputeState:
    """What compute API handlers reach through ``req.state``."""

    conf: Any            # stratus.conf.Config
    db: Any              # stratus.db.Database
    compute_api: Any     # stratus.compute.api.ComputeAPI


def validate(schema: dict[str, Any], body: Any) -> None:
    """Check ``body`` against a JSON schema; failures are Nova-style 400s.

    The message names the offending field, as Nova's ``Invalid input for
    field/attribute name. Value: ... . ...`` does.
    """
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
    error = jsonschema.exceptions.best_match(validator.iter_errors(body))
    if error is None:
        return
    path = [p for p in error.absolute_path if not isinstance(p, int)]
    if path:
        field = str(path[-1])  # Nova names the attribute itself: "name", not "server/name"
        msg = (f"Invalid input for field/attribute {field}. "
               f"Value: {error.instance}. {error.message}")
    else:
        msg = f"Invalid input for field/attribute. {error.message}"
    raise exception.ValidationError(msg)


def authorize(req: Request, rule: str, target: dict[str, Any] | None = None) -> None:
    """403 unless the policy rule allows the caller on ``target`` (by default
    the caller's own project and user); see :mod:`stratus.policy`. Every
    compute API handler calls this (Nova's ``context.can``)."""
    policy.authorize(req.context, rule, target)


def can(req: Request, rule: str, target: dict[str, Any] | None = None) -> bool:
    """Whether the policy rule allows the caller (Nova's ``context.can(...,
    fatal=False)``), for what a response shows rather than what it does."""
    return policy.check(req.context, rule, target)


def owner_target(instance: dict[str, Any]) -> dict[str, Any]:
    """The policy target of an existing server: its project and user."""
    return {"project_id": instance.get("project_id"), "user_id": instance.get("user_id")}


def get_server(req: Request, server_id: str, rule: str,
               read_deleted: bool = False) -> dict[str, Any]:
    """Nova's ``common.get_instance`` then ``context.can(rule, target)``.

    The lookup is scoped to the caller's project unless it is an admin, so
    another project's server is a 404 (it is not revealed by a 403); a server
    the caller can see but whose rule it fails (a reader acting) is a 403.
    ``read_deleted`` finds deleted servers too.
    """
    if not is_uuid_like(server_id):
        raise exception.InstanceNotFound(instance_id=server_id)
    instance = req.state.compute_api.get(req.context, server_id, read_deleted)
    authorize(req, rule, owner_target(instance))
    return instance


def query_int(req: Request, name: str, minimum: int = 0,
              maximum: int | None = SQL_INT_MAX) -> int | None:
    """An integer query parameter, within [minimum, maximum] (an Integer
    column's range by default: a larger filter value is a 400, not a database
    error), or None when absent."""
    raw = req.args.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise query_error(name, raw, f"'{raw}' is not a 'integer'")
    if value < minimum:
        raise query_error(name, raw, f"{value} is less than the minimum of {minimum}")
    if maximum is not None and value > maximum:
        raise query_error(name, raw, f"{value} is greater than the maximum of {maximum}")
    return value


def limit_and_marker(req: Request) -> tuple[int, str | None]:
    """``limit`` (capped at [api] max_limit) and ``marker`` from the query."""
    max_limit = req.state.conf.api.max_limit
    limit = query_int(req, "limit", 0, maximum=None)
    limit = max_limit if limit is None else min(limit, max_limit)
    return limit, req.args.get("marker")


def base_url(req: Request) -> str:
    """Public URL of the compute API, e.g. ``http://127.0.0.1:8774/compute``."""
    return req.state.conf.api.public_url + "/compute"


def link_prefixes(req: Request) -> tuple[str, str]:
    """The prefixes of Nova's links: (versioned, bookmark), e.g.
    ``.../compute/v2.1`` and ``.../compute``; each followed by the project id
    when the request's URL held one (``/v2.1/{project_id}/...``)."""
    root = base_url(req)
    project = f"/{req.url_project_id}" if req.url_project_id else ""
    return f"{root}/v2.1{project}", f"{root}{project}"


def resource_links(req: Request, collection: str, ident: str) -> list[dict[str, str]]:
    """Nova's ``links``: a versioned ``self`` and an unversioned ``bookmark``."""
    versioned, bookmark = link_prefixes(req)
    return [
        {"rel": "self", "href": f"{versioned}/{collection}/{ident}"},
        {"rel": "bookmark", "href": f"{bookmark}/{collection}/{ident}"},
    ]


def next_link(req: Request, collection: str, items: list[dict[str, Any]], limit: int,
              marker_key: str = "id") -> list[dict[str, str]]:
    """``[{"rel": "next", "href": ...}]`` when a full page came back, else []."""
    if not items or len(items) < limit:
        return []
    params = [(k, v) for k, v in req.args.items(multi=True) if k != "marker"]
    params.append(("marker", str(items[-1][marker_key])))
    return [{"rel": "next",
             "href": f"{link_prefixes(req)[0]}/{collection}?{urlencode(params)}"}]
