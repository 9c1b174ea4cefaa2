"""The version documents: ``GET /compute/`` and ``GET /compute/v2.1``.

Shapes follow Nova's nova/api/openstack/compute/versions.py and its views:
the root lists v2.0 (SUPPORTED) and v2.1 (CURRENT) with a ``self`` link
each; the v2.1 document adds ``media-types`` and a ``describedby`` link.
Both are public (no token needed), as Nova's are.
"""
from __future__ import annotations

import copy
from typing import Any

from werkzeug.wrappers import Response

from stratus.api.compute import microversion
from stratus.api.compute.common import base_url
from stratus.api.wsgi import Request, Route, json_response

_DESCRIBED_BY = {"rel": "describedby", "type": "text/html",
                 "href": "http://docs.openstack.org/"}


def _versions() -> dict[str, dict[str, Any]]:
    """Nova's VERSIONS table; v2.1's range follows the microversion module."""
    return {
        "v2.0": {
            "id": "v2.0",
            "status": "SUPPORTED",
            "version": "",
            "min_version": "",
            "updated": "2011-01-21T11:33:21Z",
            "links": [dict(_DESCRIBED_BY)],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.compute+json;version=2"}],
        },
        "v2.1": {
            "id": "v2.1",
            "status": "CURRENT",
            "version": microversion.MAX_VERSION,
            "min_version": microversion.MIN_VERSION,
            "updated": "2013-07-23T11:33:21Z",
            "links": [dict(_DESCRIBED_BY)],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.compute+json;version=2.1"}],
        },
    }


def _version_href(req: Request, version_id: str) -> str:
    number = "v2.1" if version_id.startswith("v2.1") else "v2"
    return f"{base_url(req)}/{number}/"


def list_versions(req: Request) -> Response:
    versions = _versions()
    body = {"versions": [
        {
            "id": v["id"],
            "status": v["status"],
            "version": v["version"],
            "min_version": v["min_version"],
            "updated": v["updated"],
            "links": [{"rel": "self", "href": _version_href(req, v["id"])}],
        }
        for _, v in sorted(versions.items())
    ]}
    return json_response(body)


def show_v21(req: Request) -> Response:
    version = copy.deepcopy(_versions()["v2.1"])
    version["links"].insert(0, {"rel": "self", "href": f"{base_url(req)}/v2.1/"})
    return json_response({"version": version})


def routes() -> list[Route]:
    return [
        Route("GET", "/", list_versions, public=True),
        Route("GET", "/v2.1", show_v21, public=True),
        Route("GET", "/v2.1/", show_v21, public=True),
    ]
