"""Turning ``X-Auth-Token`` into a RequestContext (what keystonemiddleware does).

Runs on every API request, so it must be cheap: the token is checked by
decryption alone (plus the provider's briefly cached revocation set), and
what the token does not carry — names, current roles, whether the user and
project are still enabled — comes from a small TTL cache keyed by
(user, project), refreshed from the database every ``ttl`` seconds (5 s by
default). A role revoked or a user disabled therefore takes effect within
that time on every process.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from typing import Callable

from stratus import exception
from stratus.api.wsgi import Request
from stratus.context import RequestContext
from stratus.db.session import Database
from stratus.identity import backend
from stratus.identity.tokens import TokenProvider

@dataclasses.dataclass(frozen=True)
class Principal:
    """Who a (user, project) pair is, as of the last lookup."""

    user_name: str
    project_name: str | None
    roles: tuple[str, ...]


class PrincipalCache:
    """(user_id, project_id) -> Principal, or None when access is gone; TTL-bounded."""

    def __init__(self, db: Database, ttl: float = 5.0, max_entries: int = 10000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[tuple[str, str | None], tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def get(self, user_id: str, project_id: str | None) -> Principal | None:
        key = (user_id, project_id)
        now = self.clock()
        hit = self._entries.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        principal = self._load(user_id, project_id)
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (now, principal)
        return principal

    def invalidate(self) -> None:
        with self._lock:
            self._entries.clear()

    def _load(self, user_id: str, project_id: str | None) -> Principal | None:
        with self.db.read() as s:
            user = backend.get_user(s, user_id)
            if user is None or not user.enabled:
                return None
            if project_id is None:
                return Principal(user_name=user.name, project_name=None, roles=())
            project = backend.get_project(s, project_id)
            if project is None or not project.enabled:
                return None
            roles = tuple(r.name for r in backend.roles_on_project(s, user_id, project_id))
            if not roles:
                return None
            return Principal(user_name=user.name, project_name=project.name, roles=roles)


class TokenAuthenticator:
    """Validates ``X-Auth-Token``; an ``authenticate`` callable for wsgi.App."""

    def __init__(self, provider: TokenProvider, db: Database, cache_ttl: float = 5.0) -> None:
        self.provider = provider
        self.principals = PrincipalCache(db, ttl=cache_ttl)

    def __call__(self, req: Request) -> RequestContext | None:
        token = req.headers.get("X-Auth-Token")
        if not token:
            return None
        try:
            data = self.provider.validate(token)
        except exception.NotAuthenticated:
            return None
        principal = self.principals.get(data.user_id, data.project_id)
        if principal is None:
            return None
        return RequestContext(user_id=data.user_id, project_id=data.project_id,
                              roles=list(principal.roles), is_admin="admin" in principal.roles,
                              user_name=principal.user_name,
                              project_name=principal.project_name, auth_token=token)


def make_authenticator(provider: TokenProvider, db: Database, *,
                       cache_ttl: float = 5.0) -> TokenAuthenticator:
    """An ``authenticate`` callable for :class:`stratus.api.wsgi.App`.

    It returns the caller's RequestContext, or None (the App answers 401)
    when the token is missing, invalid, expired, revoked, or no longer grants
    access.
    """
    return TokenAuthenticator(provider, db, cache_ttl)
