"""Server groups (Nova's instance groups) and their members.

A group has one policy (affinity, anti-affinity, soft-affinity,
soft-anti-affinity) and optional rules (``max_server_per_host``). Members
are instance uuids added when the instances are created with the ``group``
scheduler hint; deleted instances stay in the table but are not shown.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from stratus import exception
from stratus.db.models import Instance, InstanceGroup, InstanceGroupMember
from stratus.db.session import Database
from stratus.utils import new_uuid, utcnow

POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")


class InstanceGroupNotFound(exception.NotFound):
    msg_fmt = "Instance group %(group_uuid)s could not be found."


def _live_members(s: Session, group: InstanceGroup) -> list[str]:
    uuids = [m.instance_uuid for m in group.members]
    if not uuids:
        return []
    alive = set(s.scalars(select(Instance.uuid).where(Instance.uuid.in_(uuids),
                                                      Instance.deleted.is_(False))))
    return [u for u in uuids if u in alive]


def _view(s: Session, group: InstanceGroup) -> dict[str, Any]:
    return {"id": group.id, "uuid": group.uuid, "name": group.name, "policy": group.policy,
            "rules": dict(group.rules or {}), "project_id": group.project_id,
            "user_id": group.user_id, "members": _live_members(s, group),
            "created_at": group.created_at}


def _get(s: Session, uuid: str, project_id: str | None) -> InstanceGroup:
    q = select(InstanceGroup).where(InstanceGroup.uuid == uuid)
    if project_id is not None:
        q = q.where(InstanceGroup.project_id == project_id)
    group = s.scalars(q).one_or_none()
    if group is None:
        raise InstanceGroupNotFound(group_uuid=uuid)
    return group


def group_add(s: Session, *, name: str, policy: str, project_id: str | None,
              user_id: str | None, rules: dict[str, Any] | None = None) -> dict[str, Any]:
    """Insert a group in the caller's transaction (which checks the quota)."""
    now = utcnow()
    group = InstanceGroup(uuid=new_uuid(), name=name, policy=policy, rules=rules or {},
                          project_id=project_id, user_id=user_id, created_at=now,
                          updated_at=now)
    s.add(group)
    s.flush()
    return _view(s, group)


def group_create(db: Database, **values: Any) -> dict[str, Any]:
    with db.write() as s:
        return group_add(s, **values)


def group_get(db: Database, uuid: str, project_id: str | None = None) -> dict[str, Any]:
    """``project_id`` limits the lookup to that project's groups."""
    with db.read() as s:
        return _view(s, _get(s, uuid, project_id))


def group_list(db: Database, project_id: str | None = None) -> list[dict[str, Any]]:
    with db.read() as s:
        q = select(InstanceGroup).order_by(InstanceGroup.id)
        if project_id is not None:
            q = q.where(InstanceGroup.project_id == project_id)
        return [_view(s, g) for g in s.scalars(q)]


def group_delete(db: Database, uuid: str, project_id: str | None = None) -> None:
    with db.write() as s:
        s.delete(_get(s, uuid, project_id))


def members_join(s: Session, uuid: str, instance_uuids: list[str]) -> int:
    """Add the instances to the group in the caller's transaction; the number
    of live members it had before (for the server_group_members quota)."""
    group = _get(s, uuid, None)
    known = {m.instance_uuid for m in group.members}
    before = len(_live_members(s, group))
    s.add_all(InstanceGroupMember(group_id=group.id, instance_uuid=u)
              for u in instance_uuids if u not in known)
    return before


def members_add(db: Database, uuid: str, instance_uuids: list[str]) -> None:
    with db.write() as s:
        members_join(s, uuid, instance_uuids)


def member_uuids(s: Session | Connection, uuid: str) -> list[str]:
    """Every member's instance uuid (deleted ones hold no allocation anyway)."""
    return list(s.scalars(select(InstanceGroupMember.instance_uuid)
                          .join(InstanceGroup, InstanceGroup.id == InstanceGroupMember.group_id)
                          .where(InstanceGroup.uuid == uuid)))


def groups_of(db: Database, instance_uuid: str) -> list[str]:
    """The uuids of the groups ``instance_uuid`` is a member of (Nova allows one)."""
    with db.read() as s:
        return list(s.scalars(select(InstanceGroup.uuid)
                              .join(InstanceGroupMember,
                                    InstanceGroup.id == InstanceGroupMember.group_id)
                              .where(InstanceGroupMember.instance_uuid == instance_uuid)
                              .order_by(InstanceGroup.id)))


def for_scheduling(s: Session, uuid: str) -> dict[str, Any] | None:
    """{"uuid", "policy", "max_per_host", "members"} or None when it is gone."""
    group = s.scalars(select(InstanceGroup).where(InstanceGroup.uuid == uuid)).one_or_none()
    if group is None:
        return None
    rules = group.rules or {}
    return {"uuid": group.uuid, "policy": group.policy,
            "max_per_host": int(rules.get("max_server_per_host") or 1),
            "members": [m.instance_uuid for m in group.members]}
