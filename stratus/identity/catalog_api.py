"""Read-only ``/v3/services``, ``/v3/endpoints`` and ``/v3/regions``:
the service catalog (:func:`stratus.identity.service.build_catalog`) in
Keystone's wire format, so ``openstack service list``, ``endpoint list`` and
``region list`` work.

The catalog is configuration (``[api] public_url``, ``[api] region``), not
data: there is one region and the three APIs this process serves, each with a
public, internal and admin endpoint. Creating, changing or deleting them is
not supported (the routes do not exist, 404/405). Policy as Keystone's
defaults for a project-scoped token: services and endpoints are for admins,
regions for anyone authenticated.
"""
from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from stratus.api.wsgi import Request, Route, json_response
from stratus.identity.backend import IdentityNotFound
from stratus.identity.manage_api import require_admin

# Keystone accepts these endpoint filters; anything else is ignored.
ENDPOINT_FILTERS = ("interface", "service_id", "region_id")
SERVICE_FILTERS = ("type", "name")


class CatalogAPI:
    def __init__(self, catalog: list[dict[str, Any]], region: str, v3_url: str) -> None:
        self.v3_url = v3_url
        self.region = region
        self.services = [self._service(entry) for entry in catalog]
        self.endpoints = [self._endpoint(entry["id"], ep)
                          for entry in catalog for ep in entry["endpoints"]]
        self.regions = [{"id": region, "description": "", "parent_region_id": None,
                         "links": {"self": f"{v3_url}/regions/{region}"}}]

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/v3/services", self.list_services),
            Route("GET", "/v3/services/<service_id>", self.get_service),
            Route("GET", "/v3/endpoints", self.list_endpoints),
            Route("GET", "/v3/endpoints/<endpoint_id>", self.get_endpoint),
            Route("GET", "/v3/regions", self.list_regions),
            Route("GET", "/v3/regions/<region_id>", self.get_region),
        ]

    # -- views -----------------------------------------------------------------
    def _service(self, entry: dict[str, Any]) -> dict[str, Any]:
        return {"id": entry["id"], "type": entry["type"], "name": entry["name"],
                "description": "", "enabled": True,
                "links": {"self": f"{self.v3_url}/services/{entry['id']}"}}

    def _endpoint(self, service_id: str, ep: dict[str, Any]) -> dict[str, Any]:
        return {"id": ep["id"], "interface": ep["interface"], "region": ep["region"],
                "region_id": ep["region_id"], "service_id": service_id, "url": ep["url"],
                "enabled": True, "links": {"self": f"{self.v3_url}/endpoints/{ep['id']}"}}

    def _links(self, path: str) -> dict[str, Any]:
        return {"self": self.v3_url + path, "previous": None, "next": None}

    @staticmethod
    def _filtered(items: list[dict[str, Any]], req: Request,
                  keys: tuple[str, ...]) -> list[dict[str, Any]]:
        wanted = {k: req.args[k] for k in keys if k in req.args}
        return [i for i in items if all(i[k] == v for k, v in wanted.items())]

    # -- handlers --------------------------------------------------------------
    def list_services(self, req: Request) -> Response:
        require_admin(req.context, "identity:list_services")
        return json_response({"services": self._filtered(self.services, req, SERVICE_FILTERS),
                              "links": self._links("/services")})

    def get_service(self, req: Request, service_id: str) -> Response:
        require_admin(req.context, "identity:get_service")
        for service in self.services:
            if service["id"] == service_id:
                return json_response({"service": service})
        raise IdentityNotFound(kind="service", ident=service_id)

    def list_endpoints(self, req: Request) -> Response:
        require_admin(req.context, "identity:list_endpoints")
        return json_response({"endpoints": self._filtered(self.endpoints, req,
                                                          ENDPOINT_FILTERS),
                              "links": self._links("/endpoints")})

    def get_endpoint(self, req: Request, endpoint_id: str) -> Response:
        require_admin(req.context, "identity:get_endpoint")
        for endpoint in self.endpoints:
            if endpoint["id"] == endpoint_id:
                return json_response({"endpoint": endpoint})
        raise IdentityNotFound(kind="endpoint", ident=endpoint_id)

    def list_regions(self, req: Request) -> Response:
        regions = self.regions
        if "parent_region_id" in req.args:
            regions = [r for r in regions if r["parent_region_id"] == req.args["parent_region_id"]]
        return json_response({"regions": regions, "links": self._links("/regions")})

    def get_region(self, req: Request, region_id: str) -> Response:
        for region in self.regions:
            if region["id"] == region_id:
                return json_response({"region": region})
        raise IdentityNotFound(kind="region", ident=region_id)
