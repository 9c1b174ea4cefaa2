"""Authentication, token bodies and the service catalog (Keystone's auth API logic).

``bootstrap`` (from :mod:`stratus.identity.bootstrap`) creates the first
admin. ``IdentityService.authenticate`` takes the ``auth`` object of
``POST /v3/auth/tokens`` (password or token method, project scope, explicit
``unscoped``, or no scope: the user's default project if it has access) and
returns the token plus Keystone's token body. The catalog is built from
configuration: every service lives under the one public URL of the API.
"""
from __future__ import annotations

import dataclasses
import datetime
import uuid
from typing import Any, Sequence

import jsonschema

from stratus import exception
from stratus.db.models import Project, User
from stratus.db.session import Database
from stratus.identity import backend, passwords
from stratus.identity.bootstrap import BootstrapResult, bootstrap
from stratus.identity.tokens import TokenData, TokenProvider

__all__ = ["BootstrapResult", "CATALOG_SERVICES", "CatalogService", "IdentityService",
           "IssuedToken", "bootstrap", "build_catalog"]

SUPPORTED_METHODS = ("password", "token")
INTERFACES = ("public", "internal", "admin")


@dataclasses.dataclass(frozen=True)
class CatalogService:
    """One catalog entry: service type, name and path under the public URL."""

    type: str
    name: str
    path: str


# What the API process serves (see stratus/api): Keystone's identity endpoint
# is unversioned; Nova's is /v2.1; Glance's is unversioned.
CATALOG_SERVICES: tuple[CatalogService, ...] = (
    CatalogService("identity", "keystone", "/identity"),
    CatalogService("compute", "nova", "/compute/v2.1"),
    CatalogService("image", "glance", "/image"),
)


def _stable_id(*parts: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, "|".join(parts)).hex


def build_catalog(public_url: str, region: str,
                  services: Sequence[CatalogService] = CATALOG_SERVICES) -> list[dict[str, Any]]:
    """Keystone's ``catalog``: each service with a public, internal and admin endpoint.

    Ids are derived from the URL so they are stable across processes and restarts.
    """
    base = public_url.rstrip("/")
    catalog = []
    for svc in services:
        url = base + svc.path
        endpoints = [{"id": _stable_id(url, svc.type, interface), "interface": interface,
                      "region": region, "region_id": region, "url": url}
                     for interface in INTERFACES]
        catalog.append({"id": _stable_id(base, svc.type), "type": svc.type, "name": svc.name,
                        "endpoints": endpoints})
    return catalog


def isotime_subsecond(value: datetime.datetime) -> str:
    """``2026-11-24T18:01:05.000000Z``, the form Keystone shows token times in."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_DOMAIN_REF = {"type": "object",
               "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
               "minProperties": 1}

AUTH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "identity": {
            "type": "object",
            "properties": {
                "methods": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "password": {
                    "type": "object",
                    "properties": {"user": {
                        "type": "object",
                        "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                                       "password": {"type": "string"},
                                       "domain": _DOMAIN_REF},
                        "required": ["password"]}},
                    "required": ["user"]},
                "token": {"type": "object", "properties": {"id": {"type": "string"}},
                          "required": ["id"]},
            },
            "required": ["methods"],
        },
        "scope": {
            "anyOf": [
                {"type": "string", "enum": ["unscoped"]},
                {"type": "object",
                 "properties": {"project": {
                     "type": "object",
                     "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                                    "domain": _DOMAIN_REF}}}},
            ]},
    },
    "required": ["identity"],
}


_AUTH_VALIDATOR = jsonschema.Draft4Validator(AUTH_SCHEMA)


def validate_auth(auth: Any) -> None:
    """400 in Keystone's words when the ``auth`` object is malformed."""
    error = jsonschema.exceptions.best_match(_AUTH_VALIDATOR.iter_errors(auth))
    if error is None:
        return
    field = "/".join(str(p) for p in error.absolute_path) or "auth"
    raise exception.ValidationError(f"Invalid input for field '{field}': {error.message}")


@dataclasses.dataclass(frozen=True)
class IssuedToken:
    """A new token, what it asserts, and Keystone's ``token`` body for it."""

    token: str
    data: TokenData
    body: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class _Scope:
    user: dict[str, Any]
    project: dict[str, Any] | None
    roles: list[dict[str, str]]


class IdentityService:
    """Authenticates users and describes tokens."""

    def __init__(self, db: Database, provider: TokenProvider, *, public_url: str,
                 region: str, services: Sequence[CatalogService] = CATALOG_SERVICES) -> None:
        self.db = db
        self.provider = provider
        self.public_url = public_url.rstrip("/")
        self.region = region
        self._catalog = build_catalog(self.public_url, region, services)

    @classmethod
    def from_conf(cls, conf: Any, db: Database, provider: TokenProvider) -> "IdentityService":
        return cls(db, provider, public_url=conf.api.public_url, region=conf.api.region)

    def catalog(self) -> list[dict[str, Any]]:
        return self._catalog

    # -- authentication ------------------------------------------------------
    def authenticate(self, auth: Any, *, include_catalog: bool = True) -> IssuedToken:
        """Authenticate the ``auth`` object of ``POST /v3/auth/tokens``.

        Invalid input is a 400 (ValidationError); anything that does not
        prove who the caller is, or a scope they may not have, a 401.
        """
        validate_auth(auth)
        identity = auth["identity"]
        methods = list(dict.fromkeys(identity["methods"]))
        if any(m not in SUPPORTED_METHODS for m in methods):
            raise exception.NotAuthenticated(
                "Attempted to authenticate with an unsupported method.")
        for method in methods:
            if method not in identity:
                raise exception.ValidationError(f"Expecting to find {method} in identity.")

        user_id: str | None = None
        parent: TokenData | None = None
        if "token" in methods:
            parent = self.provider.validate(identity["token"]["id"])
            user_id = parent.user_id
        if "password" in methods:
            password_user_id = self._check_password(identity["password"]["user"])
            if user_id is not None and user_id != password_user_id:
                raise exception.NotAuthenticated("Authentication methods name different users.")
            user_id = password_user_id
        assert user_id is not None
        return self._issue(user_id, methods, auth.get("scope"), parent, include_catalog)

    def authenticate_password(self, *, password: str, username: str | None = None,
                              user_id: str | None = None, user_domain: str = "default",
                              project_id: str | None = None, project_name: str | None = None,
                              project_domain: str = "default", unscoped: bool = False,
                              include_catalog: bool = True) -> IssuedToken:
        """Password authentication with plain arguments (domains by id or name)."""
        user: dict[str, Any] = {"password": password}
        if user_id:
            user["id"] = user_id
        else:
            user["name"] = username
            user["domain"] = _domain_arg(user_domain)
        auth: dict[str, Any] = {"identity": {"methods": ["password"],
                                             "password": {"user": user}}}
        if unscoped:
            auth["scope"] = "unscoped"
        elif project_id:
            auth["scope"] = {"project": {"id": project_id}}
        elif project_name:
            auth["scope"] = {"project": {"name": project_name,
                                         "domain": _domain_arg(project_domain)}}
        return self.authenticate(auth, include_catalog=include_catalog)

    def _check_password(self, user_ref: dict[str, Any]) -> str:
        password = user_ref["password"]
        with self.db.read() as s:
            if user_ref.get("id"):
                user = backend.get_user(s, user_ref["id"])
            elif user_ref.get("name"):
                if "domain" not in user_ref:
                    raise exception.ValidationError("Expecting to find domain in user.")
                user = backend.find_user(s, user_ref["name"],
                                         backend.domain_id_from_ref(user_ref["domain"]))
            else:
                raise exception.ValidationError("Expecting to find id or name in user.")
            if user is None:
                passwords.burn_verify_time(password)
                raise exception.NotAuthenticated()
            user_id, password_hash, enabled = user.id, user.password_hash, user.enabled
        if not passwords.verify_password(password, password_hash) or not enabled:
            raise exception.NotAuthenticated()
        return user_id

    def _issue(self, user_id: str, methods: list[str], scope: Any,
               parent: TokenData | None, include_catalog: bool) -> IssuedToken:
        with self.db.read() as s:
            user = backend.get_user(s, user_id)
            if user is None or not user.enabled:
                raise exception.NotAuthenticated()
            project = self._resolve_scope(s, user, scope)
            roles = []
            if project is not None:
                roles = [{"id": r.id, "name": r.name}
                         for r in backend.roles_on_project(s, user.id, project.id)]
                if not roles:
                    if scope is None:  # default project without access: unscoped
                        project = None
                    else:
                        raise exception.NotAuthenticated(
                            f"User {user.id} has no access to project {project.id}")
            resolved = _Scope(user=_user_ref(user), project=_project_ref(project), roles=roles)
        expires_at = parent.expires_at if parent is not None else None
        parent_audit = (parent.parent_audit_id or parent.audit_id) if parent else None
        token, data = self.provider.issue(user_id, resolved.project and resolved.project["id"],
                                          methods, expires_at=expires_at,
                                          parent_audit_id=parent_audit)
        return IssuedToken(token=token, data=data,
                           body=self._render(data, resolved, include_catalog))

    def _resolve_scope(self, s: Any, user: User, scope: Any) -> Project | None:
        if scope == "unscoped":
            return None
        if scope is None:
            if not user.default_project_id:
                return None
            project = backend.get_project(s, user.default_project_id)
            return project if project is not None and project.enabled else None
        if "project" not in scope:
            raise exception.NotAuthenticated("Only project scope is supported.")
        ref = scope["project"]
        if ref.get("id"):
            project = backend.get_project(s, ref["id"])
            ident = ref["id"]
        elif ref.get("name"):
            if "domain" not in ref:
                raise exception.ValidationError("Expecting to find domain in project.")
            project = backend.find_project(s, ref["name"],
                                           backend.domain_id_from_ref(ref["domain"]))
            ident = ref["name"]
        else:
            raise exception.ValidationError("Expecting to find id or name in project.")
        if project is None:
            raise exception.NotAuthenticated(f"Could not find project: {ident}.")
        if not project.enabled:
            raise exception.NotAuthenticated(f"Project {project.id} is disabled.")
        return project

    # -- describing tokens ---------------------------------------------------
    def describe(self, data: TokenData, *, include_catalog: bool = True) -> dict[str, Any]:
        """Keystone's ``token`` body for a valid token (``GET /v3/auth/tokens``).

        NotFound when the user or project is gone or disabled, or the user
        lost every role on the project since the token was issued.
        """
        with self.db.read() as s:
            user = backend.get_user(s, data.user_id)
            if user is None or not user.enabled:
                raise exception.NotFound("Failed to validate token")
            project = None
            roles: list[dict[str, str]] = []
            if data.project_id is not None:
                project = backend.get_project(s, data.project_id)
                if project is None or not project.enabled:
                    raise exception.NotFound("Failed to validate token")
                roles = [{"id": r.id, "name": r.name}
                         for r in backend.roles_on_project(s, user.id, project.id)]
                if not roles:
                    raise exception.NotFound("Failed to validate token")
            resolved = _Scope(user=_user_ref(user), project=_project_ref(project), roles=roles)
        return self._render(data, resolved, include_catalog)

    def _render(self, data: TokenData, scope: _Scope, include_catalog: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "methods": list(data.methods),
            "user": scope.user,
            "audit_ids": data.audit_ids,
            "expires_at": isotime_subsecond(data.expires_at),
            "issued_at": isotime_subsecond(data.issued_at),
        }
        if scope.project is not None:
            body["project"] = scope.project
            body["is_domain"] = False
            body["roles"] = scope.roles
            if include_catalog:
                body["catalog"] = self._catalog
        return body


def _domain_arg(value: str) -> dict[str, str]:
    """A domain given as a bare string: ``default``/``Default`` or another id."""
    if value.lower() == backend.DEFAULT_DOMAIN_ID:
        return {"id": backend.DEFAULT_DOMAIN_ID}
    return {"id": value}


def _user_ref(user: User) -> dict[str, Any]:
    return {"id": user.id, "name": user.name, "domain": backend.domain_ref(user.domain_id),
            "password_expires_at": None}


def _project_ref(project: Project | None) -> dict[str, Any] | None:
    if project is None:
        return None
    return {"id": project.id, "name": project.name,
            "domain": backend.domain_ref(project.domain_id)}
