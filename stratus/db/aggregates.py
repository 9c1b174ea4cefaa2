"""Host aggregates: named groups of hosts with metadata (Nova's API database).

Every change to an aggregate, its hosts or its metadata moves the
aggregate's ``updated_at``; the schedulers compare :func:`signature` with
what they loaded and re-read the aggregates only when it moved.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stratus import exception

from stratus.db.models import Aggregate, AggregateHost, AggregateMetadata, Service
from stratus.db.session import Database
from stratus.utils import new_uuid, utcnow

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


# -- CRUD (the os-aggregates API) ---------------------------------------------

class AggregateNotFound(exception.NotFound):
    msg_fmt = "Aggregate %(aggregate_id)s could not be found."


class AggregateNameExists(exception.Conflict):
    msg_fmt = "Aggregate %(aggregate_name)s already exists."


class AggregateHostExists(exception.Conflict):
    msg_fmt = "Aggregate %(aggregate_id)s already has host %(host)s."


class AggregateHostNotFound(exception.NotFound):
    msg_fmt = "Aggregate %(aggregate_id)s has no host %(host)s."


class InvalidAggregateAction(exception.Invalid):
    msg_fmt = ("Cannot perform action '%(action)s' on aggregate %(aggregate_id)s. "
               "Reason: %(reason)s.")


def _view(agg: Aggregate) -> dict[str, Any]:
    metadata = {m.key: m.value for m in agg.metadata_items}
    return {"id": agg.id, "uuid": agg.uuid, "name": agg.name,
            "availability_zone": metadata.get(AZ_KEY),
            "hosts": [h.host for h in agg.hosts], "metadata": metadata,
            "created_at": agg.created_at, "updated_at": agg.updated_at}


def _get(s: Session, aggregate_id: int) -> Aggregate:
    agg = s.get(Aggregate, aggregate_id)
    if agg is None:
        raise AggregateNotFound(aggregate_id=aggregate_id)
    return agg


def _zones_of_host(s: Session, host: str, skip: int | None = None) -> set[str]:
    """The zones the host's other aggregates put it in."""
    rows = s.scalars(select(AggregateMetadata.value)
                     .join(AggregateHost, AggregateHost.aggregate_id == AggregateMetadata.aggregate_id)
                     .where(AggregateHost.host == host, AggregateMetadata.key == AZ_KEY,
                            AggregateHost.aggregate_id != (skip or 0)))
    return set(rows)


def _check_zone_for_hosts(s: Session, agg: Aggregate, zone: str | None, action: str) -> None:
    """A host is in one zone only: Nova refuses a zone that conflicts with the
    zone another aggregate of one of the hosts gives it."""
    if zone is None:
        return
    for host in (h.host for h in agg.hosts):
        others = _zones_of_host(s, host, skip=agg.id) - {zone}
        if others:
            raise InvalidAggregateAction(
                action=action, aggregate_id=agg.id,
                reason=f"One or more hosts already in availability zone(s) {sorted(others)}")


def _touch(agg: Aggregate) -> None:
    agg.updated_at = utcnow()  # the schedulers' signature moves


def aggregate_create(db: Database, name: str, availability_zone: str | None = None
                     ) -> dict[str, Any]:
    now = utcnow()
    try:
        with db.write() as s:
            if s.scalars(select(Aggregate.id).where(Aggregate.name == name)).first():
                raise AggregateNameExists(aggregate_name=name)
            agg = Aggregate(uuid=new_uuid(), name=name, created_at=now, updated_at=now)
            s.add(agg)
            s.flush()
            if availability_zone is not None:
                s.add(AggregateMetadata(aggregate_id=agg.id, key=AZ_KEY,
                                        value=availability_zone))
            s.flush()
            s.refresh(agg)
            return _view(agg)
    except IntegrityError:
        raise AggregateNameExists(aggregate_name=name)


def aggregate_get(db: Database, aggregate_id: int) -> dict[str, Any]:
    with db.read() as s:
        return _view(_get(s, aggregate_id))


def aggregate_get_all(db: Database) -> list[dict[str, Any]]:
    with db.read() as s:
        return [_view(a) for a in s.scalars(select(Aggregate).order_by(Aggregate.id))]


def aggregate_update(db: Database, aggregate_id: int, values: dict[str, Any]) -> dict[str, Any]:
    """``values``: ``name`` and/or ``availability_zone`` (None removes the zone)."""
    try:
        with db.write() as s:
            agg = _get(s, aggregate_id)
            if "name" in values and values["name"] != agg.name:
                if s.scalars(select(Aggregate.id).where(Aggregate.name == values["name"])).first():
                    raise AggregateNameExists(aggregate_name=values["name"])
                agg.name = values["name"]
            if "availability_zone" in values:
                _set_metadata(s, agg, {AZ_KEY: values["availability_zone"]}, "update")
            _touch(agg)
            s.flush()
            s.refresh(agg)
            return _view(agg)
    except IntegrityError:
        raise AggregateNameExists(aggregate_name=values.get("name"))


def aggregate_delete(db: Database, aggregate_id: int) -> None:
    with db.write() as s:
        agg = _get(s, aggregate_id)
        if agg.hosts:
            raise InvalidAggregateAction(action="delete", aggregate_id=aggregate_id,
                                         reason="Host aggregate is not empty")
        s.delete(agg)


def aggregate_add_host(db: Database, aggregate_id: int, host: str) -> dict[str, Any]:
    with db.write() as s:
        agg = _get(s, aggregate_id)
        if host in {h.host for h in agg.hosts}:
            raise AggregateHostExists(aggregate_id=aggregate_id, host=host)
        zone = next((m.value for m in agg.metadata_items if m.key == AZ_KEY), None)
        others = _zones_of_host(s, host, skip=agg.id) - ({zone} if zone else set())
        if zone is not None and others:
            raise InvalidAggregateAction(
                action="add_host", aggregate_id=aggregate_id,
                reason=f"One or more hosts already in availability zone(s) {sorted(others)}")
        agg.hosts.append(AggregateHost(host=host))
        _touch(agg)
        s.flush()
        return _view(agg)


def aggregate_remove_host(db: Database, aggregate_id: int, host: str) -> dict[str, Any]:
    with db.write() as s:
        agg = _get(s, aggregate_id)
        found = next((h for h in agg.hosts if h.host == host), None)
        if found is None:
            raise AggregateHostNotFound(aggregate_id=aggregate_id, host=host)
        agg.hosts.remove(found)
        _touch(agg)
        s.flush()
        return _view(agg)


def _set_metadata(s: Session, agg: Aggregate, updates: dict[str, str | None],
                  action: str) -> None:
    if AZ_KEY in updates:
        _check_zone_for_hosts(s, agg, updates[AZ_KEY], action)
    current = {m.key: m for m in agg.metadata_items}
    for key, value in updates.items():
        item = current.get(key)
        if value is None:
            if item is not None:
                agg.metadata_items.remove(item)
        elif item is not None:
            item.value = value
        else:
            agg.metadata_items.append(AggregateMetadata(key=key, value=value))


def aggregate_set_metadata(db: Database, aggregate_id: int,
                           updates: dict[str, str | None]) -> dict[str, Any]:
    """Set keys; a None value deletes the key (Nova's set_metadata)."""
    with db.write() as s:
        agg = _get(s, aggregate_id)
        _set_metadata(s, agg, updates, "update_meta")
        _touch(agg)
        s.flush()
        return _view(agg)


def host_zones(db: Database) -> dict[str, str]:
    """host -> the zone its aggregates put it in (hosts in no zoned aggregate absent)."""
    with db.read() as s:
        rows = s.execute(select(AggregateHost.host, AggregateMetadata.value)
                         .join(AggregateMetadata,
                               AggregateMetadata.aggregate_id == AggregateHost.aggregate_id)
                         .where(AggregateMetadata.key == AZ_KEY)
                         .order_by(AggregateHost.aggregate_id))
        zones: dict[str, str] = {}
        for host, zone in rows:
            zones.setdefault(host, zone)
        return zones
