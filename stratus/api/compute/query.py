"""Query-string validation as Nova's ``validation.query_schema`` does it.

The query is validated as ``{name: [value, ...]}`` (webob's
``GET.dict_of_lists()``), so a schema names each parameter's values with
:func:`single_param` or :func:`multi_params`. Failures are 400s with Nova's
texts: ``Invalid input for query parameters <name>. Value: <value>. <why>``,
or jsonschema's message alone when no parameter is at fault (an unexpected
parameter under ``additionalProperties: False``).
"""
from __future__ import annotations

from typing import Any

import jsonschema

from stratus import exception
from stratus.api.wsgi import Request


def query_error(name: str, value: Any, message: str) -> exception.ValidationError:
    """Nova's 400 for one bad query parameter."""
    return exception.ValidationError(
        f"Invalid input for query parameters {name}. Value: {value}. {message}")


def multi_params(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter that may be repeated, each value matching ``schema``."""
    return {"type": "array", "items": schema}


def single_param(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter given at most once, its value matching ``schema``."""
    return {**multi_params(schema), "maxItems": 1}


def query_dict(req: Request) -> dict[str, list[str]]:
    return {key: req.args.getlist(key) for key in req.args}


def validate_query(req: Request, schema: dict[str, Any]) -> None:
    """400 (Nova's message) unless the request's query matches ``schema``."""
    validator = jsonschema.Draft4Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(query_dict(req)))
    if error is None:
        return
    names = [p for p in error.absolute_path if not isinstance(p, int)]
    if names:
        raise query_error(names[-1], error.instance, error.message)
    raise exception.ValidationError(error.message)
