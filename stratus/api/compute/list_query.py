"""Query parameters of the paged history lists: instance actions (2.58) and
migrations (2.59).

From those versions Nova validates the query with a strict schema
(``additionalProperties: false``, each paging parameter given once):
``limit`` (a non-negative integer, capped at [api] max_limit), ``marker``
(the last item seen; unknown: a 400 ``Marker ... could not be found.``) and
``changes-since`` (ISO 8601; items updated at or after it).
"""
from __future__ import annotations

import datetime
from typing import Any, Callable, Sequence

from stratus import exception
from stratus.api.compute.query import (multi_params, query_error, single_param,
                                        validate_query)
from stratus.api.wsgi import Request
from stratus.utils import parse_isotime

PAGING_PARAMS = ("limit", "marker", "changes-since")


def check_strict(req: Request, allowed: Sequence[str],
                 single: Sequence[str] = PAGING_PARAMS) -> None:
    """Nova's ``additionalProperties: false`` query schema: a 400 for a
    parameter not in ``allowed``, or one of ``single`` given more than once."""
    validate_query(req, {
        "type": "object",
        "properties": {name: single_param({}) if name in single else multi_params({})
                       for name in allowed},
        "additionalProperties": False,
    })


def changes_since(req: Request) -> datetime.datetime | None:
    """``changes-since`` as naive UTC, None when absent; a 400 when it is not
    an ISO 8601 time."""
    raw = req.args.get("changes-since")
    if raw is None:
        return None
    try:
        return parse_isotime(raw)
    except ValueError:
        raise query_error("changes-since", raw, f"{raw!r} is not a 'date-time'")


def after_marker(items: list[dict[str, Any]], marker: str | None,
                 key: Callable[[dict[str, Any]], str]) -> list[dict[str, Any]]:
    """The items after the one whose ``key`` is ``marker`` (all without a
    marker); a 400 when no item has it."""
    if marker is None:
        return items
    for index, item in enumerate(items):
        if key(item) == marker:
            return items[index + 1:]
    raise exception.Invalid(f"Marker {marker} could not be found.")


def updated_since(items: list[dict[str, Any]], since: datetime.datetime | None,
                  field: str = "updated_at") -> list[dict[str, Any]]:
    """The items whose ``field`` (a datetime or ISO string) is at or after
    ``since`` (Nova compares ``updated_at >= changes-since``; a null never
    matches)."""
    if since is None:
        return items
    return [i for i in items if _as_datetime(i.get(field)) is not None
            and _as_datetime(i.get(field)) >= since]  # type: ignore[operator]


def _as_datetime(value: Any) -> datetime.datetime | None:
    if value is None or isinstance(value, datetime.datetime):
        return value
    return datetime.datetime.fromisoformat(str(value))
