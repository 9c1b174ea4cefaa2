"""Feasibility filters: cheap yes/no checks of a host against a request.

Each filter is a small callable ``(host, spec) -> bool`` with a ``name`` for
the "No valid host" reason; the chain runs the cheapest first.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol

from stratus.scheduler.host_state import HostState


class Filter(Protocol):
    name: str

    def __call__(self, host: HostState, spec: dict[str, Any]) -> bool: ...


class _Named:
    def __init__(self, name: str, fn: Callable[[HostState, dict[str, Any]], bool]) -> None:
        self.name = name
        self._fn = fn

    def __call__(self, host: HostState, spec: dict[str, Any]) -> bool:
        return self._fn(host, spec)


def _compute(host: HostState, spec: dict[str, Any]) -> bool:
    return host.service_up and not host.service_disabled


def _zone(host: HostState, spec: dict[str, Any]) -> bool:
    zone = spec.get("availability_zone")
    return not zone or zone == host.availability_zone


def _ignore(host: HostState, spec: dict[str, Any]) -> bool:
    return host.host not in spec.get("ignore_hosts", ())


def _ram(host: HostState, spec: dict[str, Any]) -> bool:
    return host.free_memory_mb >= spec["resources"]["memory_mb"]


def _cores(host: HostState, spec: dict[str, Any]) -> bool:
    return host.free_vcpus >= spec["resources"]["vcpus"]


def _disk(host: HostState, spec: dict[str, Any]) -> bool:
    return host.free_disk_gb >= spec["resources"]["disk_gb"]


DEFAULT_FILTERS: list[Filter] = [
    _Named("ComputeFilter", _compute),
    _Named("AvailabilityZoneFilter", _zone),
    _Named("IgnoreHostsFilter", _ignore),
    _Named("RamFilter", _ram),
    _Named("CoreFilter", _cores),
    _Named("DiskFilter", _disk),
]
