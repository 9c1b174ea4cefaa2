"""Weighers: rank the candidate hosts; higher is better (Nova's weighers).

Each weigher gives a raw value per host; the values are normalised to 0..1
across the candidates (min-max, all 0 when equal, as Nova's
``weights.normalize``) and added up, each times its multiplier. A
multiplier comes from ``[filter_scheduler] <name>_weight_multiplier``, or
from the host's aggregates' metadata key of the same name (the smallest when
several aggregates set it), as Nova's ``get_weight_multiplier``. A positive
RAM multiplier spreads instances; a negative one stacks them.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar, Sequence

from stratus.scheduler.host_state import HostState
from stratus.scheduler.request import SchedulingRequest


class Weigher:
    name: ClassVar[str] = ""
    option: ClassVar[str] = ""   # the [filter_scheduler] multiplier option

    def __init__(self, multiplier: float) -> None:
        self.multiplier = multiplier

    def applies(self, req: SchedulingRequest) -> bool:
        return True

    def raw(self, host: HostState, req: SchedulingRequest) -> float:
        raise NotImplementedError

    def multiplier_for(self, host: HostState) -> float:
        values = host.aggregate_metadata.get(self.option)
        if values:
            try:
                return min(float(v) for v in values)
            except ValueError:
                pass  # Nova logs and falls back to the option
        return self.multiplier


class RAMWeigher(Weigher):
    name, option = "RAMWeigher", "ram_weight_multiplier"

    def raw(self, host: HostState, req: SchedulingRequest) -> float:
        return host.free_memory_mb


class CPUWeigher(Weigher):
    name, option = "CPUWeigher", "cpu_weight_multiplier"

    def raw(self, host: HostState, req: SchedulingRequest) -> float:
        return host.free_vcpus


class DiskWeigher(Weigher):
    name, option = "DiskWeigher", "disk_weight_multiplier"

    def raw(self, host: HostState, req: SchedulingRequest) -> float:
        return host.free_disk_gb * 1024  # Nova weighs free_disk_mb


class IoOpsWeigher(Weigher):
    """Builds under way on the host (negative multiplier: prefer idle hosts)."""

    name, option = "IoOpsWeigher", "io_ops_weight_multiplier"

    def raw(self, host: HostState, req: SchedulingRequest) -> float:
        return host.num_io_ops


class NumInstancesWeigher(Weigher):
    name, option = "NumInstancesWeigher", "num_instances_weight_multiplier"

    def raw(self, host: HostState, req: SchedulingRequest) -> float:
        return host.num_instances


class ServerGroupSoftAffinityWeigher(Weigher):
    """soft-affinity groups: more of the group's members on the host is better."""

    name, option = "ServerGroupSoftAffinityWeigher", "soft_affinity_weight_multiplier"
    policy = "soft-affinity"
    sign = 1.0

    def applies(self, req: SchedulingRequest) -> bool:
        return req.group is not None and req.group.policy == self.policy

    def raw(self, host: HostState, req: SchedulingRequest) -> float:
        assert req.group is not None
        return self.sign * req.group.hosts.get(host.host, 0)


class ServerGroupSoftAntiAffinityWeigher(ServerGroupSoftAffinityWeigher):
    """soft-anti-affinity groups: fewer of the group's members is better."""

    name, option = "ServerGroupSoftAntiAffinityWeigher", "soft_anti_affinity_weight_multiplier"
    policy = "soft-anti-affinity"
    sign = -1.0


ALL: tuple[type[Weigher], ...] = (RAMWeigher, CPUWeigher, DiskWeigher, IoOpsWeigher,
                                  NumInstancesWeigher, ServerGroupSoftAffinityWeigher,
                                  ServerGroupSoftAntiAffinityWeigher)


def build(options: Any) -> list[Weigher]:
    """Every weigher, with its multiplier from the ``[filter_scheduler]`` group."""
    return [cls(float(getattr(options, cls.option))) for cls in ALL]


def normalize(values: Sequence[float]) -> list[float]:
    """Min-max to 0..1; all 0 when the values are equal (Nova's normalize)."""
    if not values:
        return []
    lo, hi = min(values), max(values)
    if math.isclose(lo, hi):
        return [0.0] * len(values)
    span = hi - lo
    return [(v - lo) / span for v in values]


def weigh(hosts: Sequence[HostState], weighers: Sequence[Weigher],
          req: SchedulingRequest) -> list[tuple[float, HostState]]:
    """(weight, host) pairs, best first; ties keep the candidates' order."""
    totals = [0.0] * len(hosts)
    for weigher in weighers:
        if not weigher.applies(req):
            continue
        multipliers = [weigher.multiplier_for(h) for h in hosts]
        if not any(multipliers):
            continue
        for i, value in enumerate(normalize([weigher.raw(h, req) for h in hosts])):
            totals[i] += multipliers[i] * value
    order = sorted(range(len(hosts)), key=lambda i: -totals[i])
    return [(totals[i], hosts[i]) for i in order]
