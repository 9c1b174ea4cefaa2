"""``/os-hypervisors`` (Nova's hypervisors.py); admin only.

A hypervisor is a compute node. Capacity (vcpus, memory_mb, local_gb) is
what the node reports; usage is what the scheduler claimed on it (the
allocations) plus the memory and disk the node keeps back for itself.
``state`` and ``status`` come from the node's compute service; nodes whose
service is gone are left out, as Nova does. Ids are the integer node ids.

From 2.28 ``cpu_info`` is a JSON object, not the string the node reports; from
2.33 the list and detail page (``limit``, ``marker`` = a hypervisor id or
uuid, ``hypervisors_links``).

From 2.53 (``HYPERVISOR_UUID_VERSION``) a hypervisor's ``id`` and its
``service.id`` are uuids, and show and uptime take the uuid (anything else is
a 400). The list and detail take ``hypervisor_hostname_pattern`` (404 when
nothing matches; with ``limit`` or ``marker`` a 400) and ``with_servers``
(show takes it too), replacing ``/os-hypervisors/{pattern}/search`` and
``/servers``, which are 404 from then on; unknown query parameters are 400s.
From 2.75 (``EMPTY_SERVERS_VERSION``) a hypervisor asked ``with_servers``
always has ``servers``, an empty list when its host runs none.
"""
from __future__ import annotations

import functools
import json
from typing import Any

from sqlalchemy import func, select
from werkzeug.wrappers import Response

from stratus import exception
from stratus.api.compute import microversion, parameter_types
from stratus.api.compute.common import authorize, limit_and_marker, next_link
from stratus.api.compute.query import single_param, validate_query
from stratus.api.compute.services import COMPUTE_BINARY, service_state
from stratus.api.wsgi import Request, Route, json_response, nova_fault_body
from stratus.db import instances as db_instances
from stratus.db import services as db_services
from stratus.db.models import Instance
from stratus.db.session import Database
from stratus.scheduler.capacity import reserved_disk_gb
from stratus.utils import is_uuid_like

POLICY_LIST = "os_compute_api:os-hypervisors:list"
POLICY_DETAIL = "os_compute_api:os-hypervisors:list-detail"
POLICY_SHOW = "os_compute_api:os-hypervisors:show"
POLICY_STATISTICS = "os_compute_api:os-hypervisors:statistics"
POLICY_SEARCH = "os_compute_api:os-hypervisors:search"
POLICY_SERVERS = "os_compute_api:os-hypervisors:servers"
POLICY_UPTIME = "os_compute_api:os-hypervisors:uptime"

CPU_INFO_OBJECT_VERSION = "2.28"
PAGING_VERSION = "2.33"
HYPERVISOR_UUID_VERSION = "2.53"
EMPTY_SERVERS_VERSION = "2.75"
_NO_USAGE = {"vcpus": 0, "memory_mb": 0, "disk_gb": 0, "instances": 0}

_NON_NEGATIVE_INTEGER = {"type": ["integer", "string"], "pattern": "^[0-9]*$",
                         "minimum": 0, "minLength": 1}
# nova/api/openstack/compute/schemas/hypervisors.py index_query_v253 / show_query_v253.
LIST_QUERY_SCHEMA_V253: dict[str, Any] = {
    "type": "object",
    "properties": {
        "limit": single_param(_NON_NEGATIVE_INTEGER),
        "marker": single_param({"type": "string"}),
        "hypervisor_hostname_pattern": single_param(parameter_types.hostname),
        "with_servers": single_param(parameter_types.boolean),
    },
    "additionalProperties": False,
}
SHOW_QUERY_SCHEMA_V253: dict[str, Any] = {
    "type": "object",
    "properties": {"with_servers": single_param(parameter_types.boolean)},
    "additionalProperties": False,
}

# A compute node and its compute service.
Pair = tuple[dict[str, Any], dict[str, Any]]


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

    # Read only by the detailed views: a brief list (every page of which
    # reads the whole inventory) does not pay for them.
    @functools.cached_property
    def usage(self) -> dict[int, dict[str, int]]:
        return db_services.allocation_usage(self.req.state.db)

    @functools.cached_property
    def workloads(self) -> dict[str, int]:
        return host_workloads(self.req.state.db)

    def service_for(self, node: dict[str, Any]) -> dict[str, Any] | None:
        return self.services.get(node["host"])

    def listed(self) -> list[Pair]:
        """(node, service) pairs of the nodes whose compute service exists."""
        pairs = []
        for node in self.nodes:
            service = self.service_for(node)
            if service is not None:
                pairs.append((node, service))
        return pairs

    @property
    def uuid_for_id(self) -> bool:
        return microversion.is_supported(self.req, HYPERVISOR_UUID_VERSION)

    @property
    def always_servers(self) -> bool:
        return microversion.is_supported(self.req, EMPTY_SERVERS_VERSION)

    def brief(self, node: dict[str, Any], service: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": node["uuid"] if self.uuid_for_id else node["id"],
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
            "service": {"id": service["uuid"] if self.uuid_for_id else service["id"],
                        "host": node["host"],
                        "disabled_reason": service["disabled_reason"]},
        })
        view.update(node_usage(node, self.usage.get(node["id"], _NO_USAGE)))
        return view

    def cpu_info(self, raw: str | None) -> Any:
        """The node's JSON text, or (2.28+) the object it holds ({} if none)."""
        if not microversion.is_supported(self.req, CPU_INFO_OBJECT_VERSION):
            return raw
        return json.loads(raw) if raw else {}

    def page(self) -> tuple[list[Pair], int | None]:
        """The listed nodes of the requested page (2.33+; all before) and the
        page's limit (None before 2.33), in id order."""
        listed = sorted(self.listed(), key=lambda pair: pair[0]["id"])
        if not microversion.is_supported(self.req, PAGING_VERSION):
            return listed, None
        limit, marker = limit_and_marker(self.req)
        if marker is not None:
            # Nova's HostAPI.compute_node_get_all: a uuid or an id.
            after = next((n["id"] for n in self.nodes
                          if marker in (str(n["id"]), n["uuid"])), None)
            if after is None:
                raise exception.Invalid(f"marker [{marker}] not found")
            listed = [(n, s) for n, s in listed if n["id"] > after]
        return listed[:limit], limit

    def find(self, hypervisor_id: str) -> Pair:
        """The listed node ``hypervisor_id`` names: a uuid from 2.53 (else a
        400), an integer id before (else a 404)."""
        not_found = exception.NotFound(
            f"Hypervisor with ID '{hypervisor_id}' could not be found.")
        if self.uuid_for_id:
            if not is_uuid_like(hypervisor_id):
                raise exception.Invalid(f"Invalid uuid {hypervisor_id}")
            key, wanted = "uuid", hypervisor_id
        else:
            try:
                key, wanted = "id", int(hypervisor_id)
            except ValueError:
                raise not_found
        for node, service in self.listed():
            if node[key] == wanted:
                return node, service
        raise not_found

    def servers_on(self, node: dict[str, Any]) -> list[dict[str, str]]:
        hosted = db_instances.instances_get_by_host(self.req.state.db, node["host"])
        return [{"name": i["display_name"], "uuid": i["uuid"]} for i in hosted]

    def with_servers(self, view: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
        """``view`` plus ``servers`` when the host has any; from 2.75 always
        (an empty list when none)."""
        hosted = self.servers_on(node)
        if hosted or self.always_servers:
            view["servers"] = hosted
        return view

    def matching(self, pattern: str) -> list[Pair]:
        """Nodes whose hypervisor_hostname contains ``pattern`` (Nova's LIKE %p%)."""
        return [(n, s) for n, s in self.listed() if pattern in n["hypervisor_hostname"]]


def _no_match(pattern: str) -> exception.NotFound:
    return exception.NotFound(f"No hypervisor matching '{pattern}' could be found.")


def _with_servers_param(req: Request) -> bool:
    """The ``with_servers`` query parameter (already validated), 2.53+."""
    raw = req.args.get("with_servers")
    return raw is not None and parameter_types.bool_from_string(raw)


def _list(req: Request, detailed: bool) -> Response:
    inventory = _Inventory(req)
    pattern: str | None = None
    with_servers = False
    if inventory.uuid_for_id:
        pattern = req.args.get("hypervisor_hostname_pattern")
        with_servers = _with_servers_param(req)
    limit: int | None
    if pattern is not None:
        if "limit" in req.args or req.args.get("marker"):
            raise exception.Invalid("Paging over hypervisors with the "
                                    "hypervisor_hostname_pattern query parameter is not "
                                    "supported.")
        pairs, limit = inventory.matching(pattern), None  # no links: they would be 400s
        if not pairs:
            raise _no_match(pattern)
    else:
        pairs, limit = inventory.page()
    view = inventory.detail if detailed else inventory.brief
    hypervisors = []
    for node, service in pairs:
        item = view(node, service)
        hypervisors.append(inventory.with_servers(item, node) if with_servers else item)
    body: dict[str, Any] = {"hypervisors": hypervisors}
    if limit is not None:
        links = next_link(req, "os-hypervisors/detail" if detailed else "os-hypervisors",
                          hypervisors, limit)  # the marker is the last id shown
        if links:
            body["hypervisors_links"] = links
    return json_response(body)


def _validate_list_query(req: Request) -> None:
    if microversion.is_supported(req, HYPERVISOR_UUID_VERSION):
        validate_query(req, LIST_QUERY_SCHEMA_V253)


def index(req: Request) -> Response:
    _validate_list_query(req)
    authorize(req, POLICY_LIST)
    return _list(req, detailed=False)


def detail(req: Request) -> Response:
    _validate_list_query(req)
    authorize(req, POLICY_DETAIL)
    return _list(req, detailed=True)


def show(req: Request, hypervisor_id: str) -> Response:
    with_servers = False
    if microversion.is_supported(req, HYPERVISOR_UUID_VERSION):
        validate_query(req, SHOW_QUERY_SCHEMA_V253)
        with_servers = _with_servers_param(req)
    authorize(req, POLICY_SHOW)
    inventory = _Inventory(req)
    node, service = inventory.find(hypervisor_id)
    view = inventory.detail(node, service)
    if with_servers:
        view = inventory.with_servers(view, node)
    return json_response({"hypervisor": view})


def uptime(req: Request, hypervisor_id: str) -> Response:
    """No virt driver reports its host's uptime yet: Nova's 501 for such drivers
    (after the 400 for a malformed id at 2.53 and the 404 for an unknown one)."""
    authorize(req, POLICY_UPTIME)
    _Inventory(req).find(hypervisor_id)
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
        raise _no_match(pattern)
    return json_response({"hypervisors": [inventory.brief(n, s) for n, s in found]})


def servers(req: Request, pattern: str) -> Response:
    """Matching hypervisors with the servers on their host ("servers" only if any)."""
    authorize(req, POLICY_SERVERS)
    inventory = _Inventory(req)
    found = inventory.matching(pattern)
    if not found:
        raise _no_match(pattern)
    return json_response({"hypervisors": [inventory.with_servers(inventory.brief(n, s), n)
                                          for n, s in found]})


def routes() -> list[Route]:
    return [
        Route("GET", "/os-hypervisors", index),
        Route("GET", "/os-hypervisors/detail", detail),
        Route("GET", "/os-hypervisors/statistics", statistics),
        Route("GET", "/os-hypervisors/<hypervisor_id>", show),
        Route("GET", "/os-hypervisors/<hypervisor_id>/uptime", uptime),
        # Replaced by the list's query parameters at 2.53.
        Route("GET", "/os-hypervisors/<pattern>/search",
              microversion.only_in(search, until=HYPERVISOR_UUID_VERSION)),
        Route("GET", "/os-hypervisors/<pattern>/servers",
              microversion.only_in(servers, until=HYPERVISOR_UUID_VERSION)),
    ]
