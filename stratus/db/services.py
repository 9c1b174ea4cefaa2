"""Queries for services (heartbeats, os-services) and compute nodes."""
from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import func, select

from stratus import exception
from stratus.db.common import to_dict
from stratus.db.models import Allocation, ComputeNode, Service
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

_NODE_FIELDS = ("hypervisor_type", "hypervisor_version", "host_ip", "cpu_info", "vcpus",
                "memory_mb", "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used",
                "running_vms", "cpu_allocation_ratio", "ram_allocation_ratio",
                "disk_allocation_ratio", "reserved_memory_mb", "reserved_disk_mb")


def compute_node_update(db: Database, host: str, hypervisor_hostname: str,
                        resources: dict[str, Any]) -> dict[str, Any]:
    """Upsert the node a compute host reports (fields as in :data:`_NODE_FIELDS`)."""
    with db.write() as s:
        node = s.scalars(select(ComputeNode).where(
            ComputeNode.host == host,
            ComputeNode.hypervisor_hostname == hypervisor_hostname)).one_or_none()
        if node is None:
            node = ComputeNode(uuid=new_uuid(), host=host,
                               hypervisor_hostname=hypervisor_hostname, generation=0)
            s.add(node)
        for key in _NODE_FIELDS:
            if key in resources:
                setattr(node, key, resources[key])
        node.updated_at = utcnow()
        s.flush()
        return to_dict(node)


def compute_node_get_all(db: Database, host: str | None = None) -> list[dict[str, Any]]:
    with db.read() as s:
        q = select(ComputeNode).order_by(ComputeNode.id)
        if host:
            q = q.where(ComputeNode.host == host)
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
        rows = s.execute(select(Allocation.compute_node_id,
                                func.coalesce(func.sum(Allocation.vcpus), 0),
                                func.coalesce(func.sum(Allocation.memory_mb), 0),
                                func.coalesce(func.sum(Allocation.disk_gb), 0),
                                func.count(Allocation.id))
                         .group_by(Allocation.compute_node_id))
        return {row[0]: {"vcpus": int(row[1]), "memory_mb": int(row[2]),
                         "disk_gb": int(row[3]), "instances": int(row[4])} for row in rows}
