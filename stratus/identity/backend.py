"""Identity data: users, projects, roles and role assignments in the shared DB.

There is no domain table: every user and project belongs to a domain id,
``default`` (named ``Default``) unless created otherwise; any other domain's
name is its id. These helpers are what the identity API, ``bootstrap`` and
tools (``stratus`` CLI, tests) use to manage identities;
:func:`stratus.identity.service.bootstrap` creates the first admin.
"""
from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stratus import exception
from stratus.db.common import to_dict
from stratus.db.models import Project, Role, RoleAssignment, User
from stratus.db.session import Database
from stratus.identity import passwords
from stratus.utils import utcnow

DEFAULT_DOMAIN_ID = "default"
DEFAULT_DOMAIN_NAME = "Default"


def new_id() -> str:
    """A Keystone-style id: 32 hex characters."""
    return uuid.uuid4().hex


def domain_ref(domain_id: str) -> dict[str, str]:
    """``{"id": ..., "name": ...}`` of a domain."""
    return {"id": domain_id,
            "name": DEFAULT_DOMAIN_NAME if domain_id == DEFAULT_DOMAIN_ID else domain_id}


def domain_id_from_ref(ref: dict[str, Any]) -> str:
    """The domain id a ``{"id": ...}`` or ``{"name": ...}`` reference names.

    ``Default`` (any case) is the default domain; other names are their ids.
    """
    if ref.get("id"):
        return str(ref["id"])
    name = str(ref.get("name") or "")
    if not name:
        raise exception.ValidationError("Expecting to find id or name in domain.")
    return DEFAULT_DOMAIN_ID if name.lower() == DEFAULT_DOMAIN_ID else name


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


def roles_on_project(s: Session, user_id: str, project_id: str) -> list[Role]:
    """The roles ``user_id`` holds on ``project_id``, by name."""
    q = (select(Role).join(RoleAssignment, RoleAssignment.role_id == Role.id)
         .where(RoleAssignment.user_id == user_id, RoleAssignment.project_id == project_id)
         .order_by(Role.name))
    return list(s.scalars(q).all())


def projects_of_user(s: Session, user_id: str) -> list[Project]:
    """The enabled projects ``user_id`` holds any role on."""
    q = (select(Project).where(Project.id.in_(
        select(RoleAssignment.project_id).where(RoleAssignment.user_id == user_id)))
        .where(Project.enabled.is_(True)).order_by(Project.name))
    return list(s.scalars(q).all())


def list_roles(s: Session, name: str | None = None) -> list[Role]:
    q = select(Role).order_by(Role.name)
    if name is not None:
        q = q.where(Role.name == name)
    return list(s.scalars(q).all())


def list_projects(s: Session, name: str | None = None,
                  domain_id: str | None = None) -> list[Project]:
    q = select(Project).order_by(Project.name)
    if name is not None:
        q = q.where(Project.name == name)
    if domain_id is not None:
        q = q.where(Project.domain_id == domain_id)
    return list(s.scalars(q).all())


def list_users(s: Session, name: str | None = None,
               domain_id: str | None = None) -> list[User]:
    q = select(User).order_by(User.name)
    if name is not None:
        q = q.where(User.name == name)
    if domain_id is not None:
        q = q.where(User.domain_id == domain_id)
    return list(s.scalars(q).all())


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
                                     f"Duplicate entry {name} in domain {domain_id}.")
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
                                     f"Duplicate entry {name} in domain {domain_id}.")
        return _public_user(user)


def set_password(db: Database, user_id: str, password: str) -> None:
    password_hash = passwords.hash_password(password)
    with db.write() as s:
        user = get_user(s, user_id)
        if user is None:
            raise IdentityNotFound(kind="user", ident=user_id)
        user.password_hash = password_hash
        user.updated_at = utcnow()


def set_user_enabled(db: Database, user_id: str, enabled: bool) -> None:
    with db.write() as s:
        user = get_user(s, user_id)
        if user is None:
            raise IdentityNotFound(kind="user", ident=user_id)
        user.enabled = enabled
        user.updated_at = utcnow()


def ensure_role(db: Database, name: str) -> dict[str, Any]:
    """The role named ``name``, created if missing."""
    with db.write() as s:
        return to_dict(ensure_role_row(s, name))


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


def _public_user(user: User) -> dict[str, Any]:
    values = to_dict(user)
    values.pop("password_hash", None)
    return values
