"""Small helpers shared by every service."""
from __future__ import annotations

import datetime
import uuid


def utcnow() -> datetime.datetime:
    """Naive UTC now, the form every timestamp is stored in (as Nova does)."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def isotime(value: datetime.datetime | None) -> str | None:
    """``2026-11-24T18:01:05Z``: the form the Compute API shows times in."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def isotime_us(value: datetime.datetime | None) -> str | None:
    """``2026-11-24T18:01:05.000000``: instance-action and fault timestamps."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")


def parse_isotime(value: str) -> datetime.datetime:
    """Parse an ISO 8601 time (with Z or an offset) into naive UTC."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.datetime.fromisoformat(text)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return parsed


def new_uuid() -> str:
    return str(uuid.uuid4())


def is_uuid_like(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except (TypeError, ValueError):
        return False
    return True
