"""Payloads of the versioned notifications services emit (instance.*)."""
from __future__ import annotations

from typing import Any

from stratus.utils import isotime


def instance_payload(inst: dict[str, Any]) -> dict[str, Any]:
    """The instance as notifications show it (a subset of Nova's InstancePayload)."""
    flavor = inst.get("flavor") or {}
    return {
        "uuid": inst["uuid"],
        "display_name": inst.get("display_name"),
        "tenant_id": inst.get("project_id"),
        "user_id": inst.get("user_id"),
        "host": inst.get("host"),
        "node": inst.get("node"),
        "state": inst.get("vm_state"),
        "task_state": inst.get("task_state"),
        "power_state": inst.get("power_state"),
        "image_uuid": inst.get("image_ref"),
        "availability_zone": inst.get("availability_zone"),
        "flavor": {"flavorid": flavor.get("flavorid"), "name": flavor.get("name"),
                   "memory_mb": flavor.get("memory_mb"), "vcpus": flavor.get("vcpus"),
                   "root_gb": flavor.get("root_gb"), "ephemeral_gb": flavor.get("ephemeral_gb"),
                   "swap": flavor.get("swap")},
        "created_at": _iso(inst.get("created_at")),
        "launched_at": _iso(inst.get("launched_at")),
        "terminated_at": _iso(inst.get("terminated_at")),
        "metadata": inst.get("metadata") or {},
    }


def _iso(value: Any) -> Any:
    return isotime(value) if hasattr(value, "strftime") else value
