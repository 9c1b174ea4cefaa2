"""Glance's wire format for images, version documents and errors."""
from __future__ import annotations

from typing import Any

from stratus.utils import isotime

# Glance's (v2.15, no cache, single store) version list, newest first.
SUPPORTED_VERSIONS: tuple[tuple[str, str], ...] = (
    ("v2.15", "CURRENT"), ("v2.9", "SUPPORTED"), ("v2.7", "SUPPORTED"),
    ("v2.6", "SUPPORTED"), ("v2.5", "SUPPORTED"), ("v2.4", "SUPPORTED"),
    ("v2.3", "SUPPORTED"), ("v2.2", "SUPPORTED"), ("v2.1", "SUPPORTED"),
    ("v2.0", "SUPPORTED"),
)

HTTP_STATUS_LINES: dict[int, str] = {
    400: "400 Bad Request", 401: "401 Unauthorized", 403: "403 Forbidden",
    404: "404 Not Found", 405: "405 Method Not Allowed", 409: "409 Conflict",
    410: "410 Gone", 413: "413 Request Entity Too Large",
    415: "415 Unsupported Media Type", 416: "416 Requested Range Not Satisfiable",
    500: "500 Internal Server Error", 503: "503 Service Unavailable",
}


def glance_fault_body(code: int, message: str) -> dict[str, Any]:
    """The JSON error body Glance (webob) sends: code, title and message."""
    status = HTTP_STATUS_LINES.get(code, f"{code} Error")
    return {"code": status, "title": status.split(" ", 1)[1], "message": message}


def versions_body(image_url: str) -> dict[str, Any]:
    """``{"versions": [...]}`` with every v2 link at ``{image_url}/v2/``."""
    href = image_url.rstrip("/") + "/v2/"
    return {"versions": [{"id": vid, "status": status,
                          "links": [{"rel": "self", "href": href}]}
                         for vid, status in SUPPORTED_VERSIONS]}


def image_view(record: dict[str, Any]) -> dict[str, Any]:
    """One image as Glance shows it: base attributes plus extra properties, flat."""
    image_id = record["id"]
    view: dict[str, Any] = dict(record.get("properties") or {})
    view.update({
        "id": image_id,
        "name": record["name"],
        "status": record["status"],
        "visibility": record["visibility"],
        "protected": bool(record["protected"]),
        "os_hidden": bool(record["os_hidden"]),
        "checksum": record["checksum"],
        "os_hash_algo": record["os_hash_algo"],
        "os_hash_value": record["os_hash_value"],
        "size": record["size"],
        "virtual_size": record["virtual_size"],
        "min_disk": record["min_disk"] or 0,
        "min_ram": record["min_ram"] or 0,
        "disk_format": record["disk_format"],
        "container_format": record["container_format"],
        "owner": record["owner"],
        "created_at": isotime(record["created_at"]),
        "updated_at": isotime(record["updated_at"] or record["created_at"]),
        "tags": list(record.get("tags") or []),
        "self": f"/v2/images/{image_id}",
        "file": f"/v2/images/{image_id}/file",
        "schema": "/v2/schemas/image",
    })
    return view


def member_view(record: dict[str, Any]) -> dict[str, Any]:
    """One image member as Glance shows it."""
    return {
        "created_at": isotime(record["created_at"]),
        "image_id": record["image_id"],
        "member_id": record["member"],
        "schema": "/v2/schemas/member",
        "status": record["status"],
        "updated_at": isotime(record["updated_at"] or record["created_at"]),
    }
