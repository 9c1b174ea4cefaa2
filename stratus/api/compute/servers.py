"""``/v2.1/servers``: list, detail, create, show, update, delete (as Nova's
``nova/api/openstack/compute/servers.py``), up to microversion 2.19: ip6 is a
filter non-admins may use from 2.5; a ``description`` is taken on create and
update from 2.19; create takes device tags again from 2.42, server ``tags``
from 2.52, no ``personality`` from 2.57, ``trusted_image_certificates``
from 2.63 and ``host`` / ``hypervisor_hostname`` from 2.74; from 2.75 the
list's query is strict (unknown parameters are 400s) and PUT answers the
whole server, as GET (the schemas in schemas/servers.py, the views' changes
in views/servers.py)."""
from __future__ import annotations

import dataclasses
import secrets
from typing import Any

import regex
from werkzeug.wrappers import Response

from stratus import exception
from stratus.api.compute import common, microversion
from stratus.api.compute.list_query import check_window, parse_time
from stratus.api.compute.query import query_error, validate_query
from stratus.api.compute.schemas import bool_from_string
from stratus.api.compute.schemas import servers as schema
from stratus.api.compute.views.servers import (TAGS_VERSION, ServerViewBuilder,
                                               add_server_groups, id_from_href)
from stratus.api.wsgi import Request, Route, empty_response, json_response
from stratus.compute import scheduling, vm_states
from stratus.utils import is_uuid_like

# Nova's utils.generate_password: 12 characters, no look-alikes, one of each group.
PASSWORD_LENGTH = 12
PASSWORD_SYMBOL_GROUPS = ("23456789", "ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz")
_BOOL_TRUE = ("1", "t", "true", "on", "y", "yes")
_BOOL_FALSE = ("0", "f", "false", "off", "n", "no")
SORT_DIRS = ("asc", "desc")
POLICY_INDEX = "os_compute_api:servers:index"
POLICY_DETAIL = "os_compute_api:servers:detail"
POLICY_INDEX_ALL_TENANTS = "os_compute_api:servers:index:get_all_tenants"
POLICY_DETAIL_ALL_TENANTS = "os_compute_api:servers:detail:get_all_tenants"
POLICY_ALL_FILTERS = "os_compute_api:servers:allow_all_filters"
POLICY_CREATE = "os_compute_api:servers:create"
POLICY_SHOW = "os_compute_api:servers:show"
POLICY_UPDATE = "os_compute_api:servers:update"
POLICY_DELETE = "os_compute_api:servers:delete"
# Nova's REQUESTED_DESTINATION (its name has no os_compute_api prefix).
POLICY_REQUESTED_DESTINATION = "compute:servers:create:requested_destination"
# 2.26: filter by tags (comma-separated lists), non-admins too.
TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")
INVALID_STATUS_REJECTED_VERSION = "2.38"  # before it, an unknown status lists nothing
UNSUPPORTED_BDM = ("Block Device Mapping is Invalid: only the image as the local boot disk "
                   "(source_type image, destination_type local, boot_index 0) is supported.")
# Nova's CertificateValidationFailed for a boot from volume with trusted certificates (2.63).
CERTS_WITH_VOLUME_BOOT = ("Image certificate validation is not supported when booting "
                          "from volume")


def routes() -> list[Route]:
    return [
        Route("GET", "/v2.1/servers", index),
        Route("GET", "/v2.1/servers/detail", detail),
        Route("POST", "/v2.1/servers", create),
        Route("GET", "/v2.1/servers/<server_id>", show),
        Route("PUT", "/v2.1/servers/<server_id>", update),
        Route("DELETE", "/v2.1/servers/<server_id>", delete),
    ]


def check_server_id(server_id: str) -> None:
    """Nova answers 404 for an id that is not a UUID, without a lookup."""
    if not is_uuid_like(server_id):
        raise exception.InstanceNotFound(instance_id=server_id)


def generate_password(length: int = PASSWORD_LENGTH) -> str:
    chars = [secrets.choice(group) for group in PASSWORD_SYMBOL_GROUPS]
    alphabet = "".join(PASSWORD_SYMBOL_GROUPS)
    chars += [secrets.choice(alphabet) for _ in range(length - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


# -- list ------------------------------------------------------------------------

@dataclasses.dataclass
class ListQuery:
    """What ``GET /servers`` asks ComputeAPI.get_all for; ``empty`` when Nova
    answers an empty list without looking (an unknown status)."""

    filters: dict[str, Any]
    limit: int
    marker: str | None
    sort_keys: list[str]
    sort_dirs: list[str]
    empty: bool = False


def _last(req: Request, key: str) -> str:
    """The last value of a repeated query parameter (webob's ``GET[key]``)."""
    return req.args.getlist(key)[-1]


def _parse_all_tenants(raw: str) -> bool:
    """Nova's is_all_tenants: present and empty means yes; else a strict boolean."""
    if raw == "":
        return True
    return _parse_bool(raw, prefix="Invalid input received: ")


def _parse_bool(raw: str, prefix: str = "") -> bool:
    """oslo's bool_from_string(strict=True), its error a 400 (InvalidInput
    made from the ValueError's text: Nova's is_locked, 2.73)."""
    value = raw.strip().lower()
    if value in _BOOL_TRUE:
        return True
    if value in _BOOL_FALSE:
        return False
    acceptable = ", ".join(f"'{v}'" for v in sorted(_BOOL_TRUE + _BOOL_FALSE))
    raise exception.Invalid(f"{prefix}Unrecognized value '{raw}', "
                            f"acceptable values are: {acceptable}")


def _check_regex(name: str, value: str) -> None:
    """Nova's ``format: regex`` on pattern-matched filters (a non-empty regex)."""
    try:
        valid = bool(value) and regex.compile(value) is not None
    except regex.error:
        valid = False
    if not valid:
        raise query_error(name, value, f"{value!r} is not a 'regex'")


def _sort_params(req: Request, is_admin: bool, version: tuple[int, int] = (2, 1)
                 ) -> tuple[list[str], list[str]]:
    """Nova's get_sort_params + remove_invalid_sort_keys + the DB's
    process_sort_params: keys default to created_at, directions to desc,
    missing directions take the first one. From 2.73 ``locked`` sorts."""
    ignored = (schema.SORT_KEYS_IGNORED_V273 if version >= schema.LOCKED_FILTER_VERSION
               else schema.SORT_KEYS_IGNORED)
    keys = [k.strip() for k in req.args.getlist("sort_key")]
    dirs = [d.strip() for d in req.args.getlist("sort_dir")]
    for key in keys:
        if key not in schema.SORT_KEYS:
            raise query_error("sort_key", key, f"{key!r} is not one of {schema.SORT_KEYS!r}")
    kept_keys: list[str] = []
    kept_dirs: list[str] = []
    for index, key in enumerate(keys):
        dropped = key in ignored or key in schema.SORT_KEYS_ABSENT
        if not dropped and key in schema.SORT_KEYS_ADMIN_ONLY and not is_admin:
            raise exception.Forbidden(f"Only administrators can sort servers by {key}")
        if dropped:
            continue
        kept_keys.append(key)
        if index < len(dirs):
            kept_dirs.append(dirs[index])
    # Directions given beyond the keys (e.g. sort_dir alone) still count.
    kept_dirs += dirs[len(keys):]
    for direction in kept_dirs:
        if direction not in SORT_DIRS:
            raise exception.Invalid("Invalid input received: Unknown sort direction, "
                                    "must be 'desc' or 'asc'")
    if not kept_keys:
        kept_keys = ["created_at"]
    default_dir = kept_dirs[0] if kept_dirs else "desc"
    if len(kept_dirs) > len(kept_keys):
        raise exception.Invalid("Invalid input received: Sort direction size exceeds "
                                "sort key size")
    kept_dirs += [default_dir] * (len(kept_keys) - len(kept_dirs))
    if "created_at" not in kept_keys:
        kept_keys.append("created_at")
        kept_dirs.append(default_dir)
    return kept_keys, kept_dirs


def list_query(req: Request, is_detail: bool) -> ListQuery:
    """Nova's ServersController._get_servers, up to the compute API call."""
    ctx = req.context
    is_admin = bool(ctx.is_admin)
    names = [k for k in req.args.keys() if k not in ("sort_key", "sort_dir", "limit", "marker")]
    tag_filters = microversion.is_supported(req, TAGS_VERSION)
    version = tuple(req.api_version)
    if version < schema.CHANGES_BEFORE_VERSION:
        names = [k for k in names if k != "changes-before"]  # unknown before 2.66: dropped
    if version < schema.LOCKED_FILTER_VERSION:
        names = [k for k in names if k != "locked"]  # unknown before 2.73: dropped
    if not common.can(req, POLICY_ALL_FILTERS):
        allowed = (schema.USER_FILTERS_V273 if version >= schema.LOCKED_FILTER_VERSION
                   else schema.USER_FILTERS_V266 if version >= schema.CHANGES_BEFORE_VERSION
                   else schema.USER_FILTERS_V25 if version >= schema.IP6_FILTER_VERSION
                   else schema.USER_FILTERS)
        names = [k for k in names if k in allowed or (tag_filters and k in TAG_FILTERS)]
    else:
        for key in names:
            if key in schema.JOINED_TABLE_FILTERS or key.startswith("_"):
                raise exception.Invalid(f"Invalid filter field: {key}.")
    opts = {k: _last(req, k) for k in names}

    limit, marker = common.limit_and_marker(req)
    sort_keys, sort_dirs = _sort_params(req, is_admin, version)
    filters: dict[str, Any] = {}
    query = ListQuery(filters, limit, marker, sort_keys, sort_dirs)

    if "status" in opts:
        statuses = [s.strip().upper() for s in req.args.getlist("status")]
        known = [s for s in statuses if vm_states.states_from_status(s)]
        if not known:
            if microversion.is_supported(req, INVALID_STATUS_REJECTED_VERSION):
                raise exception.Invalid("Invalid status value")
            query.empty = True  # Nova < 2.38: unknown status, empty list
            return query
        if known == ["DELETED"] and not is_admin:
            raise exception.Forbidden("Only administrators may list deleted instances")
        filters["status"] = known[0] if len(known) == 1 else known

    # changes-since, and from 2.66 changes-before: a time window that also
    # lists deleted servers (Nova's polling filters).
    for key in ("changes-since", "changes-before"):
        if key in opts:
            filters[key] = parse_time(key, opts[key])
    check_window(filters.get("changes-since"), filters.get("changes-before"))

    if "locked" in opts:  # 2.73 (dropped before): Nova's is_locked, a strict boolean
        filters["locked"] = _parse_bool(opts["locked"])

    all_tenants = _parse_all_tenants(opts["all_tenants"]) if "all_tenants" in opts else False
    if all_tenants:
        # Nova: a caller the policy does not allow gets 403 (not its own list).
        common.authorize(req, POLICY_DETAIL_ALL_TENANTS if is_detail
                         else POLICY_INDEX_ALL_TENANTS)
        filters["all_tenants"] = True
        project = opts.get("project_id") or opts.get("tenant_id")
        if project:
            filters["project_id"] = project
    # Without all_tenants Nova lists the caller's project whatever project_id says.

    if "name" in opts:
        _check_regex("name", opts["name"])
    for key in ("name", "image", "flavor", "reservation_id", "ip", "ip6", "host", "node"):
        if opts.get(key):
            filters[key] = id_from_href(opts[key]) if key in ("image", "flavor") else opts[key]
    if tag_filters:
        for key in TAG_FILTERS:
            if key in opts:
                filters[key] = opts[key].split(",")
    return query


def _list(req: Request, is_detail: bool) -> Response:
    # 2.75: Nova's query_params_v275 (unknown parameters and the sort keys it
    # only dropped before are 400s), checked before the policy, as Nova's
    # query_schema decorator does.
    if tuple(req.api_version) >= schema.STRICT_LIST_QUERY_VERSION:
        validate_query(req, schema.list_query_v275)
    common.authorize(req, POLICY_DETAIL if is_detail else POLICY_INDEX)
    query = list_query(req, is_detail)
    if query.empty or query.limit == 0:
        return json_response({"servers": []})
    instances = req.state.compute_api.get_all(
        req.context, filters=query.filters, limit=query.limit, marker=query.marker,
        sort_keys=query.sort_keys, sort_dirs=query.sort_dirs)
    view = ServerViewBuilder.for_request(req)
    body: dict[str, Any] = {"servers": view.detail(instances) if is_detail
                            else view.index(instances)}
    links = common.next_link(req, "servers/detail" if is_detail else "servers", instances,
                             query.limit, marker_key="uuid")
    if links:
        body["servers_links"] = links
    return json_response(body)


def index(req: Request) -> Response:
    return _list(req, is_detail=False)


def detail(req: Request) -> Response:
    return _list(req, is_detail=True)


# -- create ------------------------------------------------------------------------

def _check_networks(networks: Any) -> None:
    """Nova 2.1's _get_requested_networks checks (the networks are not used yet)."""
    if isinstance(networks, str):
        return
    for network in networks:
        port = network.get("port")
        if port:
            if network.get("fixed_ip") is not None:
                raise exception.Invalid(
                    f"Specified Fixed IP '{network['fixed_ip']}' cannot be used with port "
                    f"'{port}': the two cannot be specified together.")
            continue
        if "uuid" not in network:
            raise exception.Invalid("Bad network format: missing 'uuid'")
        net_id = network["uuid"]
        if not (is_uuid_like(net_id) or is_uuid_like(net_id.split("-", 1)[-1])):
            raise exception.Invalid(
                f"Bad networks format: network uuid is not in proper format ({net_id})")


def _is_local_boot_image(mapping: dict[str, Any]) -> bool:
    """A v2 mapping that only says "boot the image as the local root disk"
    (what openstackclient sends with ``--image``)."""
    return (mapping.get("source_type") == "image"
            and mapping.get("destination_type", "local") == "local"
            and str(mapping.get("boot_index")) == "0")


def boot_image_ref(server: dict[str, Any]) -> str:
    """The image to boot: imageRef, else the image of a local boot mapping.

    Volume-backed boots come with the volume service; until then a mapping
    that asks for a volume, a snapshot, a blank or a second image disk is a
    400, not a server built without it.
    """
    image_ref = server.get("imageRef") or ""
    if server.get("block_device_mapping"):
        raise exception.Invalid(UNSUPPORTED_BDM)
    for mapping in server.get("block_device_mapping_v2") or ():
        if mapping.get("volume_type") and mapping.get("destination_type", "local") == "local":
            raise exception.Invalid("Specifying a volume_type with destination_type=local "
                                    "is not supported.")  # 2.67, Nova's message
        if not _is_local_boot_image(mapping):
            raise exception.Invalid(UNSUPPORTED_BDM)
        image_ref = image_ref or mapping.get("uuid") or mapping.get("image_id") or ""
    if not image_ref:
        raise exception.Invalid("Missing imageRef attribute")
    return image_ref


def trusted_certs_at_create(server: dict[str, Any], version: tuple[int, int]
                            ) -> list[str] | None:
    """2.63's trusted_image_certificates (None when not given or null). Nova
    refuses them for a boot from volume (no imageRef), before anything else."""
    if not schema.at_least(version, schema.TRUSTED_CERTS_VERSION):
        return None
    certs = server.get("trusted_image_certificates")
    if certs and not server.get("imageRef"):
        raise exception.Invalid(CERTS_WITH_VOLUME_BOOT)
    return list(certs) if certs else None


def requested_destination_at_create(req: Request, server: dict[str, Any],
                                    version: tuple[int, int], target: dict[str, Any]
                                    ) -> tuple[str | None, str | None]:
    """2.74's ``host`` / ``hypervisor_hostname`` (Nova's
    ``_process_hosts_for_create``): the caller must pass the
    requested_destination rule, and may not also force a host or node in
    ``availability_zone``."""
    if not schema.at_least(version, schema.HOST_AT_CREATE_VERSION):
        return None, None
    host, node = server.get("host"), server.get("hypervisor_hostname")
    if host or node:
        common.authorize(req, POLICY_REQUESTED_DESTINATION, target)
        _, forced_host, forced_node = scheduling.parse_availability_zone(
            server.get("availability_zone"))
        if forced_host or forced_node:
            raise exception.Invalid(
                "One mechanism with host and/or hypervisor_hostname and another "
                "mechanism with zone:host:node are mutually exclusive.")
    return host or None, node or None


def create(req: Request) -> Response:
    body = req.json_body()
    version = tuple(req.api_version)
    schema.validate_create(body, version)
    server = body["server"]
    target = {"project_id": req.context.project_id, "user_id": req.context.user_id,
              "availability_zone": server.get("availability_zone")}
    common.authorize(req, POLICY_CREATE, target)
    tags = server.get("tags") if schema.at_least(version, schema.TAGS_AT_CREATE_VERSION) \
        else None
    trusted_certs = trusted_certs_at_create(server, version)
    requested_host, requested_node = requested_destination_at_create(req, server, version,
                                                                     target)
    image_ref = boot_image_ref(server)
    if "networks" in server:
        _check_networks(server["networks"])
    min_count = int(server.get("min_count", 1))
    max_count = int(server.get("max_count", min_count))
    if min_count > max_count:
        raise exception.Invalid("min_count must be <= max_count")
    password = server["adminPass"] if "adminPass" in server else generate_password()
    name = server["name"]
    try:
        instances, reservation_id = req.state.compute_api.create(
            req.context,
            name=name,
            flavor_id=id_from_href(str(server["flavorRef"])),
            image_ref=image_ref,
            metadata=server.get("metadata", {}),
            key_name=server.get("key_name"),
            availability_zone=server.get("availability_zone"),
            user_data=server.get("user_data"),
            min_count=min_count,
            max_count=max_count,
            # Before 2.19 Nova stores the name as the description; from 2.19
            # the description is the caller's (None when not given).
            description=(server.get("description") if version >= schema.DESCRIPTION_VERSION
                         else name),
            access_ip_v4=server.get("accessIPv4"),
            access_ip_v6=server.get("accessIPv6"),
            admin_pass=password,
            config_drive=bool_from_string(server.get("config_drive", False)),
            scheduler_hints=body.get("os:scheduler_hints",
                                     body.get("OS-SCH-HNT:scheduler_hints")),
            injected_files=[(item.get("path", ""), item.get("contents", ""))
                            for item in server.get("personality", ())],
            tags=tags,
            trusted_certs=trusted_certs,
            requested_host=requested_host,
            requested_hypervisor_hostname=requested_node,
        )
    except (exception.FlavorNotFound, exception.ComputeHostNotFound) as exc:
        raise exception.Invalid(exc.message)
    except exception.ImageNotFound:
        raise exception.Invalid("Can not find requested image")
    except exception.KeypairNotFound:
        raise exception.Invalid("Invalid key_name provided.")

    if bool_from_string(server.get("return_reservation_id", False)):
        return json_response({"reservation_id": reservation_id}, status=202)
    view = ServerViewBuilder.for_request(req)
    security_groups = server.get("security_groups", [{"name": "default"}])
    created = view.create(instances[0], security_groups, password)
    return json_response({"server": created}, status=202,
                         headers={"Location": view.self_href(created["id"])})


# -- one server ----------------------------------------------------------------------

def show(req: Request, server_id: str) -> Response:
    instance = common.get_server(req, server_id, POLICY_SHOW)
    return json_response({"server": add_server_groups(
        req, ServerViewBuilder.for_request(req).show(instance))})


def update(req: Request, server_id: str) -> Response:
    body = req.json_body()
    schema.validate_update(body, tuple(req.api_version))
    common.get_server(req, server_id, POLICY_UPDATE)
    server = body["server"]
    changes: dict[str, Any] = {}
    if "name" in server:
        changes["name"] = server["name"]
    if "accessIPv4" in server:
        changes["access_ip_v4"] = server["accessIPv4"]
    if "accessIPv6" in server:
        changes["access_ip_v6"] = server["accessIPv6"]
    if "description" in server:  # 2.19 (the schema refuses it before)
        changes["description"] = server["description"]
    instance = req.state.compute_api.update(req.context, server_id, **changes)
    # Before 2.75 the PUT answer has only the core attributes, with locked
    # from 2.9 and description from 2.19; from 2.75 it is GET's body (the
    # OS-EXT-* attributes, key_name, config_drive, host_status, ...).
    view = ServerViewBuilder.for_request(req)
    full = microversion.is_supported(req, schema.FULL_UPDATE_ANSWER_VERSION)
    return json_response({"server": add_server_groups(
        req, view.show(instance) if full else view.core(instance))})


def delete(req: Request, server_id: str) -> Response:
    common.get_server(req, server_id, POLICY_DELETE)
    req.state.compute_api.delete(req.context, server_id)
    return empty_response(204)
