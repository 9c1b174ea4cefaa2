"""Placement relative to other instances (Nova's filters).

ServerGroupAffinityFilter: an ``affinity`` group's members go to the host
its members are on (anywhere while it has none). ServerGroupAntiAffinityFilter:
an ``anti-affinity`` group has fewer than ``max_server_per_host`` (1) members
on the host. SameHostFilter / DifferentHostFilter: the ``same_host`` /
``different_host`` scheduler hints (instance uuids): be on a host of one of
them / on none of their hosts. Where the instances are is looked up once per
request (from their allocations); instances of the request placed earlier
count too.
"""
from __future__ import annotations

from stratus.scheduler.filters import BaseFilter
from stratus.scheduler.host_state import HostState
from stratus.scheduler.request import SchedulingRequest


class ServerGroupAffinityFilter(BaseFilter):
    name = "ServerGroupAffinityFilter"
    policy = "affinity"

    def applies(self, req: SchedulingRequest) -> bool:
        return req.group is not None and req.group.policy == self.policy

    def candidates(self, req: SchedulingRequest) -> frozenset[str] | None:
        assert req.group is not None
        occupied = frozenset(h for h, n in req.group.hosts.items() if n > 0)
        return occupied or None  # no member placed yet: anywhere

    def passes(self, host: HostState, req: SchedulingRequest) -> bool:
        assert req.group is not None
        return req.group.hosts.get(host.host, 0) > 0 or not any(req.group.hosts.values())


class ServerGroupAntiAffinityFilter(ServerGroupAffinityFilter):
    name = "ServerGroupAntiAffinityFilter"
    policy = "anti-affinity"

    def candidates(self, req: SchedulingRequest) -> frozenset[str] | None:
        return None

    def passes(self, host: HostState, req: SchedulingRequest) -> bool:
        assert req.group is not None
        return req.group.hosts.get(host.host, 0) < req.group.max_per_host


class SameHostFilter(BaseFilter):
    name = "SameHostFilter"

    def applies(self, req: SchedulingRequest) -> bool:
        return req.same_host is not None

    def candidates(self, req: SchedulingRequest) -> frozenset[str] | None:
        return req.same_host

    def passes(self, host: HostState, req: SchedulingRequest) -> bool:
        assert req.same_host is not None
        return host.host in req.same_host


class DifferentHostFilter(BaseFilter):
    name = "DifferentHostFilter"

    def applies(self, req: SchedulingRequest) -> bool:
        return req.different_host is not None

    def passes(self, host: HostState, req: SchedulingRequest) -> bool:
        assert req.different_host is not None
        return host.host not in req.different_host
