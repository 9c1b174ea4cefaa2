"""JSON-schema fragments shared by request bodies (nova/api/validation/parameter_types.py).

Nova's ``name`` type (printable, no leading or trailing whitespace) lives in
:mod:`stratus.api.compute.schemas` with its ``check_name``.
"""
from __future__ import annotations

from typing import Any

MAX_INT = 0x7FFFFFFF  # nova/db/constants.py MAX_INT
SQL_SP_FLOAT_MAX = 3.40282e+38
SQL_INT_MAX = 2 ** 31 - 1  # Nova's db.constants.SQL_INT_MAX: an Integer column's largest


boolean: dict[str, Any] = {
    "type": ["boolean", "string"],
    "enum": [True, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes",
             False, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no"],
}

hostname: dict[str, Any] = {
    "type": "string", "minLength": 1, "maxLength": 255,
    "pattern": "^[a-zA-Z0-9-._]*$",
}

positive_integer_param: dict[str, Any] = {
    "type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 1, "maximum": MAX_INT,
}

non_negative_integer_param: dict[str, Any] = {
    "type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 0, "maximum": MAX_INT,
}

metadata: dict[str, Any] = {
    "type": "object",
    "patternProperties": {
        "^[a-zA-Z0-9-_:. ]{1,255}$": {"type": "string", "maxLength": 255},
    },
    "additionalProperties": False,
}

_TRUE_STRINGS = {"1", "t", "true", "on", "y", "yes"}
_FALSE_STRINGS = {"0", "f", "false", "off", "n", "no"}


def bool_from_string(value: Any) -> bool:
    """oslo strutils.bool_from_string(strict=True); ValueError otherwise."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE_STRINGS:
        return True
    if text in _FALSE_STRINGS:
        return False
    raise ValueError(f"Unrecognized value {value!r}")

