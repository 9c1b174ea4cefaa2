"""Compute API microversions (Nova's api_version_request + wsgi negotiation).

A request names its version in ``OpenStack-API-Version: compute 2.X`` (the
header may list other services too, comma-separated) or in the legacy
``X-OpenStack-Nova-API-Version: 2.X``; without either it gets the minimum,
2.1. ``latest`` means the maximum. A malformed version is a 400, one outside
[MIN_VERSION, MAX_VERSION] a 406, both in Nova's fault format. Every answer
of a versioned resource names the version it was served at, and says that it
varies with the version headers.
"""
from __future__ import annotations

import functools
import re
from typing import Callable, NamedTuple

from werkzeug.wrappers import Response

from stratus.api.wsgi import Request, json_response, nova_fault_body
from stratus import exception

MIN_VERSION = "2.1"
# Advertise only what is fully implemented (every change up to it); raise as
# features land. See NOTES.md "Compute API microversions".
MAX_VERSION = "2.75"

SERVICE_TYPE = "compute"
HEADER = "OpenStack-API-Version"
LEGACY_HEADER = "X-OpenStack-Nova-API-Version"
VARY = f"{HEADER}, {LEGACY_HEADER}"

_VERSION_RE = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")


class InvalidVersionString(exception.Invalid):
    msg_fmt = ("API Version String %(version)s is of invalid format. "
               "Must be of format MajorNum.MinorNum.")


class UnsupportedVersion(exception.StratusException):
    msg_fmt = ("Version %(req_ver)s is not supported by the API. "
               "Minimum is %(min_ver)s and maximum is %(max_ver)s.")
    code = 406


class APIVersion(NamedTuple):
    """A compute API version; a tuple, so it compares with ``(2, 47)`` too."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> "APIVersion":
        match = _VERSION_RE.match(text)
        if match is None:
            raise InvalidVersionString(version=text)
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


def min_version() -> APIVersion:
    return APIVersion.parse(MIN_VERSION)


def max_version() -> APIVersion:
    return APIVersion.parse(MAX_VERSION)


def is_supported(req: Request, minimum: str, maximum: str | None = None) -> bool:
    """True when the request's version lies in [minimum, maximum]."""
    version = tuple(req.api_version)
    if version < APIVersion.parse(minimum):
        return False
    return maximum is None or version <= APIVersion.parse(maximum)


def only_in(handler: Callable[..., Response], since: str | None = None,
            until: str | None = None) -> Callable[..., Response]:
    """``handler`` for the versions in [``since``, ``until``); outside them,
    the 404 Nova answers for a method the requested version does not have."""
    @functools.wraps(handler)
    def wrapped(req: Request, **params: str) -> Response:
        if (since is not None and not is_supported(req, since)) or \
                (until is not None and is_supported(req, until)):
            raise exception.NotFound("The resource could not be found.")
        return handler(req, **params)
    return wrapped


def _standard_header_version(value: str) -> str | None:
    """The compute entry of ``OpenStack-API-Version: compute 2.1, image 2.5``."""
    for item in value.split(","):
        parts = item.strip().split(None, 1)
        if parts and parts[0].lower() == SERVICE_TYPE:
            if len(parts) == 1:
                return ""  # "compute" with no version: malformed
            return parts[1].strip()
    return None


def requested_version_string(req: Request) -> str | None:
    """The raw version the request asks for, or None when it names none."""
    standard = req.headers.getlist(HEADER)
    if standard:
        found = _standard_header_version(",".join(standard))
        if found is not None:
            return found
    legacy = req.headers.getlist(LEGACY_HEADER)
    if legacy:
        return ",".join(v.strip() for v in legacy)
    return None


def negotiate(req: Request) -> APIVersion:
    """The version to serve ``req`` at; raises the 400/406 errors."""
    text = requested_version_string(req)
    if text is None:
        return min_version()
    if text.lower() == "latest":
        return max_version()
    version = APIVersion.parse(text)
    if not min_version() <= version <= max_version():
        # As Nova, the 406 still names the version that was asked for.
        req.api_version = version
        raise UnsupportedVersion(req_ver=str(version), min_ver=MIN_VERSION,
                                 max_ver=MAX_VERSION)
    return version


def add_version_headers(resp: Response, version: tuple[int, int]) -> Response:
    text = f"{version[0]}.{version[1]}"
    resp.headers[HEADER] = f"{SERVICE_TYPE} {text}"
    resp.headers[LEGACY_HEADER] = text
    resp.headers["Vary"] = VARY
    return resp


def middleware(req: Request, call_next: Callable[[Request], Response]) -> Response:
    """Negotiate the version, run the handler, stamp the version headers.

    Faults the handler raises are rendered here (not by the App) so that
    they carry the version headers too, as Nova's do.
    """
    try:
        req.api_version = negotiate(req)
    except UnsupportedVersion as exc:
        return add_version_headers(
            json_response(nova_fault_body(exc.code, exc.message), exc.code), req.api_version)
    except InvalidVersionString as exc:
        return json_response(nova_fault_body(exc.code, exc.message), exc.code)
    try:
        resp = call_next(req)
    except exception.StratusException as exc:
        if exc.code >= 500:
            raise  # the App logs and answers server errors
        resp = json_response(nova_fault_body(exc.code, exc.message), exc.code)
    return add_version_headers(resp, req.api_version)
