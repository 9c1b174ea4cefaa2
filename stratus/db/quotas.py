"""Quota rows, usage counts and the per-project quota lock.

:func:`locked_write` is how anything that counts a project's usage and then
adds to it stays within the project's quota when many requests (and many API
processes) race: it opens a write transaction whose first statement locks the
project's row in ``quota_locks`` (``SELECT ... FOR UPDATE``), so such
transactions of one project run one at a time on PostgreSQL and MariaDB and
each counts what the previous ones committed. On SQLite, writers are already
serialised (``BEGIN IMMEDIATE``), so the lock is a no-op there. The lock row
is created on first use, in a transaction of its own (two of them racing:
one wins, the other's duplicate key is ignored).

Usage counts are plain ``COUNT``/``SUM`` queries over the resources
themselves (Nova's counting quotas, no usage table that could drift).
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterable, Iterator, Mapping

from sqlalchemy import delete, false, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stratus.db.models import (Image, Instance, InstanceGroup, KeyPair, Quota, QuotaClass,
                               QuotaLock)
from stratus.db.session import Database
from stratus.utils import utcnow

USER_LOCK_PREFIX = "user:"


def user_lock(user_id: str) -> str:
    """The lock name of a user's own resources (key pairs are per user)."""
    return USER_LOCK_PREFIX + user_id


# -- the lock ----------------------------------------------------------------------

def _acquire(s: Session, names: list[str]) -> bool:
    """Lock the rows ``names`` (sorted, so two lockers never deadlock);
    False when one does not exist yet."""
    rows = s.scalars(select(QuotaLock.name).where(QuotaLock.name.in_(names))
                     .order_by(QuotaLock.name).with_for_update()).all()
    return len(rows) == len(names)


def _create_lock_rows(db: Database, names: Iterable[str]) -> None:
    for name in names:
        try:
            with db.write() as s:
                s.add(QuotaLock(name=name))
        except IntegrityError:
            pass  # created by a concurrent request: just as good


@contextlib.contextmanager
def locked_write(db: Database, *names: str | None) -> Iterator[Session]:
    """A write transaction holding the quota locks ``names`` (project ids, or
    :func:`user_lock` names) until it commits or rolls back."""
    wanted = sorted({n for n in names if n})
    if db.is_sqlite or not wanted:
        with db.write() as s:
            yield s
        return
    for _attempt in range(3):
        with db.write() as s:
            if _acquire(s, wanted):
                yield s
                return
        _create_lock_rows(db, wanted)
    raise RuntimeError(f"could not create the quota lock rows {wanted}")


# -- limits ------------------------------------------------------------------------

def limits_get(s: Session, project_id: str) -> dict[str, int]:
    """The project's own limits (resources without a row are not in it)."""
    rows = s.execute(select(Quota.resource, Quota.hard_limit)
                     .where(Quota.project_id == project_id))
    return {resource: int(limit) for resource, limit in rows}


def limits_set(s: Session, project_id: str, values: Mapping[str, int]) -> None:
    """Insert or update the project's limits (call it holding the project's
    lock: two updaters then never race for the same unique row)."""
    _upsert_limits(s, Quota, Quota.project_id, project_id, values)


def _upsert_limits(s: Session, model: type[Quota] | type[QuotaClass], owner_column: Any,
                   owner: str, values: Mapping[str, int]) -> None:
    """Insert or update the limit rows of one owner (a project or a class)."""
    if not values:
        return
    existing = {q.resource: q for q in s.scalars(
        select(model).where(owner_column == owner, model.resource.in_(list(values))))}
    now = utcnow()
    for resource, limit in values.items():
        row = existing.get(resource)
        if row is None:
            row = model(resource=resource, hard_limit=limit, created_at=now)
            setattr(row, owner_column.key, owner)
            s.add(row)
        elif row.hard_limit != limit:
            row.hard_limit = limit
            row.updated_at = now
    s.flush()


def limits_destroy(s: Session, project_id: str) -> int:
    """Forget the project's own limits (it has the defaults again)."""
    return s.execute(delete(Quota).where(Quota.project_id == project_id)).rowcount or 0


# -- quota classes (os-quota-class-sets) -----------------------------------------------

DEFAULT_QUOTA_CLASS = "default"


def class_limits_get(s: Session, class_name: str) -> dict[str, int]:
    """The class's own limits (resources without a row are not in it)."""
    rows = s.execute(select(QuotaClass.resource, QuotaClass.hard_limit)
                     .where(QuotaClass.class_name == class_name))
    return {resource: int(limit) for resource, limit in rows}


def class_limits_set(s: Session, class_name: str, values: Mapping[str, int]) -> None:
    """Insert or update the class's limits (Nova's update_class/create_class)."""
    _upsert_limits(s, QuotaClass, QuotaClass.class_name, class_name, values)


# -- usage -------------------------------------------------------------------------

def count_instances(s: Session, project_id: str) -> dict[str, int]:
    """``instances``, ``cores`` and ``ram`` in use by the project's instances
    that are not deleted (whatever their state, as Nova counts them)."""
    count, cores, ram = s.execute(
        select(func.count(Instance.id), func.coalesce(func.sum(Instance.vcpus), 0),
               func.coalesce(func.sum(Instance.memory_mb), 0))
        .where(Instance.project_id == project_id, Instance.deleted.is_(False))).one()
    return {"instances": int(count), "cores": int(cores), "ram": int(ram)}


def count_server_groups(s: Session, project_id: str) -> int:
    return int(s.scalar(select(func.count(InstanceGroup.id))
                        .where(InstanceGroup.project_id == project_id)) or 0)


def count_key_pairs(s: Session, user_id: str) -> int:
    return int(s.scalar(select(func.count(KeyPair.id)).where(KeyPair.user_id == user_id))
               or 0)


def count_images(s: Session, owner: str) -> int:
    """Images the project owns that are not deleted (Glance's image_count_total)."""
    return int(s.scalar(select(func.count(Image.id)).where(
        Image.owner == owner, Image.deleted == false(), Image.status != "killed")) or 0)


def image_bytes(s: Session, owner: str, exclude: str | None = None) -> int:
    """Bytes of image data the project stores (Glance's image_size_total usage)."""
    q = select(func.coalesce(func.sum(Image.size), 0)).where(
        Image.owner == owner, Image.deleted == false(), Image.size.is_not(None))
    if exclude is not None:
        q = q.where(Image.id != exclude)
    return int(s.scalar(q) or 0)
