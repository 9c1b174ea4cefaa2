"""Fernet tokens: unforgeable, expiring, validated without a database lookup.

A token is the Fernet encryption (AES-128-CBC + HMAC-SHA256, from
``cryptography``) of a compact JSON list: payload version, user id, scope (a
project id, ``["d", domain id]`` or null), authentication methods (a bit
mask), audit id, parent audit id, expiry time, the user's and the scope's
token generations at issue, and (application credential tokens only) the
application credential id; the issue time is Fernet's own timestamp. A
project-scoped password token is under 255 characters, as Keystone's are (a
rescoped one, carrying a parent audit id, or an application credential one a
little longer). Any process holding the key file can decrypt one in about 20
microseconds; version 1 payloads (no generations, project scope only) are
still accepted.

Token generations (``users.token_generation``, ``projects`` and ``domains``
likewise) are bumped by a password change or disabling the user (project,
domain); a token whose generations differ from the current ones is dead, with
no clock involved (see stratus.identity.auth).

The key file holds one URL-safe base64 Fernet key per line: the first one
signs new tokens, every one validates (so keys can be rotated by prepending a
new key and later dropping the old). It is created, mode 0600, on first use.

Revocation (``DELETE /v3/auth/tokens``) records the token's audit id in
``revoked_tokens`` and bumps the identity change counter in the same
transaction (:mod:`stratus.identity.changes`). Validation checks a
per-process copy of the revoked set that is reloaded whenever the counter
moved, so a revocation made by any process applies to the next request
everywhere.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import os
import secrets
import struct
import tempfile
import threading
import time
from typing import Any, Callable, Sequence

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from stratus import exception
from stratus.db.models import RevokedToken
from stratus.db.session import Database
from stratus.identity import changes

PAYLOAD_VERSION = 2
# Authentication methods a token can carry, as bits of its payload.
METHOD_BITS: dict[str, int] = {"password": 1, "token": 2, "application_credential": 4}


@dataclasses.dataclass(frozen=True)
class TokenData:
    """What a token asserts. Times are naive UTC, to the second."""

    user_id: str
    project_id: str | None
    methods: tuple[str, ...]
    audit_id: str
    issued_at: datetime.datetime
    expires_at: datetime.datetime
    parent_audit_id: str | None = None
    domain_id: str | None = None          # domain scope (project_id is None then)
    user_generation: int = 0
    scope_generation: int = 0
    app_cred_id: str | None = None

    @property
    def audit_ids(self) -> list[str]:
        """Keystone's ``audit_ids``: this token's id, then its parent's."""
        return [self.audit_id] + ([self.parent_audit_id] if self.parent_audit_id else [])

    @property
    def is_scoped(self) -> bool:
        return self.project_id is not None or self.domain_id is not None


def _to_datetime(epoch: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).replace(tzinfo=None)


def _to_epoch(value: datetime.datetime) -> int:
    return int(value.replace(tzinfo=datetime.timezone.utc).timestamp())


def _methods_to_bits(methods: Sequence[str]) -> int:
    try:
        return sum(METHOD_BITS[m] for m in dict.fromkeys(methods))
    except KeyError as exc:
        raise ValueError(f"authentication method {exc} cannot be put in a token")


def _bits_to_methods(bits: int) -> tuple[str, ...]:
    if not isinstance(bits, int) or bits <= 0 or bits >= 1 << len(METHOD_BITS):
        raise ValueError("invalid methods")
    return tuple(m for m, bit in METHOD_BITS.items() if bits & bit)


def new_audit_id() -> str:
    """22 URL-safe characters, as Keystone's audit ids."""
    return secrets.token_urlsafe(16)


def load_or_create_keys(key_file: str) -> list[bytes]:
    """The Fernet keys of ``key_file``, creating it (0600) with one new key if missing.

    Creation is atomic (write a temporary file, then hard-link it into place),
    so API processes starting together agree on one key.
    """
    if not os.path.exists(key_file):
        directory = os.path.dirname(os.path.abspath(key_file))
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".fernet-", dir=directory)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, Fernet.generate_key() + b"\n")
            os.fsync(fd)
            os.close(fd)
            try:
                os.link(tmp, key_file)
            except FileExistsError:
                pass  # another process won the race; use its key
        finally:
            os.unlink(tmp)
    with open(key_file, "rb") as f:
        keys = [line.strip() for line in f if line.strip()]
    if not keys:
        raise exception.ConfigError(reason=f"[identity] key_file {key_file} holds no key")
    for key in keys:
        try:
            Fernet(key)
        except (ValueError, binascii.Error):
            raise exception.ConfigError(
                reason=f"[identity] key_file {key_file} holds an invalid Fernet key")
    return keys


class TokenProvider:
    """Issues and validates tokens; optionally backed by the revocation table.

    ``db`` may be None for a provider that neither revokes nor checks
    revocations (tests, tools). ``clock`` returns epoch seconds.
    ``revocation_cache_ttl`` is accepted for compatibility and ignored: the
    revoked set is reloaded when the identity change counter moves.
    """

    def __init__(self, key_file: str, db: Database | None = None, *,
                 expiration: int = 3600, revocation_cache_ttl: float = 2.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.key_file = key_file
        self.db = db
        self.expiration = expiration
        self.revocation_cache_ttl = revocation_cache_ttl
        self.clock = clock
        self._fernet = MultiFernet([Fernet(k) for k in load_or_create_keys(key_file)])
        self.changes = changes.ChangeCounter(db) if db is not None else None
        self._revoked: frozenset[str] = frozenset()
        self._revoked_generation: int | None = None
        self._revoked_lock = threading.Lock()

    @classmethod
    def from_conf(cls, conf: Any, db: Database | None) -> "TokenProvider":
        """A provider using ``[identity] key_file`` and ``token_expiration``."""
        return cls(conf.identity.key_file, db, expiration=conf.identity.token_expiration)

    # -- issue / validate ----------------------------------------------------
    def issue(self, user_id: str, project_id: str | None, methods: Sequence[str], *,
              expires_at: datetime.datetime | None = None,
              parent_audit_id: str | None = None, domain_id: str | None = None,
              user_generation: int = 0, scope_generation: int = 0,
              app_cred_id: str | None = None) -> tuple[str, TokenData]:
        """A new token and what it asserts.

        ``expires_at`` defaults to now + expiration; a rescoped token passes
        its parent's expiry and audit id. A token is scoped to a project or
        a domain, not both.
        """
        if project_id is not None and domain_id is not None:
            raise ValueError("a token is scoped to a project or a domain, not both")
        now = int(self.clock())
        expires = _to_epoch(expires_at) if expires_at is not None else now + self.expiration
        bits = _methods_to_bits(methods)
        data = TokenData(user_id=user_id, project_id=project_id, methods=_bits_to_methods(bits),
                         audit_id=new_audit_id(), issued_at=_to_datetime(now),
                         expires_at=_to_datetime(expires), parent_audit_id=parent_audit_id,
                         domain_id=domain_id, user_generation=user_generation,
                         scope_generation=scope_generation, app_cred_id=app_cred_id)
        scope: Any = project_id if domain_id is None else ["d", domain_id]
        payload = [PAYLOAD_VERSION, user_id, scope, bits, data.audit_id,
                   parent_audit_id, expires, user_generation, scope_generation]
        if app_cred_id is not None:
            payload.append(app_cred_id)
        raw = self._fernet.encrypt_at_time(orjson.dumps(payload), now)
        # Fernet tokens are URL-safe base64; drop the padding as Keystone does.
        return raw.rstrip(b"=").decode("ascii"), data

    def decode(self, token: str) -> TokenData:
        """What ``token`` asserts if it is authentic and unexpired (revocation not checked)."""
        if not token or len(token) > 4096:
            raise exception.NotAuthenticated("The token is malformed.")
        try:
            padded = token.encode("ascii") + b"=" * (-len(token) % 4)
            plain = self._fernet.decrypt(padded)
            payload = orjson.loads(plain)
            version = payload[0]
            user_gen = scope_gen = 0
            app_cred_id = domain_id = None
            if version == 1:
                _v, user_id, project_id, bits, audit_id, parent_audit_id, expires = payload
            elif version == 2:
                (_v, user_id, scope, bits, audit_id, parent_audit_id, expires, user_gen,
                 scope_gen, *rest) = payload
                if rest:
                    (app_cred_id,) = rest
                if isinstance(scope, list):
                    kind, domain_id = scope
                    if kind != "d":
                        raise ValueError("unknown scope")
                    project_id = None
                else:
                    project_id = scope
            else:
                raise ValueError("unknown payload version")
            # Fernet's timestamp: bytes 1-8, i.e. within the first 12 characters.
            issued = struct.unpack(">Q", base64.urlsafe_b64decode(padded[:12])[1:9])[0]
            data = TokenData(user_id=user_id, project_id=project_id,
                             methods=_bits_to_methods(bits), audit_id=audit_id,
                             issued_at=_to_datetime(issued), expires_at=_to_datetime(expires),
                             parent_audit_id=parent_audit_id, domain_id=domain_id,
                             user_generation=int(user_gen), scope_generation=int(scope_gen),
                             app_cred_id=app_cred_id)
        except (InvalidToken, UnicodeError, ValueError, KeyError, TypeError,
                binascii.Error, struct.error, orjson.JSONDecodeError):
            raise exception.NotAuthenticated("The token is invalid.")
        if expires <= self.clock():
            raise exception.NotAuthenticated("The token has expired.")
        return data

    def validate(self, token: str, generation: int | None = None) -> TokenData:
        """What ``token`` asserts; NotAuthenticated if invalid, expired or revoked.

        Only the token itself is checked here; whether its user, scope and
        roles still hold is :class:`stratus.identity.auth.TokenAuthenticator`'s.
        """
        data = self.decode(token)
        if self.is_revoked(data, generation):
            raise exception.NotAuthenticated("The token has been revoked.")
        return data

    # -- revocation ----------------------------------------------------------
    def is_revoked(self, data: TokenData, generation: int | None = None) -> bool:
        """True if the token or the token it was rescoped from was revoked.

        ``generation`` is the change counter the caller read for this request
        (read here if not given).
        """
        revoked = self._revoked_set(generation)
        return data.audit_id in revoked or (data.parent_audit_id or "") in revoked

    def revoke(self, data: TokenData) -> None:
        """Revoke one token (by audit id); applies at once in this process."""
        if self.db is None:
            raise exception.ConfigError(reason="token revocation needs a database")
        now = _to_datetime(int(self.clock()))
        for attempt in range(2):
            try:
                with self.db.write() as s:
                    # Purge revocations of tokens that have expired anyway.
                    s.execute(delete(RevokedToken).where(RevokedToken.expires_at <= now))
                    if s.get(RevokedToken, data.audit_id) is None:
                        s.add(RevokedToken(audit_id=data.audit_id,
                                           expires_at=data.expires_at))
                        s.flush()
                    changes.bump(s)
                break
            except IntegrityError:  # revoked concurrently: try once more
                if attempt:
                    raise
        with self._revoked_lock:
            self._revoked = self._revoked | {data.audit_id}

    def _revoked_set(self, generation: int | None = None) -> frozenset[str]:
        if self.db is None or self.changes is None:
            return self._revoked
        if generation is None:
            generation = self.changes.current()
        if generation == self._revoked_generation:
            return self._revoked
        with self._revoked_lock:
            if generation != self._revoked_generation:
                # Loaded after the counter was read: at least as new as it.
                cutoff = _to_datetime(int(self.clock()))
                with self.db.read() as s:
                    ids = s.scalars(select(RevokedToken.audit_id)
                                    .where(RevokedToken.expires_at > cutoff)).all()
                self._revoked = frozenset(ids)
                self._revoked_generation = generation
        return self._revoked

