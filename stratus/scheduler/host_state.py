"""A compute node as the scheduler sees it: capacity, claims, and liveness."""
from __future__ import annotations

import dataclasses
from typing import Any

from stratus.scheduler.capacity import capacity


@dataclasses.dataclass
class HostState:
    host: str
    nodename: str
    node_id: int
    node_uuid: str
    generation: int
    availability_zone: str
    service_up: bool
    service_disabled: bool
    total_vcpus: float      # capacity: (total - reserved) * allocation ratio
    total_memory_mb: float
    total_disk_gb: float
    used_vcpus: int
    used_memory_mb: int
    used_disk_gb: int
    num_instances: int

    @property
    def free_vcpus(self) -> float:
        return self.total_vcpus - self.used_vcpus

    @property
    def free_memory_mb(self) -> float:
        return self.total_memory_mb - self.used_memory_mb

    @property
    def free_disk_gb(self) -> float:
        return self.total_disk_gb - self.used_disk_gb

    def consume(self, resources: dict[str, int]) -> None:
        """Account for a claim just made, so later picks in the same request see it."""
        self.used_vcpus += resources["vcpus"]
        self.used_memory_mb += resources["memory_mb"]
        self.used_disk_gb += resources["disk_gb"]
        self.num_instances += 1
        self.generation += 1

    @classmethod
    def from_node(cls, node: dict[str, Any], usage: dict[str, int], service_up: bool,
                  service_disabled: bool, availability_zone: str) -> "HostState":
        cap = capacity(node)
        return cls(
            host=node["host"], nodename=node["hypervisor_hostname"], node_id=node["id"],
            node_uuid=node["uuid"], generation=node["generation"],
            availability_zone=availability_zone, service_up=service_up,
            service_disabled=service_disabled,
            total_vcpus=cap["vcpus"], total_memory_mb=cap["memory_mb"],
            total_disk_gb=cap["disk_gb"],
            used_vcpus=usage.get("vcpus", 0), used_memory_mb=usage.get("memory_mb", 0),
            used_disk_gb=usage.get("disk_gb", 0), num_instances=usage.get("instances", 0))


def resources_of(flavor: dict[str, Any]) -> dict[str, int]:
    """What one instance of ``flavor`` claims (swap counts towards disk)."""
    disk = int(flavor.get("root_gb", 0)) + int(flavor.get("ephemeral_gb", 0))
    swap_mb = int(flavor.get("swap") or 0)
    disk += (swap_mb + 1023) // 1024
    return {"vcpus": int(flavor["vcpus"]), "memory_mb": int(flavor["memory_mb"]),
            "disk_gb": disk}
