"""ComputeCapabilitiesFilter: flavor extra specs ``capabilities:<name>`` against
the host (Nova's filter).

A key ``capabilities:a:b`` looks up host attribute ``a`` (Nova's HostState
names: ``hypervisor_type``, ``cpu_info``, ``free_ram_mb``...; else the
host's ``stats``) and then ``b`` inside it (JSON text such as ``cpu_info`` is
parsed), and matches the value with :mod:`extra_specs_ops`. A key without a
scope counts only when the host has such an attribute or stat (Nova's
backward compatibility); keys of other scopes (``hw:``, ``aggregate_...``)
are not this filter's. A missing capability fails the host.

Most capabilities are static attributes, so the filter is answered per
computed class; a request naming a per-host value (``free_ram_mb``,
``host``...) makes the filter run per host for that request.
"""
from __future__ import annotations

import json
from typing import Any, Callable

from stratus.scheduler.filters import BaseFilter
from stratus.scheduler.filters.extra_specs_ops import match
from stratus.scheduler.host_state import HostState
from stratus.scheduler.request import SchedulingRequest

SCOPE = "capabilities"

#: Nova HostState attribute -> how to read it here; static ones are in the class.
STATIC: dict[str, Callable[[HostState], Any]] = {
    "hypervisor_type": lambda h: h.hypervisor_type,
    "hypervisor_version": lambda h: h.hypervisor_version,
    "cpu_info": lambda h: h.cpu_info,
    "supported_instances": lambda h: [list(x) for x in h.supported_instances],
    "cpu_allocation_ratio": lambda h: h.cpu_allocation_ratio,
    "ram_allocation_ratio": lambda h: h.ram_allocation_ratio,
    "disk_allocation_ratio": lambda h: h.disk_allocation_ratio,
}
DYNAMIC: dict[str, Callable[[HostState], Any]] = {
    "host": lambda h: h.host,
    "nodename": lambda h: h.nodename,
    "hypervisor_hostname": lambda h: h.nodename,
    "host_ip": lambda h: h.host_ip,
    "free_ram_mb": lambda h: h.free_memory_mb,
    "free_disk_mb": lambda h: h.free_disk_gb * 1024,
    "vcpus_total": lambda h: h.vcpus_total,
    "vcpus_used": lambda h: h.used_vcpus,
    "total_usable_ram_mb": lambda h: h.memory_mb_total,
    "total_usable_disk_gb": lambda h: h.local_gb_total,
    "num_instances": lambda h: h.num_instances,
    "num_io_ops": lambda h: h.num_io_ops,
    "stats": lambda h: dict(h.stats),
}


def _scope_of(key: str) -> tuple[list[str], bool] | None:
    """(attribute path, scoped) a key asks for, or None when it is not ours."""
    parts = key.split(":")
    if len(parts) == 1:
        return parts, False
    return (parts[1:], True) if parts[0] == SCOPE else None


def _lookup(host: HostState, path: list[str]) -> Any:
    first = path[0]
    reader = STATIC.get(first) or DYNAMIC.get(first)
    value: Any = reader(host) if reader else host.stats.get(first)
    for name in path[1:]:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return None
        if not isinstance(value, dict):
            return None
        value = value.get(name)
        if value is None:
            return None
    return value


class ComputeCapabilitiesFilter(BaseFilter):
    name = "ComputeCapabilitiesFilter"
    static = True

    @staticmethod
    def _requirements(req: SchedulingRequest) -> list[tuple[list[str], bool, str]]:
        found = []
        for key, requirement in req.extra_specs.items():
            scope = _scope_of(key)
            if scope is not None:
                found.append((scope[0], scope[1], str(requirement)))
        return found

    def applies(self, req: SchedulingRequest) -> bool:
        return bool(self._requirements(req))

    def is_static(self, req: SchedulingRequest) -> bool:
        return not any(path[0] in DYNAMIC for path, _, _ in self._requirements(req))

    def passes(self, host: HostState, req: SchedulingRequest) -> bool:
        for path, scoped, requirement in self._requirements(req):
            if not scoped and path[0] not in STATIC and path[0] not in DYNAMIC \
                    and path[0] not in host.stats:
                continue  # unscoped and unknown to the host: not a capability
            value = _lookup(host, path)
            if value is None or not match(str(value), requirement):
                return False
        return True
