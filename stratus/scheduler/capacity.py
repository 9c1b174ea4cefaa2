"""What a compute node can hold: Placement's inventory arithmetic.

Each resource class has a total, a part the host keeps for itself and an
allocation ratio; the capacity the scheduler and the claims work with is
``(total - reserved) * ratio`` (Placement's ``capacity``), and a request
fits while ``used + requested <= capacity``.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

#: The resource classes Stratus claims (Placement's VCPU, MEMORY_MB, DISK_GB).
RESOURCES = ("vcpus", "memory_mb", "disk_gb")


def reserved_disk_gb(reserved_disk_mb: int | None) -> int:
    """Nova rounds the reserved disk up to whole GB for the DISK_GB inventory."""
    return math.ceil((reserved_disk_mb or 0) / 1024)


def capacity(node: Mapping[str, Any]) -> dict[str, float]:
    """The capacity of a compute node row (a dict or a Row's mapping)."""
    return {
        "vcpus": (node["vcpus"] - (node["reserved_vcpus"] or 0)) * node["cpu_allocation_ratio"],
        "memory_mb": ((node["memory_mb"] - (node["reserved_memory_mb"] or 0))
                      * node["ram_allocation_ratio"]),
        "disk_gb": ((node["local_gb"] - reserved_disk_gb(node["reserved_disk_mb"]))
                    * node["disk_allocation_ratio"]),
    }


def fits(cap: Mapping[str, float], used: Mapping[str, int],
         requested: Mapping[str, int]) -> str | None:
    """None when ``requested`` fits on top of ``used``; else the first
    resource class that does not."""
    for rc in RESOURCES:
        if requested.get(rc, 0) and used.get(rc, 0) + requested[rc] > cap[rc]:
            return rc
    return None
