"""``/os-simple-tenant-usage`` (Nova's
simple_tenant_usage.py): what projects used over a period, from the
instances' launch and termination times. What ``openstack usage list`` /
``usage show``, ``nova usage`` and dashboards read.

An instance counts for the hours it ran inside [start, end): from
max(launched_at, start) to min(terminated_at, end), or to the end of the
period while it still runs. Deleted instances count too (their rows stay),
never-launched ones do not. ``end`` is capped at now. The list (admin) gives
per-project totals, with each server's usage when ``detailed=1``; the show
(``/{project_id}``, the project's readers or an admin) always includes them,
and is ``{}`` for a project with no usage.

Instances are taken in (created_at, id) order, at most ``[api] max_limit``
of them (Nova limits the older versions silently too); from 2.40 ``limit``
and ``marker`` (an instance uuid) page through them, and a full page carries
``tenant_usages_links`` (``tenant_usage_links`` on the show).
"""
from __future__ import annotations

import datetime
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import and_, or_, select
from werkzeug.wrappers import Response

from stratus import exception
from stratus.api.compute import microversion
from stratus.api.compute.common import authorize, limit_and_marker, next_link
from stratus.api.wsgi import Request, Route, json_response
from stratus.db.models import Instance
from stratus.db.session import Database
from stratus.utils import isotime_us, utcnow

POLICY_LIST = "os_compute_api:os-simple-tenant-usage:list"
POLICY_SHOW = "os_compute_api:os-simple-tenant-usage:show"
PAGING_VERSION = "2.40"

_TIME_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f")


def _parse_time(raw: str | None) -> datetime.datetime:
    if not raw:
        return utcnow()
    for fmt in _TIME_FORMATS:
        try:
            return datetime.datetime.strptime(raw, fmt)
        except ValueError:
            continue
    raise exception.Invalid("Invalid datetime string: Datetime is in invalid format")


def _period(req: Request) -> tuple[datetime.datetime, datetime.datetime, bool]:
    """(start, stop, detailed) from the query, as Nova reads it (first values)."""
    query = parse_qs(req.query_string.decode("latin-1"))
    start = _parse_time(query.get("start", [None])[0])
    stop = _parse_time(query.get("end", [None])[0])
    if not start < stop:
        raise exception.Invalid("Invalid start time. The start time cannot occur after the "
                                "end time.")
    return start, min(stop, utcnow()), query.get("detailed", ["0"])[0] == "1"


def _hours(launched: datetime.datetime | None, terminated: datetime.datetime | None,
           start: datetime.datetime, stop: datetime.datetime) -> float:
    if launched is None or launched > stop or (terminated is not None and terminated < start):
        return 0.0
    end = min(stop, terminated) if terminated is not None else stop
    return (end - max(launched, start)).total_seconds() / 3600.0


def _instances(db: Database, start: datetime.datetime, stop: datetime.datetime,
               project_id: str | None, limit: int | None = None,
               marker: str | None = None) -> list[Instance]:
    """Nova's get_active_by_window_joined: launched before the end, not
    terminated before the start; deleted ones included; ``limit`` of them
    after the instance ``marker`` (any instance, deleted or not)."""
    query = (select(Instance)
             .where(or_(Instance.terminated_at.is_(None), Instance.terminated_at > start),
                    Instance.launched_at < stop)
             .order_by(Instance.created_at.asc(), Instance.id.asc()))
    if project_id is not None:
        query = query.where(Instance.project_id == project_id)
    with db.read() as s:
        if marker is not None:
            mark = s.execute(select(Instance.created_at, Instance.id)
                             .where(Instance.uuid == marker)).one_or_none()
            if mark is None:
                raise exception.Invalid(f"Marker {marker} could not be found.")
            query = query.where(or_(Instance.created_at > mark.created_at,
                                    and_(Instance.created_at == mark.created_at,
                                         Instance.id > mark.id)))
        if limit is not None:
            query = query.limit(limit)
        rows = list(s.scalars(query))
        s.expunge_all()
        return rows


def tenant_usages(db: Database, start: datetime.datetime, stop: datetime.datetime,
                  detailed: bool, project_id: str | None = None, limit: int | None = None,
                  marker: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """The per-project summaries, and the uuids of the instances counted (in
    order: the last one is the next page's marker)."""
    now = utcnow()
    summaries: dict[str, dict[str, Any]] = {}
    counted: list[str] = []
    for inst in _instances(db, start, stop, project_id, limit, marker):
        counted.append(inst.uuid)
        hours = _hours(inst.launched_at, inst.terminated_at, start, stop)
        flavor = inst.flavor or {}
        local_gb = int(flavor.get("root_gb", inst.root_gb) or 0) + int(
            flavor.get("ephemeral_gb", inst.ephemeral_gb) or 0)
        memory_mb = int(flavor.get("memory_mb", inst.memory_mb) or 0)
        vcpus = int(flavor.get("vcpus", inst.vcpus) or 0)
        launched = inst.launched_at
        ended = inst.terminated_at
        uptime = (ended if ended is not None else now) - launched  # type: ignore[operator]
        tenant = inst.project_id or ""
        summary = summaries.get(tenant)
        if summary is None:
            summary = summaries[tenant] = {
                "tenant_id": tenant, "total_local_gb_usage": 0, "total_vcpus_usage": 0,
                "total_memory_mb_usage": 0, "total_hours": 0,
                "start": isotime_us(start), "stop": isotime_us(stop)}
            if detailed:
                summary["server_usages"] = []
        summary["total_local_gb_usage"] += local_gb * hours
        summary["total_vcpus_usage"] += vcpus * hours
        summary["total_memory_mb_usage"] += memory_mb * hours
        summary["total_hours"] += hours
        if detailed:
            summary["server_usages"].append({
                "instance_id": inst.uuid, "name": inst.display_name or "",
                "tenant_id": tenant, "flavor": flavor.get("name") or "",
                "hours": hours, "memory_mb": memory_mb, "local_gb": local_gb,
                "vcpus": vcpus, "started_at": isotime_us(launched),
                "ended_at": isotime_us(ended),
                "state": "terminated" if ended is not None else (inst.vm_state or ""),
                "uptime": int(uptime.total_seconds()),
            })
    return list(summaries.values()), counted


def _page(req: Request) -> tuple[int, str | None, bool]:
    """(limit, marker, links?): the query's from 2.40, else max_limit silently."""
    if microversion.is_supported(req, PAGING_VERSION):
        limit, marker = limit_and_marker(req)
        return limit, marker, True
    return req.state.conf.api.max_limit, None, False


def _links(req: Request, collection: str, counted: list[str],
           limit: int) -> list[dict[str, str]]:
    return next_link(req, collection, [{"instance_id": u} for u in counted], limit,
                     marker_key="instance_id")


def index(req: Request) -> Response:
    authorize(req, POLICY_LIST)
    start, stop, detailed = _period(req)
    limit, marker, paged = _page(req)
    usages, counted = tenant_usages(req.state.db, start, stop, detailed, limit=limit,
                                    marker=marker)
    body: dict[str, Any] = {"tenant_usages": usages}
    links = _links(req, "os-simple-tenant-usage", counted, limit) if paged else []
    if links:
        body["tenant_usages_links"] = links
    return json_response(body)


def show(req: Request, project_id: str) -> Response:
    authorize(req, POLICY_SHOW, {"project_id": project_id, "user_id": req.context.user_id})
    start, stop, _ = _period(req)
    limit, marker, paged = _page(req)
    usages, counted = tenant_usages(req.state.db, start, stop, True, project_id,
                                    limit=limit, marker=marker)
    body: dict[str, Any] = {"tenant_usage": usages[0] if usages else {}}
    links = (_links(req, f"os-simple-tenant-usage/{project_id}", counted, limit)
             if paged else [])
    if links:
        body["tenant_usage_links"] = links
    return json_response(body)


def routes() -> list[Route]:
    return [
        Route("GET", "/os-simple-tenant-usage", index),
        Route("GET", "/os-simple-tenant-usage/<project_id>", show),
    ]
