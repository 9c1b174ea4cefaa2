"""The Identity v3 WSGI app, mounted at ``/identity``: Keystone's wire format.

Routes: version discovery (``/`` and ``/v3``), the auth API
(``/v3/auth/tokens`` POST/GET/HEAD/DELETE, ``/v3/auth/catalog``,
``/v3/auth/projects``, ``/v3/auth/domains``), and the management API of
:mod:`stratus.identity.manage_api` (domains, projects, users, groups, roles,
role assignments, application credentials, password changes) and the
read-only catalog of :mod:`stratus.identity.catalog_api` (services,
endpoints, regions). Errors use
Keystone's body: ``{"error": {"code": 401, "message": ..., "title": ...}}``.
"""
from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from stratus import exception
from stratus.api import wsgi
from stratus.api.wsgi import Request, Route, json_response
from stratus.db.models import Project, Role, User
from stratus.db.session import Database
from stratus.identity import backend, manage
from stratus.identity.auth import TokenAuthenticator, ValidatedToken, make_authenticator
from stratus.identity.catalog_api import CatalogAPI
from stratus.identity.manage_api import ManagementAPI, forbidden, require_admin
from stratus.identity.service import IdentityService
from stratus.identity.tokens import TokenProvider

V3_ID = "v3.14"
V3_UPDATED = "2020-04-07T00:00:00Z"
MEDIA_TYPE_JSON = "application/vnd.openstack.identity-v3+json"
SUBJECT_TOKEN_HEADER = "X-Subject-Token"

HTTP_TITLES: dict[int, str] = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 409: "Conflict", 413: "Request Entity Too Large",
    415: "Unsupported Media Type", 500: "Internal Server Error",
    501: "Not Implemented", 503: "Service Unavailable",
}


def keystone_fault_body(code: int, message: str) -> dict[str, Any]:
    """Keystone's error body."""
    return {"error": {"code": code, "message": message,
                      "title": HTTP_TITLES.get(code, "Error")}}


class IdentityAPI:
    """Request handlers; ``routes()`` lists them for :class:`wsgi.App`."""

    def __init__(self, service: IdentityService, db: Database, public_url: str) -> None:
        self.service = service
        self.provider = service.provider
        self.db = db
        self.root_url = public_url.rstrip("/") + "/identity"
        self.v3_url = self.root_url + "/v3"
        self.manage = ManagementAPI(service, db, self.v3_url)
        self.catalog = CatalogAPI(service.catalog(), service.region, self.v3_url)

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/", self.versions, public=True),
            Route("GET", "/v3", self.version_v3, public=True),
            Route("POST", "/v3/auth/tokens", self.issue_token, public=True),
            Route("GET", "/v3/auth/tokens", self.validate_token),
            Route("DELETE", "/v3/auth/tokens", self.revoke_token),
            Route("GET", "/v3/auth/catalog", self.get_catalog),
            Route("GET", "/v3/auth/projects", self.auth_projects),
            Route("GET", "/v3/users", self.list_users),
            Route("GET", "/v3/users/<user_id>", self.get_user),
            Route("GET", "/v3/users/<user_id>/projects", self.user_projects),
            Route("GET", "/v3/projects", self.list_projects),
            Route("GET", "/v3/projects/<project_id>", self.get_project),
            Route("GET", "/v3/roles", self.list_roles),
        ] + self.manage.routes() + self.catalog.routes()

    # -- discovery ------------------------------------------------------------
    def _v3_version(self) -> dict[str, Any]:
        return {"id": V3_ID, "status": "stable", "updated": V3_UPDATED,
                "links": [{"rel": "self", "href": self.v3_url + "/"}],
                "media-types": [{"base": "application/json", "type": MEDIA_TYPE_JSON}]}

    def versions(self, req: Request) -> Response:
        return json_response({"versions": {"values": [self._v3_version()]}}, status=300)

    def version_v3(self, req: Request) -> Response:
        return json_response({"version": self._v3_version()})

    # -- tokens ---------------------------------------------------------------
    def issue_token(self, req: Request) -> Response:
        body = req.json_body()
        if not isinstance(body, dict) or "auth" not in body:
            raise exception.ValidationError("Expecting to find auth in request body.")
        issued = self.service.authenticate(body["auth"],
                                           include_catalog="nocatalog" not in req.args)
        return json_response({"token": issued.body}, status=201,
                             headers={SUBJECT_TOKEN_HEADER: issued.token})

    def _subject(self, req: Request) -> ValidatedToken:
        token = req.headers.get(SUBJECT_TOKEN_HEADER)
        if not token:
            raise exception.ValidationError(
                f"Expecting to find {SUBJECT_TOKEN_HEADER} in request headers.")
        try:
            valid = self.service.validate(token)
        except exception.NotAuthenticated:
            raise exception.NotFound("Failed to validate token")
        if not (req.context.is_admin or valid.data.user_id == req.context.user_id):
            raise exception.Forbidden(
                "You are not authorized to perform the requested action: "
                "identity:validate_token.")
        return valid

    def validate_token(self, req: Request) -> Response:
        valid = self._subject(req)
        body = self.service.describe(valid, include_catalog="nocatalog" not in req.args)
        return json_response({"token": body}, headers={SUBJECT_TOKEN_HEADER: valid.token})

    def revoke_token(self, req: Request) -> Response:
        valid = self._subject(req)
        self.provider.revoke(valid.data)
        return wsgi.empty_response(204)

    def get_catalog(self, req: Request) -> Response:
        if req.context.project_id is None and self.service.validate(
                req.context.auth_token or "").data.domain_id is None:
            raise exception.Forbidden("A scoped token is required to get the catalog.")
        return json_response({"catalog": self.service.catalog(),
                              "links": self._links("/auth/catalog")})

    def auth_projects(self, req: Request) -> Response:
        with self.db.read() as s:
            projects = backend.projects_of_user(s, req.context.user_id or "")
            body = [self._project(p) for p in projects]
        return json_response({"projects": body, "links": self._links("/auth/projects")})

    # -- users, projects, roles ----------------------------------------------
    def list_users(self, req: Request) -> Response:
        require_admin(req.context, "identity:list_users")
        with self.db.read() as s:
            users = manage.list_users(s, name=req.args.get("name"),
                                      domain_id=req.args.get("domain_id"),
                                      enabled=_enabled_filter(req))
            body = [self._user(u) for u in users]
        return json_response({"users": body, "links": self._links("/users")})

    def get_user(self, req: Request, user_id: str) -> Response:
        if not (req.context.is_admin or req.context.user_id == user_id):
            raise forbidden("identity:get_user")
        with self.db.read() as s:
            user = backend.get_user(s, user_id)
            if user is None:
                raise backend.IdentityNotFound(kind="user", ident=user_id)
            return json_response({"user": self._user(user)})

    def user_projects(self, req: Request, user_id: str) -> Response:
        if not (req.context.is_admin or req.context.user_id == user_id):
            raise forbidden("identity:list_user_projects")
        with self.db.read() as s:
            if backend.get_user(s, user_id) is None:
                raise backend.IdentityNotFound(kind="user", ident=user_id)
            body = [self._project(p) for p in backend.projects_of_user(s, user_id)]
        return json_response({"projects": body,
                              "links": self._links(f"/users/{user_id}/projects")})

    def list_projects(self, req: Request) -> Response:
        require_admin(req.context, "identity:list_projects")
        with self.db.read() as s:
            projects = manage.list_projects(s, name=req.args.get("name"),
                                            domain_id=req.args.get("domain_id"),
                                            enabled=_enabled_filter(req))
            body = [self._project(p) for p in projects]
        return json_response({"projects": body, "links": self._links("/projects")})

    def get_project(self, req: Request, project_id: str) -> Response:
        with self.db.read() as s:
            if not req.context.is_admin and not backend.roles_on_project(
                    s, req.context.user_id or "", project_id):
                raise forbidden("identity:get_project")
            project = backend.get_project(s, project_id)
            if project is None:
                raise backend.IdentityNotFound(kind="project", ident=project_id)
            return json_response({"project": self._project(project)})

    def list_roles(self, req: Request) -> Response:
        require_admin(req.context, "identity:list_roles")
        with self.db.read() as s:
            body = [self._role(r) for r in backend.list_roles(s, name=req.args.get("name"))]
        return json_response({"roles": body, "links": self._links("/roles")})

    # -- views ----------------------------------------------------------------
    def _links(self, path: str) -> dict[str, Any]:
        return {"self": self.v3_url + path, "previous": None, "next": None}

    def _user(self, user: User) -> dict[str, Any]:
        return self.manage.user_view(user)

    def _project(self, project: Project) -> dict[str, Any]:
        return self.manage.project_view(project)

    def _role(self, role: Role) -> dict[str, Any]:
        return self.manage.role_view(role)


def _enabled_filter(req: Request) -> bool | None:
    if "enabled" not in req.args:
        return None
    return req.args.get("enabled", "").strip().lower() not in ("0", "false", "no", "off")


def build_identity_app(conf: Any, db: Database, provider: TokenProvider, *,
                       authenticate: wsgi.Authenticator | None = None) -> wsgi.App:
    """The Identity v3 app (mount it at ``/identity``).

    ``authenticate`` defaults to a new :func:`make_authenticator`; pass the
    one the other apps of the process use to share its cache.
    """
    authenticate = authenticate or make_authenticator(provider, db)
    authenticator = authenticate if isinstance(authenticate, TokenAuthenticator) else None
    service = IdentityService.from_conf(conf, db, provider, authenticator)
    api = IdentityAPI(service, db, conf.api.public_url)
    return wsgi.App(api.routes(), fault_formatter=keystone_fault_body,
                    authenticate=authenticate, name="identity",
                    max_body_size=conf.api.max_request_body_size)
