"""Wire format of RPC messages, replies and notifications: JSON via orjson.

Everything a client passes as RPC arguments must be JSON-able. The encoder
also accepts, for convenience:

* ``datetime`` / ``date`` / ``time`` -> ISO 8601 strings. **Handlers receive
  strings, not datetimes**; turn them back with :func:`parse_isotime`.
* ``uuid.UUID`` -> its canonical string; ``set`` / ``frozenset`` / ``tuple``
  -> lists; ``decimal.Decimal`` -> string; objects with a ``to_dict()``
  method (e.g. :class:`stratus.context.RequestContext`, whose auth token
  stays behind) -> that dict; other dataclasses -> their fields.
* non-string dict keys (ints, ...) -> strings.

:func:`to_primitive` shows exactly what the far side will get.

Exceptions travel as a small dict (:func:`serialize_exception`) and are
rebuilt by :func:`deserialize_exception`: a :class:`StratusException` subclass
comes back as the same class with the same message and kwargs; anything else
comes back as :class:`stratus.exception.RemoteError` naming the remote class.
"""
from __future__ import annotations

import dataclasses
import datetime
import decimal
import sys
import traceback as tb_mod
from typing import Any

import orjson

from stratus import exception

# Dataclasses go through _default so a to_dict() (e.g. RequestContext's,
# which leaves the auth token out) wins over orjson's field-by-field dump.
_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS


def _default(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    if isinstance(obj, decimal.Decimal):
        return str(obj)
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise TypeError(f"Type is not JSON serializable: {type(obj).__name__}")


def dumps(obj: Any) -> bytes:
    """Encode ``obj`` as JSON bytes; raises ``TypeError`` if it cannot be."""
    try:
        return orjson.dumps(obj, default=_default, option=_OPTS)
    except orjson.JSONEncodeError as exc:
        raise TypeError(f"RPC payload is not JSON serializable: {exc}") from None


def loads(data: bytes | str) -> Any:
    """Decode JSON bytes (or str)."""
    return orjson.loads(data)


def to_primitive(obj: Any) -> Any:
    """Return ``obj`` as a handler on the far side would receive it."""
    return loads(dumps(obj))


def parse_isotime(value: str) -> datetime.datetime:
    """Parse an ISO 8601 timestamp produced by :func:`dumps` (``Z`` allowed)."""
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    return datetime.datetime.fromisoformat(value)


def utcnow_iso() -> str:
    """The current UTC time as an ISO 8601 string (for notification timestamps)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def serialize_exception(exc: BaseException) -> dict[str, Any]:
    """Describe ``exc`` for the wire: class, module, message, kwargs, traceback."""
    cls = type(exc)
    kwargs: dict[str, Any] = {}
    if isinstance(exc, exception.StratusException):
        kwargs = dict(exc.kwargs)
        try:
            dumps(kwargs)
        except TypeError:
            kwargs = {k: str(v) for k, v in kwargs.items()}
        message = exc.message
    else:
        message = str(exc)
    return {
        "class": cls.__name__,
        "module": cls.__module__,
        "message": message,
        "kwargs": kwargs,
        "traceback": "".join(tb_mod.format_exception(exc)),
    }


def _lookup_stratus_class(name: str, module: str) -> type[exception.StratusException] | None:
    """Find a StratusException subclass by name: first in ``stratus.exception``,
    then in the named ``stratus.*`` module if (and only if) it is already
    imported. Nothing is imported on behalf of the remote side."""
    candidates = [getattr(exception, name, None)]
    if module.startswith("stratus.") and module in sys.modules:
        candidates.append(getattr(sys.modules[module], name, None))
    for cls in candidates:
        if isinstance(cls, type) and issubclass(cls, exception.StratusException):
            return cls
    return None


def deserialize_exception(data: dict[str, Any]) -> Exception:
    """Rebuild the exception described by :func:`serialize_exception`."""
    name = str(data.get("class", "Exception"))
    module = str(data.get("module", ""))
    message = str(data.get("message", ""))
    kwargs = data.get("kwargs") or {}
    remote_tb = str(data.get("traceback", ""))
    cls = _lookup_stratus_class(name, module)
    if cls is None:
        return exception.RemoteError(exc_type=name, value=message, traceback=remote_tb)
    exc: exception.StratusException
    try:
        exc = cls(message, **kwargs)
    except Exception:
        try:
            exc = cls(**kwargs)
        except Exception:
            exc = cls.__new__(cls)
            Exception.__init__(exc, message)
    exc.message = message
    exc.kwargs = kwargs
    exc.remote_traceback = remote_tb  # type: ignore[attr-defined]
    return exc
