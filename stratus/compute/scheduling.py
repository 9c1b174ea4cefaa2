"""What a create request asks of the scheduler (Nova's compute API side).

* ``availability_zone`` may force a host or node, ``zone:host``,
  ``zone:host:node`` or ``zone::node`` (admins only, policy
  ``os_compute_api:servers:create:forced_host``): the scheduler then
  bypasses its filters for that host, as Nova does (capacity still holds);
* ``os:scheduler_hints`` travel in the request spec: ``group`` (a server
  group, which the new instances join), ``same_host`` / ``different_host``
  (instance uuids), and any other hint as given;
* from 2.74 ``host`` and/or ``hypervisor_hostname`` (policy
  ``compute:servers:create:requested_destination``) become the request
  spec's ``requested_destination``: the only host / node the scheduler
  considers, through every filter (unlike a forced host).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from sqlalchemy.orm import Session

from stratus import exception, policy, quota
from stratus.context import RequestContext
from stratus.db import server_groups as db_groups
from stratus.db import services as db_services
from stratus.db.session import Database
from stratus.utils import is_uuid_like

FORCED_HOST_RULE = "os_compute_api:servers:create:forced_host"


@dataclasses.dataclass
class Placement:
    zone: str | None
    spec: dict[str, Any]          # extra request-spec keys for the scheduler
    group_uuid: str | None = None


def parse_availability_zone(value: str | None) -> tuple[str | None, str | None, str | None]:
    """(zone, forced host, forced node) from Nova's ``zone:host:node`` forms."""
    if not value or ":" not in value:
        return value or None, None, None
    parts = value.split(":")
    if len(parts) == 2:
        zone, host, node = parts[0], parts[1], None
    elif len(parts) == 3 and "::" in value:
        zone, host, node = parts[0], None, parts[2]
    elif len(parts) == 3:
        zone, host, node = parts
    else:
        raise exception.Invalid("Unable to parse availability_zone")
    return zone or None, host or None, node or None


def prepare(ctx: RequestContext, db: Database, availability_zone: str | None,
            hints: dict[str, Any] | None) -> Placement:
    zone, host, node = parse_availability_zone(availability_zone)
    spec: dict[str, Any] = {}
    if host or node:
        policy.authorize(ctx, FORCED_HOST_RULE, {"project_id": ctx.project_id})
        spec["force_hosts"] = [host] if host else []
        spec["force_nodes"] = [node] if node else []
    hints = dict(hints or {})
    group_uuid = hints.get("group")
    if isinstance(group_uuid, list):
        group_uuid = group_uuid[0] if group_uuid else None
    if group_uuid is not None and is_uuid_like(group_uuid):
        try:
            db_groups.group_get(db, group_uuid,
                                project_id=None if ctx.is_admin else ctx.project_id)
        except db_groups.InstanceGroupNotFound as exc:
            raise exception.Invalid(exc.message)
    else:
        group_uuid = None
    if hints:
        spec["scheduler_hints"] = hints
    return Placement(zone=zone, spec=spec, group_uuid=group_uuid)


def requested_destination(db: Database, host: str | None, node: str | None
                          ) -> dict[str, str | None]:
    """Nova's ``_validate_host_or_node``: the named host must have a compute
    node (and that node, when both are named), or a node of that name must
    exist; ComputeHostNotFound names the host, or the node when only it was
    given."""
    if host:
        nodes = db_services.compute_node_get_all(db, host=host)
        if not nodes or (node and all(n["hypervisor_hostname"] != node for n in nodes)):
            raise exception.ComputeHostNotFound(host=host)
    elif node and not db_services.compute_node_get_all(db, hypervisor_hostname=node):
        raise exception.ComputeHostNotFound(host=node)
    return {"host": host, "node": node}


def record_members(s: Session, placement: Placement, instance_uuids: list[str],
                   limits: Mapping[str, int]) -> None:
    """The new instances join the hinted server group (before they are
    scheduled), in the create's quota-locked transaction: past
    ``server_group_members`` nothing is created."""
    if placement.group_uuid:
        before = db_groups.members_join(s, placement.group_uuid, instance_uuids)
        quota.check_group_members(limits, before, len(instance_uuids))
