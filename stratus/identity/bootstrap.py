"""The first admin of a deployment, as ``keystone-manage bootstrap`` creates it."""
from __future__ import annotations

import dataclasses
from typing import Sequence

from sqlalchemy.exc import IntegrityError

from stratus.db.models import Project, User
from stratus.db.session import Database
from stratus.identity import backend, changes, passwords
from stratus.utils import utcnow

DEFAULT_ROLES = ("admin", "member", "reader")


@dataclasses.dataclass(frozen=True)
class BootstrapResult:
    user_id: str
    project_id: str
    role_ids: dict[str, str]


def bootstrap(db: Database, *, password: str, username: str = "admin",
              project: str = "admin", roles: Sequence[str] = DEFAULT_ROLES,
              project_name: str | None = None) -> BootstrapResult:
    """Create (or update) the admin user and project in the default domain.

    Idempotent: a second run keeps every id, re-enables the user and project,
    sets the password anew and adds any missing role or assignment. The user
    gets every role in ``roles`` on the project (there are no implied roles).
    ``project_name`` is an alias of ``project``.
    """
    for attempt in range(2):
        try:
            return _bootstrap_once(db, password, username, project_name or project, roles)
        except IntegrityError:
            if attempt:  # lost a race with a concurrent bootstrap twice: give up
                raise
    raise AssertionError("unreachable")


def _bootstrap_once(db: Database, password: str, username: str, project_name: str,
                    role_names: Sequence[str]) -> BootstrapResult:
    domain_id = backend.DEFAULT_DOMAIN_ID
    with db.read() as s:
        existing = backend.find_user(s, username, domain_id)
        old_hash = existing.password_hash if existing is not None else None
    # A new password ends the user's tokens; the same one (a restart) keeps them.
    same_password = passwords.verify_password(password, old_hash)
    password_hash = old_hash if same_password else passwords.hash_password(password)
    with db.write() as s:
        backend.ensure_default_domain(s)
        project = backend.find_project(s, project_name, domain_id)
        if project is None:
            project = Project(id=backend.new_id(), name=project_name, domain_id=domain_id,
                              description="Bootstrap project for initializing the cloud.")
            s.add(project)
        project.enabled = True
        user = backend.find_user(s, username, domain_id)
        if user is None:
            user = User(id=backend.new_id(), name=username, domain_id=domain_id)
            s.add(user)
        if user.password_hash is not None and user.password_hash != password_hash:
            user.token_generation = (user.token_generation or 0) + 1
        user.password_hash = password_hash
        user.enabled = True
        user.updated_at = utcnow()
        s.flush()
        role_ids: dict[str, str] = {}
        for name in role_names:
            role = backend.ensure_role_row(s, name)
            role_ids[name] = role.id
            backend.grant_role_row(s, user.id, project.id, role)
        changes.bump(s)
        return BootstrapResult(user_id=user.id, project_id=project.id, role_ids=role_ids)
