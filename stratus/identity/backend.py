"""Identity data: domains, users, projects, roles and role assignments in the shared DB.

Every user, group and project belongs to a domain (``default``, named
``Default``, unless created otherwise). A user's roles on a project are its
own (``role_assignments``) plus those of its groups (``role_grants`` of type
``GroupProject``); roles on a domain are ``UserDomain`` and ``GroupDomain``
grants. These helpers are what the identity API, ``bootstrap`` and tools
(``stratus`` CLI, tests) use; :mod:`stratus.identity.manage` holds the
create/update/delete operations of the management API. Every write bumps the
identity change counter (:mod:`stratus.identity.changes`) in its transaction.
"""
from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stratus import exception
from stratus.db.common import to_dict
from stratus.db.models import (Domain, Group, Project, Role, RoleAssignment, RoleGrant, User,
                               UserGroupMembership)
from stratus.db.session import Database
from stratus.identity import changes, passwords
from stratus.utils import utcnow

DEFAULT_DOMAIN_ID = "default"
DEFAULT_DOMAIN_NAME = "Default"


def new_id() -> str:
    """A Keystone-style id: 32 hex characters."""
    return uuid.uuid4().hex


def domain_name(s: Session | None, domain_id: str) -> str:
    """A domain's name (its id if it has no row: a domain deleted meanwhile)."""
    if s is not None:
        domain = s.get(Domain, domain_id)
        if domain is not None:
            return domain.name
    return DEFAULT_DOMAIN_NAME if domain_id == DEFAULT_DOMAIN_ID else domain_id


def domain_ref(domain_id: str, s: Session | None = None) -> dict[str, str]:
    """``{"id": ..., "name": ...}`` of a domain (names looked up when ``s`` is given)."""
    return {"id": domain_id, "name": domain_name(s, domain_id)}


def domain_id_from_ref(ref: dict[str, Any], s: Session | None = None) -> str:
    """The domain id a ``{"id": ...}`` or ``{"name": ...}`` reference names.

    Names are looked up in ``s`` when given; ``Default`` (any case) is always
    the default domain; without a session other names are taken as ids.
    """
    if ref.get("id"):
        return str(ref["id"])
    name = str(ref.get("name") or "")
    if not name:
        raise exception.ValidationError("Expecting to find id or name in domain.")
    if s is not None:
        domain_id = s.scalars(select(Domain.id).where(Domain.name == name)).first()
        if domain_id is not None:
            return domain_id
    return DEFAULT_DOMAIN_ID if name.lower() == DEFAULT_DOMAIN_ID else name


def domain_enabled(s: Session, domain_id: str) -> bool:
    """False for a disabled domain (a domain without a row counts as enabled)."""
    domain = s.get(Domain, domain_id)
    return domain is None or domain.enabled


def ensure_default_domain(s: Session) -> None:
    """Create the ``default`` domain row if missing (the migration creates it)."""
    if s.get(Domain, DEFAULT_DOMAIN_ID) is None:
        s.add(Domain(id=DEFAULT_DOMAIN_ID, name=DEFAULT_DOMAIN_NAME,
                     description="The default domain", enabled=True))
        s.flush()


class IdentityNotFound(exception.NotFound):
    msg_fmt = "Could not find %(kind)s: %(ident)s."


# -- lookups ------------------------------------------------------------------

def get_user(s: Session, user_id: str) -> User | None:
    return s.get(User, user_id)


def find_user(s: Session, name: str, domain_id: str) -> User | None:
    return s.scalars(select(User).where(User.name == name,
                                        User.domain_id == domain_id)).one_or_none()


def get_project(s: Session, project_id: str) -> Project | None:
    return s.get(Project, project_id)


def find_project(s: Session, name: str, domain_id: str) -> Project | None:
    return s.scalars(select(Project).where(Project.name == name,
                                           Project.domain_id == domain_id)).one_or_none()


def _groups_of(user_id: str) -> Any:
    return select(UserGroupMembership.group_id).where(UserGroupMembership.user_id == user_id)


def roles_on_project(s: Session, user_id: str, project_id: str) -> list[Role]:
    """The roles ``user_id`` holds on ``project_id``, directly or through its
    groups, by name."""
    direct = select(RoleAssignment.role_id).where(RoleAssignment.user_id == user_id,
                                                  RoleAssignment.project_id == project_id)
    via_groups = select(RoleGrant.role_id).where(RoleGrant.type == "GroupProject",
                                                 RoleGrant.target_id == project_id,
                                                 RoleGrant.actor_id.in_(_groups_of(user_id)))
    q = (select(Role).where(Role.id.in_(direct.union(via_groups))).order_by(Role.name))
    return list(s.scalars(q).all())


def roles_on_domain(s: Session, user_id: str, domain_id: str) -> list[Role]:
    """The roles ``user_id`` holds on ``domain_id``, directly or through its groups."""
    grants = select(RoleGrant.role_id).where(
        RoleGrant.target_id == domain_id,
        ((RoleGrant.type == "UserDomain") & (RoleGrant.actor_id == user_id))
        | ((RoleGrant.type == "GroupDomain") & RoleGrant.actor_id.in_(_groups_of(user_id))))
    q = select(Role).where(Role.id.in_(grants)).order_by(Role.name)
    return list(s.scalars(q).all())


def projects_of_user(s: Session, user_id: str) -> list[Project]:
    """The enabled projects ``user_id`` holds any role on (directly or via groups)."""
    direct = select(RoleAssignment.project_id).where(RoleAssignment.user_id == user_id)
    via_groups = select(RoleGrant.target_id).where(RoleGrant.type == "GroupProject",
                                                   RoleGrant.actor_id.in_(_groups_of(user_id)))
    q = (select(Project).where(Project.id.in_(direct.union(via_groups)))
         .where(Project.enabled.is_(True)).order_by(Project.name))
    return list(s.scalars(q).all())


def domains_of_user(s: Session, user_id: str) -> list[Domain]:
    """The enabled domains ``user_id`` holds any role on (directly or via groups)."""
    grants = select(RoleGrant.target_id).where(
        ((RoleGrant.type == "UserDomain") & (RoleGrant.actor_id == user_id))
        | ((RoleGrant.type == "GroupDomain") & RoleGrant.actor_id.in_(_groups_of(user_id))))
    q = (select(Domain).where(Domain.id.in_(grants))
         .where(Domain.enabled.is_(True)).order_by(Domain.name))
    return list(s.scalars(q).all())


def get_group(s: Session, group_id: str) -> Group | None:
    return s.get(Group, group_id)


def list_named(s: Session, model: Any, name: str | None = None, domain_id: str | None = None,
               enabled: bool | None = None) -> list[Any]:
    """``model``'s rows ordered by name, only those with ``name``, ``domain_id``
    or ``enabled`` when given."""
    q = select(model).order_by(model.name)
    if name is not None:
        q = q.where(model.name == name)
    if domain_id is not None:
        q = q.where(model.domain_id == domain_id)
    if enabled is not None:
        q = q.where(model.enabled.is_(enabled))
    return list(s.scalars(q).all())


def list_roles(s: Session, name: str | None = None) -> list[Role]:
    return list_named(s, Role, name)


def list_projects(s: Session, name: str | None = None,
                  domain_id: str | None = None) -> list[Project]:
    return list_named(s, Project, name, domain_id)


def list_users(s: Session, name: str | None = None,
               domain_id: str | None = None) -> list[User]:
    return list_named(s, User, name, domain_id)


# -- management ----------------------------------------------------------------

def create_project(db: Database, name: str, *, domain_id: str = DEFAULT_DOMAIN_ID,
                   description: str | None = None, enabled: bool = True,
                   project_id: str | None = None) -> dict[str, Any]:
    """Create a project; Conflict if the name is taken in the domain."""
    with db.write() as s:
        project = Project(id=project_id or new_id(), name=name, domain_id=domain_id,
                          description=description, enabled=enabled)
        s.add(project)
        try:
            s.flush()
        except IntegrityError:
            raise exception.Conflict(f"Conflict occurred attempting to store project - "
                                     f"Duplicate entry found with name {name} at domain ID "
                                     f"{domain_id}.")
        changes.bump(s)
        return to_dict(project)


def create_user(db: Database, name: str, password: str | None, *,
                domain_id: str = DEFAULT_DOMAIN_ID, default_project_id: str | None = None,
                email: str | None = None, enabled: bool = True,
                user_id: str | None = None) -> dict[str, Any]:
    """Create a user (password hashed); Conflict if the name is taken in the domain."""
    password_hash = passwords.hash_password(password) if password is not None else None
    with db.write() as s:
        user = User(id=user_id or new_id(), name=name, domain_id=domain_id,
                    password_hash=password_hash, enabled=enabled,
                    default_project_id=default_project_id, email=email)
        s.add(user)
        try:
            s.flush()
        except IntegrityError:
            raise exception.Conflict(f"Conflict occurred attempting to store user - "
                                     f"Duplicate entry found with name {name} at domain ID "
                                     f"{domain_id}.")
        changes.bump(s)
        return _public_user(user)


def set_password(db: Database, user_id: str, password: str) -> None:
    """Set a user's password; its existing tokens stop working."""
    password_hash = passwords.hash_password(password)
    with db.write() as s:
        user = get_user(s, user_id)
        if user is None:
            raise IdentityNotFound(kind="user", ident=user_id)
        user.password_hash = password_hash
        user.token_generation = (user.token_generation or 0) + 1
        user.updated_at = utcnow()
        changes.bump(s)


def set_user_enabled(db: Database, user_id: str, enabled: bool) -> None:
    """Enable or disable a user; disabling ends its existing tokens for good."""
    with db.write() as s:
        user = get_user(s, user_id)
        if user is None:
            raise IdentityNotFound(kind="user", ident=user_id)
        if user.enabled and not enabled:
            user.token_generation = (user.token_generation or 0) + 1
        user.enabled = enabled
        user.updated_at = utcnow()
        changes.bump(s)


def ensure_role(db: Database, name: str) -> dict[str, Any]:
    """The role named ``name``, created if missing."""
    with db.write() as s:
        role = ensure_role_row(s, name)
        changes.bump(s)
        return to_dict(role)


def ensure_role_row(s: Session, name: str) -> Role:
    """The role named ``name`` in session ``s``, created if missing."""
    role = s.scalars(select(Role).where(Role.name == name)).one_or_none()
    if role is None:
        role = Role(id=new_id(), name=name)
        s.add(role)
        s.flush()
    return role


def grant_role(db: Database, user_id: str, project_id: str, role_name: str) -> None:
    """Give ``user_id`` the role ``role_name`` (created if missing) on ``project_id``."""
    with db.write() as s:
        grant_role_row(s, user_id, project_id, ensure_role_row(s, role_name))
        changes.bump(s)


def grant_role_row(s: Session, user_id: str, project_id: str, role: Role) -> None:
    """Assign ``role`` in session ``s`` unless already assigned."""
    exists = s.scalars(select(RoleAssignment.id).where(
        RoleAssignment.user_id == user_id, RoleAssignment.project_id == project_id,
        RoleAssignment.role_id == role.id)).first()
    if exists is None:
        s.add(RoleAssignment(user_id=user_id, project_id=project_id, role_id=role.id))
        s.flush()


def revoke_role(db: Database, user_id: str, project_id: str, role_name: str) -> None:
    with db.write() as s:
        role = s.scalars(select(Role).where(Role.name == role_name)).one_or_none()
        if role is not None:
            s.execute(delete(RoleAssignment).where(
                RoleAssignment.user_id == user_id, RoleAssignment.project_id == project_id,
                RoleAssignment.role_id == role.id))
            changes.bump(s)


def _public_user(user: User) -> dict[str, Any]:
    values = to_dict(user)
    values.pop("password_hash", None)
    return values
