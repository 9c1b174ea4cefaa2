"""``/os-server-groups`` (Nova's server_groups.py).

A server group has one policy: ``affinity``, ``anti-affinity`` (2.1) or,
from 2.15, ``soft-affinity``, ``soft-anti-affinity`` (a 400 before, as
Nova's schema). Servers join a group with the ``group`` scheduler hint at
create; the scheduler keeps affinity and anti-affinity (one member per host)
and weighs the soft policies. The 2.1 view: ``id``, ``name``, ``policies``
(one), ``members`` (live servers), ``metadata`` ({}); 2.13 adds
``project_id`` and ``user_id``. From 2.64 a group is created with one
``policy`` (a string; ``policies`` is refused) and optional ``rules``
(``max_server_per_host`` >= 1, anti-affinity only), and the view has
``policy`` and ``rules`` ({} when none) instead of ``policies`` and
``metadata``. An anti-affinity group's ``max_server_per_host`` is how many
members one host may hold (1 without it), kept by the scheduler's filter and
its claim. Users see their project's groups; admins see every project's with
``all_projects``. Create answers 200, delete 204.
"""
from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from stratus import exception, quota
from stratus.api.compute import microversion
from stratus.api.compute.common import authorize, query_int, validate
from stratus.api.compute.parameter_types import bool_from_string
from stratus.api.compute.schemas import (check_minimum, check_name, name as name_type,
                                         positive_integer)
from stratus.api.wsgi import Request, Route, empty_response, json_response
from stratus.db import quotas as db_quotas
from stratus.db import server_groups as db_groups
from stratus.utils import is_uuid_like

POLICY_INDEX = "os_compute_api:os-server-groups:index"
POLICY_INDEX_ALL = "os_compute_api:os-server-groups:index:all_projects"
POLICY_SHOW = "os_compute_api:os-server-groups:show"
POLICY_CREATE = "os_compute_api:os-server-groups:create"
POLICY_DELETE = "os_compute_api:os-server-groups:delete"

PROJECT_USER_VERSION = "2.13"   # project_id and user_id in the view
SOFT_POLICIES_VERSION = "2.15"  # soft-affinity and soft-anti-affinity
GROUP_RULES_VERSION = "2.64"    # policy (a string) and rules; no policies, no metadata
RULES_POLICY = "anti-affinity"  # the only policy that takes rules
MAX_PER_HOST_RULE = "max_server_per_host"
POLICIES_V21 = ("affinity", "anti-affinity")


def _create_schema(group: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "server_group": {
                "type": "object",
                "properties": {"name": name_type, **group},
                "required": ["name", *required],
                "additionalProperties": False,
            },
        },
        "required": ["server_group"],
        "additionalProperties": False,
    }


def _policies(policies: tuple[str, ...]) -> dict[str, Any]:
    return {"policies": {"type": "array", "minItems": 1, "maxItems": 1,
                         "items": [{"type": "string", "enum": list(policies)}],
                         "uniqueItems": True, "additionalItems": False}}


CREATE_SCHEMA = _create_schema(_policies(POLICIES_V21), ["policies"])
CREATE_SCHEMA_V215 = _create_schema(_policies(db_groups.POLICIES), ["policies"])
# Nova's create_v264: one policy, optional rules.
CREATE_SCHEMA_V264 = _create_schema({
    "policy": {"type": "string", "enum": list(db_groups.POLICIES)},
    "rules": {
        "type": "object",
        "properties": {MAX_PER_HOST_RULE: positive_integer},
        "additionalProperties": False,
    },
}, ["policy"])


def _create_schema_for(req: Request) -> dict[str, Any]:
    if microversion.is_supported(req, GROUP_RULES_VERSION):
        return CREATE_SCHEMA_V264
    if microversion.is_supported(req, SOFT_POLICIES_VERSION):
        return CREATE_SCHEMA_V215
    return CREATE_SCHEMA


def _rules(values: dict[str, Any]) -> dict[str, Any]:
    """The validated 2.64 ``rules`` as stored (max_server_per_host an int);
    a 400 when a policy other than anti-affinity has any."""
    rules = values.get("rules") or {}
    if MAX_PER_HOST_RULE in rules:  # part of Nova's schema check, so first
        check_minimum(MAX_PER_HOST_RULE, rules[MAX_PER_HOST_RULE], 1)
    if rules and values["policy"] != RULES_POLICY:
        raise exception.ValidationError("Only anti-affinity policy supports rules.")
    if MAX_PER_HOST_RULE not in rules:
        return {}
    # "2" passes Nova's positive_integer too; stored (and shown) as an int.
    return {MAX_PER_HOST_RULE: int(rules[MAX_PER_HOST_RULE])}


def view(group: dict[str, Any], with_owner: bool = False,
         with_rules: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"id": group["uuid"], "name": group["name"]}
    if with_rules:
        body["policy"] = group["policy"]
        body["rules"] = dict(group.get("rules") or {})
    else:
        body["policies"] = [group["policy"]]
        body["metadata"] = {}
    body["members"] = group["members"]
    if with_owner:
        body["project_id"] = group["project_id"]
        body["user_id"] = group["user_id"]
    return body


def _view(req: Request, group: dict[str, Any]) -> dict[str, Any]:
    return view(group, microversion.is_supported(req, PROJECT_USER_VERSION),
                microversion.is_supported(req, GROUP_RULES_VERSION))


def _scope(req: Request) -> str | None:
    """The project a caller's lookups are limited to (None: every project)."""
    return None if req.context.is_admin else req.context.project_id


def _get(req: Request, group_id: str) -> dict[str, Any]:
    if not is_uuid_like(group_id):
        raise db_groups.InstanceGroupNotFound(group_uuid=group_id)
    return db_groups.group_get(req.state.db, group_id, project_id=_scope(req))


def index(req: Request) -> Response:
    authorize(req, POLICY_INDEX)
    project: str | None = req.context.project_id
    all_projects = req.args.get("all_projects")
    if all_projects is not None and (all_projects == "" or bool_from_string(all_projects)):
        authorize(req, POLICY_INDEX_ALL)
        project = None
    offset = query_int(req, "offset", 0) or 0
    limit = query_int(req, "limit", 1)
    groups = db_groups.group_list(req.state.db, project_id=project)
    groups = groups[offset:offset + limit] if limit is not None else groups[offset:]
    return json_response({"server_groups": [_view(req, g) for g in groups]})


def create(req: Request) -> Response:
    authorize(req, POLICY_CREATE)
    body = req.json_body()
    validate(_create_schema_for(req), body)
    values = body["server_group"]
    check_name(values["name"])
    if microversion.is_supported(req, GROUP_RULES_VERSION):
        policy, rules = values["policy"], _rules(values)
    else:
        policy, rules = values["policies"][0], {}
    project_id = req.context.project_id
    with db_quotas.locked_write(req.state.db, project_id) as s:
        limits = quota.QuotaEngine(req.state.conf).limits(s, project_id)
        quota.check_server_groups(limits, db_quotas.count_server_groups(s, project_id))
        group = db_groups.group_add(s, name=values["name"], policy=policy, rules=rules,
                                    project_id=project_id, user_id=req.context.user_id)
    return json_response({"server_group": _view(req, group)})


def show(req: Request, group_id: str) -> Response:
    group = _get(req, group_id)
    authorize(req, POLICY_SHOW, {"project_id": group["project_id"],
                                     "user_id": group["user_id"]})
    return json_response({"server_group": _view(req, group)})


def delete(req: Request, group_id: str) -> Response:
    group = _get(req, group_id)
    authorize(req, POLICY_DELETE, {"project_id": group["project_id"],
                                       "user_id": group["user_id"]})
    db_groups.group_delete(req.state.db, group["uuid"])
    return empty_response(204)


def routes() -> list[Route]:
    return [
        Route("GET", "/os-server-groups", index),
        Route("POST", "/os-server-groups", create),
        Route("GET", "/os-server-groups/<group_id>", show),
        Route("DELETE", "/os-server-groups/<group_id>", delete),
    ]
