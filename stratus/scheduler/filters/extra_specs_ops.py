"""Nova's extra-spec requirement syntax: ``"<op> value"`` matched against a host value.

``= N`` (at least, numeric), ``== N``, ``!= N``, ``>= N``, ``<= N``
(numeric), ``s== s!= s< s<= s> s>=`` (string), ``<in> sub`` (substring),
``<all-in> a b`` (every word is in the value), ``<or> a <or> b`` (one of);
anything else is compared for string equality.
"""
from __future__ import annotations

import operator
from typing import Any, Callable


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[Any, Any], bool]:
    def check(value: Any, wanted: Any) -> bool:
        try:
            return compare(float(value), float(wanted))
        except (TypeError, ValueError):
            return False
    return check


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": _numeric(operator.ge),
    "==": _numeric(operator.eq),
    "!=": _numeric(operator.ne),
    ">=": _numeric(operator.ge),
    "<=": _numeric(operator.le),
    "s==": operator.eq,
    "s!=": operator.ne,
    "s<": operator.lt,
    "s<=": operator.le,
    "s>": operator.gt,
    "s>=": operator.ge,
    "<in>": lambda value, wanted: wanted in value,
    "<all-in>": lambda value, wanted: all(word in value for word in wanted),
}


def match(value: str | None, requirement: str) -> bool:
    words = requirement.split()
    op = words.pop(0) if words else None
    if op != "<or>" and op not in _OPS:
        return value == requirement
    if value is None:
        return False
    if op == "<or>":
        # "<or> v1 <or> v2 <or> v3": every other word is a candidate value.
        return value in words[0::2]
    if not words:
        return False
    return _OPS[op](value, words if op == "<all-in>" else words[0])
