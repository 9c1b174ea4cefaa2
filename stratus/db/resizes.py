"""Migration records (resize and cold migrate) and their allocations.

While a resize or migration is under way, or waits for confirmation, the
instance's consumer keeps its old allocation on the source node and the
migration's ``uuid`` consumes the new flavor on the destination node, so
both hosts hold the instance's resources. Confirm moves the destination's
allocation to the instance and frees the source; revert (or a failure)
frees the destination.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from stratus import exception
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
    (leave both)."""
    inst = db_instances.instance_update(db, instance_uuid, instance_updates,
                                        expected_task_state=expected_task_state,
                                        event=event, fault=fault)
    with db.write() as s:
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
    return inst
