"""Password hashing: salted scrypt in a self-describing string.

A hash looks like ``scrypt$16384$8$1$<salt>$<key>`` (salt and key in unpadded
URL-safe base64), so the cost parameters travel with the hash and can be
raised later without invalidating stored passwords.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
DEFAULT_N = 2 ** 14
DEFAULT_R = 8
DEFAULT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
# Enough for n=2**17, r=8 (128 MiB); hashlib's default cap is 32 MiB.
_MAXMEM = 256 * 1024 * 1024


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=_MAXMEM, dklen=length)


def hash_password(password: str, *, n: int | None = None, r: int | None = None,
                  p: int | None = None) -> str:
    """Hash ``password`` with a fresh random salt (cost: DEFAULT_N/R/P unless given)."""
    n = DEFAULT_N if n is None else n
    r = DEFAULT_R if r is None else r
    p = DEFAULT_P if p is None else p
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, n, r, p, KEY_BYTES)
    return f"{SCHEME}${n}${r}${p}${_b64encode(salt)}${_b64encode(key)}"


def verify_password(password: str, password_hash: str | None) -> bool:
    """True when ``password`` matches ``password_hash`` (constant-time compare).

    A missing or malformed hash never matches.
    """
    if not password_hash:
        return False
    try:
        scheme, n, r, p, salt, key = password_hash.split("$")
        if scheme != SCHEME:
            return False
        expected = _b64decode(key)
        actual = _derive(password, _b64decode(salt), int(n), int(r), int(p), len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def burn_verify_time(password: str) -> None:
    """Spend the time of one verification (used when the user does not exist,
    so an unknown name takes as long to reject as a wrong password)."""
    verify_password(password, _dummy_hash())
