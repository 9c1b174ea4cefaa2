"""Request-body JSON schemas of the compute API, and Nova's parameter types.

The schemas are Nova's (``nova/api/validation/parameter_types.py`` and
``nova/api/openstack/compute/schemas/``) at microversion 2.1, checked with
:func:`stratus.api.compute.common.validate`. That validator knows only the
standard JSON-schema formats, so the three checks Nova adds to jsonschema
(the ``name`` and ``base64`` formats, and ``minimum`` on numeric strings such
as ``"min_count": "0"``) are done by the ``check_*`` functions here, with
Nova's messages; a schema module calls them after ``validate``.
"""
from __future__ import annotations

import binascii
import base64
import functools
import unicodedata
from typing import Any

from stratus import exception
from stratus.api.compute.parameter_types import boolean, bool_from_string, metadata

__all__ = [
    "boolean", "bool_from_string", "metadata", "positive_integer", "name",
    "image_id_or_empty_string", "admin_password", "flavor_ref", "ip_address",
    "accessIPv4", "accessIPv6", "disk_config", "personality",
    "is_valid_name", "check_name", "check_base64", "check_minimum",
]

# Nova builds its name regex from the Basic Multilingual Plane only
# (``range(0xFFFF)``), so characters outside it (emoji, say) are invalid.
_BMP_LIMIT = 0xFFFF
NAME_REASON = "printable characters. Can not start or end with whitespace."

# -- parameter types (nova/api/validation/parameter_types.py) ----------------
# (boolean and metadata are shared with the other resources, from
# stratus.api.compute.parameter_types.)

positive_integer: dict[str, Any] = {
    "type": ["integer", "string"],
    "pattern": "^[0-9]*$", "minimum": 1, "minLength": 1,
}

# ``format: name`` is checked by check_name (printable, no leading/trailing space).
name: dict[str, Any] = {
    "type": "string", "minLength": 1, "maxLength": 255, "format": "name",
}

image_id_or_empty_string: dict[str, Any] = {
    "oneOf": [
        {"type": "string", "format": "uuid"},
        {"type": "string", "maxLength": 0},
    ],
}

admin_password: dict[str, Any] = {"type": "string"}

flavor_ref: dict[str, Any] = {"type": ["string", "integer"], "minLength": 1}

ip_address: dict[str, Any] = {
    "type": "string",
    "oneOf": [{"format": "ipv4"}, {"format": "ipv6"}],
}

accessIPv4: dict[str, Any] = {"type": "string", "format": "ipv4"}  # noqa: N816 - Nova's name
accessIPv6: dict[str, Any] = {"type": "string", "format": "ipv6"}  # noqa: N816

disk_config: dict[str, Any] = {"type": "string", "enum": ["AUTO", "MANUAL"]}

# ``format: base64`` is checked by check_base64.
personality: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "path": {"type": "string"},
            "contents": {"type": "string", "format": "base64"},
        },
        "additionalProperties": False,
    },
}


# -- the checks Nova registers with jsonschema ---------------------------------

def _field_error(field: str, value: Any, message: str) -> exception.ValidationError:
    return exception.ValidationError(
        f"Invalid input for field/attribute {field}. Value: {value}. {message}")


@functools.lru_cache(maxsize=4096)
def _printable(char: str) -> bool:
    """Nova's _is_printable: not a control/format char, no space but 'Zs'."""
    if ord(char) >= _BMP_LIMIT:
        return False
    category = unicodedata.category(char)
    return not category.startswith("C") and (not category.startswith("Z") or category == "Zs")


def _printable_not_space(char: str) -> bool:
    return _printable(char) and unicodedata.category(char) != "Zs"


def is_valid_name(value: str) -> bool:
    """Nova's ``valid_name_regex``: printable characters, not starting or
    ending with whitespace (the empty string is left to ``minLength``)."""
    if not value:
        return True
    if not (_printable_not_space(value[0]) and _printable_not_space(value[-1])):
        return False
    return all(_printable(c) for c in value)


def check_name(value: Any) -> None:
    """Raise Nova's InvalidName message for a name that fails ``format: name``."""
    if isinstance(value, str) and not is_valid_name(value):
        raise exception.ValidationError(
            f"An invalid 'name' value was provided. The name must be: {NAME_REASON}")


# Nova's parameter_types.description: printable characters (spaces included,
# control and format characters not), at most 255 of them, or null.
description: dict[str, Any] = {"type": ["string", "null"], "minLength": 0, "maxLength": 255}


def check_description(value: Any) -> None:
    """The ``pattern`` of Nova's description: no control or format characters."""
    if isinstance(value, str) and any(unicodedata.category(ch)[0] == "C" for ch in value):
        raise _field_error("description", value,
                           f"{value!r} does not match the printable characters pattern")


def check_base64(field: str, value: Any) -> None:
    """``format: base64`` as Nova checks it (``base64.decodebytes``: padding
    must be right; characters outside the alphabet are skipped)."""
    if not isinstance(value, str):
        return
    try:
        base64.decodebytes(value.encode("utf-8"))
    except (binascii.Error, ValueError):
        raise _field_error(field, value, f"{value!r} is not a 'base64'")


def check_minimum(field: str, value: Any, minimum: int) -> None:
    """Nova also applies ``minimum`` to numeric strings (``"min_count": "0"``)."""
    if isinstance(value, str) and value.isdigit() and int(value) < minimum:
        raise _field_error(field, value, f"{int(value)} is less than the minimum of {minimum}")
