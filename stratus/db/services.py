"""Queries for services (heartbeats, os-services) and compute nodes."""
from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from stratus import exception
from stratus.db import allocations
from stratus.db.common import to_dict
from stratus.db.models import ComputeNode, Service
from stratus.db.session import Database
from stratus.utils import new_uuid, utcnow


def service_heartbeat(db: Database, host: str, binary: str, topic: str | None = None,
                      availability_zone: str | None = None) -> dict[str, Any]:
    """Create the service row on first report, then bump it on each heartbeat."""
    now = utcnow()
    with db.write() as s:
        svc = s.scalars(select(Service).where(Service.host == host,
                                              Service.binary == binary)).one_or_none()
        if svc is None:
            svc = Service(uuid=new_uuid(), host=host, binary=binary, topic=topic,
                          report_count=0, availability_zone=availability_zone)
            s.add(svc)
        svc.report_count = (svc.report_count or 0) + 1
        svc.last_seen_up = now
        svc.updated_at = now
        s.flush()
        return to_dict(svc)


def service_heartbeats(db: Database, hosts: list[str], binary: str, topic: str | None = None,
                       batch: int = 1000) -> int:
    """Heartbeat many services in one statement per ``batch`` (a process running
    many fake hosts); services heard from for the first time are created."""
    now = utcnow()
    for start in range(0, len(hosts), batch):
        chunk = hosts[start:start + batch]
        with db.write() as s:
            result = s.execute(update(Service)
                               .where(Service.binary == binary, Service.host.in_(chunk))
                               .values(report_count=Service.report_count + 1,
                                       last_seen_up=now, updated_at=now)
                               .execution_options(synchronize_session=False))
            if result.rowcount != len(chunk):
                known = set(s.scalars(select(Service.host).where(
                    Service.binary == binary, Service.host.in_(chunk))))
                s.add_all(Service(uuid=new_uuid(), host=host, binary=binary, topic=topic,
                                  report_count=1, last_seen_up=now, created_at=now,
                                  updated_at=now)
                          for host in chunk if host not in known)
    return len(hosts)


def service_get_all(db: Database, binary: str | None = None,
                    host: str | None = None) -> list[dict[str, Any]]:
    with db.read() as s:
        q = select(Service).order_by(Service.id)
        if binary:
            q = q.where(Service.binary == binary)
        if host:
            q = q.where(Service.host == host)
        return [to_dict(svc) for svc in s.scalars(q)]


def service_get(db: Database, ident: str | int) -> dict[str, Any]:
    """By uuid (string) or id (int)."""
    with db.read() as s:
        col = Service.id if isinstance(ident, int) else Service.uuid
        svc = s.scalars(select(Service).where(col == ident)).one_or_none()
        if svc is None:
            raise exception.ServiceNotFound(service_id=ident)
        return to_dict(svc)


def service_update(db: Database, ident: str | int, **values: Any) -> dict[str, Any]:
    with db.write() as s:
        col = Service.id if isinstance(ident, int) else Service.uuid
        svc = s.scalars(select(Service).where(col == ident)).one_or_none()
        if svc is None:
            raise exception.ServiceNotFound(service_id=ident)
        for key, value in values.items():
            setattr(svc, key, value)
        s.flush()
        return to_dict(svc)


def service_delete(db: Database, ident: str | int) -> None:
    with db.write() as s:
        col = Service.id if isinstance(ident, int) else Service.uuid
        svc = s.scalars(select(Service).where(col == ident)).one_or_none()
        if svc is None:
            raise exception.ServiceNotFound(service_id=ident)
        s.delete(svc)


def service_is_up(service: dict[str, Any], down_time: float) -> bool:
    """Up when not forced down and heard from within ``down_time`` seconds."""
    if service.get("forced_down"):
        return False
    seen = service.get("last_seen_up") or service.get("updated_at") or service.get("created_at")
    if seen is None:
        return False
    return (utcnow() - seen) <= datetime.timedelta(seconds=down_time)


# -- compute nodes -------------------------------------------------------------

_RATIOS = ("cpu_allocation_ratio", "ram_allocation_ratio", "disk_allocation_ratio")
#: What a node's capacity is made of: a change bumps its generation (as
#: Placement's inventory updates do), so claims made on the old figures conflict.
_INVENTORY = ("vcpus", "memory_mb", "local_gb", "reserved_vcpus", "reserved_memory_mb",
              "reserved_disk_mb") + _RATIOS
_NODE_FIELDS = ("hypervisor_type", "hypervisor_version", "host_ip", "cpu_info",
                "vcpus_used", "memory_mb_used", "local_gb_used", "running_vms",
                "supported_instances", "stats") + _INVENTORY


def _node_values(node: ComputeNode | None, resources: dict[str, Any]) -> dict[str, Any]:
    """The columns a report changes on ``node`` (all of them for a new node).

    A ratio reported unset (None, or Nova's legacy 0.0) keeps the node's
    current ratio; a new node starts from ``initial_<ratio>`` (Nova's
    ``initial_*_allocation_ratio`` semantics).
    """
    values = {k: resources[k] for k in _NODE_FIELDS if k in resources and k not in _RATIOS}
    for ratio in _RATIOS:
        value = resources.get(ratio) or None
        if value is None:
            value = getattr(node, ratio) if node is not None else resources.get(f"initial_{ratio}")
        if value is not None:
            values[ratio] = value
    if node is None:
        return values
    return {k: v for k, v in values.items() if getattr(node, k) != v}


def _upsert_nodes(s: Session, reports: list[dict[str, Any]]) -> list[ComputeNode]:
    """Write the reports of one batch; a node is only written when it changed."""
    hosts = {r["host"] for r in reports}
    existing = {(n.host, n.hypervisor_hostname): n for n in s.scalars(
        select(ComputeNode).where(ComputeNode.host.in_(hosts)))}
    now = utcnow()
    nodes = []
    for report in reports:
        key = (report["host"], report["nodename"])
        node = existing.get(key)
        values = _node_values(node, report["resources"])
        if node is None:
            node = ComputeNode(uuid=new_uuid(), host=key[0], hypervisor_hostname=key[1],
                               generation=0, created_at=now, updated_at=now, **values)
            s.add(node)
            existing[key] = node
        elif values:
            if any(k in _INVENTORY for k in values):
                node.generation = ComputeNode.generation + 1  # in SQL: no lost update
            for k, v in values.items():
                setattr(node, k, v)
            node.updated_at = now
        nodes.append(node)
    s.flush()
    return nodes


def compute_node_update(db: Database, host: str, hypervisor_hostname: str,
                        resources: dict[str, Any]) -> dict[str, Any]:
    """Upsert the node a compute host reports (fields as in :data:`_NODE_FIELDS`,
    plus ``initial_*_allocation_ratio``)."""
    with db.write() as s:
        [node] = _upsert_nodes(s, [{"host": host, "nodename": hypervisor_hostname,
                                    "resources": resources}])
        s.refresh(node)
        return to_dict(node)


def compute_nodes_update(db: Database, reports: list[dict[str, Any]],
                         batch: int = 500) -> int:
    """Upsert many nodes (``[{"host", "nodename", "resources"}]``), ``batch``
    per transaction; returns how many reports were applied."""
    for start in range(0, len(reports), batch):
        with db.write() as s:
            _upsert_nodes(s, reports[start:start + batch])
    return len(reports)


def compute_node_get_all(db: Database, host: str | None = None,
                         hypervisor_hostname: str | None = None) -> list[dict[str, Any]]:
    with db.read() as s:
        q = select(ComputeNode).order_by(ComputeNode.id)
        if host:
            q = q.where(ComputeNode.host == host)
        if hypervisor_hostname:
            q = q.where(ComputeNode.hypervisor_hostname == hypervisor_hostname)
        return [to_dict(n) for n in s.scalars(q)]


def compute_node_get(db: Database, ident: str | int) -> dict[str, Any]:
    """By uuid (string) or id (int)."""
    with db.read() as s:
        col = ComputeNode.id if isinstance(ident, int) else ComputeNode.uuid
        node = s.scalars(select(ComputeNode).where(col == ident)).one_or_none()
        if node is None:
            raise exception.ComputeHostNotFound(host=ident)
        return to_dict(node)


def allocation_usage(db: Database) -> dict[int, dict[str, int]]:
    """Claimed resources per compute node id: {id: {vcpus, memory_mb, disk_gb, instances}}."""
    with db.read() as s:
        return allocations.usage(s)
