"""Authentication, token bodies and the service catalog (Keystone's auth API logic).

``bootstrap`` (from :mod:`stratus.identity.bootstrap`) creates the first
admin. ``IdentityService.authenticate`` takes the ``auth`` object of
``POST /v3/auth/tokens`` (password, token or application_credential method;
project or domain scope, explicit ``unscoped``, or no scope: the user's
default project if it has access; an application credential's token is
scoped to its project) and returns the token plus Keystone's token body. The catalog is built from
configuration: every service lives under the one public URL of the API.
"""
from __future__ import annotations

import dataclasses
import datetime
import uuid
from typing import Any, Sequence

import jsonschema
from sqlalchemy import select

from stratus import exception
from stratus.db.models import ApplicationCredential, Domain, Project, User
from stratus.db.session import Database
from stratus.identity import backend, passwords
from stratus.identity.auth import Principal, TokenAuthenticator, ValidatedToken, load_principal
from stratus.identity.bootstrap import BootstrapResult, bootstrap
from stratus.identity.tokens import TokenData, TokenProvider
from stratus.utils import utcnow

__all__ = ["BootstrapResult", "CATALOG_SERVICES", "CatalogService", "IdentityService",
           "IssuedToken", "bootstrap", "build_catalog"]

SUPPORTED_METHODS = ("password", "token", "application_credential")
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
                "application_credential": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"}, "name": {"type": "string"},
                        "secret": {"type": "string"},
                        "user": {"type": "object",
                                 "properties": {"id": {"type": "string"},
                                                "name": {"type": "string"},
                                                "domain": _DOMAIN_REF}}},
                    "required": ["secret"]},
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
                                    "domain": _DOMAIN_REF}},
                                "domain": _DOMAIN_REF}},
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


class IdentityService:
    """Authenticates users and describes tokens."""

    def __init__(self, db: Database, provider: TokenProvider, *, public_url: str,
                 region: str, services: Sequence[CatalogService] = CATALOG_SERVICES,
                 authenticator: TokenAuthenticator | None = None) -> None:
        self.db = db
        self.provider = provider
        self.public_url = public_url.rstrip("/")
        self.region = region
        self.authenticator = authenticator or TokenAuthenticator(provider, db)
        self._catalog = build_catalog(self.public_url, region, services)

    @classmethod
    def from_conf(cls, conf: Any, db: Database, provider: TokenProvider,
                  authenticator: TokenAuthenticator | None = None) -> "IdentityService":
        return cls(db, provider, public_url=conf.api.public_url, region=conf.api.region,
                   authenticator=authenticator)

    def catalog(self) -> list[dict[str, Any]]:
        return self._catalog

    def validate(self, token: str) -> ValidatedToken:
        """A token that still works, and who it stands for (NotAuthenticated otherwise)."""
        return self.authenticator.validate(token)

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
        if "application_credential" in methods:
            if len(methods) > 1:
                raise exception.NotAuthenticated(
                    "Application credentials cannot be combined with other methods.")
            return self._authenticate_app_cred(identity["application_credential"],
                                               auth.get("scope"), include_catalog)

        user_id: str | None = None
        user_gen: int | None = None
        parent: TokenData | None = None
        if "token" in methods:
            valid = self.validate(identity["token"]["id"])
            parent = valid.data
            if parent.app_cred_id is not None:
                raise exception.Forbidden(
                    "You are not authorized to perform the requested action: "
                    "Using method 'application_credential' is not allowed for rescoping.")
            user_id, user_gen = parent.user_id, parent.user_generation
        if "password" in methods:
            password_user_id, password_gen = self._check_password(identity["password"]["user"])
            if user_id is not None and user_id != password_user_id:
                raise exception.NotAuthenticated("Authentication methods name different users.")
            user_id, user_gen = password_user_id, password_gen
        assert user_id is not None and user_gen is not None
        return self._issue(user_id, user_gen, methods, auth.get("scope"), parent,
                           include_catalog)

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

    def _find_user(self, s: Any, user_ref: dict[str, Any]) -> User | None:
        if user_ref.get("id"):
            return backend.get_user(s, user_ref["id"])
        if user_ref.get("name"):
            if "domain" not in user_ref:
                raise exception.ValidationError("Expecting to find domain in user.")
            return backend.find_user(s, user_ref["name"],
                                     backend.domain_id_from_ref(user_ref["domain"], s))
        raise exception.ValidationError("Expecting to find id or name in user.")

    def _check_password(self, user_ref: dict[str, Any]) -> tuple[str, int]:
        """The user id and token generation the password proves."""
        password = user_ref["password"]
        with self.db.read() as s:
            user = self._find_user(s, user_ref)
            if user is None:
                passwords.burn_verify_time(password)
                raise exception.NotAuthenticated()
            user_id, password_hash, enabled = user.id, user.password_hash, user.enabled
            generation = user.token_generation or 0
        if not passwords.verify_password(password, password_hash) or not enabled:
            raise exception.NotAuthenticated()
        return user_id, generation

    def _authenticate_app_cred(self, ref: dict[str, Any], scope: Any,
                               include_catalog: bool) -> IssuedToken:
        secret = ref["secret"]
        with self.db.read() as s:
            if ref.get("id"):
                cred = s.get(ApplicationCredential, ref["id"])
            elif ref.get("name"):
                if not isinstance(ref.get("user"), dict):
                    raise exception.ValidationError(
                        "Expecting to find user in application_credential.")
                user = self._find_user(s, ref["user"])
                cred = None if user is None else s.scalars(
                    select(ApplicationCredential).where(
                        ApplicationCredential.user_id == user.id,
                        ApplicationCredential.name == ref["name"])).first()
            else:
                raise exception.ValidationError(
                    "Expecting to find id or name in application_credential.")
            if cred is None:
                passwords.burn_verify_time(secret)
                raise exception.NotAuthenticated()
            cred_id, user_id, project_id = cred.id, cred.user_id, cred.project_id
            secret_hash, expires_at = cred.secret_hash, cred.expires_at
            user = backend.get_user(s, user_id)
            user_gen = (user.token_generation or 0) if user is not None else 0
        if not passwords.verify_password(secret, secret_hash):
            raise exception.NotAuthenticated()
        if expires_at is not None and expires_at <= utcnow():
            raise exception.NotAuthenticated("The application credential has expired.")
        if scope is not None and scope != {"project": {"id": project_id}}:
            raise exception.NotAuthenticated(
                "Application credentials are scoped to their project and cannot request "
                "another scope.")
        return self._issue(user_id, user_gen, ["application_credential"],
                           {"project": {"id": project_id}}, None, include_catalog,
                           app_cred_id=cred_id)

    def _issue(self, user_id: str, user_gen: int, methods: list[str], scope: Any,
               parent: TokenData | None, include_catalog: bool, *,
               app_cred_id: str | None = None) -> IssuedToken:
        with self.db.read() as s:
            user = backend.get_user(s, user_id)
            if user is None or not user.enabled or (user.token_generation or 0) != user_gen:
                # Gone, disabled or a new password since the credentials were checked.
                raise exception.NotAuthenticated()
            project, domain = self._resolve_scope(s, user, scope)
            principal = load_principal(s, user_id, project and project.id,
                                       domain and domain.id, app_cred_id)
            if principal is None and scope is None and project is not None:
                # The default project without access: unscoped, as Keystone.
                project = None
                principal = load_principal(s, user_id)
            if principal is None:
                if project is not None:
                    raise exception.NotAuthenticated(
                        f"User {user.id} has no access to project {project.id}")
                if domain is not None:
                    raise exception.NotAuthenticated(
                        f"User {user.id} has no access to domain {domain.id}")
                raise exception.NotAuthenticated()
            project_id = project.id if project is not None else None
            domain_id = domain.id if domain is not None else None
        expires_at = parent.expires_at if parent is not None else None
        parent_audit = (parent.parent_audit_id or parent.audit_id) if parent else None
        token, data = self.provider.issue(
            user_id, project_id, methods, expires_at=expires_at,
            parent_audit_id=parent_audit, domain_id=domain_id,
            user_generation=principal.user_generation,
            scope_generation=principal.scope_generation, app_cred_id=app_cred_id)
        return IssuedToken(token=token, data=data,
                           body=self._render(data, principal, include_catalog))

    def _resolve_scope(self, s: Any, user: User,
                       scope: Any) -> tuple[Project | None, Domain | None]:
        if scope == "unscoped":
            return None, None
        if scope is None:
            if not user.default_project_id:
                return None, None
            project = backend.get_project(s, user.default_project_id)
            return (project if project is not None and project.enabled else None), None
        if "domain" in scope and "project" not in scope:
            ref = scope["domain"]
            domain_id = backend.domain_id_from_ref(ref, s)
            domain = s.get(Domain, domain_id)
            if domain is None:
                raise exception.NotAuthenticated(
                    f"Could not find domain: {ref.get('id') or ref.get('name')}.")
            if not domain.enabled:
                raise exception.NotAuthenticated(f"Domain {domain.id} is disabled.")
            return None, domain
        if "project" not in scope:
            raise exception.NotAuthenticated("Only project and domain scopes are supported.")
        ref = scope["project"]
        if ref.get("id"):
            project = backend.get_project(s, ref["id"])
            ident = ref["id"]
        elif ref.get("name"):
            if "domain" not in ref:
                raise exception.ValidationError("Expecting to find domain in project.")
            project = backend.find_project(s, ref["name"],
                                           backend.domain_id_from_ref(ref["domain"], s))
            ident = ref["name"]
        else:
            raise exception.ValidationError("Expecting to find id or name in project.")
        if project is None:
            raise exception.NotAuthenticated(f"Could not find project: {ident}.")
        if not project.enabled:
            raise exception.NotAuthenticated(f"Project {project.id} is disabled.")
        if not backend.domain_enabled(s, project.domain_id):
            raise exception.NotAuthenticated(f"Domain {project.domain_id} is disabled.")
        return project, None

    # -- describing tokens ---------------------------------------------------
    def describe(self, valid: ValidatedToken, *, include_catalog: bool = True) -> dict[str, Any]:
        """Keystone's ``token`` body for a token that still works (``GET /v3/auth/tokens``)."""
        return self._render(valid.data, valid.principal, include_catalog)

    def _render(self, data: TokenData, principal: Principal,
                include_catalog: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "methods": list(data.methods),
            "user": {"id": data.user_id, "name": principal.user_name,
                     "domain": {"id": principal.user_domain_id,
                                "name": principal.user_domain_name},
                     "password_expires_at": None},
            "audit_ids": data.audit_ids,
            "expires_at": isotime_subsecond(data.expires_at),
            "issued_at": isotime_subsecond(data.issued_at),
        }
        roles = [{"id": rid, "name": name} for rid, name in principal.role_refs]
        if data.project_id is not None:
            body["project"] = {"id": data.project_id, "name": principal.project_name,
                               "domain": {"id": principal.project_domain_id,
                                          "name": principal.project_domain_name}}
            body["is_domain"] = False
            body["roles"] = roles
        elif data.domain_id is not None:
            body["domain"] = {"id": data.domain_id, "name": principal.domain_name}
            body["roles"] = roles
        if data.is_scoped and include_catalog:
            body["catalog"] = self._catalog
        if principal.app_cred is not None:
            body["application_credential"] = {"id": principal.app_cred.id,
                                              "name": principal.app_cred.name,
                                              "restricted": not principal.app_cred.unrestricted}
        return body


def _domain_arg(value: str) -> dict[str, str]:
    """A domain given as a bare string: ``default``/``Default`` or another id."""
    if value.lower() == backend.DEFAULT_DOMAIN_ID:
        return {"id": backend.DEFAULT_DOMAIN_ID}
    return {"id": value}
