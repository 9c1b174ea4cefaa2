"""Host aggregates: named groups of hosts with metadata (Nova's API database).

Every change to an aggregate, its hosts or its metadata moves the
aggregate's ``updated_at``; the schedulers compare :func:`signature` with
what they loaded and re-read the aggregates only when it moved.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stratus.db.models import Aggregate, AggregateHost, AggregateMetadata, Service
from stratus.db.session import Database

DEFAULT_AZ = "nova"
AZ_KEY = "availability_zone"
COMPUTE_BINARY = "stratus-compute"


def signature(s: Session) -> tuple[Any, ...]:
    """Changes when any aggregate is created, deleted or changed."""
    return tuple(s.execute(select(func.count(Aggregate.id), func.max(Aggregate.id),
                                  func.max(Aggregate.updated_at))).one())


def by_host(s: Session) -> tuple[dict[int, tuple[str, dict[str, str]]], dict[str, list[int]]]:
    """({aggregate id: (name, metadata)}, {host: [aggregate ids]}) in three queries."""
    aggregates: dict[int, tuple[str, dict[str, str]]] = {
        agg_id: (name, {}) for agg_id, name in s.execute(
            select(Aggregate.id, Aggregate.name).order_by(Aggregate.id))}
    for agg_id, key, value in s.execute(select(AggregateMetadata.aggregate_id,
                                               AggregateMetadata.key, AggregateMetadata.value)):
        if agg_id in aggregates:
            aggregates[agg_id][1][key] = value
    hosts: dict[str, list[int]] = {}
    for agg_id, host in s.execute(select(AggregateHost.aggregate_id, AggregateHost.host)
                                  .order_by(AggregateHost.aggregate_id)):
        if agg_id in aggregates:
            hosts.setdefault(host, []).append(agg_id)
    return aggregates, hosts


def zones_in_use(db: Database) -> set[str]:
    """Zones a server may ask for: the default, the compute services' own, and
    those of the aggregates that have hosts."""
    with db.read() as s:
        zones = {DEFAULT_AZ}
        zones.update(z for z in s.scalars(select(Service.availability_zone).where(
            Service.binary == COMPUTE_BINARY)) if z)
        zones.update(s.scalars(
            select(AggregateMetadata.value).where(AggregateMetadata.key == AZ_KEY)
            .where(AggregateMetadata.aggregate_id.in_(select(AggregateHost.aggregate_id)))))
        return zones
