"""Queries for key pairs; each belongs to one user and is named uniquely per user."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from stratus import exception, quota
from stratus.db import quotas as db_quotas
from stratus.db.common import to_dict
from stratus.db.models import KeyPair
from stratus.db.session import Database


class KeyPairExists(exception.Conflict):
    msg_fmt = "Key pair '%(key_name)s' already exists."


KeypairLimitExceeded = quota.KeypairLimitExceeded


def keypair_create(db: Database, *, user_id: str, name: str, public_key: str,
                   fingerprint: str, key_type: str = "ssh",
                   max_per_user: int | None = None) -> dict[str, Any]:
    """Store a key pair; the per-user limit (the key_pairs quota) is checked
    in the same transaction, which holds the user's quota lock.

    Raises KeyPairExists (409) or KeypairLimitExceeded (403).
    """
    try:
        with db_quotas.locked_write(db, db_quotas.user_lock(user_id)) as s:
            taken = s.scalar(select(KeyPair.id).where(KeyPair.user_id == user_id,
                                                      KeyPair.name == name))
            if taken is not None:
                raise KeyPairExists(key_name=name)
            if max_per_user is not None:
                quota.check_key_pairs(max_per_user, db_quotas.count_key_pairs(s, user_id))
            keypair = KeyPair(user_id=user_id, name=name, public_key=public_key,
                              fingerprint=fingerprint, type=key_type)
            s.add(keypair)
            s.flush()
            return to_dict(keypair)
    except IntegrityError:
        raise KeyPairExists(key_name=name)  # a concurrent create won the race


def keypair_get(db: Database, user_id: str, name: str) -> dict[str, Any]:
    with db.read() as s:
        keypair = s.scalars(select(KeyPair).where(KeyPair.user_id == user_id,
                                                  KeyPair.name == name)).one_or_none()
        if keypair is None:
            raise exception.KeypairNotFound(name=name, user_id=user_id)
        return to_dict(keypair)


def keypair_get_all(db: Database, user_id: str, limit: int | None = None,
                    marker: str | None = None) -> list[dict[str, Any]]:
    """The user's key pairs, by name; a page of them after the key pair named
    ``marker`` (Nova's MarkerNotFound, a 400, when the user has none so named)."""
    with db.read() as s:
        q = select(KeyPair).where(KeyPair.user_id == user_id).order_by(KeyPair.name,
                                                                       KeyPair.id)
        if marker is not None:
            found = s.scalar(select(KeyPair.id).where(KeyPair.user_id == user_id,
                                                      KeyPair.name == marker))
            if found is None:
                raise exception.Invalid(f"Marker {marker} could not be found.")
            q = q.where(KeyPair.name > marker)
        if limit is not None:
            q = q.limit(limit)
        return [to_dict(k) for k in s.scalars(q)]


def keypair_count(db: Database, user_id: str) -> int:
    with db.read() as s:
        return db_quotas.count_key_pairs(s, user_id)


def keypair_destroy(db: Database, user_id: str, name: str) -> None:
    with db.write() as s:
        keypair = s.scalars(select(KeyPair).where(KeyPair.user_id == user_id,
                                                  KeyPair.name == name)).one_or_none()
        if keypair is None:
            raise exception.KeypairNotFound(name=name, user_id=user_id)
        s.delete(keypair)
