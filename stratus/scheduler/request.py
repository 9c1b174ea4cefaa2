"""One scheduling request as the filters and weighers read it.

Built from the request spec the conductor sends (flavor, image, zone,
project, hints, forced host, reschedule's ``ignore_hosts``) plus what the
scheduler looks up once per request: the server group's policy and where its
members are, and the hosts of the instances named by ``same_host`` /
``different_host``.
"""
from __future__ import annotations

import collections
import dataclasses
from typing import Any, Mapping

from stratus.scheduler.host_state import HostState, resources_of


@dataclasses.dataclass
class GroupInfo:
    """A server group: ``hosts`` counts its members per host (placed ones)."""

    uuid: str
    policy: str
    max_per_host: int = 1
    hosts: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)


def _uuid_list(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


@dataclasses.dataclass
class SchedulingRequest:
    resources: dict[str, int]
    extra_specs: Mapping[str, str] = dataclasses.field(default_factory=dict)
    image_properties: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    availability_zone: str | None = None
    project_id: str | None = None
    ignore_hosts: frozenset[str] = frozenset()
    force_hosts: tuple[str, ...] = ()
    force_nodes: tuple[str, ...] = ()
    # A requested destination (cold migrate to a host, 2.56; create on a host
    # and/or node, 2.74): the only host / node to consider, through every
    # filter (unlike a forced host).
    requested_host: str | None = None
    requested_node: str | None = None
    group: GroupInfo | None = None
    same_host: frozenset[str] | None = None       # hosts that must be chosen from
    different_host: frozenset[str] | None = None  # hosts to avoid
    # Liveness, fixed for the request (see stratus.scheduler.cache).
    now: float = 0.0
    liveness_floor: float = 0.0
    down_time: float = 60.0

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> "SchedulingRequest":
        flavor = spec["flavor"]
        image = spec.get("image") or {}
        destination = spec.get("requested_destination") or {}
        return cls(resources=resources_of(flavor),
                   extra_specs=dict(flavor.get("extra_specs") or {}),
                   image_properties=dict(image.get("properties") or {}),
                   availability_zone=spec.get("availability_zone") or None,
                   project_id=spec.get("project_id"),
                   ignore_hosts=frozenset(spec.get("ignore_hosts") or ()),
                   force_hosts=tuple(spec.get("force_hosts") or ()),
                   force_nodes=tuple(spec.get("force_nodes") or ()),
                   requested_host=destination.get("host") or None,
                   requested_node=destination.get("node") or None)

    @staticmethod
    def hinted_instances(spec: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(same_host, different_host) instance uuids of the scheduler hints."""
        hints = spec.get("scheduler_hints") or {}
        return _uuid_list(hints.get("same_host")), _uuid_list(hints.get("different_host"))

    @staticmethod
    def group_uuid(spec: Mapping[str, Any]) -> str | None:
        hint = (spec.get("scheduler_hints") or {}).get("group")
        if isinstance(hint, list):
            hint = hint[0] if hint else None
        return hint or None

    @property
    def forced(self) -> bool:
        return bool(self.force_hosts or self.force_nodes)

    def placed(self, host: HostState) -> None:
        """An instance of this request went to ``host`` (multi-instance requests)."""
        if self.group is not None:
            self.group.hosts[host.host] += 1

    def unplaced(self, host: HostState) -> None:
        """... after all not (its claim was refused)."""
        if self.group is not None and self.group.hosts.get(host.host, 0) > 0:
            self.group.hosts[host.host] -= 1
