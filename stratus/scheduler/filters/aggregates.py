"""Filters on the host's aggregates' metadata (Nova's).

AggregateInstanceExtraSpecsFilter: every flavor extra spec without a scope,
or scoped ``aggregate_instance_extra_specs:``, must match (extra_specs_ops)
one of the values its key has in the host's aggregates; a key no aggregate
of the host has fails it. AggregateMultiTenancyIsolation: a host in an
aggregate with ``filter_tenant_id*`` keys takes only those projects.
"""
from __future__ import annotations

from stratus.scheduler.filters import BaseFilter
from stratus.scheduler.filters.extra_specs_ops import match
from stratus.scheduler.host_state import HostState
from stratus.scheduler.request import SchedulingRequest

SCOPE = "aggregate_instance_extra_specs"
TENANT_KEY = "filter_tenant_id"


class AggregateInstanceExtraSpecsFilter(BaseFilter):
    name = "AggregateInstanceExtraSpecsFilter"
    static = True

    @staticmethod
    def _requirements(req: SchedulingRequest) -> list[tuple[str, str]]:
        found = []
        for key, requirement in req.extra_specs.items():
            scope, sep, rest = key.partition(":")
            if not sep:
                found.append((key, str(requirement)))
            elif scope == SCOPE:
                found.append((rest, str(requirement)))
        return found

    def applies(self, req: SchedulingRequest) -> bool:
        return bool(self._requirements(req))

    def passes(self, host: HostState, req: SchedulingRequest) -> bool:
        for key, requirement in self._requirements(req):
            values = host.aggregate_metadata.get(key)
            if not values or not any(match(value, requirement) for value in values):
                return False
        return True


class AggregateMultiTenancyIsolation(BaseFilter):
    name = "AggregateMultiTenancyIsolation"
    static = True

    def passes(self, host: HostState, req: SchedulingRequest) -> bool:
        allowed: set[str] = set()
        for key, values in host.aggregate_metadata.items():
            if key.startswith(TENANT_KEY):
                allowed.update(values)
        return not allowed or req.project_id in allowed
