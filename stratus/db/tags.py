"""Server tags (microversion 2.26): Nova's ``instance_tag_*`` queries.

Tags are short strings on an instance, at most :data:`MAX_TAG_COUNT` each;
they are listed in tag order. Changes lock the instance row first, so two
concurrent additions cannot together pass the limit, and a deleted (or
unknown) instance is an InstanceNotFound. An instance's tags are removed when
it is deleted (db.instances.instance_destroy).
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from sqlalchemy import and_, delete, not_, select
from sqlalchemy.orm import Session

from stratus import exception
from stratus.db.models import Instance, Tag
from stratus.db.session import Database

MAX_TAG_COUNT = 50  # Nova's objects.instance.MAX_TAG_COUNT
_CHUNK = 900


class InstanceTagNotFound(exception.NotFound):
    msg_fmt = "Instance %(instance_id)s has no tag '%(tag)s'"


def _lock_instance(s: Session, uuid: str) -> None:
    """Lock the live instance's row; InstanceNotFound when there is none."""
    found = s.scalar(select(Instance.id).where(Instance.uuid == uuid,
                                               Instance.deleted.is_(False))
                     .with_for_update())
    if found is None:
        raise exception.InstanceNotFound(instance_id=uuid)


def tags_get(db: Database, uuid: str) -> list[str]:
    with db.read() as s:
        return list(s.scalars(select(Tag.tag).where(Tag.resource_id == uuid)
                              .order_by(Tag.tag)))


def tags_get_by_instances(db: Database, uuids: Sequence[str]) -> dict[str, list[str]]:
    """The tags of many instances at once (one query per 900), by uuid; an
    instance without tags is absent."""
    found: dict[str, list[str]] = {}
    if not uuids:
        return found
    with db.read() as s:
        for start in range(0, len(uuids), _CHUNK):
            rows = s.execute(select(Tag.resource_id, Tag.tag)
                             .where(Tag.resource_id.in_(uuids[start:start + _CHUNK]))
                             .order_by(Tag.resource_id, Tag.tag))
            for uuid, tag in rows:
                found.setdefault(uuid, []).append(tag)
    return found


def tag_exists(db: Database, uuid: str, tag: str) -> bool:
    with db.read() as s:
        return s.scalar(select(Tag.tag).where(Tag.resource_id == uuid,
                                              Tag.tag == tag)) is not None


def tag_add(db: Database, uuid: str, tag: str) -> bool:
    """Add ``tag``; False when the instance already had it. As Nova, a server
    already at the limit is a 400 even for a tag it has."""
    with db.write() as s:
        _lock_instance(s, uuid)
        current = set(s.scalars(select(Tag.tag).where(Tag.resource_id == uuid)))
        if len(current) >= MAX_TAG_COUNT:
            raise exception.Invalid(
                f"The number of tags exceeded the per-server limit {MAX_TAG_COUNT}")
        if tag in current:
            return False
        s.add(Tag(resource_id=uuid, tag=tag))
        return True


def tags_set(db: Database, uuid: str, tags: Iterable[str]) -> list[str]:
    """Replace the instance's tags with ``tags`` (duplicates count once)."""
    wanted = set(tags)
    with db.write() as s:
        _lock_instance(s, uuid)
        current = set(s.scalars(select(Tag.tag).where(Tag.resource_id == uuid)))
        gone = current - wanted
        if gone:
            s.execute(delete(Tag).where(Tag.resource_id == uuid, Tag.tag.in_(gone)))
        s.add_all(Tag(resource_id=uuid, tag=t) for t in sorted(wanted - current))
    return sorted(wanted)


def tag_delete(db: Database, uuid: str, tag: str) -> None:
    with db.write() as s:
        _lock_instance(s, uuid)
        result = s.execute(delete(Tag).where(Tag.resource_id == uuid, Tag.tag == tag))
        if result.rowcount == 0:
            raise InstanceTagNotFound(instance_id=uuid, tag=tag)


def tags_delete_all(db: Database, uuid: str) -> None:
    with db.write() as s:
        _lock_instance(s, uuid)
        s.execute(delete(Tag).where(Tag.resource_id == uuid))


def tags_add_new(s: Session, uuid: str, tags: Iterable[str]) -> list[str]:
    """Tag a new instance inside the caller's transaction (the one that
    inserts it: a create with tags, 2.52); duplicates count once."""
    wanted = sorted(set(tags))
    if len(wanted) > MAX_TAG_COUNT:
        raise exception.Invalid(
            f"The number of tags exceeded the per-server limit {MAX_TAG_COUNT}")
    s.add_all(Tag(resource_id=uuid, tag=t) for t in wanted)
    return wanted


def tags_destroy(s: Session, uuid: str) -> None:
    """Drop the instance's tags inside the caller's transaction (its deletion)."""
    s.execute(delete(Tag).where(Tag.resource_id == uuid))


def filter_clauses(filters: dict[str, Any]) -> list[Any]:
    """WHERE clauses on instances for Nova's tag filters (each a list of tags):
    ``tags`` (has all), ``tags-any`` (has one), ``not-tags`` (does not have
    all), ``not-tags-any`` (has none)."""
    def tagged(tag: str) -> Any:
        return Instance.uuid.in_(select(Tag.resource_id).where(Tag.tag == tag))

    def tagged_any(tags: list[str]) -> Any:
        return Instance.uuid.in_(select(Tag.resource_id).where(Tag.tag.in_(tags)))

    clauses = []
    if filters.get("tags"):
        clauses.append(and_(*[tagged(t) for t in filters["tags"]]))
    if filters.get("tags-any"):
        clauses.append(tagged_any(filters["tags-any"]))
    if filters.get("not-tags"):
        clauses.append(not_(and_(*[tagged(t) for t in filters["not-tags"]])))
    if filters.get("not-tags-any"):
        clauses.append(not_(tagged_any(filters["not-tags-any"])))
    return clauses


__all__ = ["MAX_TAG_COUNT", "InstanceTagNotFound", "tags_get", "tags_get_by_instances",
           "tag_exists", "tag_add", "tags_set", "tags_add_new", "tag_delete", "tags_delete_all",
           "tags_destroy", "filter_clauses"]
