"""Identity management: what Keystone's domain, project, user, group, role,
assignment and application credential APIs change, in a caller's session.

Every function that writes bumps the identity change counter in the same
transaction (:func:`stratus.identity.changes.bump`), so every API process
drops its cached token validations on its next request. Disabling a user,
project or domain and changing a password also bump that entity's
``token_generation``: tokens issued before stay dead even if it is
re-enabled. Errors carry Keystone's messages.
"""
from __future__ import annotations

import base64
import datetime
import secrets
from typing import Any, Iterable, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stratus import exception
from stratus.db.models import (ApplicationCredential, Domain, Group, Project, Role,
                               RoleAssignment, RoleGrant, User, UserGroupMembership)
from stratus.identity import backend, changes
from stratus.identity.backend import IdentityNotFound, new_id
from stratus.utils import utcnow

ACTORS = ("user", "group")
TARGETS = ("project", "domain")


def _conflict(kind: str, detail: str) -> exception.Conflict:
    return exception.Conflict(f"Conflict occurred attempting to store {kind} - {detail}")


def _flush(s: Session, kind: str, detail: str) -> None:
    try:
        with s.begin_nested():
            s.flush()
    except IntegrityError:
        raise _conflict(kind, detail)


def _bump_generation(obj: Any) -> None:
    obj.token_generation = (obj.token_generation or 0) + 1


# -- lookups that 404 ---------------------------------------------------------------

_Row = TypeVar("_Row", Domain, Project, User, Group, Role)


def _get(s: Session, model: type[_Row], kind: str, ident: str) -> _Row:
    row = s.get(model, ident)
    if row is None:
        raise IdentityNotFound(kind=kind, ident=ident)
    return row


def get_domain(s: Session, domain_id: str) -> Domain:
    return _get(s, Domain, "domain", domain_id)


def get_project(s: Session, project_id: str) -> Project:
    return _get(s, Project, "project", project_id)


def get_user(s: Session, user_id: str) -> User:
    return _get(s, User, "user", user_id)


def get_group(s: Session, group_id: str) -> Group:
    return _get(s, Group, "group", group_id)


def get_role(s: Session, role_id: str) -> Role:
    return _get(s, Role, "role", role_id)


def get_actor(s: Session, kind: str, actor_id: str) -> User | Group:
    return get_user(s, actor_id) if kind == "user" else get_group(s, actor_id)


def get_target(s: Session, kind: str, target_id: str) -> Project | Domain:
    return get_project(s, target_id) if kind == "project" else get_domain(s, target_id)


# -- domains ------------------------------------------------------------------------

def list_domains(s: Session, name: str | None = None,
                 enabled: bool | None = None) -> list[Domain]:
    return backend.list_named(s, Domain, name, enabled=enabled)


def create_domain(s: Session, name: str, *, description: str | None = None,
                  enabled: bool = True, domain_id: str | None = None) -> Domain:
    domain = Domain(id=domain_id or new_id(), name=name, description=description,
                    enabled=enabled)
    s.add(domain)
    _flush(s, "domain", f"Duplicate entry found with name {name}.")
    changes.bump(s)
    return domain


def update_domain(s: Session, domain_id: str, values: dict[str, Any]) -> Domain:
    domain = get_domain(s, domain_id)
    if "name" in values:
        domain.name = values["name"]
    if "description" in values:
        domain.description = values["description"]
    if "enabled" in values:
        if domain.enabled and not values["enabled"]:
            _bump_generation(domain)
        domain.enabled = bool(values["enabled"])
    domain.updated_at = utcnow()
    _flush(s, "domain", f"Duplicate entry found with name {domain.name}.")
    changes.bump(s)
    return domain


def delete_domain(s: Session, domain_id: str) -> None:
    """Delete a disabled domain and everything in it (projects, users, groups)."""
    domain = get_domain(s, domain_id)
    if domain.enabled:
        raise exception.Forbidden(
            "Cannot delete a domain that is enabled, please disable it first.")
    for project_id in _ids(s, Project, domain_id):
        delete_project(s, project_id)
    for user_id in _ids(s, User, domain_id):
        delete_user(s, user_id)
    for group_id in _ids(s, Group, domain_id):
        delete_group(s, group_id)
    s.execute(delete(RoleGrant).where(RoleGrant.type.in_(("UserDomain", "GroupDomain")),
                                      RoleGrant.target_id == domain_id))
    s.delete(domain)
    changes.bump(s)


def _ids(s: Session, model: Any, domain_id: str) -> list[str]:
    return list(s.scalars(select(model.id).where(model.domain_id == domain_id)))


def _check_domain(s: Session, domain_id: str) -> None:
    get_domain(s, domain_id)


# -- projects -----------------------------------------------------------------------

def list_projects(s: Session, name: str | None = None, domain_id: str | None = None,
                  enabled: bool | None = None) -> list[Project]:
    return backend.list_named(s, Project, name, domain_id, enabled)


def create_project(s: Session, name: str, *, domain_id: str = backend.DEFAULT_DOMAIN_ID,
                   description: str | None = None, enabled: bool = True) -> Project:
    _check_domain(s, domain_id)
    project = Project(id=new_id(), name=name, domain_id=domain_id, description=description,
                      enabled=enabled)
    s.add(project)
    _flush(s, "project",
           f"Duplicate entry found with name {name} at domain ID {domain_id}.")
    changes.bump(s)
    return project


def update_project(s: Session, project_id: str, values: dict[str, Any]) -> Project:
    project = get_project(s, project_id)
    if "domain_id" in values and values["domain_id"] != project.domain_id:
        raise exception.ValidationError("Cannot change Domain ID")
    if "name" in values:
        project.name = values["name"]
    if "description" in values:
        project.description = values["description"]
    if "enabled" in values:
        if project.enabled and not values["enabled"]:
            _bump_generation(project)
        project.enabled = bool(values["enabled"])
    project.updated_at = utcnow()
    _flush(s, "project",
           f"Duplicate entry found with name {project.name} at domain ID {project.domain_id}.")
    changes.bump(s)
    return project


def delete_project(s: Session, project_id: str) -> None:
    project = get_project(s, project_id)
    s.execute(delete(RoleGrant).where(RoleGrant.type == "GroupProject",
                                      RoleGrant.target_id == project_id))
    s.execute(delete(RoleAssignment).where(RoleAssignment.project_id == project_id))
    s.execute(delete(ApplicationCredential).where(
        ApplicationCredential.project_id == project_id))
    s.delete(project)
    changes.bump(s)


# -- users ----------------------------------------------------------------------------

def list_users(s: Session, name: str | None = None, domain_id: str | None = None,
               enabled: bool | None = None) -> list[User]:
    return backend.list_named(s, User, name, domain_id, enabled)


def create_user(s: Session, name: str, *, password_hash: str | None,
                domain_id: str = backend.DEFAULT_DOMAIN_ID, enabled: bool = True,
                default_project_id: str | None = None, email: str | None = None) -> User:
    """Create a user (``password_hash`` from passwords.hash_password, computed
    by the caller outside the transaction: scrypt is deliberately slow)."""
    _check_domain(s, domain_id)
    user = User(id=new_id(), name=name, domain_id=domain_id, password_hash=password_hash,
                enabled=enabled, default_project_id=default_project_id, email=email)
    s.add(user)
    _flush(s, "user", f"Duplicate entry found with name {name} at domain ID {domain_id}.")
    changes.bump(s)
    return user


def update_user(s: Session, user_id: str, values: dict[str, Any]) -> User:
    """Update a user; ``password_hash`` in ``values`` sets a new password.

    A new password or disabling the user ends its existing tokens.
    """
    user = get_user(s, user_id)
    if "domain_id" in values and values["domain_id"] != user.domain_id:
        raise exception.ValidationError("Cannot change Domain ID")
    for field in ("name", "default_project_id", "email"):
        if field in values:
            setattr(user, field, values[field])
    if "password_hash" in values:
        user.password_hash = values["password_hash"]
        _bump_generation(user)
    if "enabled" in values:
        if user.enabled and not values["enabled"]:
            _bump_generation(user)
        user.enabled = bool(values["enabled"])
    user.updated_at = utcnow()
    _flush(s, "user",
           f"Duplicate entry found with name {user.name} at domain ID {user.domain_id}.")
    changes.bump(s)
    return user


def delete_user(s: Session, user_id: str) -> None:
    user = get_user(s, user_id)
    s.execute(delete(RoleGrant).where(RoleGrant.type == "UserDomain",
                                      RoleGrant.actor_id == user_id))
    s.execute(delete(RoleAssignment).where(RoleAssignment.user_id == user_id))
    s.execute(delete(UserGroupMembership).where(UserGroupMembership.user_id == user_id))
    s.execute(delete(ApplicationCredential).where(ApplicationCredential.user_id == user_id))
    s.delete(user)
    changes.bump(s)


# -- groups ---------------------------------------------------------------------------

def list_groups(s: Session, name: str | None = None,
                domain_id: str | None = None) -> list[Group]:
    return backend.list_named(s, Group, name, domain_id)


def create_group(s: Session, name: str, *, domain_id: str = backend.DEFAULT_DOMAIN_ID,
                 description: str | None = None) -> Group:
    _check_domain(s, domain_id)
    group = Group(id=new_id(), name=name, domain_id=domain_id, description=description)
    s.add(group)
    _flush(s, "group", f"Duplicate entry found with name {name} at domain ID {domain_id}.")
    changes.bump(s)
    return group


def update_group(s: Session, group_id: str, values: dict[str, Any]) -> Group:
    group = get_group(s, group_id)
    if "domain_id" in values and values["domain_id"] != group.domain_id:
        raise exception.ValidationError("Cannot change Domain ID")
    if "name" in values:
        group.name = values["name"]
    if "description" in values:
        group.description = values["description"]
    group.updated_at = utcnow()
    _flush(s, "group",
           f"Duplicate entry found with name {group.name} at domain ID {group.domain_id}.")
    changes.bump(s)
    return group


def delete_group(s: Session, group_id: str) -> None:
    group = get_group(s, group_id)
    s.execute(delete(RoleGrant).where(RoleGrant.type.in_(("GroupProject", "GroupDomain")),
                                      RoleGrant.actor_id == group_id))
    s.execute(delete(UserGroupMembership).where(UserGroupMembership.group_id == group_id))
    s.delete(group)
    changes.bump(s)


def add_member(s: Session, group_id: str, user_id: str) -> None:
    get_group(s, group_id)
    get_user(s, user_id)
    if s.get(UserGroupMembership, (user_id, group_id)) is None:
        s.add(UserGroupMembership(user_id=user_id, group_id=group_id))
        try:
            with s.begin_nested():
                s.flush()
        except IntegrityError:
            pass  # added concurrently
    changes.bump(s)


def is_member(s: Session, group_id: str, user_id: str) -> bool:
    return s.get(UserGroupMembership, (user_id, group_id)) is not None


def remove_member(s: Session, group_id: str, user_id: str) -> None:
    get_group(s, group_id)
    get_user(s, user_id)
    result = s.execute(delete(UserGroupMembership).where(
        UserGroupMembership.user_id == user_id, UserGroupMembership.group_id == group_id))
    if not result.rowcount:  # type: ignore[attr-defined]
        raise exception.NotFound(f"User {user_id} is not a member of group {group_id}.")
    changes.bump(s)


def group_members(s: Session, group_id: str, name: str | None = None,
                  enabled: bool | None = None) -> list[User]:
    get_group(s, group_id)
    q = (select(User).join(UserGroupMembership, UserGroupMembership.user_id == User.id)
         .where(UserGroupMembership.group_id == group_id).order_by(User.name))
    if name is not None:
        q = q.where(User.name == name)
    if enabled is not None:
        q = q.where(User.enabled.is_(enabled))
    return list(s.scalars(q).all())


def groups_of_user(s: Session, user_id: str, name: str | None = None) -> list[Group]:
    get_user(s, user_id)
    q = (select(Group).join(UserGroupMembership, UserGroupMembership.group_id == Group.id)
         .where(UserGroupMembership.user_id == user_id).order_by(Group.name))
    if name is not None:
        q = q.where(Group.name == name)
    return list(s.scalars(q).all())


# -- roles ----------------------------------------------------------------------------

def create_role(s: Session, name: str) -> Role:
    role = Role(id=new_id(), name=name)
    s.add(role)
    _flush(s, "role", f"Duplicate entry found with name {name}.")
    changes.bump(s)
    return role


def update_role(s: Session, role_id: str, values: dict[str, Any]) -> Role:
    role = get_role(s, role_id)
    if "name" in values:
        role.name = values["name"]
    _flush(s, "role", f"Duplicate entry found with name {role.name}.")
    changes.bump(s)
    return role


def delete_role(s: Session, role_id: str) -> None:
    role = get_role(s, role_id)
    s.execute(delete(RoleGrant).where(RoleGrant.role_id == role_id))
    s.execute(delete(RoleAssignment).where(RoleAssignment.role_id == role_id))
    s.delete(role)
    changes.bump(s)


# -- grants (role assignments) --------------------------------------------------------

def _grant_type(actor: str, target: str) -> str:
    return f"{actor.capitalize()}{target.capitalize()}"


def _check_grant_args(s: Session, actor: str, actor_id: str, target: str, target_id: str,
                      role_id: str) -> None:
    get_role(s, role_id)
    get_actor(s, actor, actor_id)
    get_target(s, target, target_id)


def has_grant(s: Session, actor: str, actor_id: str, target: str, target_id: str,
              role_id: str) -> bool:
    if (actor, target) == ("user", "project"):
        q = select(RoleAssignment.id).where(RoleAssignment.user_id == actor_id,
                                            RoleAssignment.project_id == target_id,
                                            RoleAssignment.role_id == role_id)
    else:
        q = select(RoleGrant.role_id).where(RoleGrant.type == _grant_type(actor, target),
                                            RoleGrant.actor_id == actor_id,
                                            RoleGrant.target_id == target_id,
                                            RoleGrant.role_id == role_id)
    return s.scalars(q).first() is not None


def create_grant(s: Session, actor: str, actor_id: str, target: str, target_id: str,
                 role_id: str) -> None:
    _check_grant_args(s, actor, actor_id, target, target_id, role_id)
    if not has_grant(s, actor, actor_id, target, target_id, role_id):
        if (actor, target) == ("user", "project"):
            s.add(RoleAssignment(user_id=actor_id, project_id=target_id, role_id=role_id))
        else:
            s.add(RoleGrant(type=_grant_type(actor, target), actor_id=actor_id,
                            target_id=target_id, role_id=role_id))
        try:
            with s.begin_nested():
                s.flush()
        except IntegrityError:
            pass  # granted concurrently
    changes.bump(s)


def delete_grant(s: Session, actor: str, actor_id: str, target: str, target_id: str,
                 role_id: str) -> None:
    _check_grant_args(s, actor, actor_id, target, target_id, role_id)
    if (actor, target) == ("user", "project"):
        result = s.execute(delete(RoleAssignment).where(
            RoleAssignment.user_id == actor_id, RoleAssignment.project_id == target_id,
            RoleAssignment.role_id == role_id))
    else:
        result = s.execute(delete(RoleGrant).where(
            RoleGrant.type == _grant_type(actor, target), RoleGrant.actor_id == actor_id,
            RoleGrant.target_id == target_id, RoleGrant.role_id == role_id))
    if not result.rowcount:  # type: ignore[attr-defined]
        raise grant_not_found(actor_id, target_id, role_id)
    changes.bump(s)


def grant_not_found(actor_id: str, target_id: str, role_id: str) -> exception.NotFound:
    return exception.NotFound(
        f"Could not find role assignment with role: {role_id}, user or group: {actor_id}, "
        f"project, domain, or system: {target_id}.")


def grant_roles(s: Session, actor: str, actor_id: str, target: str,
                target_id: str) -> list[Role]:
    """The roles granted directly to an actor on a target."""
    get_actor(s, actor, actor_id)
    get_target(s, target, target_id)
    if (actor, target) == ("user", "project"):
        ids = select(RoleAssignment.role_id).where(RoleAssignment.user_id == actor_id,
                                                   RoleAssignment.project_id == target_id)
    else:
        ids = select(RoleGrant.role_id).where(RoleGrant.type == _grant_type(actor, target),
                                              RoleGrant.actor_id == actor_id,
                                              RoleGrant.target_id == target_id)
    return list(s.scalars(select(Role).where(Role.id.in_(ids)).order_by(Role.name)).all())


def list_assignments(s: Session, *, user_id: str | None = None, group_id: str | None = None,
                     project_id: str | None = None, domain_id: str | None = None,
                     role_id: str | None = None,
                     effective: bool = False) -> list[dict[str, str]]:
    """Keystone's role assignment list as flat dicts (``user_id``/``group_id``,
    ``project_id``/``domain_id``, ``role_id``; ``indirect_group_id`` for an
    effective assignment that comes from a group)."""
    rows: list[dict[str, str]] = []
    if domain_id is None and (group_id is None or effective):
        q = select(RoleAssignment.user_id, RoleAssignment.project_id, RoleAssignment.role_id)
        if project_id is not None:
            q = q.where(RoleAssignment.project_id == project_id)
        if role_id is not None:
            q = q.where(RoleAssignment.role_id == role_id)
        if user_id is not None:
            q = q.where(RoleAssignment.user_id == user_id)
        rows += [{"user_id": u, "project_id": p, "role_id": r} for u, p, r in s.execute(q)]
    q = select(RoleGrant.type, RoleGrant.actor_id, RoleGrant.target_id, RoleGrant.role_id)
    if project_id is not None:
        q = q.where(RoleGrant.type == "GroupProject", RoleGrant.target_id == project_id)
    if domain_id is not None:
        q = q.where(RoleGrant.type.in_(("UserDomain", "GroupDomain")),
                    RoleGrant.target_id == domain_id)
    if role_id is not None:
        q = q.where(RoleGrant.role_id == role_id)
    members: dict[str, list[str]] = {}
    for kind, actor_id, target_id, rid in s.execute(q):
        target_key = "project_id" if kind.endswith("Project") else "domain_id"
        if kind.startswith("User"):
            if group_id is None and (user_id is None or actor_id == user_id):
                rows.append({"user_id": actor_id, target_key: target_id, "role_id": rid})
            continue
        if effective:
            if actor_id not in members:
                members[actor_id] = list(s.scalars(select(UserGroupMembership.user_id).where(
                    UserGroupMembership.group_id == actor_id)))
            for member in members[actor_id]:
                if user_id is None or member == user_id:
                    rows.append({"user_id": member, target_key: target_id, "role_id": rid,
                                 "indirect_group_id": actor_id})
        elif user_id is None and (group_id is None or actor_id == group_id):
            rows.append({"group_id": actor_id, target_key: target_id, "role_id": rid})
    if effective:  # the same role on the same target from two sources counts once
        seen: set[tuple[str, ...]] = set()
        unique = []
        for row in rows:
            key = (row["user_id"], row.get("project_id", ""), row.get("domain_id", ""),
                   row["role_id"])
            if key not in seen:
                seen.add(key)
                unique.append(row)
        rows = unique
    rows.sort(key=lambda r: (r.get("user_id") or "~" + r.get("group_id", ""),
                             r.get("project_id") or "~" + r.get("domain_id", ""), r["role_id"]))
    return rows


# -- application credentials ------------------------------------------------------------

def generate_secret() -> str:
    """64 random bytes, URL-safe base64 without padding (as Keystone's)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(64)).rstrip(b"=").decode("ascii")


def create_app_cred(s: Session, *, user_id: str, project_id: str, name: str,
                    secret_hash: str, role_ids: Iterable[str], description: str | None,
                    expires_at: datetime.datetime | None,
                    unrestricted: bool) -> ApplicationCredential:
    cred = ApplicationCredential(id=new_id(), name=name, user_id=user_id,
                                 project_id=project_id, secret_hash=secret_hash,
                                 description=description, expires_at=expires_at,
                                 unrestricted=unrestricted, role_ids=list(role_ids))
    s.add(cred)
    _flush(s, "application_credential", f"Duplicate entry found with name {name}.")
    changes.bump(s)
    return cred


def list_app_creds(s: Session, user_id: str,
                   name: str | None = None) -> list[ApplicationCredential]:
    q = (select(ApplicationCredential).where(ApplicationCredential.user_id == user_id)
         .order_by(ApplicationCredential.name))
    if name is not None:
        q = q.where(ApplicationCredential.name == name)
    return list(s.scalars(q).all())


def get_app_cred(s: Session, cred_id: str) -> ApplicationCredential:
    cred = s.get(ApplicationCredential, cred_id)
    if cred is None:
        raise IdentityNotFound(kind="application credential", ident=cred_id)
    return cred


def delete_app_cred(s: Session, cred_id: str) -> None:
    s.delete(get_app_cred(s, cred_id))
    changes.bump(s)
