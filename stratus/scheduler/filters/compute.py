"""ComputeFilter (the host's compute service is enabled and up) and the
internal IgnoreHostsFilter (hosts a reschedule already tried)."""
from __future__ import annotations

from stratus.scheduler.filters import BaseFilter
from stratus.scheduler.host_state import HostState
from stratus.scheduler.request import SchedulingRequest


def service_is_up(host: HostState, req: SchedulingRequest) -> bool:
    svc = host.service
    if svc is None or svc.forced_down:
        return False
    seen = svc.last_seen if svc.last_seen is not None else req.liveness_floor
    return req.now - seen <= req.down_time


class ComputeFilter(BaseFilter):
    name = "ComputeFilter"
    cost = 0

    def passes(self, host: HostState, req: SchedulingRequest) -> bool:
        return host.service is not None and not host.service.disabled and \
            service_is_up(host, req)


class IgnoreHostsFilter(BaseFilter):
    name = "IgnoreHostsFilter"
    cost = 0

    def applies(self, req: SchedulingRequest) -> bool:
        return bool(req.ignore_hosts)

    def passes(self, host: HostState, req: SchedulingRequest) -> bool:
        return host.host not in req.ignore_hosts
