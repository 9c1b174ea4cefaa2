"""Claiming resources on a compute node: compare-and-swap plus a capacity check.

A claim bumps the node's ``generation`` only if it is still the one the
scheduler read (the compare-and-swap: a scheduler working from an older view
of the node fails with :class:`ResourceProviderGenerationConflict`, re-reads
the node and decides again). The bump also locks the node's row until the
transaction ends, so claims on one node are serialised; the claim then sums
the node's allocations and refuses (:class:`InsufficientCapacity`) anything
past ``(total - reserved) * ratio``, whatever the scheduler believed — the
capacity holds even if every filter were disabled. The allocation replaces
whatever the consumer held before (as Placement's PUT /allocations does), so
a build scheduled again (a reschedule, a redelivered request) never holds
capacity twice. A refused claim changes nothing (the transaction rolls back).
"""
from __future__ import annotations

from sqlalchemy import select, update

from stratus import exception
from stratus.db import allocations
from stratus.db.models import Allocation, ComputeNode
from stratus.db.session import Database
from stratus.scheduler.capacity import capacity, fits
from stratus.utils import utcnow

_CAPACITY_COLUMNS = (ComputeNode.vcpus, ComputeNode.memory_mb, ComputeNode.local_gb,
                     ComputeNode.reserved_vcpus, ComputeNode.reserved_memory_mb,
                     ComputeNode.reserved_disk_mb, ComputeNode.cpu_allocation_ratio,
                     ComputeNode.ram_allocation_ratio, ComputeNode.disk_allocation_ratio)


class InsufficientCapacity(exception.Conflict):
    msg_fmt = "Compute node %(node)s has not enough %(resource)s left."


def claim(db: Database, node_id: int, generation: int, consumer_uuid: str,
          resources: dict[str, int]) -> None:
    with db.write() as s:
        result = s.execute(update(ComputeNode)
                           .where(ComputeNode.id == node_id, ComputeNode.generation == generation)
                           .values(generation=generation + 1, updated_at=utcnow())
                           .execution_options(synchronize_session=False))
        if result.rowcount != 1:
            raise exception.ResourceProviderGenerationConflict(node=node_id)
        allocations.release(s, consumer_uuid, keep_node=node_id)
        node = s.execute(select(*_CAPACITY_COLUMNS).where(ComputeNode.id == node_id)).one()
        used = allocations.usage(s, [node_id]).get(node_id, {})
        short = fits(capacity(node._mapping), used, resources)
        if short is not None:
            raise InsufficientCapacity(node=node_id, resource=short)
        s.add(Allocation(consumer_uuid=consumer_uuid, compute_node_id=node_id,
                         vcpus=resources["vcpus"], memory_mb=resources["memory_mb"],
                         disk_gb=resources["disk_gb"]))
