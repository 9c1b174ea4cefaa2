"""``/os-availability-zone`` and ``/os-availability-zone/detail`` (Nova's availability_zone.py).

A zone is available while at least one of its services is enabled. The
summary (anyone) hides the "internal" zone of the non-compute services; the
detail (admin) lists, for each available zone, its hosts and their enabled
services with whether each is up.
"""
from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from stratus.api.compute.common import authorize
from stratus.api.compute.services import INTERNAL_ZONE, service_zone
from stratus.api.wsgi import Request, Route, json_response
from stratus.db import aggregates as db_aggregates
from stratus.db import services as db_services
from stratus.utils import isotime_us

POLICY_LIST = "os_compute_api:os-availability-zone:list"
POLICY_DETAIL = "os_compute_api:os-availability-zone:detail"

# API services are not listed in the detail, as in Nova.
_API_BINARIES = frozenset({"stratus-api", "nova-osapi_compute", "nova-metadata"})


def _zones(services: list[dict[str, Any]],
           host_zones: dict[str, str]) -> tuple[list[str], list[str]]:
    """(available zones, unavailable zones), each sorted; a compute host's zone
    comes from its aggregates."""
    available = {service_zone(s, host_zones) for s in services if not s["disabled"]}
    unavailable = {service_zone(s, host_zones) for s in services if s["disabled"]} - available
    return sorted(available), sorted(unavailable)


def index(req: Request) -> Response:
    authorize(req, POLICY_LIST)
    services = db_services.service_get_all(req.state.db)
    available, unavailable = _zones(services, db_aggregates.host_zones(req.state.db))
    info = [{"zoneName": zone, "zoneState": {"available": state}, "hosts": None}
            for zones, state in ((available, True), (unavailable, False))
            for zone in zones if zone != INTERNAL_ZONE]
    return json_response({"availabilityZoneInfo": info})


def detail(req: Request) -> Response:
    authorize(req, POLICY_DETAIL)
    services = db_services.service_get_all(req.state.db)
    host_zones = db_aggregates.host_zones(req.state.db)
    available, unavailable = _zones(services, host_zones)
    down_time = req.state.conf.DEFAULT.service_down_time
    hosts_by_zone: dict[str, dict[str, dict[str, Any]]] = {}
    for service in services:
        if service["disabled"] or service["binary"] in _API_BINARIES:
            continue
        host = hosts_by_zone.setdefault(service_zone(service, host_zones), {}).setdefault(
            service["host"], {})
        host[service["binary"]] = {
            "available": db_services.service_is_up(service, down_time),
            "active": True,
            "updated_at": isotime_us(service["updated_at"]),
        }
    info: list[dict[str, Any]] = [
        {"zoneName": zone, "zoneState": {"available": True},
         "hosts": hosts_by_zone.get(zone, {})}
        for zone in available]
    info += [{"zoneName": zone, "zoneState": {"available": False}, "hosts": None}
             for zone in unavailable]
    return json_response({"availabilityZoneInfo": info})


def routes() -> list[Route]:
    return [
        Route("GET", "/os-availability-zone", index),
        Route("GET", "/os-availability-zone/detail", detail),
    ]
