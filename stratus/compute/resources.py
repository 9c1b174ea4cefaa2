"""What a compute host reports about each of its nodes (Nova's resource tracker).

The driver gives physical totals and usage (:class:`HostResources`); the
host adds its ``[compute]`` allocation ratios and reservations, the instance
types it supports and its capabilities. An allocation ratio left unset is
sent as None with the ``initial_*`` value beside it: the conductor keeps the
node's current ratio, or starts a new node from the initial one (Nova's
semantics since Stein).
"""
from __future__ import annotations

import json
from typing import Any

from stratus.compute.virt.driver import HostResources

#: Nova's VMMode: the fake and libvirt (KVM/QEMU) drivers run full virtualisation.
DEFAULT_VM_MODE = "hvm"


def supported_instances(res: HostResources) -> list[list[str]]:
    """``[[arch, hypervisor_type, vm_mode]]``: what ImagePropertiesFilter checks."""
    try:
        arch = json.loads(res.cpu_info or "{}").get("arch")
    except (ValueError, AttributeError):
        arch = None
    if not arch:
        return []
    return [[str(arch), res.hypervisor_type, DEFAULT_VM_MODE]]


def node_report(res: HostResources, compute: Any, io_workload: int = 0) -> dict[str, Any]:
    """The fields of ``compute_node_update`` for one node; ``compute`` is the
    ``[compute]`` option group."""
    return {
        "hypervisor_type": res.hypervisor_type,
        "hypervisor_version": res.hypervisor_version,
        "host_ip": res.host_ip, "cpu_info": res.cpu_info,
        "vcpus": res.vcpus, "memory_mb": res.memory_mb, "local_gb": res.local_gb,
        "vcpus_used": res.vcpus_used, "memory_mb_used": res.memory_mb_used,
        "local_gb_used": res.local_gb_used, "running_vms": res.running_vms,
        "cpu_allocation_ratio": compute.cpu_allocation_ratio,
        "ram_allocation_ratio": compute.ram_allocation_ratio,
        "disk_allocation_ratio": compute.disk_allocation_ratio,
        "initial_cpu_allocation_ratio": compute.initial_cpu_allocation_ratio,
        "initial_ram_allocation_ratio": compute.initial_ram_allocation_ratio,
        "initial_disk_allocation_ratio": compute.initial_disk_allocation_ratio,
        "reserved_vcpus": compute.reserved_host_cpus,
        "reserved_memory_mb": compute.reserved_host_memory_mb,
        "reserved_disk_mb": compute.reserved_host_disk_mb,
        "supported_instances": supported_instances(res),
        # Nova's compute node stats: builds (I/O heavy tasks) under way.
        "stats": {"io_workload": io_workload},
    }
