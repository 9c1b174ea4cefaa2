"""AvailabilityZoneFilter: the host is in the requested zone.

A host's zones are those of its aggregates' ``availability_zone`` metadata,
else its service's, else the default ("nova"), as Nova's filter.
"""
from __future__ import annotations

from stratus.scheduler.filters import BaseFilter
from stratus.scheduler.host_state import HostState
from stratus.scheduler.request import SchedulingRequest


class AvailabilityZoneFilter(BaseFilter):
    name = "AvailabilityZoneFilter"
    static = True

    def applies(self, req: SchedulingRequest) -> bool:
        return bool(req.availability_zone)

    def passes(self, host: HostState, req: SchedulingRequest) -> bool:
        return req.availability_zone in host.zones
