"""Weighers: rank the feasible hosts; higher is better.

Each weigher returns a raw value per host; values are normalised to 0..1
across the candidates and summed with the weigher's multiplier, as Nova does.
"""
from __future__ import annotations

from typing import Callable

from stratus.scheduler.host_state import HostState

Weigher = tuple[str, float, Callable[[HostState], float]]

DEFAULT_WEIGHERS: list[Weigher] = [
    # Spread: prefer the host with the most free RAM, then CPUs.
    ("RAMWeigher", 1.0, lambda h: h.free_memory_mb),
    ("CPUWeigher", 1.0, lambda h: h.free_vcpus),
]


def weigh(hosts: list[HostState], weighers: list[Weigher] = DEFAULT_WEIGHERS
          ) -> list[tuple[float, HostState]]:
    """(weight, host) pairs, best first."""
    totals = [0.0] * len(hosts)
    for _name, multiplier, fn in weighers:
        raw = [fn(h) for h in hosts]
        lo, hi = min(raw, default=0.0), max(raw, default=0.0)
        span = hi - lo
        for i, value in enumerate(raw):
            totals[i] += multiplier * ((value - lo) / span if span else 0.0)
    ranked = sorted(zip(totals, hosts), key=lambda p: -p[0])
    return ranked
