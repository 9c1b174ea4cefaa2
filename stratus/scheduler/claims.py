"""Claiming resources on a compute node: a row lock plus a capacity check.

A claim bumps the node's ``generation`` (so caches see the node changed);
the bump locks the node's row until the transaction ends, so claims on one
node are serialised, whatever view of the node the scheduler decided on
(``generation`` is what it saw, kept for the log); the claim then sums
the node's allocations and refuses (:class:`InsufficientCapacity`) anything
past ``(total - reserved) * ratio``, whatever the scheduler believed — the
capacity holds even if every filter were disabled. The allocation replaces
whatever the consumer held before (as Placement's PUT /allocations does), so
a build scheduled again (a reschedule, a redelivered request) never holds
capacity twice. A refused claim changes nothing (the transaction rolls back).

For a member of an ``affinity`` or ``anti-affinity`` server group the claim
also locks the group's row and checks the policy against where the other
members hold allocations (:class:`GroupPolicyViolation`), so two schedulers
placing members of one group at the same time cannot break it.
"""
from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from stratus import exception
from stratus.db import allocations
from stratus.db import server_groups as db_groups
from stratus.db.models import Allocation, ComputeNode, InstanceGroup
from stratus.db.session import Database
from stratus.scheduler.capacity import capacity, fits
from stratus.scheduler.request import GroupInfo
from stratus.utils import utcnow

#: Group policies a claim enforces (the soft ones only weigh).
HARD_POLICIES = ("affinity", "anti-affinity")

_CAPACITY_COLUMNS = (ComputeNode.host, ComputeNode.vcpus, ComputeNode.memory_mb, ComputeNode.local_gb,
                     ComputeNode.reserved_vcpus, ComputeNode.reserved_memory_mb,
                     ComputeNode.reserved_disk_mb, ComputeNode.cpu_allocation_ratio,
                     ComputeNode.ram_allocation_ratio, ComputeNode.disk_allocation_ratio)


class InsufficientCapacity(exception.Conflict):
    msg_fmt = "Compute node %(node)s has not enough %(resource)s left."


class GroupPolicyViolation(exception.Conflict):
    msg_fmt = "Host %(host)s would break the %(policy)s policy of server group %(group)s."


def _check_group(s: Connection, group: GroupInfo, consumer_uuid: str, host: str) -> None:
    s.execute(update(InstanceGroup).where(InstanceGroup.uuid == group.uuid)
              .values(updated_at=utcnow()).execution_options(synchronize_session=False))
    others = [u for u in db_groups.member_uuids(s, group.uuid) if u != consumer_uuid]
    placed = allocations.hosts_of(s, others, lock=True)
    if group.policy == "affinity":
        broken = any(h != host for h, n in placed.items() if n)
    else:
        broken = placed.get(host, 0) >= group.max_per_host
    if broken:
        raise GroupPolicyViolation(host=host, policy=group.policy, group=group.uuid)


def _is_deadlock(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None) or (exc.orig.args[0] if exc.orig.args else None)
    return code in ("40P01", "40001", 1213, 1205) or "deadlock" in str(exc.orig).lower()


def claim(db: Database, node_id: int, generation: int, consumer_uuid: str,
          resources: dict[str, int], group: GroupInfo | None = None) -> None:
    """Claim or raise a :class:`stratus.exception.Conflict` (a database deadlock
    between claims counts as one: the scheduler re-reads and tries again)."""
    try:
        _claim(db, node_id, generation, consumer_uuid, resources, group)
    except DBAPIError as exc:
        if not _is_deadlock(exc):
            raise
        raise exception.ResourceProviderGenerationConflict(node=node_id) from exc


def _claim(db: Database, node_id: int, generation: int, consumer_uuid: str,
           resources: dict[str, int], group: GroupInfo | None) -> None:
    with db.write() as session:
        s = session.connection()  # Core statements only: skip the ORM's per-statement work
        # The bump locks the node's row: claims on a node run one after the
        # other and each re-checks the capacity below, so the generation the
        # scheduler saw needs no compare-and-swap (one that did made pipelined
        # claims on a busy node fail in a cascade).
        result = s.execute(update(ComputeNode)
                           .where(ComputeNode.id == node_id)
                           .values(generation=ComputeNode.generation + 1,
                                   updated_at=utcnow())
                           .execution_options(synchronize_session=False))
        if result.rowcount != 1:
            raise exception.ResourceProviderGenerationConflict(node=node_id)
        allocations.release(s, consumer_uuid, keep_node=node_id)
        node = s.execute(select(*_CAPACITY_COLUMNS, *allocations.usage_columns(node_id))
                         .where(ComputeNode.id == node_id)).one()._mapping
        used = {"vcpus": node["used_vcpus"], "memory_mb": node["used_memory_mb"],
                "disk_gb": node["used_disk_gb"]}
        short = fits(capacity(node), used, resources)
        if short is not None:
            raise InsufficientCapacity(node=node_id, resource=short)
        if group is not None and group.policy in HARD_POLICIES:
            _check_group(s, group, consumer_uuid, node["host"])
        s.execute(insert(Allocation).values(
            consumer_uuid=consumer_uuid, compute_node_id=node_id, vcpus=resources["vcpus"],
            memory_mb=resources["memory_mb"], disk_gb=resources["disk_gb"],
            created_at=utcnow()))
