"""A compute node as the scheduler sees it: its class, capacity, usage and service.

A :class:`HostState` splits into
* *static attributes* — availability zone, aggregates (and their metadata),
  hypervisor type/version, CPU info, supported instances, capabilities
  (``stats`` minus counters), allocation ratios. Hosts that agree on all of
  them share a *computed class* (``class_id``, Nomad's computed node class):
  a filter that reads only these gives the same answer for every host of a
  class, so the chain asks it once per class and request;
* *dynamic state* — capacity and usage (``generation`` tells which view of
  the node's allocations this is), and the service's liveness.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
from typing import Any, Mapping

from stratus.scheduler.capacity import capacity

DEFAULT_AZ = "nova"
#: stats keys that are counters, not capabilities: kept out of the class.
_COUNTER_STATS = ("io_workload",)


@dataclasses.dataclass(slots=True, eq=False)
class ServiceInfo:
    """The liveness of a host's compute service.

    ``last_seen`` is the exact last heartbeat (epoch seconds) for services the
    cache knows to be old, disabled or forced down; None means "at least the
    cache's floor" (see :mod:`stratus.scheduler.cache`).
    """

    availability_zone: str | None = None
    disabled: bool = False
    forced_down: bool = False
    last_seen: float | None = None


@dataclasses.dataclass(slots=True, frozen=True)
class AggregateInfo:
    id: int
    name: str
    metadata: Mapping[str, str]


@dataclasses.dataclass(slots=True, eq=False)
class HostState:
    host: str
    nodename: str
    node_id: int
    node_uuid: str
    generation: int
    updated_at: datetime.datetime | None
    # -- static attributes --------------------------------------------------
    hypervisor_type: str = "fake"
    hypervisor_version: int = 0
    host_ip: str | None = None
    cpu_info: str = "{}"
    supported_instances: tuple[tuple[str, ...], ...] = ()
    stats: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    cpu_allocation_ratio: float = 1.0
    ram_allocation_ratio: float = 1.0
    disk_allocation_ratio: float = 1.0
    # Set by the cache from the aggregates and the service.
    aggregates: tuple[AggregateInfo, ...] = ()
    aggregate_metadata: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    availability_zone: str = DEFAULT_AZ
    service: ServiceInfo | None = None
    class_id: int = 0
    # -- capacity and usage ---------------------------------------------------
    vcpus_total: int = 0        # physical, as reported
    memory_mb_total: int = 0
    local_gb_total: int = 0
    total_vcpus: float = 0.0    # capacity: (total - reserved) * ratio
    total_memory_mb: float = 0.0
    total_disk_gb: float = 0.0
    used_vcpus: int = 0
    used_memory_mb: int = 0
    used_disk_gb: int = 0
    num_instances: int = 0
    num_io_ops: int = 0

    def __repr__(self) -> str:
        return f"<HostState {self.host}/{self.nodename} gen {self.generation}>"

    @property
    def free_vcpus(self) -> float:
        return self.total_vcpus - self.used_vcpus

    @property
    def free_memory_mb(self) -> float:
        return self.total_memory_mb - self.used_memory_mb

    @property
    def free_disk_gb(self) -> float:
        return self.total_disk_gb - self.used_disk_gb

    def consume(self, resources: Mapping[str, int]) -> None:
        """Account for a claim just made (its generation bump included), so
        later picks see it before the next refresh."""
        self.used_vcpus += resources["vcpus"]
        self.used_memory_mb += resources["memory_mb"]
        self.used_disk_gb += resources["disk_gb"]
        self.num_instances += 1
        self.num_io_ops += 1
        self.generation += 1

    def apply_node(self, node: Mapping[str, Any], usage: Mapping[str, int]) -> bool:
        """Take a node row and its allocation sums; True when a static attribute
        changed (the class must be recomputed)."""
        static = self.static_key()
        self.generation = node["generation"]
        self.updated_at = node["updated_at"]
        self.hypervisor_type = node["hypervisor_type"]
        self.hypervisor_version = node["hypervisor_version"]
        self.host_ip = node["host_ip"]
        self.cpu_info = node["cpu_info"] or "{}"
        self.supported_instances = tuple(tuple(x) for x in node["supported_instances"] or ())
        self.stats = dict(node["stats"] or {})
        self.cpu_allocation_ratio = node["cpu_allocation_ratio"]
        self.ram_allocation_ratio = node["ram_allocation_ratio"]
        self.disk_allocation_ratio = node["disk_allocation_ratio"]
        self.vcpus_total = node["vcpus"]
        self.memory_mb_total = node["memory_mb"]
        self.local_gb_total = node["local_gb"]
        cap = capacity(node)
        self.total_vcpus, self.total_memory_mb, self.total_disk_gb = (
            cap["vcpus"], cap["memory_mb"], cap["disk_gb"])
        self.used_vcpus = usage.get("vcpus", 0)
        self.used_memory_mb = usage.get("memory_mb", 0)
        self.used_disk_gb = usage.get("disk_gb", 0)
        self.num_instances = usage.get("instances", 0)
        self.num_io_ops = int(self.stats.get("io_workload", 0) or 0)
        return self.static_key() != static

    def set_aggregates(self, aggregates: tuple[AggregateInfo, ...]) -> None:
        """Aggregates and their merged metadata (values split on commas, as Nova's
        ``aggregate_metadata_get_by_host``); the zone of the first that names one,
        else the service's, else the default."""
        self.aggregates = aggregates
        merged: dict[str, set[str]] = {}
        for agg in aggregates:
            for key, value in agg.metadata.items():
                merged.setdefault(key, set()).update(v.strip() for v in value.split(","))
        self.aggregate_metadata = {k: frozenset(v) for k, v in merged.items()}
        self.refresh_zone()

    def refresh_zone(self) -> None:
        zones = self.aggregate_metadata.get("availability_zone")
        if zones:
            self.availability_zone = sorted(zones)[0]
        elif self.service is not None and self.service.availability_zone:
            self.availability_zone = self.service.availability_zone
        else:
            self.availability_zone = DEFAULT_AZ

    @property
    def zones(self) -> frozenset[str]:
        """Every zone the host is in (Nova compares the requested zone with all
        of its aggregates' zones)."""
        return self.aggregate_metadata.get("availability_zone") or frozenset(
            {self.availability_zone})

    def static_key(self) -> tuple[Any, ...]:
        """Everything a static filter may read: hosts with equal keys share a class."""
        stats = tuple(sorted((k, str(v)) for k, v in self.stats.items()
                             if k not in _COUNTER_STATS and not k.startswith("num_")))
        return (self.availability_zone, tuple(a.id for a in self.aggregates),
                self.hypervisor_type, self.hypervisor_version, self.cpu_info,
                self.supported_instances, stats, self.cpu_allocation_ratio,
                self.ram_allocation_ratio, self.disk_allocation_ratio)

    def cpu_info_dict(self) -> dict[str, Any]:
        try:
            value = json.loads(self.cpu_info)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    @classmethod
    def from_node(cls, node: Mapping[str, Any], usage: Mapping[str, int]) -> "HostState":
        state = cls(host=node["host"], nodename=node["hypervisor_hostname"],
                    node_id=node["id"], node_uuid=node["uuid"],
                    generation=node["generation"], updated_at=node["updated_at"])
        state.apply_node(node, usage)
        return state


def resources_of(flavor: Mapping[str, Any]) -> dict[str, int]:
    """What one instance of ``flavor`` claims (swap counts towards disk)."""
    disk = int(flavor.get("root_gb", 0)) + int(flavor.get("ephemeral_gb", 0))
    swap_mb = int(flavor.get("swap") or 0)
    disk += (swap_mb + 1023) // 1024
    return {"vcpus": int(flavor["vcpus"]), "memory_mb": int(flavor["memory_mb"]),
            "disk_gb": disk}
