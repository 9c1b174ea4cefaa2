"""``/v2.1/images`` and ``/v2.1/images/{id}/metadata``: Nova's image proxy.

Nova 2.1 still proxies the Image service: list (``/images``, ``/images/detail``),
show and delete, and the image's extra properties as ``metadata``. Every call
goes through :class:`~stratus.image.service.ImageService` with the caller's
context, so Glance's visibility and ownership rules apply unchanged (an image
the project may not see is a 404, one it may not modify a 403).

Views follow nova/api/openstack/compute/views/images.py: ``minRam``,
``minDisk``, ``metadata``, ``status`` (ACTIVE, SAVING, DELETED, ERROR,
UNKNOWN), ``progress``, ``created``/``updated``, ``OS-EXT-IMG-SIZE:size``,
``links`` (self, bookmark, and ``alternate`` to the image service) and
``server`` for snapshots (an ``instance_uuid`` property).
"""
from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from stratus import exception
from stratus.api.compute import common, microversion
from stratus.api.compute.parameter_types import bool_from_string
from stratus.api.compute.query import query_error
from stratus.api.compute.schemas import servers as schema
from stratus.api.wsgi import Request, Route, empty_response, json_response
from stratus.image.service import ImageService, ListQuery, PatchOp, parse_time_filter
from stratus.image.store import FileStore
from stratus.utils import isotime

# Nova's views/images.py status and progress maps.
_STATUS = {"active": "ACTIVE", "queued": "SAVING", "saving": "SAVING",
           "deleted": "DELETED", "pending_delete": "DELETED", "killed": "ERROR"}
_PROGRESS = {"queued": 25, "saving": 50, "active": 100}
METADATA_ITEMS_QUOTA = 128  # Nova's default metadata_items quota
ITEM_NOT_FOUND = "Invalid metadata key"
_services: dict[int, ImageService] = {}
# Nova's MIN_WITHOUT_PROXY_API_SUPPORT_VERSION: the image proxy answers 404
# from 2.36; its image-metadata part only from 2.39
# (MIN_WITHOUT_IMAGE_META_PROXY_API_VERSION).
PROXY_REMOVED_VERSION = "2.36"
IMAGE_META_PROXY_REMOVED_VERSION = "2.39"


def routes() -> list[Route]:
    meta = "/v2.1/images/<image_id>/metadata"
    images = PROXY_REMOVED_VERSION
    metas = IMAGE_META_PROXY_REMOVED_VERSION
    only_in = microversion.only_in
    return [
        Route("GET", "/v2.1/images", only_in(index, until=images)),
        Route("GET", "/v2.1/images/detail", only_in(detail, until=images)),
        Route("GET", "/v2.1/images/<image_id>", only_in(show, until=images)),
        Route("DELETE", "/v2.1/images/<image_id>", only_in(delete, until=images)),
        Route("GET", meta, only_in(metadata_index, until=metas)),
        Route("POST", meta, only_in(metadata_create, until=metas)),
        Route("PUT", meta, only_in(metadata_update_all, until=metas)),
        Route("GET", meta + "/<key>", only_in(metadata_show, until=metas)),
        Route("PUT", meta + "/<key>", only_in(metadata_update, until=metas)),
        Route("DELETE", meta + "/<key>", only_in(metadata_delete, until=metas)),
    ]


def image_service(req: Request) -> ImageService:
    """The ImageService the compute API boots from (so both see the same rules)."""
    state = req.state
    service = getattr(state, "images", None)
    if isinstance(service, ImageService):
        return service
    bound = getattr(getattr(state.compute_api, "image_get", None), "__self__", None)
    if isinstance(bound, ImageService):
        return bound
    key = id(state)
    if key not in _services:
        _services[key] = ImageService.from_conf(state.conf, state.db,
                                                FileStore(state.conf.image.store_dir))
    return _services[key]


# -- views ------------------------------------------------------------------------

def _links(req: Request, image_id: str) -> list[dict[str, str]]:
    links = common.resource_links(req, "images", image_id)
    links.append({"rel": "alternate", "type": "application/vnd.openstack.image",
                  "href": f"{req.state.conf.api.public_url}/image/images/{image_id}"})
    return links


def basic_view(req: Request, record: dict[str, Any]) -> dict[str, Any]:
    return {"id": record["id"], "name": record["name"], "links": _links(req, record["id"])}


def detail_view(req: Request, record: dict[str, Any]) -> dict[str, Any]:
    properties = dict(record.get("properties") or {})
    view: dict[str, Any] = {
        "id": record["id"],
        "name": record["name"],
        "minRam": int(record.get("min_ram") or 0),
        "minDisk": int(record.get("min_disk") or 0),
        "metadata": properties,
        "created": isotime(record["created_at"]),
        "updated": isotime(record["updated_at"] or record["created_at"]),
        "status": _STATUS.get(record["status"], "UNKNOWN"),
        "progress": _PROGRESS.get(record["status"], 0),
        "OS-EXT-IMG-SIZE:size": record.get("size"),
        "links": _links(req, record["id"]),
    }
    instance_uuid = properties.get("instance_uuid")
    if instance_uuid is not None:
        view["server"] = {"id": instance_uuid,
                          "links": common.resource_links(req, "servers", instance_uuid)}
    auto_disk_config = properties.get("auto_disk_config")
    if auto_disk_config is not None:
        try:
            view["OS-DCF:diskConfig"] = "AUTO" if bool_from_string(auto_disk_config) \
                else "MANUAL"
        except ValueError:
            pass
    return view


# -- images -----------------------------------------------------------------------

def _list_query(req: Request) -> ListQuery:
    """Nova's image filters: name, status, changes-since, server, type, minRam, minDisk,
    and ``property-<name>``."""
    limit, marker = common.limit_and_marker(req)
    query = ListQuery(limit=limit, marker=marker)
    args = req.args
    if "name" in args:
        query.name = [args["name"]]
    if "status" in args:
        query.status = [args["status"].lower()]
    if "changes-since" in args:
        try:
            query.updated_at = [("gte", parse_time_filter(args["changes-since"])[1])]
        except exception.Invalid:
            raise query_error("changes-since", args["changes-since"],
                              "It is not a valid date-time")
    if "server" in args:
        query.properties["instance_uuid"] = args["server"].rstrip("/").rsplit("/", 1)[-1]
    if "type" in args:
        query.properties["image_type"] = args["type"]
    for key, value in args.items():
        if key.startswith("property-") and len(key) > len("property-"):
            query.properties[key[len("property-"):]] = value
    query.min_ram = common.query_int(req, "minRam")
    query.min_disk = common.query_int(req, "minDisk")
    return query


def _list(req: Request, view: Any) -> Response:
    query = _list_query(req)
    records = image_service(req).list_images(req.context, query)
    images = [view(req, r) for r in records]
    body: dict[str, Any] = {"images": images}
    links = common.next_link(req, "images" if view is basic_view else "images/detail",
                             images, query.limit)
    if links:
        body["images_links"] = links
    return json_response(body)


def index(req: Request) -> Response:
    return _list(req, basic_view)


def detail(req: Request) -> Response:
    return _list(req, detail_view)


def _show(req: Request, image_id: str) -> dict[str, Any]:
    try:
        return image_service(req).show(req.context, image_id)
    except exception.ImageNotFound:
        raise exception.NotFound("Image not found.")


def show(req: Request, image_id: str) -> Response:
    return json_response({"image": detail_view(req, _show(req, image_id))})


def delete(req: Request, image_id: str) -> Response:
    try:
        image_service(req).delete(req.context, image_id)
    except exception.ImageNotFound:
        raise exception.NotFound("Image not found.")
    except exception.Forbidden:
        raise exception.Forbidden("You are not allowed to delete the image.")
    return empty_response(204)


# -- metadata ---------------------------------------------------------------------

def _properties(req: Request, image_id: str) -> dict[str, Any]:
    return dict(_show(req, image_id).get("properties") or {})


def _save(req: Request, image_id: str, current: dict[str, Any],
          wanted: dict[str, Any]) -> dict[str, Any]:
    """Make the image's properties ``wanted`` (as Nova's purge_props update)."""
    if len(wanted) > METADATA_ITEMS_QUOTA:
        raise exception.Forbidden("Quota exceeded for metadata_items: Requested "
                                  f"{len(wanted)}, but already used 0 of "
                                  f"{METADATA_ITEMS_QUOTA} metadata_items")
    changes = [PatchOp(op="remove", name=k) for k in current if k not in wanted]
    changes += [PatchOp(op="add", name=k, value=v) for k, v in wanted.items()
                if current.get(k) != v]
    if not changes:
        return current
    try:
        record = image_service(req).update(req.context, image_id, changes)
    except exception.ImageNotFound:
        raise exception.NotFound("Image not found.")
    return dict(record.get("properties") or {})


def metadata_index(req: Request, image_id: str) -> Response:
    return json_response({"metadata": _properties(req, image_id)})


def metadata_show(req: Request, image_id: str, key: str) -> Response:
    metadata = _properties(req, image_id)
    if key not in metadata:
        raise exception.NotFound(ITEM_NOT_FOUND)
    return json_response({"meta": {key: metadata[key]}})


def metadata_create(req: Request, image_id: str) -> Response:
    """Merge the given items into the image's properties (200, all of them)."""
    body = req.json_body()
    schema.validate_metadata_set(body)
    current = _properties(req, image_id)
    metadata = _save(req, image_id, current, {**current, **body["metadata"]})
    return json_response({"metadata": metadata})


def metadata_update_all(req: Request, image_id: str) -> Response:
    """Replace every property with the given items (200, the given items)."""
    body = req.json_body()
    schema.validate_metadata_set(body)
    current = _properties(req, image_id)
    _save(req, image_id, current, dict(body["metadata"]))
    return json_response({"metadata": body["metadata"]})


def metadata_update(req: Request, image_id: str, key: str) -> Response:
    body = req.json_body()
    schema.validate_metadata_item(body)
    item = body["meta"]
    if key not in item:
        raise exception.Invalid("Request body and URI mismatch")
    current = _properties(req, image_id)
    _save(req, image_id, current, {**current, **item})
    return json_response({"meta": item})


def metadata_delete(req: Request, image_id: str, key: str) -> Response:
    current = _properties(req, image_id)
    if key not in current:
        raise exception.NotFound(ITEM_NOT_FOUND)
    _save(req, image_id, current, {k: v for k, v in current.items() if k != key})
    return empty_response(204)
