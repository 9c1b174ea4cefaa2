"""Migration records (resize and cold migrate) and their allocations.

While a resize or migration is under way, or waits for confirmation, the
instance's consumer keeps its old allocation on the source node and the
migration's ``uuid`` consumes the new flavor on the destination node, so
both hosts hold the instance's resources. Confirm moves the destination's
allocation to the instance and frees the source; revert (or a failure)
frees the destination.
"""
from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from stratus import exception
from stratus.compute import vm_states
from stratus.db import allocations
from stratus.db import instances as db_instances
from stratus.db.models import Allocation, Migration
from stratus.db.session import Database
from stratus.utils import utcnow

_FIELDS = ("uuid", "instance_uuid", "source_compute", "dest_compute", "source_node",
           "dest_node", "old_flavor", "new_flavor", "old_vm_state", "status",
           "migration_type", "id")


class MigrationNotFound(exception.NotFound):
    msg_fmt = "Migration %(migration)s could not be found."


def _as_dict(m: Migration) -> dict[str, Any]:
    out = {k: getattr(m, k) for k in _FIELDS}
    out["created_at"] = m.created_at.isoformat() if m.created_at else None
    out["updated_at"] = m.updated_at.isoformat() if m.updated_at else None
    return out


def migration_create(db: Database, values: dict[str, Any]) -> dict[str, Any]:
    with db.write() as s:
        m = Migration(**values, created_at=utcnow())
        s.add(m)
        s.flush()
        return _as_dict(m)


def migration_get(db: Database, uuid: str) -> dict[str, Any]:
    with db.read() as s:
        m = s.scalars(select(Migration).where(Migration.uuid == uuid)).one_or_none()
        if m is None:
            raise MigrationNotFound(migration=uuid)
        return _as_dict(m)


def migration_for_instance(db: Database, instance_uuid: str,
                           statuses: tuple[str, ...]) -> dict[str, Any] | None:
    """The instance's newest migration in one of ``statuses``."""
    with db.read() as s:
        m = s.scalars(select(Migration).where(Migration.instance_uuid == instance_uuid,
                                              Migration.status.in_(statuses))
                      .order_by(Migration.id.desc()).limit(1)).one_or_none()
        return None if m is None else _as_dict(m)


def migrations_for_instance(db: Database, instance_uuid: str) -> list[dict[str, Any]]:
    with db.read() as s:
        return [_as_dict(m) for m in s.scalars(
            select(Migration).where(Migration.instance_uuid == instance_uuid)
            .order_by(Migration.id))]


def migration_update(db: Database, uuid: str, updates: dict[str, Any],
                     release_dest: bool = False) -> dict[str, Any]:
    """Update a migration; ``release_dest`` frees the destination's allocation."""
    with db.write() as s:
        s.execute(update(Migration).where(Migration.uuid == uuid)
                  .values(**updates, updated_at=utcnow())
                  .execution_options(synchronize_session=False))
        if release_dest:
            allocations.release(s, uuid)
        m = s.scalars(select(Migration).where(Migration.uuid == uuid)).one_or_none()
        if m is None:
            raise MigrationNotFound(migration=uuid)
        return _as_dict(m)


def finish(db: Database, uuid: str, status: str, instance_uuid: str,
           instance_updates: dict[str, Any], keep: str | None,
           expected_task_state: Any = db_instances.UNSET,
           event: dict[str, Any] | None = None,
           fault: dict[str, Any] | None = None) -> dict[str, Any]:
    """End (or fail) a migration: the instance's update, the migration's
    status and the allocations in one step. ``keep`` is the side whose
    allocation the instance holds afterwards: ``"dest"`` (confirmed: the
    source's is freed and the destination's becomes the instance's),
    ``"source"`` (reverted or failed: the destination's is freed) or None
    (leave both). One transaction: a process dying meanwhile leaves all of it
    or none."""
    def migration_side(s: Session) -> None:
        s.execute(update(Migration).where(Migration.uuid == uuid)
                  .values(status=status, updated_at=utcnow())
                  .execution_options(synchronize_session=False))
        if keep == "dest":
            allocations.release(s, instance_uuid)
            s.execute(update(Allocation).where(Allocation.consumer_uuid == uuid)
                      .values(consumer_uuid=instance_uuid)
                      .execution_options(synchronize_session=False))
        elif keep == "source":
            allocations.release(s, uuid)

    return db_instances.instance_update(db, instance_uuid, instance_updates,
                                        expected_task_state=expected_task_state,
                                        event=event, fault=fault, also=migration_side)


IN_PROGRESS = ("pre-migrating", "migrating", "post-migrating", "confirming", "reverting")


def migrations_in_progress(db: Database, host: str) -> list[dict[str, Any]]:
    """The migrations not in a final or waiting status with ``host`` at
    either end (what a compute host resolves when it starts), each with
    ``dest_allocated``: whether the destination still holds its allocation."""
    return migrations_in_progress_by_hosts(db, [host]).get(host, [])


def migrations_in_progress_by_hosts(db: Database, hosts: list[str]
                                    ) -> dict[str, list[dict[str, Any]]]:
    """:func:`migrations_in_progress` of many hosts in one query, by host (a
    migration between two of them is under both; hosts without any absent)."""
    with db.read() as s:
        rows = s.scalars(select(Migration).where(
            Migration.status.in_(IN_PROGRESS),
            Migration.source_compute.in_(hosts) | Migration.dest_compute.in_(hosts))
            .order_by(Migration.id)).all()
        held = set(s.scalars(select(Allocation.consumer_uuid).where(
            Allocation.consumer_uuid.in_([m.uuid for m in rows])))) if rows else set()
        migrations = [dict(_as_dict(m), dest_allocated=m.uuid in held) for m in rows]
    wanted = set(hosts)
    found: dict[str, list[dict[str, Any]]] = {}
    for migration in migrations:
        for host in {migration["source_compute"], migration["dest_compute"]} & wanted:
            found.setdefault(host, []).append(migration)
    return found


def start_confirm(db: Database, instance_uuid: str, request_id: str) -> dict[str, Any] | None:
    """Begin confirming a resize (VERIFY_RESIZE, no task): the instance to
    ``resize_confirming`` with a ``confirmResize`` action, the migration to
    ``confirming``. None if the instance moved on meanwhile."""
    migration = migration_for_instance(db, instance_uuid, ("finished",))
    if migration is None:
        return None
    try:
        db_instances.instance_update(db, instance_uuid, {"task_state": vm_states.RESIZE_CONFIRMING},
                                     expected_task_state=[None],
                                     expected_vm_state=[vm_states.RESIZED])
    except (exception.InstanceNotFound, exception.UnexpectedTaskStateError):
        return None
    db_instances.action_start(db, instance_uuid, "confirmResize", request_id, None, None)
    return migration_update(db, migration["uuid"], {"status": "confirming"})


def unconfirmed(db: Database, dest_host: str, older_than: Any) -> list[dict[str, Any]]:
    """Resizes onto ``dest_host`` waiting for confirmation since before ``older_than``."""
    with db.read() as s:
        return [_as_dict(m) for m in s.scalars(select(Migration).where(
            Migration.status == "finished", Migration.dest_compute == dest_host,
            Migration.updated_at < older_than).order_by(Migration.id))]


def migrations_list(db: Database, filters: dict[str, Any], *,
                    since: datetime.datetime | None = None,
                    before: datetime.datetime | None = None, after: str | None = None,
                    limit: int | None = None) -> list[dict[str, Any]]:
    """Every migration matching ``filters`` (os-migrations): ``host`` (either
    end), ``status``, ``instance_uuid``, ``source_compute``, ``migration_type``,
    ``in_progress`` (bool); newest first, as Nova lists them. The 2.59 paging
    runs here too: ``since`` (updated at or after it), ``before`` (at or
    before it, 2.66), ``after`` (the uuid of
    the last migration seen, whatever the filters; MigrationNotFound when
    there is none) and ``limit``."""
    query = select(Migration)
    if filters.get("host"):
        query = query.where((Migration.source_compute == filters["host"])
                            | (Migration.dest_compute == filters["host"]))
    for key in ("status", "instance_uuid", "source_compute", "migration_type"):
        if filters.get(key):
            query = query.where(getattr(Migration, key) == filters[key])
    if filters.get("in_progress"):
        query = query.where(Migration.status.in_(IN_PROGRESS))
    if since is not None:
        query = query.where(Migration.updated_at >= since)
    if before is not None:
        query = query.where(Migration.updated_at <= before)
    with db.read() as s:
        if after is not None:
            pivot = s.scalars(select(Migration).where(Migration.uuid == after)).first()
            if pivot is None:
                raise MigrationNotFound(migration=after)
            query = query.where(_listed_after(pivot))
        query = query.order_by(Migration.created_at.desc(), Migration.id.desc())
        return [_as_dict(m) for m in s.scalars(query if limit is None else query.limit(limit))]


def _listed_after(pivot: Migration) -> Any:
    """Rows after ``pivot`` in the (created_at, id) descending order; a null
    created_at counts as the earliest time."""
    if pivot.created_at is None:
        return (Migration.created_at.is_(None)) & (Migration.id < pivot.id)
    return ((Migration.created_at < pivot.created_at) | Migration.created_at.is_(None)
            | ((Migration.created_at == pivot.created_at) & (Migration.id < pivot.id)))


