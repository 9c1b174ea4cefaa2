"""Queries for instances, their metadata, faults, actions and allocations.

Every state change goes through :func:`instance_update`, whose
``expected_task_state`` makes it a compare-and-swap: two operations racing on
one instance (a delete during a build, say) cannot both win.
"""
from __future__ import annotations

import datetime
import time
from typing import Any, Callable, Iterable, Sequence

import regex
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from stratus import exception
from stratus.compute import vm_states
from stratus.db import allocations
from stratus.db import tags as db_tags
from stratus.db.common import to_dict
from stratus.db.models import (Instance, Migration, InstanceAction, InstanceActionEvent,
                               InstanceFault, InstanceMetadata)
from stratus.db.session import Database
from stratus.utils import parse_isotime, utcnow

DATETIME_FIELDS = ("launched_at", "terminated_at", "deleted_at", "created_at", "updated_at")
UNSET: Any = object()
INSTANCE_NAME_TEMPLATE = "instance-%08x"  # Nova's default instance_name_template


def _coerce(updates: dict[str, Any]) -> dict[str, Any]:
    """Datetimes arrive over RPC as ISO strings; store them as datetimes."""
    out = dict(updates)
    for key in DATETIME_FIELDS:
        if isinstance(out.get(key), str):
            out[key] = parse_isotime(out[key])
    return out


_INSTANCES = Instance.__table__
_METADATA = InstanceMetadata.__table__
_CHUNK = 900  # bound parameters per IN (...) list


def _load(s: Session, query: Any) -> list[dict[str, Any]]:
    """Run a Core query over the instances table and complete each row with
    its metadata (one query for all rows) and, for ERROR/DELETED instances,
    its newest fault. Core rows, not ORM objects: listing 1,000 instances is
    the hot path of ``GET /servers/detail``."""
    instances = [dict(row) for row in s.execute(query).mappings()]
    if not instances:
        return instances
    metadata: dict[str, dict[str, str]] = {}
    uuids = [i["uuid"] for i in instances]
    for start in range(0, len(uuids), _CHUNK):
        rows = s.execute(select(_METADATA.c.instance_uuid, _METADATA.c.key, _METADATA.c.value)
                         .where(_METADATA.c.instance_uuid.in_(uuids[start:start + _CHUNK])))
        for uuid, key, value in rows:
            metadata.setdefault(uuid, {})[key] = value
    faults = _faults_for(s, [i["uuid"] for i in instances
                             if i["vm_state"] in (vm_states.ERROR, vm_states.DELETED)])
    for inst in instances:
        inst["name"] = INSTANCE_NAME_TEMPLATE % inst["id"]
        inst["metadata"] = metadata.get(inst["uuid"], {})
        inst["fault"] = faults.get(inst["uuid"])
    return instances


def _load_one(s: Session, uuid: str, read_deleted: bool = False) -> dict[str, Any]:
    query = select(_INSTANCES).where(_INSTANCES.c.uuid == uuid)
    if not read_deleted:
        query = query.where(_INSTANCES.c.deleted.is_(False))
    found = _load(s, query)
    if not found:
        raise exception.InstanceNotFound(instance_id=uuid)
    return found[0]


def _as_dict(inst: Instance, fault: dict[str, Any] | None = None) -> dict[str, Any]:
    d = to_dict(inst)
    d["name"] = INSTANCE_NAME_TEMPLATE % inst.id  # the hypervisor's name for the guest
    d["metadata"] = {m.key: m.value for m in inst.metadata_items}
    d["fault"] = fault
    return d


def _faults_for(s: Session, uuids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The newest fault of each instance in ``uuids``."""
    if not uuids:
        return {}
    faults: dict[str, dict[str, Any]] = {}
    rows = s.scalars(select(InstanceFault).where(InstanceFault.instance_uuid.in_(uuids))
                     .order_by(InstanceFault.id))
    for f in rows:
        faults[f.instance_uuid] = {"code": f.code, "message": f.message,
                                   "details": f.details, "created": f.created_at}
    return faults


def _get(s: Session, uuid: str, read_deleted: bool = False, lock: bool = False) -> Instance:
    q = select(Instance).where(Instance.uuid == uuid)
    if not read_deleted:
        q = q.where(Instance.deleted.is_(False))
    if lock:
        q = q.with_for_update()
    inst = s.scalars(q).one_or_none()
    if inst is None:
        raise exception.InstanceNotFound(instance_id=uuid)
    return inst


# -- create / read -------------------------------------------------------------

def instance_create_many(db: Database, rows: Iterable[dict[str, Any]],
                         action: str | None = None, request_id: str | None = None
                         ) -> list[dict[str, Any]]:
    """Insert instances (each dict may carry "metadata") and, when ``action``
    is given, the instance action each starts with (Nova's ``create``)."""
    with db.write() as s:
        return instances_add(s, rows, action, request_id)


def instances_add(s: Session, rows: Iterable[dict[str, Any]], action: str | None = None,
                  request_id: str | None = None) -> list[dict[str, Any]]:
    """:func:`instance_create_many` inside the caller's transaction (the
    compute API's, which holds the project's quota lock)."""
    created = []
    now = utcnow()
    for values in rows:
        values = dict(values)
        metadata = values.pop("metadata", None) or {}
        inst = Instance(**values)
        inst.metadata_items = [InstanceMetadata(key=k, value=v) for k, v in metadata.items()]
        s.add(inst)
        if action:
            s.add(InstanceAction(action=action, instance_uuid=inst.uuid,
                                 request_id=request_id or "", user_id=inst.user_id,
                                 project_id=inst.project_id, start_time=now,
                                 updated_at=now))
        created.append(inst)
    s.flush()
    return [_as_dict(i) for i in created]


def instance_get(db: Database, uuid: str, project_id: str | None = None,
                 read_deleted: bool = False) -> dict[str, Any]:
    """One instance; ``project_id`` restricts it to that project (404 otherwise)."""
    with db.read() as s:
        inst = _load_one(s, uuid, read_deleted)
        if project_id is not None and inst["project_id"] != project_id:
            raise exception.InstanceNotFound(instance_id=uuid)
        return inst


_SORT_KEYS = {"created_at", "updated_at", "display_name", "uuid", "vm_state", "task_state",
              "power_state", "host", "node", "launched_at", "terminated_at", "project_id",
              "user_id", "key_name", "availability_zone", "image_ref", "hostname",
              "launch_index", "memory_mb", "vcpus", "root_gb", "ephemeral_gb", "id",
              "access_ip_v4", "access_ip_v6", "auto_disk_config", "config_drive",
              "display_description", "locked_by", "progress", "kernel_id", "ramdisk_id",
              "root_device_name", "locked"}


def instance_get_all(db: Database, filters: dict[str, Any], limit: int | None = None,
                     marker: str | None = None, sort_keys: list[str] | None = None,
                     sort_dirs: list[str] | None = None) -> list[dict[str, Any]]:
    """Instances matching ``filters`` (keys: project_id, user_id, host, name
    (regex), states (from vm_states.states_from_status), changes_since and
    changes_before (datetimes bounding updated_at; either includes deleted),
    deleted (bool), flavor, image, reservation_id, uuids, locked (bool), and the tag
    filters of db.tags.filter_clauses), newest first unless
    ``sort_keys`` say otherwise; ``marker`` is the uuid of the last instance of
    the previous page."""
    sort_keys = list(sort_keys or ["created_at"])
    sort_dirs = list(sort_dirs or ["desc"] * len(sort_keys))
    for key in sort_keys:
        if key not in _SORT_KEYS:
            raise exception.Invalid(f"Invalid sort key: {key}")
    if "id" not in sort_keys:
        sort_keys.append("id")
        sort_dirs.append(sort_dirs[0] if sort_dirs else "desc")
    with db.read() as s:
        q = select(_INSTANCES)
        changes_since, changes_before = filters.get("changes_since"), filters.get("changes_before")
        if changes_since is not None or changes_before is not None:
            if changes_since is not None:
                q = q.where(Instance.updated_at >= changes_since)
            if changes_before is not None:
                q = q.where(Instance.updated_at <= changes_before)
        elif "deleted" in filters:
            q = q.where(Instance.deleted.is_(bool(filters["deleted"])))
        else:
            q = q.where(Instance.deleted.is_(False))
        for key in ("project_id", "user_id", "host", "reservation_id", "image_ref", "node"):
            if filters.get(key) is not None:
                q = q.where(getattr(Instance, key) == filters[key])
        if filters.get("uuids") is not None:
            q = q.where(Instance.uuid.in_(filters["uuids"]))
        if filters.get("locked") is not None:
            q = q.where(Instance.locked.is_(bool(filters["locked"])))
        for clause in db_tags.filter_clauses(filters):
            q = q.where(clause)
        states = filters.get("states")
        if states is not None:
            clauses = []
            for vm_state, task_state, excluded in states:
                if task_state is not None:
                    clauses.append(and_(Instance.vm_state == vm_state,
                                        Instance.task_state == task_state))
                elif excluded:
                    clauses.append(and_(Instance.vm_state == vm_state,
                                        or_(Instance.task_state.is_(None),
                                            Instance.task_state.not_in(excluded))))
                else:
                    clauses.append(Instance.vm_state == vm_state)
            if not clauses:
                return []
            q = q.where(or_(*clauses))
        order = []
        for key, direction in zip(sort_keys, sort_dirs):
            col = getattr(Instance, key)
            order.append(col.desc() if direction == "desc" else col.asc())
        q = q.order_by(*order)
        if marker is not None:
            mark = s.execute(select(_INSTANCES).where(_INSTANCES.c.uuid == marker)
                             ).mappings().one_or_none()
            if mark is None:
                raise exception.Invalid(f"marker [{marker}] not found")
            q = q.where(_after_marker(mark, sort_keys, sort_dirs))
        name_match = _name_matcher(filters["name"]) if filters.get("name") else None
        flavorid = filters.get("flavor")
        if name_match is None and flavorid is None:
            return _load(s, q if limit is None else q.limit(limit))
        # Regex and flavor (a JSON column) filters run here, portably; the
        # page is filled from as many rows as it takes.
        matched = []
        for inst in _load(s, q):
            if name_match is not None and not name_match(inst["display_name"] or ""):
                continue
            if flavorid is not None and str((inst["flavor"] or {}).get("flavorid")) != \
                    str(flavorid):
                continue
            matched.append(inst)
            if limit is not None and len(matched) >= limit:
                break
        return matched


# The time one list request's ``name`` regex may take over all the names it
# tests: a pattern that backtracks catastrophically (``(a+)+$``) is a 400
# after this, not an API thread held for ever.
NAME_FILTER_BUDGET = 1.0


def _name_matcher(pattern: str) -> Callable[[str], bool]:
    """``search`` of the user's ``pattern`` (Python syntax, as Nova's SQLite
    REGEXP), within NAME_FILTER_BUDGET seconds over the whole list."""
    compiled = regex.compile(pattern)
    deadline = time.monotonic() + NAME_FILTER_BUDGET

    def match(name: str) -> bool:
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError
            return compiled.search(name, timeout=remaining) is not None
        except TimeoutError:
            raise exception.Invalid(
                f"Invalid input for query parameters name. Value: {pattern}. "
                f"The regex takes too long to match.") from None
    return match


def _after_marker(mark: Any, keys: list[str], dirs: list[str]) -> Any:
    """Keyset pagination: rows strictly after ``mark`` in the (keys, dirs) order."""
    clauses = []
    for i, (key, direction) in enumerate(zip(keys, dirs)):
        equal_prefix = [getattr(Instance, k) == mark[k] for k in keys[:i]]
        col, value = getattr(Instance, key), mark[key]
        if value is None:
            # NULLs sort first ascending on SQLite/MySQL and last on PostgreSQL;
            # treat them as the smallest value.
            step = col.is_not(None) if direction == "asc" else None
        else:
            step = (col > value) if direction == "asc" else or_(col < value, col.is_(None))
        if step is not None:
            clauses.append(and_(*equal_prefix, step))
    return or_(*clauses)


def instances_get_by_host(db: Database, host: str) -> list[dict[str, Any]]:
    return instance_get_all(db, {"host": host})


def instances_get_by_hosts(db: Database, hosts: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The live instances of many hosts at once, by host (hosts without any absent)."""
    found: dict[str, list[dict[str, Any]]] = {}
    with db.read() as s:
        query = select(_INSTANCES).where(_INSTANCES.c.host.in_(hosts),
                                         _INSTANCES.c.deleted.is_(False))
        for inst in _load(s, query.order_by(_INSTANCES.c.id)):
            found.setdefault(inst["host"], []).append(inst)
    return found


# -- update / delete -----------------------------------------------------------

def instance_update(db: Database, uuid: str, updates: dict[str, Any],
                    expected_task_state: Any = UNSET, expected_vm_state: Any = UNSET,
                    event: dict[str, Any] | None = None,
                    fault: dict[str, Any] | None = None,
                    release_allocations: bool = False,
                    retried: bool = False,
                    also: Callable[[Session], None] | None = None) -> dict[str, Any]:
    """Update an instance; with ``expected_task_state`` (a value or a list,
    None meaning idle) the update applies only if the task state still is one
    of them, else :class:`UnexpectedTaskStateError` (the compare-and-swap).

    ``event`` records an instance-action event in the same transaction:
    ``{"request_id", "event", "phase": "start"|"finish", "host", "result",
    "traceback"}``, so a compute host's state change and its event cost one
    round trip. ``fault`` ({"code", "message", "details", "host"}) records an
    instance fault with the change, so an ERROR instance never shows without it;
    ``release_allocations`` gives its claimed resources back in the same step.
    ``retried`` marks a repeat of a call whose reply was lost: when the
    compare-and-swap fails because the row already is in the requested
    state, that earlier attempt applied it, and the row is returned.
    ``also`` runs in the same transaction once the update applied (the
    migration's own changes, :func:`stratus.db.resizes.finish`).
    """
    updates = _coerce(updates)
    metadata = updates.pop("metadata", None)
    updates.setdefault("updated_at", utcnow())
    with db.write() as s:
        q = update(Instance).where(Instance.uuid == uuid, Instance.deleted.is_(False))
        if expected_task_state is not UNSET:
            q = q.where(_state_in(Instance.task_state, expected_task_state))
        if expected_vm_state is not UNSET:
            q = q.where(_state_in(Instance.vm_state, expected_vm_state))
        result = s.execute(q.values(**updates).execution_options(synchronize_session=False))
        if result.rowcount == 0:
            current = _load_one(s, uuid)  # raises InstanceNotFound when gone
            if retried and all(current[k] == updates[k] for k in ("vm_state", "task_state")
                               if k in updates):
                return current
            raise exception.UnexpectedTaskStateError(
                instance_uuid=uuid,
                expected=expected_task_state if expected_task_state is not UNSET
                else expected_vm_state,
                actual=current["task_state"] if expected_task_state is not UNSET
                else current["vm_state"])
        if metadata is not None:
            _replace_metadata(s, _get(s, uuid), metadata)
            s.flush()
        if event is not None:
            _record_event(s, uuid, event)
        if fault is not None:
            _add_fault(s, uuid, **fault)
        if release_allocations:
            allocations.release(s, uuid)
        if also is not None:
            also(s)
        return _load_one(s, uuid)


def _state_in(column: Any, expected: Any) -> Any:
    values = list(expected) if isinstance(expected, (list, tuple, set)) else [expected]
    clauses = [column.is_(None) if v is None else column == v for v in values]
    return or_(*clauses)


def instance_destroy(db: Database, uuid: str) -> dict[str, Any]:
    """Soft-delete an instance (Nova keeps the row) and drop its allocations."""
    now = utcnow()
    with db.write() as s:
        inst = _get(s, uuid)
        inst.deleted = True
        inst.deleted_at = now
        inst.terminated_at = now
        inst.updated_at = now
        inst.vm_state = vm_states.DELETED
        inst.task_state = None
        allocations.release(s, uuid)
        db_tags.tags_destroy(s, uuid)  # as Nova's instance_destroy
        # A resize or migration under way holds the destination under its own uuid.
        for migration in s.scalars(select(Migration).where(
                Migration.instance_uuid == uuid,
                Migration.status.not_in(("confirmed", "reverted", "error")))):
            allocations.release(s, migration.uuid)
            migration.status = "error"
        s.flush()
        return _load_one(s, uuid, read_deleted=True)


def _replace_metadata(s: Session, inst: Instance, metadata: dict[str, str]) -> None:
    current = {m.key: m for m in inst.metadata_items}
    for key, item in current.items():
        if key not in metadata:
            inst.metadata_items.remove(item)
    for key, value in metadata.items():
        if key in current:
            current[key].value = value
        else:
            inst.metadata_items.append(InstanceMetadata(key=key, value=value))


MetadataCheck = Callable[[Session, str, int], None]


def metadata_update(db: Database, uuid: str, items: dict[str, str], replace: bool,
                    project_id: str | None = None,
                    check: MetadataCheck | None = None) -> dict[str, str]:
    """Merge (or, with ``replace``, replace) the instance's metadata.

    ``check(session, instance_project_id, item_count)`` may refuse the result
    (the metadata_items quota); the instance row is locked first, so two
    concurrent merges cannot together pass the limit.
    """
    with db.write() as s:
        inst = _get(s, uuid, lock=True)
        if project_id is not None and inst.project_id != project_id:
            raise exception.InstanceNotFound(instance_id=uuid)
        merged = dict(items) if replace else {**{m.key: m.value for m in inst.metadata_items},
                                              **items}
        if check is not None:
            check(s, inst.project_id or "", len(merged))
        _replace_metadata(s, inst, merged)
        inst.updated_at = utcnow()
        s.flush()
        return {m.key: m.value for m in inst.metadata_items}


# -- faults and actions --------------------------------------------------------

def _add_fault(s: Session, uuid: str, code: int, message: str, details: str | None = None,
               host: str | None = None) -> None:
    s.add(InstanceFault(instance_uuid=uuid, code=code, message=message[:255],
                        details=details, host=host, created_at=utcnow()))


def fault_create(db: Database, uuid: str, code: int, message: str,
                 details: str | None = None, host: str | None = None) -> None:
    with db.write() as s:
        _add_fault(s, uuid, code, message, details, host)


def action_start(db: Database, uuid: str, action: str, request_id: str,
                 user_id: str | None, project_id: str | None) -> None:
    with db.write() as s:
        now = utcnow()  # updated_at too, as Nova's (2.58 shows and filters on it)
        s.add(InstanceAction(action=action, instance_uuid=uuid, request_id=request_id,
                             user_id=user_id, project_id=project_id, start_time=now,
                             updated_at=now))


def _action_for(s: Session, uuid: str, request_id: str) -> InstanceAction | None:
    return s.scalars(select(InstanceAction).where(
        InstanceAction.instance_uuid == uuid, InstanceAction.request_id == request_id)
        .order_by(InstanceAction.id.desc()).limit(1)).one_or_none()


def _record_event(s: Session, uuid: str, event: dict[str, Any]) -> None:
    action = _action_for(s, uuid, event["request_id"])
    if action is None:
        return
    now = utcnow()
    if event["phase"] == "start":
        s.add(InstanceActionEvent(action_id=action.id, event=event["event"],
                                  host=event.get("host"), start_time=now))
        action.updated_at = now  # as Nova: the last time an event was recorded
        return
    ev = s.scalars(select(InstanceActionEvent).where(
        InstanceActionEvent.action_id == action.id,
        InstanceActionEvent.event == event["event"])
        .order_by(InstanceActionEvent.id.desc()).limit(1)).one_or_none()
    if ev is None:
        ev = InstanceActionEvent(action_id=action.id, event=event["event"],
                                 host=event.get("host"), start_time=now)
        s.add(ev)
    ev.finish_time = now
    ev.result = event["result"]
    ev.traceback = event.get("traceback")
    if event["result"].lower() == "error":
        action.message = "Error"
    action.updated_at = now


def action_event_start(db: Database, uuid: str, request_id: str, event: str,
                       host: str | None) -> None:
    with db.write() as s:
        _record_event(s, uuid, {"request_id": request_id, "event": event, "phase": "start",
                                "host": host})


def action_event_finish(db: Database, uuid: str, request_id: str, event: str,
                        result: str, traceback: str | None = None) -> None:
    """Finish the event; an Error result also marks the action as failed."""
    with db.write() as s:
        _record_event(s, uuid, {"request_id": request_id, "event": event, "phase": "finish",
                                "result": result, "traceback": traceback})


def actions_get(db: Database, uuid: str) -> list[dict[str, Any]]:
    with db.read() as s:
        rows = s.scalars(select(InstanceAction).where(InstanceAction.instance_uuid == uuid)
                         .order_by(InstanceAction.created_at.desc(), InstanceAction.id.desc()))
        return [to_dict(a) for a in rows]


def action_get(db: Database, uuid: str, request_id: str) -> dict[str, Any] | None:
    with db.read() as s:
        action = _action_for(s, uuid, request_id)
        if action is None:
            return None
        d = to_dict(action)
        d["events"] = [to_dict(e) for e in action.events]
        return d


# -- allocations -----------------------------------------------------------------

def allocations_delete(db: Database, uuid: str) -> None:
    with db.write() as s:
        allocations.release(s, uuid)


def instances_stuck_building(db: Database, older_than: datetime.datetime) -> list[str]:
    """Uuids of instances in BUILD not touched since ``older_than``."""
    with db.read() as s:
        rows = s.scalars(select(Instance.uuid).where(
            Instance.deleted.is_(False), Instance.vm_state == vm_states.BUILDING,
            Instance.updated_at < older_than))
        return list(rows)
