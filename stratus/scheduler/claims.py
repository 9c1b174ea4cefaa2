"""Claiming resources on a compute node with a compare-and-swap.

A claim bumps the node's ``generation`` only if it is still the one the
scheduler read before summing the node's allocations, and writes the
allocation in the same transaction. It replaces whatever the consumer held
before (as Placement's PUT /allocations does), so a build that is scheduled
again (a reschedule, or a request redelivered after a crash) never holds
capacity twice. Two schedulers racing for the last
capacity of a node cannot both win: the loser sees a generation conflict,
re-reads and tries again (or picks another host).
"""
from __future__ import annotations

from sqlalchemy import delete, update

from stratus import exception
from stratus.db.models import Allocation, ComputeNode
from stratus.db.session import Database


def claim(db: Database, node_id: int, generation: int, consumer_uuid: str,
          resources: dict[str, int]) -> None:
    with db.write() as s:
        result = s.execute(update(ComputeNode)
                           .where(ComputeNode.id == node_id, ComputeNode.generation == generation)
                           .values(generation=generation + 1))
        if result.rowcount != 1:
            raise exception.ResourceProviderGenerationConflict(node=node_id)
        s.execute(delete(Allocation).where(Allocation.consumer_uuid == consumer_uuid))
        s.add(Allocation(consumer_uuid=consumer_uuid, compute_node_id=node_id,
                         vcpus=resources["vcpus"], memory_mb=resources["memory_mb"],
                         disk_gb=resources["disk_gb"]))
