"""Identity v3 management API: domains, projects, users, groups, roles, role
assignments, application credentials and password changes, in Keystone's
wire format (what ``openstack`` and openstacksdk send and parse).

Policy (Keystone's defaults, simplified): a token carrying the ``admin`` role
may manage everything; anyone else may read its own user, change its own
password (``POST /v3/users/{id}/password`` proves the original password and
needs no token, as Keystone's), list its own projects and groups, and
create, list, show and delete its own application credentials (not with a
restricted application credential's token). Everything else is 403 in
Keystone's error format.
"""
from __future__ import annotations

import datetime
from typing import Any, Callable

import jsonschema
from sqlalchemy import select
from werkzeug.wrappers import Response

from stratus import exception
from stratus.api import wsgi
from stratus.api.wsgi import Request, Route, json_response
from stratus.context import RequestContext
from stratus.db.models import ApplicationCredential, Domain, Group, Project, Role, User
from stratus.db.session import Database
from stratus.identity import backend, manage, passwords
from stratus.identity.service import IdentityService
from stratus.utils import utcnow


def forbidden(action: str) -> exception.Forbidden:
    return exception.Forbidden(
        f"You are not authorized to perform the requested action: {action}.")


def require_admin(ctx: RequestContext, action: str) -> None:
    if not ctx.is_admin:
        raise forbidden(action)


def _validator(schema: dict[str, Any]) -> Callable[[Any], None]:
    validator = jsonschema.Draft4Validator(schema)

    def validate(value: Any) -> None:
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        if error is not None:
            field = "/".join(str(p) for p in error.absolute_path) or "body"
            raise exception.ValidationError(
                f"Invalid input for field '{field}': {error.message}")
    return validate


_NAME = {"type": "string", "minLength": 1, "maxLength": 64}
_ID = {"type": "string", "minLength": 1, "maxLength": 64}
_NULLABLE_ID = {"type": ["string", "null"], "maxLength": 64}
_DESCRIPTION = {"type": ["string", "null"]}
_BOOL = {"type": "boolean"}
_TAGS = {"type": "array", "maxItems": 0}

DOMAIN_CREATE = _validator({"type": "object", "required": ["name"], "properties": {
    "name": _NAME, "description": _DESCRIPTION, "enabled": _BOOL, "tags": _TAGS,
    "options": {"type": "object"}, "explicit_domain_id": _ID}})
DOMAIN_UPDATE = _validator({"type": "object", "minProperties": 1, "properties": {
    "name": _NAME, "description": _DESCRIPTION, "enabled": _BOOL, "tags": _TAGS,
    "options": {"type": "object"}}})
PROJECT_CREATE = _validator({"type": "object", "required": ["name"], "properties": {
    "name": _NAME, "description": _DESCRIPTION, "enabled": _BOOL, "domain_id": _NULLABLE_ID,
    "parent_id": _NULLABLE_ID, "is_domain": {"type": "boolean", "enum": [False]},
    "tags": _TAGS, "options": {"type": "object"}}})
PROJECT_UPDATE = _validator({"type": "object", "minProperties": 1, "properties": {
    "name": _NAME, "description": _DESCRIPTION, "enabled": _BOOL, "domain_id": _ID,
    "tags": _TAGS, "options": {"type": "object"}}})
_USER_PROPS = {"name": {"type": "string", "minLength": 1, "maxLength": 255},
               "password": {"type": ["string", "null"]}, "enabled": _BOOL,
               "default_project_id": _NULLABLE_ID, "email": {"type": ["string", "null"], "maxLength": 255},
               "description": _DESCRIPTION, "options": {"type": "object"}}
USER_CREATE = _validator({"type": "object", "required": ["name"], "properties": dict(
    _USER_PROPS, domain_id=_NULLABLE_ID)})
USER_UPDATE = _validator({"type": "object", "minProperties": 1, "properties": dict(
    _USER_PROPS, domain_id=_ID)})
PASSWORD_CHANGE = _validator({"type": "object", "required": ["password", "original_password"],
                              "properties": {"password": {"type": "string"},
                                             "original_password": {"type": "string"}}})
GROUP_CREATE = _validator({"type": "object", "required": ["name"], "properties": {
    "name": _NAME, "description": _DESCRIPTION, "domain_id": _NULLABLE_ID}})
GROUP_UPDATE = _validator({"type": "object", "minProperties": 1, "properties": {
    "name": _NAME, "description": _DESCRIPTION, "domain_id": _ID}})
ROLE_CREATE = _validator({"type": "object", "required": ["name"], "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 255},
    "domain_id": {"type": "null"}, "description": _DESCRIPTION,
    "options": {"type": "object"}}})
ROLE_UPDATE = _validator({"type": "object", "minProperties": 1, "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": _DESCRIPTION, "options": {"type": "object"}}})
_ROLE_REF = {"type": "object", "minProperties": 1,
             "properties": {"id": _ID, "name": {"type": "string"}}}
APP_CRED_CREATE = _validator({"type": "object", "required": ["name"], "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": _DESCRIPTION, "secret": {"type": ["string", "null"], "minLength": 1},
    "expires_at": {"type": ["string", "null"]}, "roles": {"type": "array", "items": _ROLE_REF},
    "unrestricted": {"type": ["boolean", "null"]},
    "access_rules": {"type": ["array", "null"], "maxItems": 0}}})


def _body(req: Request, key: str, validate: Callable[[Any], None]) -> dict[str, Any]:
    body = req.json_body()
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise exception.ValidationError(f"Expecting to find {key} in request body.")
    validate(body[key])
    return body[key]


def _flag(req: Request, name: str) -> bool:
    """Keystone's query_filter_is_true: present and not 0/false/no."""
    if name not in req.args:
        return False
    return req.args.get(name, "").strip().lower() not in ("0", "false", "no", "off")


def _enabled_filter(req: Request) -> bool | None:
    if "enabled" not in req.args:
        return None
    return _flag(req, "enabled")


def _isotime(value: datetime.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value is not None else None


def _parse_expiry(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise exception.ValidationError(
            f"Invalid input for field 'expires_at': {text!r} is not an ISO 8601 date.")
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value


class ManagementAPI:
    """The management handlers; ``routes()`` lists them for :class:`wsgi.App`."""

    def __init__(self, service: IdentityService, db: Database, v3_url: str) -> None:
        self.service = service
        self.db = db
        self.v3_url = v3_url

    def routes(self) -> list[Route]:
        r: list[Route] = [
            Route("GET", "/v3/domains", self.list_domains),
            Route("POST", "/v3/domains", self.create_domain),
            Route("GET", "/v3/domains/<domain_id>", self.get_domain),
            Route("PATCH", "/v3/domains/<domain_id>", self.update_domain),
            Route("DELETE", "/v3/domains/<domain_id>", self.delete_domain),
            Route("POST", "/v3/projects", self.create_project),
            Route("PATCH", "/v3/projects/<project_id>", self.update_project),
            Route("DELETE", "/v3/projects/<project_id>", self.delete_project),
            Route("POST", "/v3/users", self.create_user),
            Route("PATCH", "/v3/users/<user_id>", self.update_user),
            Route("DELETE", "/v3/users/<user_id>", self.delete_user),
            Route("POST", "/v3/users/<user_id>/password", self.change_password, public=True),
            Route("GET", "/v3/users/<user_id>/groups", self.user_groups),
            Route("GET", "/v3/users/<user_id>/application_credentials", self.list_app_creds),
            Route("POST", "/v3/users/<user_id>/application_credentials",
                  self.create_app_cred),
            Route("GET", "/v3/users/<user_id>/application_credentials/<cred_id>",
                  self.get_app_cred),
            Route("DELETE", "/v3/users/<user_id>/application_credentials/<cred_id>",
                  self.delete_app_cred),
            Route("GET", "/v3/groups", self.list_groups),
            Route("POST", "/v3/groups", self.create_group),
            Route("GET", "/v3/groups/<group_id>", self.get_group),
            Route("PATCH", "/v3/groups/<group_id>", self.update_group),
            Route("DELETE", "/v3/groups/<group_id>", self.delete_group),
            Route("GET", "/v3/groups/<group_id>/users", self.group_users),
            Route("GET", "/v3/groups/<group_id>/users/<user_id>", self.check_member),
            Route("PUT", "/v3/groups/<group_id>/users/<user_id>", self.add_member),
            Route("DELETE", "/v3/groups/<group_id>/users/<user_id>", self.remove_member),
            Route("POST", "/v3/roles", self.create_role),
            Route("GET", "/v3/roles/<role_id>", self.get_role),
            Route("PATCH", "/v3/roles/<role_id>", self.update_role),
            Route("DELETE", "/v3/roles/<role_id>", self.delete_role),
            Route("GET", "/v3/role_assignments", self.list_role_assignments),
            Route("GET", "/v3/auth/domains", self.auth_domains),
        ]
        for target in manage.TARGETS:
            for actor in manage.ACTORS:
                base = f"/v3/{target}s/<target_id>/{actor}s/<actor_id>/roles"
                r += [Route("GET", base, self._grant_list(actor, target)),
                      Route("GET", base + "/<role_id>", self._grant_check(actor, target)),
                      Route("PUT", base + "/<role_id>", self._grant_put(actor, target)),
                      Route("DELETE", base + "/<role_id>", self._grant_delete(actor, target))]
        return r

    # -- views ------------------------------------------------------------------------
    def _links(self, path: str) -> dict[str, Any]:
        return {"self": self.v3_url + path, "previous": None, "next": None}

    def domain_view(self, domain: Domain) -> dict[str, Any]:
        return {"id": domain.id, "name": domain.name, "description": domain.description,
                "enabled": domain.enabled, "tags": [], "options": {},
                "links": {"self": f"{self.v3_url}/domains/{domain.id}"}}

    def project_view(self, project: Project) -> dict[str, Any]:
        return {"id": project.id, "name": project.name, "domain_id": project.domain_id,
                "description": project.description, "enabled": project.enabled,
                "parent_id": project.domain_id, "is_domain": False, "tags": [],
                "options": {}, "links": {"self": f"{self.v3_url}/projects/{project.id}"}}

    def user_view(self, user: User) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": user.id, "name": user.name, "domain_id": user.domain_id,
            "enabled": user.enabled, "password_expires_at": None, "options": {},
            "links": {"self": f"{self.v3_url}/users/{user.id}"},
        }
        if user.default_project_id:
            body["default_project_id"] = user.default_project_id
        if user.email:
            body["email"] = user.email
        return body

    def group_view(self, group: Group) -> dict[str, Any]:
        return {"id": group.id, "name": group.name, "domain_id": group.domain_id,
                "description": group.description or "",
                "links": {"self": f"{self.v3_url}/groups/{group.id}"}}

    def role_view(self, role: Role) -> dict[str, Any]:
        return {"id": role.id, "name": role.name, "domain_id": None, "description": None,
                "options": {}, "links": {"self": f"{self.v3_url}/roles/{role.id}"}}

    def app_cred_view(self, s: Any, cred: ApplicationCredential,
                      secret: str | None = None) -> dict[str, Any]:
        names = dict(s.execute(select(Role.id, Role.name)
                               .where(Role.id.in_(cred.role_ids or []))).all())
        body: dict[str, Any] = {
            "id": cred.id, "name": cred.name, "description": cred.description,
            "expires_at": _isotime(cred.expires_at), "project_id": cred.project_id,
            "roles": [{"id": rid, "name": names[rid], "domain_id": None}
                      for rid in cred.role_ids or [] if rid in names],
            "unrestricted": bool(cred.unrestricted), "access_rules": [],
            "links": {"self": f"{self.v3_url}/users/{cred.user_id}/application_credentials/"
                              f"{cred.id}"},
        }
        if secret is not None:
            body["secret"] = secret
        return body

    # -- domains ----------------------------------------------------------------------
    def list_domains(self, req: Request) -> Response:
        require_admin(req.context, "identity:list_domains")
        with self.db.read() as s:
            body = [self.domain_view(d) for d in manage.list_domains(
                s, name=req.args.get("name"), enabled=_enabled_filter(req))]
        return json_response({"domains": body, "links": self._links("/domains")})

    def create_domain(self, req: Request) -> Response:
        require_admin(req.context, "identity:create_domain")
        values = _body(req, "domain", DOMAIN_CREATE)
        with self.db.write() as s:
            domain = manage.create_domain(s, values["name"],
                                          description=values.get("description"),
                                          enabled=values.get("enabled", True),
                                          domain_id=values.get("explicit_domain_id"))
            return json_response({"domain": self.domain_view(domain)}, status=201)

    def get_domain(self, req: Request, domain_id: str) -> Response:
        require_admin(req.context, "identity:get_domain")
        with self.db.read() as s:
            return json_response({"domain": self.domain_view(manage.get_domain(s, domain_id))})

    def update_domain(self, req: Request, domain_id: str) -> Response:
        require_admin(req.context, "identity:update_domain")
        values = _body(req, "domain", DOMAIN_UPDATE)
        with self.db.write() as s:
            domain = manage.update_domain(s, domain_id, values)
            return json_response({"domain": self.domain_view(domain)})

    def delete_domain(self, req: Request, domain_id: str) -> Response:
        require_admin(req.context, "identity:delete_domain")
        with self.db.write() as s:
            manage.delete_domain(s, domain_id)
        return wsgi.empty_response(204)

    def auth_domains(self, req: Request) -> Response:
        with self.db.read() as s:
            body = [self.domain_view(d)
                    for d in backend.domains_of_user(s, req.context.user_id or "")]
        return json_response({"domains": body, "links": self._links("/auth/domains")})

    # -- projects ---------------------------------------------------------------------
    def create_project(self, req: Request) -> Response:
        require_admin(req.context, "identity:create_project")
        values = _body(req, "project", PROJECT_CREATE)
        domain_id = values.get("domain_id") or backend.DEFAULT_DOMAIN_ID
        parent = values.get("parent_id")
        if parent and parent != domain_id:
            raise exception.ValidationError(
                "Project hierarchies are not supported: parent_id must be the domain.")
        with self.db.write() as s:
            project = manage.create_project(s, values["name"], domain_id=domain_id,
                                            description=values.get("description"),
                                            enabled=values.get("enabled", True))
            return json_response({"project": self.project_view(project)}, status=201)

    def update_project(self, req: Request, project_id: str) -> Response:
        require_admin(req.context, "identity:update_project")
        values = _body(req, "project", PROJECT_UPDATE)
        with self.db.write() as s:
            project = manage.update_project(s, project_id, values)
            return json_response({"project": self.project_view(project)})

    def delete_project(self, req: Request, project_id: str) -> Response:
        require_admin(req.context, "identity:delete_project")
        with self.db.write() as s:
            manage.delete_project(s, project_id)
        return wsgi.empty_response(204)

    # -- users ------------------------------------------------------------------------
    def create_user(self, req: Request) -> Response:
        require_admin(req.context, "identity:create_user")
        values = _body(req, "user", USER_CREATE)
        password = values.get("password")
        password_hash = passwords.hash_password(password) if password is not None else None
        with self.db.write() as s:
            user = manage.create_user(
                s, values["name"], password_hash=password_hash,
                domain_id=values.get("domain_id") or backend.DEFAULT_DOMAIN_ID,
                enabled=values.get("enabled", True),
                default_project_id=values.get("default_project_id"),
                email=values.get("email"))
            return json_response({"user": self.user_view(user)}, status=201)

    def update_user(self, req: Request, user_id: str) -> Response:
        require_admin(req.context, "identity:update_user")
        values = dict(_body(req, "user", USER_UPDATE))
        if "password" in values:
            password = values.pop("password")
            values["password_hash"] = (passwords.hash_password(password)
                                       if password is not None else None)
        with self.db.write() as s:
            user = manage.update_user(s, user_id, values)
            return json_response({"user": self.user_view(user)})

    def delete_user(self, req: Request, user_id: str) -> Response:
        require_admin(req.context, "identity:delete_user")
        with self.db.write() as s:
            manage.delete_user(s, user_id)
        return wsgi.empty_response(204)

    def change_password(self, req: Request, user_id: str) -> Response:
        """Keystone's self-service password change: proves the original password."""
        values = _body(req, "user", PASSWORD_CHANGE)
        with self.db.read() as s:
            user = backend.get_user(s, user_id)
            old_hash = user.password_hash if user is not None else None
            enabled = user is not None and user.enabled
        if user is None:
            passwords.burn_verify_time(values["original_password"])
        if (user is None or not enabled
                or not passwords.verify_password(values["original_password"], old_hash)):
            raise exception.NotAuthenticated(
                "Error when changing user password: Invalid user / password")
        new_hash = passwords.hash_password(values["password"])
        with self.db.write() as s:
            current = backend.get_user(s, user_id)
            if current is None or current.password_hash != old_hash:
                raise exception.NotAuthenticated(
                    "Error when changing user password: Invalid user / password")
            manage.update_user(s, user_id, {"password_hash": new_hash})
        return wsgi.empty_response(204)

    def _self_or_admin(self, req: Request, user_id: str, action: str) -> None:
        if not (req.context.is_admin or req.context.user_id == user_id):
            raise forbidden(action)

    def user_groups(self, req: Request, user_id: str) -> Response:
        self._self_or_admin(req, user_id, "identity:list_groups_for_user")
        with self.db.read() as s:
            body = [self.group_view(g)
                    for g in manage.groups_of_user(s, user_id, name=req.args.get("name"))]
        return json_response({"groups": body, "links": self._links(f"/users/{user_id}/groups")})

    # -- groups -----------------------------------------------------------------------
    def list_groups(self, req: Request) -> Response:
        require_admin(req.context, "identity:list_groups")
        with self.db.read() as s:
            body = [self.group_view(g) for g in manage.list_groups(
                s, name=req.args.get("name"), domain_id=req.args.get("domain_id"))]
        return json_response({"groups": body, "links": self._links("/groups")})

    def create_group(self, req: Request) -> Response:
        require_admin(req.context, "identity:create_group")
        values = _body(req, "group", GROUP_CREATE)
        with self.db.write() as s:
            group = manage.create_group(
                s, values["name"], domain_id=values.get("domain_id") or
                backend.DEFAULT_DOMAIN_ID, description=values.get("description"))
            return json_response({"group": self.group_view(group)}, status=201)

    def get_group(self, req: Request, group_id: str) -> Response:
        require_admin(req.context, "identity:get_group")
        with self.db.read() as s:
            return json_response({"group": self.group_view(manage.get_group(s, group_id))})

    def update_group(self, req: Request, group_id: str) -> Response:
        require_admin(req.context, "identity:update_group")
        values = _body(req, "group", GROUP_UPDATE)
        with self.db.write() as s:
            return json_response({"group": self.group_view(
                manage.update_group(s, group_id, values))})

    def delete_group(self, req: Request, group_id: str) -> Response:
        require_admin(req.context, "identity:delete_group")
        with self.db.write() as s:
            manage.delete_group(s, group_id)
        return wsgi.empty_response(204)

    def group_users(self, req: Request, group_id: str) -> Response:
        require_admin(req.context, "identity:list_users_in_group")
        with self.db.read() as s:
            body = [self.user_view(u) for u in manage.group_members(
                s, group_id, name=req.args.get("name"), enabled=_enabled_filter(req))]
        return json_response({"users": body, "links": self._links(f"/groups/{group_id}/users")})

    def check_member(self, req: Request, group_id: str, user_id: str) -> Response:
        require_admin(req.context, "identity:check_user_in_group")
        with self.db.read() as s:
            manage.get_group(s, group_id)
            manage.get_user(s, user_id)
            if not manage.is_member(s, group_id, user_id):
                raise exception.NotFound(
                    f"User {user_id} is not a member of group {group_id}.")
        return wsgi.empty_response(204)

    def add_member(self, req: Request, group_id: str, user_id: str) -> Response:
        require_admin(req.context, "identity:add_user_to_group")
        with self.db.write() as s:
            manage.add_member(s, group_id, user_id)
        return wsgi.empty_response(204)

    def remove_member(self, req: Request, group_id: str, user_id: str) -> Response:
        require_admin(req.context, "identity:remove_user_from_group")
        with self.db.write() as s:
            manage.remove_member(s, group_id, user_id)
        return wsgi.empty_response(204)

    # -- roles ------------------------------------------------------------------------
    def create_role(self, req: Request) -> Response:
        require_admin(req.context, "identity:create_role")
        values = _body(req, "role", ROLE_CREATE)
        with self.db.write() as s:
            return json_response({"role": self.role_view(
                manage.create_role(s, values["name"]))}, status=201)

    def get_role(self, req: Request, role_id: str) -> Response:
        require_admin(req.context, "identity:get_role")
        with self.db.read() as s:
            return json_response({"role": self.role_view(manage.get_role(s, role_id))})

    def update_role(self, req: Request, role_id: str) -> Response:
        require_admin(req.context, "identity:update_role")
        values = _body(req, "role", ROLE_UPDATE)
        with self.db.write() as s:
            return json_response({"role": self.role_view(
                manage.update_role(s, role_id, values))})

    def delete_role(self, req: Request, role_id: str) -> Response:
        require_admin(req.context, "identity:delete_role")
        with self.db.write() as s:
            manage.delete_role(s, role_id)
        return wsgi.empty_response(204)

    # -- grants -----------------------------------------------------------------------
    def _grant_list(self, actor: str, target: str) -> Callable[..., Response]:
        def handler(req: Request, target_id: str, actor_id: str) -> Response:
            require_admin(req.context, "identity:list_grants")
            with self.db.read() as s:
                body = [self.role_view(r)
                        for r in manage.grant_roles(s, actor, actor_id, target, target_id)]
            return json_response({"roles": body, "links": self._links(
                f"/{target}s/{target_id}/{actor}s/{actor_id}/roles")})
        return handler

    def _grant_check(self, actor: str, target: str) -> Callable[..., Response]:
        def handler(req: Request, target_id: str, actor_id: str, role_id: str) -> Response:
            require_admin(req.context, "identity:check_grant")
            with self.db.read() as s:
                manage.get_role(s, role_id)
                manage.get_actor(s, actor, actor_id)
                manage.get_target(s, target, target_id)
                if not manage.has_grant(s, actor, actor_id, target, target_id, role_id):
                    raise manage.grant_not_found(actor_id, target_id, role_id)
            return wsgi.empty_response(204)
        return handler

    def _grant_put(self, actor: str, target: str) -> Callable[..., Response]:
        def handler(req: Request, target_id: str, actor_id: str, role_id: str) -> Response:
            require_admin(req.context, "identity:create_grant")
            with self.db.write() as s:
                manage.create_grant(s, actor, actor_id, target, target_id, role_id)
            return wsgi.empty_response(204)
        return handler

    def _grant_delete(self, actor: str, target: str) -> Callable[..., Response]:
        def handler(req: Request, target_id: str, actor_id: str, role_id: str) -> Response:
            require_admin(req.context, "identity:revoke_grant")
            with self.db.write() as s:
                manage.delete_grant(s, actor, actor_id, target, target_id, role_id)
            return wsgi.empty_response(204)
        return handler

    def list_role_assignments(self, req: Request) -> Response:
        require_admin(req.context, "identity:list_role_assignments")
        args = req.args
        effective = _flag(req, "effective")
        include_names = _flag(req, "include_names")
        if args.get("scope.domain.id") and args.get("scope.project.id"):
            raise exception.ValidationError("Specify a domain or project, not both")
        if args.get("user.id") and args.get("group.id"):
            raise exception.ValidationError("Specify a user or group, not both")
        if effective and args.get("group.id"):
            raise exception.ValidationError(
                "Combining effective and group filter will always result in an empty list.")
        if args.get("scope.system") or args.get("scope.OS-INHERIT:inherited_to"):
            return json_response({"role_assignments": [],
                                  "links": self._links("/role_assignments")})
        with self.db.read() as s:
            rows = manage.list_assignments(
                s, user_id=args.get("user.id"), group_id=args.get("group.id"),
                project_id=args.get("scope.project.id"),
                domain_id=args.get("scope.domain.id"), role_id=args.get("role.id"),
                effective=effective)
            body = [self._assignment(s, row, include_names) for row in rows]
        return json_response({"role_assignments": body,
                              "links": self._links("/role_assignments")})

    def _assignment(self, s: Any, row: dict[str, str], include_names: bool) -> dict[str, Any]:
        entity: dict[str, Any] = {"links": {}}
        if "project_id" in row:
            ref: dict[str, Any] = {"id": row["project_id"]}
            if include_names:
                project = s.get(Project, row["project_id"])
                if project is not None:
                    ref.update(name=project.name,
                               domain=backend.domain_ref(project.domain_id, s))
            entity["scope"] = {"project": ref}
            link = f"/projects/{row['project_id']}"
        else:
            ref = {"id": row["domain_id"]}
            if include_names:
                ref["name"] = backend.domain_name(s, row["domain_id"])
            entity["scope"] = {"domain": ref}
            link = f"/domains/{row['domain_id']}"
        if "user_id" in row:
            ref = {"id": row["user_id"]}
            if include_names:
                user = s.get(User, row["user_id"])
                if user is not None:
                    ref.update(name=user.name, domain=backend.domain_ref(user.domain_id, s))
            entity["user"] = ref
            if "indirect_group_id" in row:
                group_id = row["indirect_group_id"]
                entity["links"]["membership"] = (
                    f"{self.v3_url}/groups/{group_id}/users/{row['user_id']}")
                link += f"/groups/{group_id}"
            else:
                link += f"/users/{row['user_id']}"
        else:
            ref = {"id": row["group_id"]}
            if include_names:
                group = s.get(Group, row["group_id"])
                if group is not None:
                    ref.update(name=group.name, domain=backend.domain_ref(group.domain_id, s))
            entity["group"] = ref
            link += f"/groups/{row['group_id']}"
        ref = {"id": row["role_id"]}
        if include_names:
            role = s.get(Role, row["role_id"])
            if role is not None:
                ref["name"] = role.name
        entity["role"] = ref
        link += f"/roles/{row['role_id']}"
        entity["links"]["assignment"] = self.v3_url + link
        return entity

    # -- application credentials ------------------------------------------------------
    def _caller_token(self, req: Request) -> Any:
        return self.service.validate(req.context.auth_token or "")

    def _check_unrestricted(self, req: Request) -> Any:
        valid = self._caller_token(req)
        cred = valid.principal.app_cred
        if cred is not None and not cred.unrestricted:
            raise forbidden("Using method 'application_credential' is not allowed for "
                            "managing additional application credentials")
        return valid

    def list_app_creds(self, req: Request, user_id: str) -> Response:
        self._self_or_admin(req, user_id, "identity:list_application_credentials")
        with self.db.read() as s:
            body = [self.app_cred_view(s, c)
                    for c in manage.list_app_creds(s, user_id, name=req.args.get("name"))]
        return json_response({"application_credentials": body, "links": self._links(
            f"/users/{user_id}/application_credentials")})

    def create_app_cred(self, req: Request, user_id: str) -> Response:
        values = _body(req, "application_credential", APP_CRED_CREATE)
        valid = self._check_unrestricted(req)
        if req.context.user_id != user_id:
            raise forbidden("Cannot create an application credential for another user")
        if req.context.project_id is None:
            raise exception.ValidationError(
                "Invalid application credential: a project-scoped token is required.")
        token_roles = dict(valid.principal.role_refs)  # id -> name
        by_name = {name: rid for rid, name in token_roles.items()}
        role_ids = []
        for ref in values.get("roles") or []:
            rid = ref.get("id") or by_name.get(ref.get("name", ""))
            if rid not in token_roles:
                raise exception.ValidationError(
                    "Invalid application credential: Cannot create an application "
                    "credential with unassigned role")
            role_ids.append(rid)
        if not role_ids:
            role_ids = list(token_roles)
        expires_at = _parse_expiry(values.get("expires_at"))
        if expires_at is not None and expires_at <= utcnow():
            raise exception.ValidationError(
                "Invalid application credential: expires_at is in the past.")
        secret = values.get("secret") or manage.generate_secret()
        secret_hash = passwords.hash_password(secret)
        with self.db.write() as s:
            cred = manage.create_app_cred(
                s, user_id=user_id, project_id=req.context.project_id, name=values["name"],
                secret_hash=secret_hash, role_ids=dict.fromkeys(role_ids),
                description=values.get("description"), expires_at=expires_at,
                unrestricted=bool(values.get("unrestricted")))
            return json_response({"application_credential": self.app_cred_view(
                s, cred, secret=secret)}, status=201)

    def _own_app_cred(self, req: Request, s: Any, user_id: str,
                      cred_id: str, action: str) -> ApplicationCredential:
        cred = s.get(ApplicationCredential, cred_id)
        owner = cred.user_id if cred is not None else user_id
        # The owner comes from the credential, never from the path (as Keystone).
        if not (req.context.is_admin or req.context.user_id == owner):
            raise forbidden(action)
        if cred is None or cred.user_id != user_id:
            raise backend.IdentityNotFound(kind="application credential", ident=cred_id)
        return cred

    def get_app_cred(self, req: Request, user_id: str, cred_id: str) -> Response:
        with self.db.read() as s:
            cred = self._own_app_cred(req, s, user_id, cred_id,
                                      "identity:get_application_credential")
            return json_response({"application_credential": self.app_cred_view(s, cred)})

    def delete_app_cred(self, req: Request, user_id: str, cred_id: str) -> Response:
        self._check_unrestricted(req)
        with self.db.write() as s:
            self._own_app_cred(req, s, user_id, cred_id,
                               "identity:delete_application_credential")
            manage.delete_app_cred(s, cred_id)
        return wsgi.empty_response(204)
