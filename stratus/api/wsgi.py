"""A small WSGI toolkit for the three APIs (compute, identity, image).

An :class:`App` maps routes to handler functions ``handler(req, **params) ->
Response``; it mints or carries the request id (``x-openstack-request-id``),
authenticates the ``X-Auth-Token`` into a :class:`RequestContext`, binds that
context for the duration of the request (so every log line names the request
id) and turns exceptions into the API's error body (Nova's
``{"itemNotFound": {"code": 404, "message": ...}}`` for compute).
"""
from __future__ import annotations

import logging
import re
import time
from typing import Any, Callable, Iterable, Protocol

import orjson
from sqlalchemy.exc import DataError
from werkzeug.exceptions import (HTTPException, MethodNotAllowed, NotFound as RouteNotFound,
                                 RequestEntityTooLarge)
from werkzeug.routing import BaseConverter, Map, Rule
from werkzeug.wrappers import Request as _Request, Response

from stratus import context as ctx_mod
from stratus import exception

LOG = logging.getLogger(__name__)

# Nova's error-body keys by status (nova/api/openstack/wsgi.py Fault._fault_names).
FAULT_NAMES: dict[int, str] = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}

JSON_CONTENT_TYPE = "application/json"
# oslo.middleware sizelimit's default ([oslo_middleware] max_request_body_size).
DEFAULT_MAX_BODY_SIZE = 114688
BODY_TOO_LARGE = "Request is too large."
NUL_REFUSED = "Invalid input: NUL (0x00) characters are not allowed."
# A JSON string carries NUL only as the escape \u0000 (an odd run of backslashes
# before "u0000"; an even run is an escaped backslash followed by text).
_JSON_NUL = re.compile(rb"(\\+)u0000")


def has_nul(req: "Request") -> bool:
    """Whether the path, the query or a JSON body holds a NUL character.

    No API stores one (PostgreSQL cannot, and names exclude control
    characters), and a NUL reaching PostgreSQL in a query is an error there,
    so every API refuses them up front with a 400, on every database alike.
    """
    if "\x00" in req.path or b"%00" in req.query_string or b"\x00" in req.query_string:
        return True
    if not req.content_length and "chunked" not in req.headers.get("Transfer-Encoding", ""):
        return False
    data = req.get_data(cache=True)
    return any(len(m.group(1)) % 2 for m in _JSON_NUL.finditer(data))


class Request(_Request):
    """A werkzeug request plus what the App attaches: context, state, version."""

    context: ctx_mod.RequestContext
    state: Any = None
    api_version: tuple[int, int] = (2, 1)
    request_id: str = ""
    # The project id of a ``/v2.1/{project_id}/...`` URL (compute), else None.
    url_project_id: str | None = None

    def json_body(self) -> Any:
        """The parsed JSON body; malformed JSON is a 400 that changes nothing."""
        data = self.get_data(cache=True)
        if not data:
            raise exception.Invalid("The request body is empty or not JSON.")
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            raise exception.Invalid("Malformed request body")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status=status, headers=headers,
                    content_type=JSON_CONTENT_TYPE)


def empty_response(status: int = 204, headers: dict[str, str] | None = None) -> Response:
    resp = Response(b"", status=status, headers=headers)
    resp.headers.pop("Content-Type", None)
    return resp


def nova_fault_body(code: int, message: str) -> dict[str, Any]:
    return {FAULT_NAMES.get(code, "computeFault"): {"code": code, "message": message}}


Handler = Callable[..., Response]
FaultFormatter = Callable[[int, str], Any]
Authenticator = Callable[[Request], "ctx_mod.RequestContext | None"]


class Middleware(Protocol):
    def __call__(self, req: Request, call_next: Callable[[Request], Response]) -> Response: ...


class ProjectIdConverter(BaseConverter):
    """``<project_id:...>``: a project id in a URL, hex digits and dashes only
    (Nova's ProjectMapper regex, which keeps it apart from resource names
    such as ``servers`` or ``os-keypairs``)."""

    regex = r"[0-9a-f\-]+"


class Route:
    """``Route("GET", "/servers/<server_id>", handler, public=False)``.

    ``limit_body=False`` exempts a route from the App's request body size
    limit (image uploads, which have a cap of their own).
    """

    def __init__(self, method: str, path: str, handler: Handler, public: bool = False,
                 limit_body: bool = True) -> None:
        self.method = method
        self.path = path
        self.handler = handler
        self.public = public
        self.limit_body = limit_body


class App:
    """A WSGI application mounted under ``prefix`` (e.g. ``/compute``)."""

    def __init__(self, routes: Iterable[Route], *, state: Any = None,
                 fault_formatter: FaultFormatter = nova_fault_body,
                 authenticate: Authenticator | None = None,
                 middleware: Iterable[Middleware] = (),
                 request_id_headers: tuple[str, ...] = ("x-openstack-request-id",),
                 name: str = "api",
                 max_body_size: int | None = DEFAULT_MAX_BODY_SIZE) -> None:
        self.name = name
        self.max_body_size = max_body_size
        self.state = state
        self.fault_formatter = fault_formatter
        self.authenticate = authenticate
        self.middleware = list(middleware)
        self.request_id_headers = request_id_headers
        self._routes: dict[str, Route] = {}
        rules = []
        for i, route in enumerate(routes):
            key = f"r{i}"
            self._routes[key] = route
            rules.append(Rule(route.path, endpoint=key, methods=[route.method],
                              strict_slashes=False))
        self._map = Map(rules, merge_slashes=False,
                        converters={"project_id": ProjectIdConverter})

    # -- WSGI entry --------------------------------------------------------
    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        req = Request(environ)
        req.state = self.state
        incoming = req.headers.get("X-OpenStack-Request-ID", "")
        req.request_id = ctx_mod.generate_request_id()
        req.context = ctx_mod.RequestContext(request_id=req.request_id,
                                             global_request_id=incoming or None)
        token = req.context.bind()
        started = time.monotonic()
        try:
            resp = self._handle(req)
        finally:
            ctx_mod.reset(token)
        for header in self.request_id_headers:
            resp.headers[header] = req.request_id
        LOG.info("%s %s %s %s %.1fms", req.remote_addr, req.method, req.full_path.rstrip("?"),
                 resp.status_code, (time.monotonic() - started) * 1000.0,
                 extra={"request_id": req.request_id})
        return resp(environ, start_response)

    def _handle(self, req: Request) -> Response:
        try:
            adapter = self._map.bind_to_environ(req.environ)
            try:
                key, params = adapter.match()
            except MethodNotAllowed:
                return self.fault(405, "The method specified is not allowed for this resource.")
            except RouteNotFound:
                return self.fault(404, "The resource could not be found.")
            except HTTPException as exc:  # e.g. redirects from werkzeug
                return self.fault(exc.code or 400, exc.description or "Bad request")
            route = self._routes[key]
            if route.limit_body and self.max_body_size is not None:
                # oslo.middleware's sizelimit, before authentication: a declared
                # length past the limit is refused unread; a chunked body is
                # cut off (413) as soon as reading passes it.
                if (req.content_length or 0) > self.max_body_size:
                    return self.fault(413, BODY_TOO_LARGE)
                req.max_content_length = self.max_body_size
            if self.authenticate is not None and not route.public:
                ctx = self.authenticate(req)
                if ctx is None:
                    return self.fault(401, "The request you have made requires authentication.")
                ctx.request_id = req.request_id
                ctx.global_request_id = req.context.global_request_id
                req.context = ctx
                ctx.bind()
            if route.limit_body and has_nul(req):
                return self.fault(400, NUL_REFUSED)

            def endpoint(r: Request) -> Response:
                return route.handler(r, **params)

            call = endpoint
            for mw in reversed(self.middleware):
                call = _chain(mw, call)
            return call(req)
        except RequestEntityTooLarge:
            return self.fault(413, BODY_TOO_LARGE)
        except HTTPException as exc:  # werkzeug's, e.g. from reading a malformed body
            code = exc.code or 400
            return self.fault(code, exc.description or "Bad request")
        except DataError:
            # A value the database cannot hold (out of range, too long) that
            # validation let through: the caller's input, so a 400 (and a
            # warning, since validation should have caught it first).
            LOG.warning("Database refused a value in %s %s", req.method, req.path,
                        exc_info=True)
            return self.fault(400, "Invalid input: a value is out of range or too long "
                                   "for its field.")
        except exception.StratusException as exc:
            if exc.code >= 500:
                LOG.exception("Request failed: %s", exc)
            return self.fault(exc.code, exc.message)
        except Exception:  # noqa: BLE001 - the API must answer, in its own format
            LOG.exception("Unexpected error handling %s %s", req.method, req.path)
            return self.fault(500, "Unexpected API Error. Please report this at the Stratus "
                                   "issue tracker and attach the request id if possible.")

    def fault(self, code: int, message: str) -> Response:
        return json_response(self.fault_formatter(code, message), status=code)


def _chain(mw: Middleware, nxt: Callable[[Request], Response]) -> Callable[[Request], Response]:
    return lambda r: mw(r, nxt)


class PrefixDispatcher:
    """Routes a request to the App mounted at the longest matching prefix."""

    def __init__(self, mounts: dict[str, Callable], root: Callable | None = None) -> None:
        self.mounts = sorted(mounts.items(), key=lambda kv: -len(kv[0]))
        self.root = root

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        for prefix, app in self.mounts:
            if path == prefix or path.startswith(prefix + "/"):
                environ = dict(environ)
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
                environ["PATH_INFO"] = path[len(prefix):] or "/"
                return app(environ, start_response)
        if self.root is not None:
            return self.root(environ, start_response)
        resp = json_response(nova_fault_body(404, "The resource could not be found."), 404)
        return resp(environ, start_response)
