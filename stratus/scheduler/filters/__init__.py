"""Feasibility filters: yes/no checks of a host against a request (Nova's names).

``[filter_scheduler] enabled_filters`` lists the filters to run, by Nova's
class names. Every filter is a small class:

* ``passes(host, request)`` answers for one host;
* ``applies(request)`` is False when the request gives it nothing to check
  (no zone asked for, no server group...): the filter is skipped outright;
* ``is_static(request)`` is True when the answer depends only on the host's
  static attributes (its computed class): the chain then asks once per class
  (Nomad's memoised feasibility); a filter that reads something unique to a
  host for this request (a capability such as ``free_ram_mb``) "escapes" and
  runs per host;
* ``cost`` orders the filters that run per host: cheap checks (liveness,
  hints) before resource fit;
* ``candidates(request)`` may name the only hosts that can pass (an
  affinity group's hosts, ``same_host``): the chain then visits just those
  instead of walking every host.
"""
from __future__ import annotations

import importlib
from typing import ClassVar

from stratus.exception import ConfigError
from stratus.scheduler.host_state import HostState
from stratus.scheduler.request import SchedulingRequest


class BaseFilter:
    name: ClassVar[str] = ""
    static: ClassVar[bool] = False
    cost: ClassVar[int] = 1

    def applies(self, req: SchedulingRequest) -> bool:
        return True

    def is_static(self, req: SchedulingRequest) -> bool:
        return self.static

    def candidates(self, req: SchedulingRequest) -> frozenset[str] | None:
        return None

    def passes(self, host: HostState, req: SchedulingRequest) -> bool:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{self.name}>"


#: Nova's filter names -> "module:Class" under stratus.scheduler.filters.
AVAILABLE: dict[str, str] = {
    "ComputeFilter": "compute:ComputeFilter",
    "AvailabilityZoneFilter": "availability_zone:AvailabilityZoneFilter",
    "RamFilter": "resources:RamFilter",
    "CoreFilter": "resources:CoreFilter",
    "DiskFilter": "resources:DiskFilter",
    "ImagePropertiesFilter": "image_properties:ImagePropertiesFilter",
    "ComputeCapabilitiesFilter": "capabilities:ComputeCapabilitiesFilter",
    "AggregateInstanceExtraSpecsFilter": "aggregates:AggregateInstanceExtraSpecsFilter",
    "AggregateMultiTenancyIsolation": "aggregates:AggregateMultiTenancyIsolation",
    "ServerGroupAffinityFilter": "affinity:ServerGroupAffinityFilter",
    "ServerGroupAntiAffinityFilter": "affinity:ServerGroupAntiAffinityFilter",
    "SameHostFilter": "affinity:SameHostFilter",
    "DifferentHostFilter": "affinity:DifferentHostFilter",
}

#: Always on, whatever the configuration: the hosts a reschedule already tried.
INTERNAL = "compute:IgnoreHostsFilter"


def _load(spec: str) -> BaseFilter:
    module, _, cls = spec.partition(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)()


def build(names: list[str]) -> list[BaseFilter]:
    """The enabled filters, in the configured order, plus the internal ones."""
    unknown = [n for n in names if n not in AVAILABLE]
    if unknown:
        raise ConfigError(reason=f"[filter_scheduler] enabled_filters: unknown filter(s) "
                                 f"{', '.join(unknown)}; available: {', '.join(AVAILABLE)}")
    return [_load(AVAILABLE[n]) for n in dict.fromkeys(names)] + [_load(INTERNAL)]
