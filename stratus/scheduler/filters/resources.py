"""RamFilter, CoreFilter, DiskFilter: the request fits the host's free capacity,
``(total - reserved) * allocation_ratio - used`` (what the claim checks too)."""
from __future__ import annotations

from stratus.scheduler.filters import BaseFilter
from stratus.scheduler.host_state import HostState
from stratus.scheduler.request import SchedulingRequest


class RamFilter(BaseFilter):
    name = "RamFilter"
    cost = 2

    def passes(self, host: HostState, req: SchedulingRequest) -> bool:
        return host.free_memory_mb >= req.resources["memory_mb"]


class CoreFilter(BaseFilter):
    name = "CoreFilter"
    cost = 2

    def passes(self, host: HostState, req: SchedulingRequest) -> bool:
        return host.free_vcpus >= req.resources["vcpus"]


class DiskFilter(BaseFilter):
    name = "DiskFilter"
    cost = 2

    def applies(self, req: SchedulingRequest) -> bool:
        return req.resources["disk_gb"] > 0

    def passes(self, host: HostState, req: SchedulingRequest) -> bool:
        return host.free_disk_gb >= req.resources["disk_gb"]
