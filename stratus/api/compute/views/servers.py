"""The server views (Nova's ``views/servers.py`` with the 2.1 extensions
merged: OS-DCF, OS-EXT-AZ, OS-EXT-SRV-ATTR, OS-EXT-STS, OS-SRV-USG,
os-extended-volumes, config_drive, key_name), up to microversion 2.19:

- 2.3: more ``OS-EXT-SRV-ATTR:*`` for those who see the extended attributes
  (reservation_id, launch_index, hostname, kernel_id, ramdisk_id,
  root_device_name, user_data);
- 2.9: ``locked`` in show, detail, the update and rebuild answers;
- 2.16: ``host_status`` in show and detail, for those the
  ``os_compute_api:servers:show:host_status`` rule allows (UP, DOWN,
  MAINTENANCE, UNKNOWN, or "" without a host);
- 2.19: ``description`` in show, detail, the update and rebuild answers;
- 2.47: ``flavor`` is the instance's embedded flavor (original_name, vcpus,
  ram, disk, ephemeral, swap, and extra_specs for those the
  ``os_compute_api:os-flavor-extra-specs:index`` rule allows), no id or links;
- 2.63: ``trusted_image_certificates`` (the list, or null) in show, detail,
  the update and rebuild answers;
- 2.73: ``locked_reason`` (the lock's reason, or null) in show, detail, the
  update and rebuild answers;
- 2.75: the update and rebuild answers are the show body (all the above),
  the rebuild's without ``OS-EXT-SRV-ATTR:user_data``.

A :class:`ServerViewBuilder` is made once per request: the link prefixes and
the caller's admin flag are computed there, so rendering each server of a
1,000-server ``GET /servers/detail`` is a dict literal and a few string
operations.
"""
from __future__ import annotations

import datetime
import hashlib
from typing import Any, Callable, Iterable

from stratus.api.compute import microversion
from stratus.api.compute.common import can, link_prefixes
from stratus.api.wsgi import Request
from stratus.compute.vm_states import status_from_state
from stratus.db import server_groups as db_groups
from stratus.db import services as db_services
from stratus.db import tags as db_tags

POLICY_EXTENDED_ATTRIBUTES = "os_compute_api:os-extended-server-attributes"
POLICY_HOST_STATUS = "os_compute_api:servers:show:host_status"
POLICY_FLAVOR_EXTRA_SPECS = "os_compute_api:os-flavor-extra-specs:index"

# The microversions that change the server views.
EXTENDED_ATTRIBUTES_V23 = (2, 3)
LOCKED_VERSION = (2, 9)
HOST_STATUS_VERSION = (2, 16)
DESCRIPTION_VERSION = (2, 19)
EMBEDDED_FLAVOR_VERSION = "2.47"
TRUSTED_CERTS_VERSION = "2.63"
LOCKED_REASON_VERSION = "2.73"

# Nova's host statuses (nova/objects/fields.py HostStatus).
HOST_STATUS_UP = "UP"
HOST_STATUS_DOWN = "DOWN"
HOST_STATUS_MAINTENANCE = "MAINTENANCE"
HOST_STATUS_UNKNOWN = "UNKNOWN"
HOST_STATUS_NONE = ""
COMPUTE_BINARY = "stratus-compute"

# Statuses whose server body carries "progress" / "fault" (Nova's view builder).
PROGRESS_STATUSES = frozenset(["ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE",
                               "MIGRATING"])
FAULT_STATUSES = frozenset(["ERROR", "DELETED"])
INSTANCE_NAME_TEMPLATE = "instance-%08x"  # Nova's default instance_name_template
TAGS_VERSION = "2.26"  # full server bodies (show, detail, PUT, rebuild) list "tags"
SERVER_GROUPS_VERSION = "2.71"  # show, PUT and rebuild (not the lists) name the groups


def isotime(value: datetime.datetime | None) -> str | None:
    """``2026-11-24T18:01:05Z`` (naive UTC in, as stored)."""
    if value is None:
        return None
    return value.isoformat(timespec="seconds") + "Z"


def isotime_us(value: datetime.datetime | None) -> str | None:
    """``2026-11-24T18:01:05.000000``: how Nova serialises raw datetimes."""
    if value is None:
        return None
    return value.isoformat(timespec="microseconds")


def host_id(project_id: str | None, host: str | None) -> str:
    """Nova's ``generate_hostid``: sha224(project_id + host), "" without a host."""
    if not host:
        return ""
    return hashlib.sha224((str(project_id) + host).encode("utf-8")).hexdigest()


def _parse(version: str) -> tuple[int, int]:
    major, minor = version.split(".")
    return int(major), int(minor)


def embedded_flavor(flavor: dict[str, Any], with_extra_specs: bool) -> dict[str, Any]:
    """Nova's 2.47 flavor of a server: what the instance was built with (its
    copy, unchanged by later flavor edits), by the flavor's name at the time."""
    body: dict[str, Any] = {
        "vcpus": int(flavor.get("vcpus") or 0),
        "ram": int(flavor.get("memory_mb") or 0),
        "disk": int(flavor.get("root_gb") or 0),
        "ephemeral": int(flavor.get("ephemeral_gb") or 0),
        "swap": int(flavor.get("swap") or 0),
        "original_name": flavor.get("name") or "",
    }
    if with_extra_specs:
        body["extra_specs"] = dict(flavor.get("extra_specs") or {})
    return body


def id_from_href(ref: str) -> str:
    """The last path segment of an href (or the id itself)."""
    return ref.rsplit("/", 1)[-1] if "/" in ref else ref


def server_status(instance: dict[str, Any]) -> str:
    if instance.get("deleted"):
        return "DELETED"
    return status_from_state(instance.get("vm_state"), instance.get("task_state"))


def _config_drive(value: Any) -> str:
    if value is True:
        return "True"
    if not value:
        return ""
    return str(value)


HostStatus = Callable[[str | None], str]


def host_status_lookup(db: Any, service_down_time: float) -> HostStatus:
    """Nova's ``get_instance_host_status`` for the hosts of one request: the
    compute services are read once, on the first call."""
    services: dict[str, dict[str, Any]] | None = None

    def status(host: str | None) -> str:
        nonlocal services
        if not host:
            return HOST_STATUS_NONE
        if services is None:
            services = {s["host"]: s for s in
                        db_services.service_get_all(db, binary=COMPUTE_BINARY)}
        service = services.get(host)
        if service is None:
            return HOST_STATUS_NONE
        if service.get("forced_down"):
            return HOST_STATUS_DOWN
        if service.get("disabled"):
            return HOST_STATUS_MAINTENANCE
        if db_services.service_is_up(service, service_down_time):
            return HOST_STATUS_UP
        return HOST_STATUS_UNKNOWN
    return status


class ServerViewBuilder:
    """Renders instance dicts for one request, at its microversion."""

    def __init__(self, root_url: str, is_admin: bool,
                 extended_attributes: bool | None = None,
                 version: tuple[int, int] = (2, 1),
                 host_status: HostStatus | None = None, db: Any = None,
                 show_tags: bool = False, show_extra_specs: bool = False,
                 versioned_url: str | None = None) -> None:
        """``root_url`` prefixes the bookmark links, ``versioned_url`` (default
        ``{root_url}/v2.1``) the self links (see ``common.link_prefixes``)."""
        self.is_admin = is_admin
        # 2.26: "tags", read from ``db`` (all of a list's at once, see detail()).
        self.show_tags = show_tags
        self._db = db
        self._tags: dict[str, list[str]] = {}
        # OS-EXT-SRV-ATTR:* (os_compute_api:os-extended-server-attributes).
        self.extended_attributes = is_admin if extended_attributes is None \
            else extended_attributes
        version = tuple(version)
        self.extended_v23 = version >= EXTENDED_ATTRIBUTES_V23
        self.show_locked = version >= LOCKED_VERSION
        self.show_description = version >= DESCRIPTION_VERSION
        # 2.47: the embedded flavor, its extra_specs only if the caller may list them.
        self.flavor_embedded = version >= _parse(EMBEDDED_FLAVOR_VERSION)
        self.show_extra_specs = show_extra_specs and self.flavor_embedded
        self.show_trusted_certs = version >= _parse(TRUSTED_CERTS_VERSION)
        self.show_locked_reason = version >= _parse(LOCKED_REASON_VERSION)
        # host_status (2.16): a lookup when the caller may see it, else None.
        self.host_status = host_status if version >= HOST_STATUS_VERSION else None
        self._self_prefix = f"{versioned_url or root_url + '/v2.1'}/servers/"
        self._bookmark_prefix = f"{root_url}/servers/"
        self._image_prefix = f"{root_url}/images/"
        self._flavor_prefix = f"{root_url}/flavors/"
        self._host_ids: dict[tuple[Any, Any], str] = {}

    @classmethod
    def for_request(cls, req: Request) -> "ServerViewBuilder":
        version = tuple(req.api_version)
        host_status = None
        if version >= HOST_STATUS_VERSION and can(req, POLICY_HOST_STATUS):
            host_status = host_status_lookup(req.state.db,
                                             req.state.conf.DEFAULT.service_down_time)
        # Nova asks the extra-specs rule once per request (fatal=False).
        show_extra_specs = (microversion.is_supported(req, EMBEDDED_FLAVOR_VERSION)
                            and can(req, POLICY_FLAVOR_EXTRA_SPECS))
        versioned_url, bookmark_url = link_prefixes(req)
        return cls(bookmark_url, bool(req.context.is_admin),
                   can(req, POLICY_EXTENDED_ATTRIBUTES), version, host_status,
                   db=req.state.db, show_tags=microversion.is_supported(req, TAGS_VERSION),
                   show_extra_specs=show_extra_specs, versioned_url=versioned_url)

    # -- pieces ------------------------------------------------------------------
    def links(self, uuid: str) -> list[dict[str, str]]:
        return [{"rel": "self", "href": self._self_prefix + uuid},
                {"rel": "bookmark", "href": self._bookmark_prefix + uuid}]

    def self_href(self, uuid: str) -> str:
        return self._self_prefix + uuid

    def _host_id(self, project_id: str | None, host: str | None) -> str:
        key = (project_id, host)
        cached = self._host_ids.get(key)
        if cached is None:
            cached = self._host_ids[key] = host_id(project_id, host)
        return cached

    def prefetch_tags(self, instances: Iterable[dict[str, Any]]) -> None:
        """Read the tags of many instances in one go (when they are shown)."""
        if not self.show_tags:
            return
        uuids = [i["uuid"] for i in instances if i["uuid"] not in self._tags]
        found = db_tags.tags_get_by_instances(self._db, uuids)
        for uuid in uuids:
            self._tags[uuid] = found.get(uuid, [])

    def _tags_of(self, uuid: str) -> list[str]:
        if uuid not in self._tags:
            self._tags[uuid] = db_tags.tags_get(self._db, uuid)
        return self._tags[uuid]

    def _image(self, image_ref: str | None) -> dict[str, Any] | str:
        if not image_ref:
            return ""
        image_id = id_from_href(image_ref)
        return {"id": image_id,
                "links": [{"rel": "bookmark", "href": self._image_prefix + image_id}]}

    def _flavor(self, flavor: dict[str, Any] | None) -> dict[str, Any]:
        if not flavor or flavor.get("flavorid") is None:
            return {}  # Nova: the flavor was removed from the instance record
        if self.flavor_embedded:
            return embedded_flavor(flavor, self.show_extra_specs)
        flavor_id = str(flavor["flavorid"])
        return {"id": flavor_id,
                "links": [{"rel": "bookmark", "href": self._flavor_prefix + flavor_id}]}

    def _fault(self, fault: dict[str, Any] | None) -> dict[str, Any] | None:
        if not fault:
            return None
        body: dict[str, Any] = {"code": fault["code"], "created": isotime(fault.get("created")),
                                "message": fault["message"]}
        details = fault.get("details")
        if details and (self.is_admin or fault["code"] != 500):
            body["details"] = details
        return body

    # -- views -------------------------------------------------------------------
    def basic(self, instance: dict[str, Any]) -> dict[str, Any]:
        """An entry of ``GET /servers``."""
        uuid = instance["uuid"]
        return {"id": uuid, "name": instance["display_name"], "links": self.links(uuid)}

    def core(self, instance: dict[str, Any]) -> dict[str, Any]:
        """The fields every full server body has: all that ``PUT /servers/{id}``
        and the rebuild action show (with ``locked`` from 2.9, ``description``
        from 2.19, ``locked_reason`` from 2.73)."""
        uuid = instance["uuid"]
        created = instance["created_at"]
        ip_v4 = instance.get("access_ip_v4")
        ip_v6 = instance.get("access_ip_v6")
        status = server_status(instance)
        server: dict[str, Any] = {
            "id": uuid,
            "name": instance["display_name"],
            "status": status,
            "tenant_id": instance.get("project_id") or "",
            "user_id": instance.get("user_id") or "",
            "metadata": instance.get("metadata") or {},
            "hostId": self._host_id(instance.get("project_id"), instance.get("host")),
            "image": self._image(instance.get("image_ref")),
            "flavor": self._flavor(instance.get("flavor")),
            "created": isotime(created),
            # Nova stamps updated_at on every save; a never-updated row shows its creation.
            "updated": isotime(instance.get("updated_at") or created),
            "addresses": {},
            "accessIPv4": str(ip_v4) if ip_v4 is not None else "",
            "accessIPv6": str(ip_v6) if ip_v6 is not None else "",
            "links": self.links(uuid),
            "OS-DCF:diskConfig": "AUTO" if instance.get("auto_disk_config") else "MANUAL",
        }
        if status in FAULT_STATUSES:
            fault = self._fault(instance.get("fault"))
            if fault:
                server["fault"] = fault
        if status in PROGRESS_STATUSES:
            server["progress"] = instance.get("progress") or 0
        if self.show_locked:
            server["locked"] = bool(instance.get("locked"))
        if self.show_description:
            server["description"] = instance.get("display_description")
        if self.show_tags:
            server["tags"] = self._tags_of(uuid)
        if self.show_trusted_certs:
            server["trusted_image_certificates"] = instance.get("trusted_certs") or None
        if self.show_locked_reason:
            server["locked_reason"] = instance.get("locked_reason")
        return server

    def show(self, instance: dict[str, Any], show_user_data: bool = True) -> dict[str, Any]:
        """``GET /servers/{id}`` and each entry of ``GET /servers/detail``; from
        2.75 the PUT and rebuild answers too (rebuild without
        ``OS-EXT-SRV-ATTR:user_data``: ``show_user_data`` False)."""
        server = self.core(instance)
        server["OS-EXT-AZ:availability_zone"] = instance.get("availability_zone") or ""
        server["config_drive"] = _config_drive(instance.get("config_drive"))
        server["key_name"] = instance.get("key_name")
        server["OS-SRV-USG:launched_at"] = isotime_us(instance.get("launched_at"))
        server["OS-SRV-USG:terminated_at"] = isotime_us(instance.get("terminated_at"))
        if self.extended_attributes:
            server["OS-EXT-SRV-ATTR:host"] = instance.get("host")
            server["OS-EXT-SRV-ATTR:instance_name"] = INSTANCE_NAME_TEMPLATE % (
                instance.get("id") or 0)
            server["OS-EXT-SRV-ATTR:hypervisor_hostname"] = instance.get("node")
            if self.extended_v23:
                server["OS-EXT-SRV-ATTR:reservation_id"] = instance.get("reservation_id")
                server["OS-EXT-SRV-ATTR:launch_index"] = instance.get("launch_index") or 0
                server["OS-EXT-SRV-ATTR:hostname"] = instance.get("hostname") or ""
                server["OS-EXT-SRV-ATTR:kernel_id"] = instance.get("kernel_id") or ""
                server["OS-EXT-SRV-ATTR:ramdisk_id"] = instance.get("ramdisk_id") or ""
                server["OS-EXT-SRV-ATTR:root_device_name"] = instance.get("root_device_name")
                if show_user_data:
                    server["OS-EXT-SRV-ATTR:user_data"] = instance.get("user_data")
        server["OS-EXT-STS:task_state"] = instance.get("task_state")
        server["OS-EXT-STS:vm_state"] = instance.get("vm_state")
        server["OS-EXT-STS:power_state"] = instance.get("power_state") or 0
        server["os-extended-volumes:volumes_attached"] = []
        if self.host_status is not None:
            server["host_status"] = self.host_status(instance.get("host"))
        return server

    def create(self, instance: dict[str, Any], security_groups: list[dict[str, Any]],
               admin_pass: str | None) -> dict[str, Any]:
        """The body of ``POST /servers``: id, links, disk config, the requested
        security groups (``[{"name": "default"}]`` when none) and adminPass."""
        uuid = instance["uuid"]
        server: dict[str, Any] = {
            "id": uuid,
            "links": self.links(uuid),
            "OS-DCF:diskConfig": "AUTO" if instance.get("auto_disk_config") else "MANUAL",
            "security_groups": security_groups,
        }
        if admin_pass is not None:
            server["adminPass"] = admin_pass
        return server

    def index(self, instances: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self.basic(i) for i in instances]

    def detail(self, instances: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        instances = list(instances)
        self.prefetch_tags(instances)
        return [self.show(i) for i in instances]


def add_server_groups(req: Request, server: dict[str, Any]) -> dict[str, Any]:
    """From 2.71 the answers about one server (show, PUT, rebuild; not the
    lists) carry ``server_groups``: the uuids of its groups (at most one)."""
    if microversion.is_supported(req, SERVER_GROUPS_VERSION):
        server["server_groups"] = db_groups.groups_of(req.state.db, server["id"])
    return server
