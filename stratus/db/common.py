"""Row-to-dict conversion shared by the query modules."""
from __future__ import annotations

from typing import Any

from sqlalchemy import inspect


def to_dict(obj: Any) -> dict[str, Any]:
    """The column attributes of a model instance, as a plain dict."""
    return {attr.key: getattr(obj, attr.key) for attr in inspect(obj).mapper.column_attrs}
