"""The Image v2 WSGI app, mounted at ``/image``: Glance's wire format.

Routes: version discovery (``/``, ``/versions``), ``/v2/images`` (list,
create), ``/v2/images/{id}`` (show, JSON-patch update, delete),
``/v2/images/{id}/file`` (streamed upload and download, with byte ranges),
``/v2/images/{id}/actions/(de|re)activate``, ``/v2/images/{id}/tags/{tag}``,
``/v2/images/{id}/members[/{member}]`` (sharing) and the JSON schemas
(``image(s)``, ``member(s)``). Uploads past ``[image] max_image_size`` are a 413, and so
are creates and uploads past the owner's image quotas. Links in bodies are
relative to the endpoint (``/v2/images/{id}``), as Glance's are.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator
from urllib.parse import urlencode

import orjson
from werkzeug.wrappers import Response

from stratus import exception
from stratus.api import wsgi
from stratus.api.wsgi import Request, Route, empty_response, json_response
from stratus.db.session import Database
from stratus.image import schemas, views
from stratus.image.service import (IN_FILTERS, SORT_DIRS, SORT_KEYS, ImageNoData,
                                   ImageService, ImageTooLarge, ListQuery, PatchOp,
                                   parse_time_filter)
from stratus.image.store import FileStore

PATCH_MEDIA_TYPES = ("application/openstack-images-v2.1-json-patch",
                     "application/openstack-images-v2.0-json-patch")
UPLOAD_MEDIA_TYPE = "application/octet-stream"
DEFAULT_LIMIT = 25
READ_CHUNK = 1024 * 1024
# Query parameters that are not filters on extra properties.
_RESERVED_PARAMS = frozenset(("limit", "marker", "sort", "sort_key", "sort_dir", "visibility",
                              "owner", "protected", "os_hidden", "size_min", "size_max",
                              "created_at", "updated_at", "tag", "member_status",
                              *IN_FILTERS))


class UnsupportedMediaType(exception.StratusException):
    msg_fmt = "Unsupported Content-Type"
    code = 415


class RangeNotSatisfiable(exception.StratusException):
    msg_fmt = "Requested range not satisfiable"
    code = 416


class ImageAPI:
    """Request handlers; ``routes()`` lists them for :class:`wsgi.App`."""

    def __init__(self, service: ImageService, public_url: str, max_limit: int) -> None:
        self.service = service
        self.image_url = public_url.rstrip("/") + "/image"
        self.max_limit = max_limit

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/", self.versions, public=True),
            Route("GET", "/versions", self.versions_explicit, public=True),
            Route("GET", "/v2/schemas/image", self.image_schema),
            Route("GET", "/v2/schemas/images", self.images_schema),
            Route("GET", "/v2/schemas/member", self.member_schema),
            Route("GET", "/v2/schemas/members", self.members_schema),
            Route("GET", "/v2/images", self.list_images),
            Route("POST", "/v2/images", self.create_image),
            Route("GET", "/v2/images/<image_id>", self.show_image),
            Route("PATCH", "/v2/images/<image_id>", self.update_image),
            Route("DELETE", "/v2/images/<image_id>", self.delete_image),
            # Image data is bounded by [image] max_image_size, not the body limit.
            Route("PUT", "/v2/images/<image_id>/file", self.upload_data, limit_body=False),
            Route("GET", "/v2/images/<image_id>/file", self.download_data),
            Route("POST", "/v2/images/<image_id>/actions/deactivate", self.deactivate),
            Route("POST", "/v2/images/<image_id>/actions/reactivate", self.reactivate),
            Route("PUT", "/v2/images/<image_id>/tags/<tag>", self.add_tag),
            Route("DELETE", "/v2/images/<image_id>/tags/<tag>", self.remove_tag),
            Route("GET", "/v2/images/<image_id>/members", self.list_members),
            Route("POST", "/v2/images/<image_id>/members", self.add_member),
            Route("GET", "/v2/images/<image_id>/members/<member_id>", self.show_member),
            Route("PUT", "/v2/images/<image_id>/members/<member_id>", self.update_member),
            Route("DELETE", "/v2/images/<image_id>/members/<member_id>", self.delete_member),
        ]

    # -- discovery and schemas ----------------------------------------------
    def versions(self, req: Request) -> Response:
        return json_response(views.versions_body(self.image_url), status=300)

    def versions_explicit(self, req: Request) -> Response:
        return json_response(views.versions_body(self.image_url))

    def image_schema(self, req: Request) -> Response:
        return json_response(schemas.image_schema())

    def images_schema(self, req: Request) -> Response:
        return json_response(schemas.images_schema())

    def member_schema(self, req: Request) -> Response:
        return json_response(schemas.member_schema())

    def members_schema(self, req: Request) -> Response:
        return json_response(schemas.members_schema())

    # -- members ----------------------------------------------------------------
    def list_members(self, req: Request, image_id: str) -> Response:
        members = self.service.list_members(req.context, image_id)
        return json_response({"members": [views.member_view(m) for m in members],
                              "schema": "/v2/schemas/members"})

    def add_member(self, req: Request, image_id: str) -> Response:
        body = req.json_body()
        if not isinstance(body, dict) or "member" not in body:
            raise exception.Invalid("Member to be added not specified")
        member = self.service.add_member(req.context, image_id, body["member"])
        return json_response(views.member_view(member))

    def show_member(self, req: Request, image_id: str, member_id: str) -> Response:
        member = self.service.get_member(req.context, image_id, member_id)
        return json_response(views.member_view(member))

    def update_member(self, req: Request, image_id: str, member_id: str) -> Response:
        body = req.json_body()
        if not isinstance(body, dict) or "status" not in body:
            raise exception.Invalid("Status not specified")
        member = self.service.update_member(req.context, image_id, member_id,
                                            body["status"])
        return json_response(views.member_view(member))

    def delete_member(self, req: Request, image_id: str, member_id: str) -> Response:
        self.service.delete_member(req.context, image_id, member_id)
        return empty_response(204)

    # -- images ---------------------------------------------------------------
    def list_images(self, req: Request) -> Response:
        query = parse_list_query(req.args, self.max_limit)
        records = self.service.list_images(req.context, query)
        params = [(k, v) for k, v in req.args.items(multi=True) if k != "marker"]
        body: dict[str, Any] = {"images": [views.image_view(r) for r in records],
                                "schema": "/v2/schemas/images",
                                "first": "/v2/images" + (f"?{urlencode(params)}" if params
                                                         else "")}
        if records and len(records) == query.limit:
            body["next"] = "/v2/images?" + urlencode(params + [("marker", records[-1]["id"])])
        return json_response(body)

    def create_image(self, req: Request) -> Response:
        values = req.json_body()
        if not isinstance(values, dict):
            raise exception.Invalid("Request body must be a JSON object.")
        record = self.service.create(req.context, values)
        return json_response(views.image_view(record), status=201,
                             headers={"Location": f"{self.image_url}/v2/images/{record['id']}"})

    def show_image(self, req: Request, image_id: str) -> Response:
        return json_response(views.image_view(self.service.show(req.context, image_id)))

    def update_image(self, req: Request, image_id: str) -> Response:
        media_type = (req.mimetype or "").lower()
        if media_type not in PATCH_MEDIA_TYPES:
            raise UnsupportedMediaType(
                f"Unsupported Content-Type {req.mimetype or 'None'}; use "
                f"{PATCH_MEDIA_TYPES[0]}")
        try:
            body = orjson.loads(req.get_data(cache=True) or b"null")
        except orjson.JSONDecodeError:
            raise exception.Invalid("Malformed JSON in request body.")
        changes = parse_patch(body, v20=media_type == PATCH_MEDIA_TYPES[1])
        record = self.service.update(req.context, image_id, changes)
        return json_response(views.image_view(record))

    def delete_image(self, req: Request, image_id: str) -> Response:
        self.service.delete(req.context, image_id)
        return empty_response(204)

    def deactivate(self, req: Request, image_id: str) -> Response:
        self.service.set_active(req.context, image_id, active=False)
        return empty_response(204)

    def reactivate(self, req: Request, image_id: str) -> Response:
        self.service.set_active(req.context, image_id, active=True)
        return empty_response(204)

    def add_tag(self, req: Request, image_id: str, tag: str) -> Response:
        self.service.set_tag(req.context, image_id, tag, present=True)
        return empty_response(204)

    def remove_tag(self, req: Request, image_id: str, tag: str) -> Response:
        self.service.set_tag(req.context, image_id, tag, present=False)
        return empty_response(204)

    # -- data -----------------------------------------------------------------
    def upload_data(self, req: Request, image_id: str) -> Response:
        if (req.mimetype or "").lower() != UPLOAD_MEDIA_TYPE:
            raise UnsupportedMediaType(f"Unsupported Content-Type {req.mimetype or 'None'}; "
                                       f"use {UPLOAD_MEDIA_TYPE}")
        limit = self.service.max_image_size
        if limit is not None and req.content_length is not None \
                and req.content_length > limit:
            raise ImageTooLarge()
        # req.stream honours Content-Length, and reads chunked bodies (which
        # the server de-chunks and marks wsgi.input_terminated) to the end.
        self.service.upload(req.context, image_id, _read_chunks(req.stream.read),
                            size_hint=req.content_length)
        return empty_response(204)

    def download_data(self, req: Request, image_id: str) -> Response:
        record = self.service.show(req.context, image_id)
        size = record["size"] or 0
        start, length, status = 0, size, 200
        headers = {"Content-Type": UPLOAD_MEDIA_TYPE}
        if req.range is not None and record["status"] == "active":
            bounds = req.range.range_for_length(size) if len(req.range.ranges) == 1 else None
            if bounds is None:
                raise RangeNotSatisfiable()
            start, stop = bounds
            length, status = stop - start, 206
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        elif record["checksum"]:
            headers["Content-MD5"] = record["checksum"]
        try:
            _record, chunks = self.service.open_data(req.context, image_id, start,
                                                     length if status == 206 else None)
        except ImageNoData:
            return empty_response(204)
        headers["Content-Length"] = str(length)
        return Response(chunks, status=status, headers=headers, direct_passthrough=True)


def _read_chunks(read: Callable[[int], bytes]) -> Iterator[bytes]:
    while True:
        chunk = read(READ_CHUNK)
        if not chunk:
            return
        yield chunk


# -- request parsing --------------------------------------------------------------

def _bool_param(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise exception.Invalid(f"Invalid value '{raw}' for parameter '{name}': expected a "
                            f"boolean.")


BIGINT_MAX = 2 ** 63 - 1  # a BigInteger column's largest value (image sizes)


def _int_param(name: str, raw: str, minimum: int = 0, maximum: int | None = BIGINT_MAX) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise exception.Invalid(f"{name} param must be an integer")
    if value < minimum:
        raise exception.Invalid(f"{name} param must be positive")
    if maximum is not None and value > maximum:
        raise exception.Invalid(f"{name} param must be at most {maximum}")
    return value


def _in_values(raw: str) -> list[str]:
    if raw.startswith("in:"):
        return [v.strip().strip('"') for v in raw[3:].split(",") if v.strip()]
    return [raw]


def parse_sort(args: Any) -> list[tuple[str, str]]:
    """``sort=name:asc,created_at`` or repeated ``sort_key``/``sort_dir`` (not both)."""
    if "sort" in args and ("sort_key" in args or "sort_dir" in args):
        raise exception.Invalid("The 'sort' parameter cannot be combined with 'sort_key' "
                                "or 'sort_dir'.")
    pairs: list[tuple[str, str]] = []
    if "sort" in args:
        for item in args["sort"].split(","):
            key, _, direction = item.strip().partition(":")
            pairs.append((key.strip(), (direction or "desc").strip().lower()))
    else:
        keys = args.getlist("sort_key") or ["created_at"]
        dirs = [d.lower() for d in args.getlist("sort_dir")]
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise exception.Invalid("Number of sort dirs does not match the number of sort "
                                    "keys")
        for i, key in enumerate(keys):
            pairs.append((key, dirs[i] if len(dirs) > 1 else (dirs[0] if dirs else "desc")))
    for key, direction in pairs:
        if key not in SORT_KEYS:
            raise exception.Invalid(f"Invalid sort key: {key}. It must be one of the "
                                    f"following: {', '.join(SORT_KEYS)}.")
        if direction not in SORT_DIRS:
            raise exception.Invalid(f"Invalid sort direction: {direction}")
    return pairs


def parse_list_query(args: Any, max_limit: int) -> ListQuery:
    """The ListQuery of ``GET /v2/images``'s query string."""
    limit = (_int_param("limit", args["limit"], maximum=None) if "limit" in args
             else DEFAULT_LIMIT)
    query = ListQuery(limit=min(limit, max_limit), marker=args.get("marker"),
                      sort=parse_sort(args))
    if "visibility" in args:
        if args["visibility"] not in (*schemas.VISIBILITIES, "all"):
            raise exception.Invalid(f"Invalid visibility value: {args['visibility']}")
        query.visibility = args["visibility"]
    query.ids = _in_values(args["id"]) if "id" in args else None
    query.name = _in_values(args["name"]) if "name" in args else None
    query.status = _in_values(args["status"]) if "status" in args else None
    query.disk_format = _in_values(args["disk_format"]) if "disk_format" in args else None
    query.container_format = (_in_values(args["container_format"])
                              if "container_format" in args else None)
    query.owner = args.get("owner")
    if "protected" in args:
        query.protected = _bool_param("protected", args["protected"])
    if "os_hidden" in args:
        query.os_hidden = _bool_param("os_hidden", args["os_hidden"])
    if "size_min" in args:
        query.size_min = _int_param("size_min", args["size_min"])
    if "size_max" in args:
        query.size_max = _int_param("size_max", args["size_max"])
    query.created_at = [parse_time_filter(v) for v in args.getlist("created_at")]
    query.updated_at = [parse_time_filter(v) for v in args.getlist("updated_at")]
    query.tags = args.getlist("tag")
    if "member_status" in args:
        if args["member_status"] not in ("pending", "accepted", "rejected", "all"):
            raise exception.Invalid(f"Invalid status value: {args['member_status']}")
        query.member_status = args["member_status"]
    query.properties = {k: v for k, v in args.items() if k not in _RESERVED_PARAMS}
    return query


def _unescape_path(path: Any) -> str:
    """The attribute a one-level JSON pointer (``/name``, ``/a~1b``) names."""
    if not isinstance(path, str) or not path.startswith("/") or "/" in path[1:] \
            or len(path) < 2:
        raise exception.Invalid(f"Invalid JSON pointer for this resource: '{path}'")
    return path[1:].replace("~1", "/").replace("~0", "~")


def parse_patch(body: Any, v20: bool = False) -> list[PatchOp]:
    """The changes of a JSON-patch body (v2.1 ``{"op", "path", "value"}`` or the v2.0
    ``{"replace": "/path", "value"}`` form)."""
    if not isinstance(body, list):
        raise exception.Invalid("Request body must be a JSON array of operation objects.")
    changes = []
    for item in body:
        if not isinstance(item, dict):
            raise exception.Invalid("Operations must be JSON objects.")
        if v20:
            ops = [k for k in ("add", "replace", "remove") if k in item]
            if len(ops) != 1:
                raise exception.Invalid("Operation objects must contain exactly one of "
                                        "\"add\", \"remove\", or \"replace\".")
            op, path = ops[0], item[ops[0]]
        else:
            op, path = item.get("op"), item.get("path")
        if op not in ("add", "replace", "remove"):
            raise exception.Invalid(f"Invalid operation: `{op}`.")
        if op != "remove" and "value" not in item:
            raise exception.Invalid(f"Operation \"{op}\" requires a member named \"value\".")
        changes.append(PatchOp(op=op, name=_unescape_path(path), value=item.get("value")))
    return changes


def build_image_app(conf: Any, db: Database, store: FileStore,
                    authenticate: wsgi.Authenticator) -> wsgi.App:
    """The Image v2 app (mount it at ``/image``)."""
    service = ImageService.from_conf(conf, db, store)
    api = ImageAPI(service, conf.api.public_url, conf.api.max_limit)
    return wsgi.App(api.routes(), fault_formatter=views.glance_fault_body,
                    authenticate=authenticate, name="image",
                    max_body_size=conf.api.max_request_body_size)
