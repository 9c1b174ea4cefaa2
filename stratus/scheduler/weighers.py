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
from typing import Any, Sequence

from stratus.scheduler.host_state import HostState
from stratus.scheduler.request import SchedulingRequest


class Weigher:
    name: str = ""
    option: str = ""   # the [filter_scheduler] multiplier option

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


# name: (multiplier option, HostState attribute, scale)
HOST_ATTRIBUTES: dict[str, tuple[str, str, float]] = {
    "RAMWeigher": ("ram_weight_multiplier", "free_memory_mb", 1),
    "CPUWeigher": ("cpu_weight_multiplier", "free_vcpus", 1),
    "DiskWeigher": ("disk_weight_multiplier", "free_disk_gb", 1024),  # Nova weighs free_disk_mb
    "IoOpsWeigher": ("io_ops_weight_multiplier", "num_io_ops", 1),  # builds under way
    "NumInstancesWeigher": ("num_instances_weight_multiplier", "num_instances", 1),
}


class HostAttributeWeigher(Weigher):
    """Nova's RAM, CPU, Disk, IoOps and NumInstances weighers: one host
    attribute each, named by ``HOST_ATTRIBUTES``."""

    def __init__(self, name: str, multiplier: float) -> None:
        super().__init__(multiplier)
        self.name = name
        self.option, self.attribute, self.scale = HOST_ATTRIBUTES[name]

    def raw(self, host: HostState, req: SchedulingRequest) -> float:
        return getattr(host, self.attribute) * self.scale


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


GROUP_WEIGHERS: tuple[type[Weigher], ...] = (ServerGroupSoftAffinityWeigher,
                                             ServerGroupSoftAntiAffinityWeigher)


def build(options: Any) -> list[Weigher]:
    """Every weigher, with its multiplier from the ``[filter_scheduler]`` group."""
    return ([HostAttributeWeigher(name, float(getattr(options, option)))
             for name, (option, _, _) in HOST_ATTRIBUTES.items()]
            + [cls(float(getattr(options, cls.option))) for cls in GROUP_WEIGHERS])


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
