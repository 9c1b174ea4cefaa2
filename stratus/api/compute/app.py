"""The compute API application: every resource module's routes in one App.

The App serves paths relative to ``/compute`` (the top-level dispatcher
strips that prefix): ``/`` and ``/v2.1`` are the public version documents;
everything else lives under ``/v2.1/`` and runs inside the microversion
middleware. Each resource module exposes ``routes() -> list[Route]`` with
paths relative to ``/v2.1`` (``/flavors``; a path already starting with
``/v2.1/`` is taken as is). Modules that do not exist yet are skipped, so
the app can be assembled while resources are still being written.

Every resource is also served under ``/v2.1/{project_id}/`` (the project in
the URL, as Nova's routes have it at every microversion; 2.18 made it
optional, so both forms work); a project id other than the token's is a 400.
Links in the answers then carry the project id too, as Nova's.
"""
from __future__ import annotations

import importlib
import logging
from types import ModuleType

from werkzeug.wrappers import Response

from stratus import exception
from stratus.api.compute import microversion, versions
from stratus.api.compute.common import ComputeState
from stratus.api.wsgi import App, Authenticator, Handler, Request, Route

LOG = logging.getLogger(__name__)

PACKAGE = "stratus.api.compute"
VERSION_PREFIX = "/v2.1"
PROJECT_PREFIX = VERSION_PREFIX + "/<project_id:url_project_id>"

RESOURCE_MODULES: tuple[str, ...] = (
    "flavors",
    "flavor_extra_specs",
    "flavor_access",
    "keypairs",
    "services",
    "hypervisors",
    "aggregates",
    "server_groups",
    "availability_zones",
    "limits",
    "quota_sets",
    "quota_class_sets",
    "servers",
    "server_actions",
    "server_metadata",
    "server_tags",
    "instance_actions",
    "migrations",
    "images",
    "simple_tenant_usage",
)


def _import_optional(name: str) -> ModuleType | None:
    """The module, or None when it does not exist (errors inside it still raise)."""
    qualified = f"{PACKAGE}.{name}"
    try:
        return importlib.import_module(qualified)
    except ModuleNotFoundError as exc:
        if exc.name == qualified:
            LOG.debug("Compute API module %s not present; skipping", qualified)
            return None
        raise


def _check_url_project(req: Request, project_id: str | None) -> None:
    """Nova's wsgi check of ``/v2.1/{project_id}/...`` against the token."""
    if project_id is not None and project_id != req.context.project_id:
        raise exception.Invalid(
            f"Malformed request URL: URL's project_id '{project_id}' doesn't match "
            f"Context's project_id '{req.context.project_id}'")


def _versioned(handler: Handler) -> Handler:
    """Run ``handler`` inside the microversion middleware."""
    def wrapped(req: Request, **params: str) -> Response:
        project_id = params.pop("url_project_id", None)

        def call(r: Request) -> Response:
            _check_url_project(r, project_id)
            r.url_project_id = project_id
            return handler(r, **params)
        return microversion.middleware(req, call)
    wrapped.__name__ = getattr(handler, "__name__", "handler")
    wrapped.__doc__ = handler.__doc__
    return wrapped


def resource_routes(module_names: tuple[str, ...] = RESOURCE_MODULES) -> list[Route]:
    """The /v2.1 routes of every present module, wrapped for microversions."""
    routes: list[Route] = []
    for name in module_names:
        module = _import_optional(name)
        if module is None:
            continue
        for route in module.routes():
            path = route.path
            if path.startswith(VERSION_PREFIX + "/"):
                path = path[len(VERSION_PREFIX):]
            for prefix in (VERSION_PREFIX, PROJECT_PREFIX):
                routes.append(Route(route.method, prefix + path, _versioned(route.handler),
                                    public=route.public, limit_body=route.limit_body))
    return routes


def build_compute_app(state: ComputeState, authenticate: Authenticator | None) -> App:
    """The WSGI app of the compute API, to be mounted at ``/compute``."""
    routes = versions.routes() + resource_routes()
    # Nova's ComputeReqIdMiddleware: the compat header beside oslo's.
    return App(routes, state=state, authenticate=authenticate, name="compute",
               max_body_size=state.conf.api.max_request_body_size,
               request_id_headers=("x-openstack-request-id", "x-compute-request-id"))
