"""Allocations: the resources claimed for an instance on a compute node.

Every change of a node's allocations bumps the node's ``generation`` and
``updated_at`` (Placement bumps its resource provider's generation the same
way): a scheduler holding an older view of the node then fails its
compare-and-swap, and the schedulers' incremental refresh (nodes whose
``updated_at`` moved) sees the freed capacity.
"""
from __future__ import annotations

import collections
from typing import Any, Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from stratus.db.models import Allocation, ComputeNode
from stratus.utils import utcnow


def release(s: Session | Connection, consumer_uuid: str, keep_node: int | None = None) -> None:
    """Delete what ``consumer_uuid`` holds, in the caller's transaction.

    ``keep_node`` is a node whose generation the caller bumps itself (a claim
    replacing an allocation on the node it claims on).
    """
    # A plain read first: on MariaDB a DELETE that matches nothing still takes
    # gap locks, which deadlock with concurrent claims' inserts.
    node_ids = set(s.scalars(select(Allocation.compute_node_id)
                             .where(Allocation.consumer_uuid == consumer_uuid)))
    if not node_ids:
        return
    touched = sorted(node_ids - {keep_node})
    if touched:
        s.execute(update(ComputeNode).where(ComputeNode.id.in_(touched))
                  .values(generation=ComputeNode.generation + 1, updated_at=utcnow())
                  .execution_options(synchronize_session=False))
    s.execute(delete(Allocation).where(Allocation.consumer_uuid == consumer_uuid)
              .execution_options(synchronize_session=False))


def _sum(column: Any, node_id: int) -> Any:
    return (select(func.coalesce(func.sum(column), 0))
            .where(Allocation.compute_node_id == node_id).scalar_subquery())


def usage_columns(node_id: int) -> tuple[Any, ...]:
    """Scalar subqueries summing a node's allocations (vcpus, memory_mb, disk_gb),
    to select beside its row in one statement."""
    return (_sum(Allocation.vcpus, node_id).label("used_vcpus"),
            _sum(Allocation.memory_mb, node_id).label("used_memory_mb"),
            _sum(Allocation.disk_gb, node_id).label("used_disk_gb"))


def _usage_query() -> Any:
    return select(Allocation.compute_node_id,
                  func.coalesce(func.sum(Allocation.vcpus), 0),
                  func.coalesce(func.sum(Allocation.memory_mb), 0),
                  func.coalesce(func.sum(Allocation.disk_gb), 0),
                  func.count(Allocation.id)).group_by(Allocation.compute_node_id)


def usage(s: Session, node_ids: list[int] | None = None) -> dict[int, dict[str, int]]:
    """Claimed resources per node id (all nodes, or ``node_ids``):
    ``{id: {vcpus, memory_mb, disk_gb, instances}}``; nodes without
    allocations are absent."""
    q = _usage_query()
    if node_ids is not None:
        q = q.where(Allocation.compute_node_id.in_(node_ids))
    return {row[0]: {"vcpus": int(row[1]), "memory_mb": int(row[2]),
                     "disk_gb": int(row[3]), "instances": int(row[4])}
            for row in s.execute(q)}


def hosts_of(s: Session | Connection, consumer_uuids: Sequence[str], lock: bool = False,
             batch: int = 1000) -> collections.Counter[str]:
    """How many of ``consumer_uuids`` hold allocations on each host.

    ``lock`` reads the allocation rows with a shared lock, which also makes
    MariaDB read the latest committed rows rather than the transaction's
    snapshot (a claim checking a server group's policy needs that).
    """
    node_counts: collections.Counter[int] = collections.Counter()
    uuids = list(dict.fromkeys(consumer_uuids))
    for start in range(0, len(uuids), batch):
        q = select(Allocation.compute_node_id).where(
            Allocation.consumer_uuid.in_(uuids[start:start + batch]))
        if lock:
            q = q.with_for_update(read=True)
        node_counts.update(s.scalars(q))
    if not node_counts:
        return collections.Counter()
    hosts = {node_id: host for node_id, host in s.execute(
        select(ComputeNode.id, ComputeNode.host).where(ComputeNode.id.in_(list(node_counts))))}
    counts: collections.Counter[str] = collections.Counter()
    for node_id, count in node_counts.items():
        if node_id in hosts:
            counts[hosts[node_id]] += count
    return counts
