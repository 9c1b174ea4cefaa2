"""``GET /os-aggregates`` (admin): host aggregates, of which Stratus has none.

Host aggregates (and aggregate metadata for the scheduler) are not
implemented; the list is answered, empty, because clients read it on their
way to something else (``openstack hypervisor show`` lists the aggregates a
host belongs to). Creating one is not supported (no route: 404/405).
"""
from __future__ import annotations

from werkzeug.wrappers import Response

from stratus import exception
from stratus.api.compute.common import authorize
from stratus.api.wsgi import Request, Route, json_response

POLICY_INDEX = "os_compute_api:os-aggregates:index"
POLICY_SHOW = "os_compute_api:os-aggregates:show"


def index(req: Request) -> Response:
    authorize(req, POLICY_INDEX)
    return json_response({"aggregates": []})


def show(req: Request, aggregate_id: str) -> Response:
    authorize(req, POLICY_SHOW)
    raise exception.NotFound(f"Aggregate {aggregate_id} could not be found.")


def routes() -> list[Route]:
    return [
        Route("GET", "/os-aggregates", index),
        Route("GET", "/os-aggregates/<aggregate_id>", show),
    ]
