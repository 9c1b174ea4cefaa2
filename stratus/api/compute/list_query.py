"""Query parameters of the paged history lists: instance actions (2.58) and
migrations (2.59).

From those versions Nova validates the query with a strict schema
(``additionalProperties: false``, each paging parameter given once):
``limit`` (a non-negative integer, capped at [api] max_limit), ``marker``
(the last item seen; unknown: a 400 ``Marker ... could not be found.``),
``changes-since`` (ISO 8601; items updated at or after it) and, from 2.66,
``changes-before`` (items updated at or before it; not before
``changes-since``). The server list takes the time window too
(:func:`check_window`).
"""
from __future__ import annotations

import datetime
from typing import Any, Callable, Sequence

from stratus import exception
from stratus.api.compute import microversion
from stratus.api.compute.query import (multi_params, query_error, single_param,
                                        validate_query)
from stratus.api.wsgi import Request
from stratus.utils import parse_isotime

PAGING_PARAMS = ("limit", "marker", "changes-since")
CHANGES_BEFORE_VERSION = "2.66"


def paging_params(req: Request) -> tuple[str, ...]:
    """The paging parameters at the request's version (changes-before from 2.66)."""
    if microversion.is_supported(req, CHANGES_BEFORE_VERSION):
        return PAGING_PARAMS + ("changes-before",)
    return PAGING_PARAMS


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


def parse_time(name: str, raw: str) -> datetime.datetime:
    """An ISO 8601 query value as naive UTC; a 400 naming ``name`` otherwise."""
    try:
        return parse_isotime(raw)
    except ValueError:
        raise query_error(name, raw, f"{raw!r} is not a 'date-time'")


def check_window(since: datetime.datetime | None, before: datetime.datetime | None) -> None:
    """Nova's 400 when ``changes-since`` is after ``changes-before``."""
    if since is not None and before is not None and since > before:
        raise exception.Invalid("The value of changes-since must be less than or equal to "
                                "changes-before.")


def changes_window(req: Request) -> tuple[datetime.datetime | None, datetime.datetime | None]:
    """(``changes-since``, ``changes-before``) as naive UTC, None when absent
    (changes-before only from 2.66); a 400 when one is not an ISO 8601 time
    or the window is empty."""
    raw_since = req.args.get("changes-since")
    since = None if raw_since is None else parse_time("changes-since", raw_since)
    raw_before = req.args.get("changes-before")
    before = None
    if raw_before is not None and microversion.is_supported(req, CHANGES_BEFORE_VERSION):
        before = parse_time("changes-before", raw_before)
    check_window(since, before)
    return since, before


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


def updated_within(items: list[dict[str, Any]], since: datetime.datetime | None,
                   before: datetime.datetime | None = None,
                   field: str = "updated_at") -> list[dict[str, Any]]:
    """The items whose ``field`` (a datetime or ISO string) is at or after
    ``since`` and at or before ``before`` (Nova compares ``updated_at``; a
    null never matches either bound)."""
    if since is None and before is None:
        return items
    kept = []
    for item in items:
        updated = _as_datetime(item.get(field))
        if updated is None or (since is not None and updated < since) or \
                (before is not None and updated > before):
            continue
        kept.append(item)
    return kept


def _as_datetime(value: Any) -> datetime.datetime | None:
    if value is None or isinstance(value, datetime.datetime):
        return value
    return datetime.datetime.fromisoformat(str(value))
