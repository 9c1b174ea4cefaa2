"""``/os-migrations`` and ``/servers/{id}/migrations`` (Nova's migrations.py
and server_migrations.py), admin only.

``GET /os-migrations`` lists every resize and cold migration, newest first,
filtered by ``host`` (either end), ``status``, ``instance_uuid``,
``source_compute`` and ``migration_type``; the 2.1 body has Nova's twelve
fields, 2.23 adds ``migration_type`` and, for a migration in progress, the
``links`` to it under its server. ``GET /servers/{id}/migrations[/{mid}]``
(2.23) shows a server's migrations in progress. Nova lists only live
migrations there; Stratus has none, so it lists its resizes and cold
migrations in progress (the same body, the live-migration byte counters null).
``dest_host`` is the destination host's IP as its compute node reports it.

2.59 adds each migration's ``uuid`` (both APIs) and pages ``/os-migrations``
(``limit``, ``marker`` a migration uuid, ``changes-since``; the query strict;
``migrations_links`` with the next page when one is full).
"""
from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import select
from werkzeug.wrappers import Response

from stratus import exception
from stratus.api.compute import list_query, microversion
from stratus.api.compute.common import (authorize, get_server, limit_and_marker, next_link,
                                        resource_links)
from stratus.api.wsgi import Request, Route, json_response
from stratus.db import resizes as db_resizes
from stratus.db.models import ComputeNode, Flavor
from stratus.utils import isotime_us

POLICY_INDEX = "os_compute_api:os-migrations:index"
POLICY_SERVER_INDEX = "os_compute_api:servers:migrations:index"
POLICY_SERVER_SHOW = "os_compute_api:servers:migrations:show"
TYPE_VERSION = "2.23"  # migration_type, links and /servers/{id}/migrations
PAGING_VERSION = "2.59"  # uuid, limit/marker/changes-since, migrations_links
FILTERS = ("host", "status", "instance_uuid", "source_compute", "migration_type")
# Nova's list_query_params_v259 (``hidden`` is accepted and ignored, as Nova's API does).
QUERY_V259 = ("hidden",) + FILTERS


def _query_params(req: Request) -> tuple[str, ...]:
    """Nova's list_query_params_v259 (and _v266: changes-before)."""
    return QUERY_V259 + list_query.paging_params(req)
_BYTES = ("disk_processed_bytes", "disk_remaining_bytes", "disk_total_bytes",
          "memory_processed_bytes", "memory_remaining_bytes", "memory_total_bytes")


def routes() -> list[Route]:
    return [Route("GET", "/os-migrations", index),
            Route("GET", "/servers/<server_id>/migrations", server_index),
            Route("GET", "/servers/<server_id>/migrations/<migration_id>", server_show)]


def _time(value: str | None) -> str | None:
    return isotime_us(datetime.datetime.fromisoformat(value)) if value else None


def _flavor_ids(req: Request) -> dict[str, int]:
    """flavorid -> the flavor's integer id (Nova's ``*_instance_type_id``)."""
    with req.state.db.read() as s:
        return {flavorid: ident for flavorid, ident in s.execute(select(Flavor.flavorid,
                                                                          Flavor.id))}


def _host_ips(req: Request) -> dict[str, str]:
    """compute host -> its IP (Nova's ``dest_host``)."""
    with req.state.db.read() as s:
        return {host: ip for host, ip in s.execute(select(ComputeNode.host,
                                                          ComputeNode.host_ip)) if ip}


def _in_progress(migration: dict[str, Any]) -> bool:
    return migration["status"] in db_resizes.IN_PROGRESS


def _migration_view(req: Request, m: dict[str, Any], flavor_ids: dict[str, int],
                    host_ips: dict[str, str]) -> dict[str, Any]:
    item = {
        "id": m["id"], "status": m["status"], "instance_uuid": m["instance_uuid"],
        "source_node": m["source_node"], "source_compute": m["source_compute"],
        "dest_node": m["dest_node"], "dest_compute": m["dest_compute"],
        "dest_host": host_ips.get(m["dest_compute"] or ""),
        "old_instance_type_id": flavor_ids.get((m["old_flavor"] or {}).get("flavorid")),
        "new_instance_type_id": flavor_ids.get((m["new_flavor"] or {}).get("flavorid")),
        "created_at": _time(m["created_at"]), "updated_at": _time(m["updated_at"])}
    if microversion.is_supported(req, TYPE_VERSION):
        item["migration_type"] = m["migration_type"]
        if _in_progress(m):
            item["links"] = resource_links(
                req, f"servers/{m['instance_uuid']}/migrations", str(m["id"]))
    if microversion.is_supported(req, PAGING_VERSION):
        item["uuid"] = m["uuid"]
    return item


def index(req: Request) -> Response:
    paged = microversion.is_supported(req, PAGING_VERSION)
    if paged:  # Nova validates the query first
        list_query.check_strict(req, _query_params(req))
        list_query.changes_window(req)
        limit_and_marker(req)
    authorize(req, POLICY_INDEX)
    filters = {key: req.args.getlist(key)[-1] for key in FILTERS if req.args.get(key)}
    links: list[dict[str, str]] = []
    if paged:
        limit, marker = limit_and_marker(req)
        since, before = list_query.changes_window(req)
        try:
            migrations = db_resizes.migrations_list(
                req.state.db, filters, since=since, before=before, after=marker, limit=limit)
        except db_resizes.MigrationNotFound:
            raise exception.Invalid(f"Marker {marker} could not be found.")
        links = next_link(req, "os-migrations", migrations, limit, marker_key="uuid")
    else:
        migrations = db_resizes.migrations_list(req.state.db, filters)
    flavor_ids, host_ips = _flavor_ids(req), _host_ips(req)
    body: dict[str, Any] = {"migrations": [_migration_view(req, m, flavor_ids, host_ips)
                                           for m in migrations]}
    if links:
        body["migrations_links"] = links
    return json_response(body)


def _require_type_version(req: Request) -> None:
    if not microversion.is_supported(req, TYPE_VERSION):
        raise exception.NotFound("The resource could not be found.")


def _server_migration(req: Request, m: dict[str, Any]) -> dict[str, Any]:
    body = {"created_at": _time(m["created_at"]), "dest_compute": m["dest_compute"],
            "dest_host": _host_ips(req).get(m["dest_compute"] or ""),
            "dest_node": m["dest_node"], "id": m["id"],
            "server_uuid": m["instance_uuid"], "source_compute": m["source_compute"],
            "source_node": m["source_node"], "status": m["status"],
            "updated_at": _time(m["updated_at"]), **dict.fromkeys(_BYTES)}
    if microversion.is_supported(req, PAGING_VERSION):
        body["uuid"] = m["uuid"]
    return body


def _server_migrations(req: Request, server_id: str, rule: str) -> list[dict[str, Any]]:
    _require_type_version(req)
    get_server(req, server_id, rule)
    return db_resizes.migrations_list(req.state.db, {"instance_uuid": server_id,
                                                     "in_progress": True})


def server_index(req: Request, server_id: str) -> Response:
    migrations = _server_migrations(req, server_id, POLICY_SERVER_INDEX)
    return json_response({"migrations": [_server_migration(req, m) for m in migrations]})


def server_show(req: Request, server_id: str, migration_id: str) -> Response:
    migrations = _server_migrations(req, server_id, POLICY_SERVER_SHOW)
    found = [m for m in migrations if str(m["id"]) == migration_id]
    if not found:
        raise exception.NotFound(f"In-progress migration {migration_id} is not found for "
                                 f"server {server_id}.")
    return json_response({"migration": _server_migration(req, found[0])})
