"""Turning ``X-Auth-Token`` into a RequestContext (what keystonemiddleware does).

Runs on every API request, so it must be cheap, and it must be exact: a
disabled or deleted user or project, a changed password, a revoked token, a
lost role or a deleted application credential ends a token's access on the
very next request, in every API process.

How (see also :mod:`stratus.identity.changes`):

1. The token is decrypted (about 20 µs): user, scope, methods, audit ids,
   expiry, the user's and the scope's *token generations* at issue, and the
   application credential it came from, if any.
2. The identity change counter is read (one primary-key read, shared by
   concurrent requests). Every identity write bumps it in its transaction.
3. What the token does not carry — names, the roles the user holds now
   (directly and through groups, restricted to the application
   credential's), whether user, project and domains are enabled, the current
   token generations, the application credential's expiry — comes from a
   per-process cache of (user, scope, application credential) entries that
   is dropped whenever the counter moved; so is the set of revoked audit ids.
4. A token is refused if its audit id (or its parent's) is revoked, if the
   user or scope is gone or disabled, if no role is left, or if its
   generations differ from the current ones (a password change or disabling
   bumps them, so re-enabling a user does not bring old tokens back).

``cache_ttl`` (60 s by default) only bounds how long an entry lives when the
counter does not move, as a safety net for changes made behind the API's
back (hand-written SQL); correctness does not depend on it.
"""
from __future__ import annotations

import dataclasses
import datetime
import threading
import time
from typing import Any, Callable

from stratus import exception, policy
from stratus.api.wsgi import Request
from stratus.context import RequestContext
from stratus.db.models import ApplicationCredential, Domain, Project, User
from stratus.db.session import Database
from stratus.identity import backend
from stratus.identity.tokens import TokenData, TokenProvider
from stratus.utils import utcnow


@dataclasses.dataclass(frozen=True)
class AppCredInfo:
    id: str
    name: str
    unrestricted: bool
    expires_at: datetime.datetime | None


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who a (user, scope, application credential) is, as of the last lookup."""

    user_name: str
    project_name: str | None
    roles: tuple[str, ...]
    user_domain_id: str = backend.DEFAULT_DOMAIN_ID
    user_domain_name: str = backend.DEFAULT_DOMAIN_NAME
    project_domain_id: str | None = None
    project_domain_name: str | None = None
    domain_name: str | None = None                    # domain scope
    role_refs: tuple[tuple[str, str], ...] = ()       # (id, name)
    user_generation: int = 0
    scope_generation: int = 0
    app_cred: AppCredInfo | None = None


@dataclasses.dataclass(frozen=True)
class ValidatedToken:
    token: str
    data: TokenData
    principal: Principal


def load_principal(s: Any, user_id: str, project_id: str | None = None,
                   domain_id: str | None = None,
                   app_cred_id: str | None = None) -> Principal | None:
    """The principal a token of this user and scope stands for now, or None
    when that token can no longer be honoured."""
    user = s.get(User, user_id)
    if user is None or not user.enabled:
        return None
    user_domain = s.get(Domain, user.domain_id)
    if user_domain is not None and not user_domain.enabled:
        return None
    fields: dict[str, Any] = dict(
        user_name=user.name, user_domain_id=user.domain_id,
        user_domain_name=backend.domain_name(s, user.domain_id),
        user_generation=user.token_generation or 0, project_name=None, roles=())
    roles = []
    if project_id is not None:
        project = s.get(Project, project_id)
        if project is None or not project.enabled:
            return None
        if not backend.domain_enabled(s, project.domain_id):
            return None
        roles = backend.roles_on_project(s, user_id, project_id)
        fields.update(project_name=project.name, project_domain_id=project.domain_id,
                      project_domain_name=backend.domain_name(s, project.domain_id),
                      scope_generation=project.token_generation or 0)
    elif domain_id is not None:
        domain = s.get(Domain, domain_id)
        if domain is None or not domain.enabled:
            return None
        roles = backend.roles_on_domain(s, user_id, domain_id)
        fields.update(domain_name=domain.name, scope_generation=domain.token_generation or 0)
    if app_cred_id is not None:
        cred = s.get(ApplicationCredential, app_cred_id)
        if cred is None or cred.user_id != user_id or cred.project_id != project_id:
            return None
        allowed = set(cred.role_ids or ())
        roles = [r for r in roles if r.id in allowed]
        fields["app_cred"] = AppCredInfo(id=cred.id, name=cred.name,
                                         unrestricted=bool(cred.unrestricted),
                                         expires_at=cred.expires_at)
    if (project_id is not None or domain_id is not None) and not roles:
        return None
    fields["roles"] = tuple(r.name for r in roles)
    fields["role_refs"] = tuple((r.id, r.name) for r in roles)
    return Principal(**fields)


_Key = tuple[str, str | None, str | None, str | None]


class PrincipalCache:
    """(user, project, domain, app cred) -> Principal or None, for one counter value.

    ``get`` is given the change counter the caller read before asking; when
    it differs from the one the entries were loaded under, every entry is
    dropped first. An entry is only stored if the counter did not move while
    it was loaded. ``ttl`` bounds an entry's age regardless.
    """

    def __init__(self, db: Database, ttl: float = 60.0, max_entries: int = 10000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[_Key, tuple[float, Principal | None]] = {}
        self._generation: int | None = None
        self._lock = threading.Lock()
        self.loads = 0

    def get(self, user_id: str, project_id: str | None, generation: int | None = None, *,
            domain_id: str | None = None, app_cred_id: str | None = None) -> Principal | None:
        key = (user_id, project_id, domain_id, app_cred_id)
        if generation is not None and generation != self._generation:
            with self._lock:
                if generation != self._generation:
                    self._entries = {}
                    self._generation = generation
        now = self.clock()
        hit = self._entries.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        with self.db.read() as s:
            principal = load_principal(s, user_id, project_id, domain_id, app_cred_id)
        self.loads += 1
        with self._lock:
            if generation is None or generation == self._generation:
                if len(self._entries) >= self.max_entries:
                    self._entries = {}
                self._entries[key] = (now, principal)
        return principal

    def invalidate(self) -> None:
        with self._lock:
            self._entries = {}


class TokenAuthenticator:
    """Validates ``X-Auth-Token``; an ``authenticate`` callable for wsgi.App."""

    def __init__(self, provider: TokenProvider, db: Database, cache_ttl: float = 60.0) -> None:
        self.provider = provider
        self.db = db
        self.principals = PrincipalCache(db, ttl=cache_ttl)

    def validate(self, token: str) -> ValidatedToken:
        """The token and who it stands for; NotAuthenticated when it no longer works."""
        data = self.provider.decode(token)
        generation = self.provider.changes.current() if self.provider.changes else None
        if self.provider.is_revoked(data, generation):
            raise exception.NotAuthenticated("The token has been revoked.")
        principal = self.principals.get(data.user_id, data.project_id, generation,
                                        domain_id=data.domain_id, app_cred_id=data.app_cred_id)
        if principal is None:
            raise exception.NotAuthenticated("The token no longer grants access.")
        if (principal.user_generation != data.user_generation
                or principal.scope_generation != data.scope_generation):
            raise exception.NotAuthenticated("The token has been revoked.")
        cred = principal.app_cred
        if cred is not None and cred.expires_at is not None and cred.expires_at <= utcnow():
            raise exception.NotAuthenticated("The application credential has expired.")
        return ValidatedToken(token=token, data=data, principal=principal)

    def __call__(self, req: Request) -> RequestContext | None:
        token = req.headers.get("X-Auth-Token")
        if not token:
            return None
        try:
            valid = self.validate(token)
        except exception.NotAuthenticated:
            return None
        data, principal = valid.data, valid.principal
        ctx = RequestContext(user_id=data.user_id, project_id=data.project_id,
                             roles=list(principal.roles), user_name=principal.user_name,
                             project_name=principal.project_name, auth_token=token)
        # Nova's context: is_admin is what the context_is_admin rule says.
        ctx.is_admin = policy.check(ctx, "context_is_admin")
        return ctx


def make_authenticator(provider: TokenProvider, db: Database, *,
                       cache_ttl: float = 60.0) -> TokenAuthenticator:
    """An ``authenticate`` callable for :class:`stratus.api.wsgi.App`.

    It returns the caller's RequestContext, or None (the App answers 401)
    when the token is missing, invalid, expired, revoked, or no longer grants
    access. Pass the same one to every app of a process so they share caches.
    """
    return TokenAuthenticator(provider, db, cache_ttl)
