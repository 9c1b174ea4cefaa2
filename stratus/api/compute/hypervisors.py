"""``/os-hypervisors`` up to microversion 2.52 (Nova's hypervisors.py); admin only.

A hypervisor is a compute node. Capacity (vcpus, memory_mb, local_gb) is
what the node reports; usage is what the scheduler claimed on it (the
allocations) plus the memory and disk the node keeps back for itself.
``state`` and ``status`` come from the node's compute service; nodes whose
service is gone are left out, as Nova does. Ids are the integer node ids.

From 2.28 ``cpu_info`` is a JSON object, not the string the node reports; from
2.33 the list and detail page (``limit``, ``marker`` = a hypervisor id,
``hypervisors_links``).
"""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
from werkzeug.wrappers import Response

from stratus import exception
from stratus.api.compute import microversion
from stratus.api.compute.common import authorize, limit_and_marker, next_link
from stratus.api.compute.services import COMPUTE_BINARY, service_state
from stratus.api.wsgi import Request, Route, json_response, nova_fault_body
from stratus.db import instances as db_instances
from stratus.db import services as db_services
from stratus.db.models import Instance
from stratus.db.session import Database
from stratus.scheduler.capacity import reserved_disk_gb

POLICY_LIST = "os_compute_api:os-hypervisors:list"
POLICY_DETAIL = "os_compute_api:os-hypervisors:list-detail"
POLICY_SHOW = "os_compute_api:os-hypervisors:show"
POLICY_STATISTICS = "os_compute_api:os-hypervisors:statistics"
POLICY_SEARCH = "os_compute_api:os-hypervisors:search"
POLICY_SERVERS = "os_compute_api:os-hypervisors:servers"
POLICY_UPTIME = "os_compute_api:os-hypervisors:uptime"

CPU_INFO_OBJECT_VERSION = "2.28"
PAGING_VERSION = "2.33"
_NO_USAGE = {"vcpus": 0, "memory_mb": 0, "disk_gb": 0, "instances": 0}


def node_usage(node: dict[str, Any], claimed: dict[str, int]) -> dict[str, int]:
    """The *_used, free_* and running_vms figures of one node."""
    vcpus_used = claimed["vcpus"]
    memory_mb_used = (node["reserved_memory_mb"] or 0) + claimed["memory_mb"]
    local_gb_used = reserved_disk_gb(node["reserved_disk_mb"]) + claimed["disk_gb"]
    free_disk_gb = node["local_gb"] - local_gb_used
    return {
        "vcpus_used": vcpus_used,
        "memory_mb_used": memory_mb_used,
        "local_gb_used": local_gb_used,
        "free_ram_mb": node["memory_mb"] - memory_mb_used,
        "free_disk_gb": free_disk_gb,
        "disk_available_least": free_disk_gb,
        "running_vms": claimed["instances"],
    }


def host_workloads(db: Database) -> dict[str, int]:
    """Per host, the instances with a task under way (Nova's current_workload)."""
    with db.read() as s:
        rows = s.execute(select(Instance.host, func.count(Instance.id))
                         .where(Instance.deleted.is_(False), Instance.host.is_not(None),
                                Instance.task_state.is_not(None))
                         .group_by(Instance.host))
        return {host: int(count) for host, count in rows}


class _Inventory:
    """Compute nodes joined with their services, claims and workloads."""

    def __init__(self, req: Request) -> None:
        db = req.state.db
        self.req = req
        self.nodes = db_services.compute_node_get_all(db)
        self.services = {s["host"]: s for s in
                         db_services.service_get_all(db, binary=COMPUTE_BINARY)}
        self.usage = db_services.allocation_usage(db)
        self.workloads = host_workloads(db)

    def service_for(self, node: dict[str, Any]) -> dict[str, Any] | None:
        return self.services.get(node["host"])

    def listed(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(node, service) pairs of the nodes whose compute service exists."""
        pairs = []
        for node in self.nodes:
            service = self.service_for(node)
            if service is not None:
                pairs.append((node, service))
        return pairs

    def brief(self, node: dict[str, Any], service: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": node["id"],
            "hypervisor_hostname": node["hypervisor_hostname"],
            "state": service_state(self.req, service),
            "status": "disabled" if service["disabled"] else "enabled",
        }

    def detail(self, node: dict[str, Any], service: dict[str, Any]) -> dict[str, Any]:
        view = self.brief(node, service)
        view.update({
            "vcpus": node["vcpus"],
            "memory_mb": node["memory_mb"],
            "local_gb": node["local_gb"],
            "hypervisor_type": node["hypervisor_type"],
            "hypervisor_version": node["hypervisor_version"],
            "current_workload": self.workloads.get(node["host"], 0),
            "cpu_info": self.cpu_info(node["cpu_info"]),
            "host_ip": node["host_ip"],
            "service": {"id": service["id"], "host": node["host"],
                        "disabled_reason": service["disabled_reason"]},
        })
        view.update(node_usage(node, self.usage.get(node["id"], _NO_USAGE)))
        return view

    def cpu_info(self, raw: str | None) -> Any:
        """The node's JSON text, or (2.28+) the object it holds ({} if none)."""
        if not microversion.is_supported(self.req, CPU_INFO_OBJECT_VERSION):
            return raw
        return json.loads(raw) if raw else {}

    def page(self) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], int | None]:
        """The listed nodes of the requested page (2.33+; all before) and the
        page's limit (None before 2.33), in id order."""
        listed = sorted(self.listed(), key=lambda pair: pair[0]["id"])
        if not microversion.is_supported(self.req, PAGING_VERSION):
            return listed, None
        limit, marker = limit_and_marker(self.req)
        if marker is not None:
            ids = {str(n["id"]) for n in self.nodes}
            if marker not in ids:
                raise exception.Invalid(f"marker [{marker}] not found")
            listed = [(n, s) for n, s in listed if n["id"] > int(marker)]
        return listed[:limit], limit

    def matching(self, pattern: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Nodes whose hypervisor_hostname contains ``pattern`` (Nova's LIKE %p%)."""
        return [(n, s) for n, s in self.listed() if pattern in n["hypervisor_hostname"]]


def _list(req: Request, detailed: bool) -> Response:
    inventory = _Inventory(req)
    pairs, limit = inventory.page()
    view = inventory.detail if detailed else inventory.brief
    hypervisors = [view(n, s) for n, s in pairs]
    body: dict[str, Any] = {"hypervisors": hypervisors}
    if limit is not None:
        links = next_link(req, "os-hypervisors/detail" if detailed else "os-hypervisors",
                          hypervisors, limit)
        if links:
            body["hypervisors_links"] = links
    return json_response(body)


def index(req: Request) -> Response:
    authorize(req, POLICY_LIST)
    return _list(req, detailed=False)


def detail(req: Request) -> Response:
    authorize(req, POLICY_DETAIL)
    return _list(req, detailed=True)


def show(req: Request, hypervisor_id: str) -> Response:
    authorize(req, POLICY_SHOW)
    not_found = exception.NotFound(f"Hypervisor with ID '{hypervisor_id}' could not be found.")
    try:
        node_id = int(hypervisor_id)
    except ValueError:
        raise not_found
    inventory = _Inventory(req)
    for node, service in inventory.listed():
        if node["id"] == node_id:
            return json_response({"hypervisor": inventory.detail(node, service)})
    raise not_found


def uptime(req: Request, hypervisor_id: str) -> Response:
    """No virt driver reports its host's uptime yet: Nova's 501 for such drivers
    (after the 404 for an unknown hypervisor)."""
    authorize(req, POLICY_UPTIME)
    try:
        node_id = int(hypervisor_id)
    except ValueError:
        node_id = None
    if node_id is None or all(n["id"] != node_id for n, _ in _Inventory(req).listed()):
        raise exception.NotFound(f"Hypervisor with ID '{hypervisor_id}' could not be found.")
    return json_response(nova_fault_body(501, "Virt driver does not implement uptime "
                                              "function."), 501)


def statistics(req: Request) -> Response:
    """Totals over the nodes of enabled compute services."""
    authorize(req, POLICY_STATISTICS)
    inventory = _Inventory(req)
    keys = ("vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used",
            "local_gb_used", "free_ram_mb", "free_disk_gb", "current_workload",
            "running_vms", "disk_available_least")
    totals = dict.fromkeys(keys, 0)
    count = 0
    for node, service in inventory.listed():
        if service["disabled"]:
            continue
        count += 1
        view = inventory.detail(node, service)
        for key in keys:
            totals[key] += view[key]
    return json_response({"hypervisor_statistics": {"count": count, **totals}})


def search(req: Request, pattern: str) -> Response:
    authorize(req, POLICY_SEARCH)
    inventory = _Inventory(req)
    found = inventory.matching(pattern)
    if not found:
        raise exception.NotFound(f"No hypervisor matching '{pattern}' could be found.")
    return json_response({"hypervisors": [inventory.brief(n, s) for n, s in found]})


def servers(req: Request, pattern: str) -> Response:
    """Matching hypervisors with the servers on their host ("servers" only if any)."""
    authorize(req, POLICY_SERVERS)
    inventory = _Inventory(req)
    found = inventory.matching(pattern)
    if not found:
        raise exception.NotFound(f"No hypervisor matching '{pattern}' could be found.")
    result = []
    for node, service in found:
        view = inventory.brief(node, service)
        hosted = db_instances.instances_get_by_host(req.state.db, node["host"])
        if hosted:
            view["servers"] = [{"name": i["display_name"], "uuid": i["uuid"]} for i in hosted]
        result.append(view)
    return json_response({"hypervisors": result})


def routes() -> list[Route]:
    return [
        Route("GET", "/os-hypervisors", index),
        Route("GET", "/os-hypervisors/detail", detail),
        Route("GET", "/os-hypervisors/statistics", statistics),
        Route("GET", "/os-hypervisors/<hypervisor_id>", show),
        Route("GET", "/os-hypervisors/<hypervisor_id>/uptime", uptime),
        Route("GET", "/os-hypervisors/<pattern>/search", search),
        Route("GET", "/os-hypervisors/<pattern>/servers", servers),
    ]
