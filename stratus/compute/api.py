"""The compute API's business logic (Nova's nova/compute/api.py).

The HTTP controllers validate and render; this layer checks that the caller
may act on the instance and that its state allows the operation, records the
instance action, moves the instance to its transitional task state with a
compare-and-swap, and casts the work to the conductor or the instance's
compute host.
"""
from __future__ import annotations

import base64
import logging
import re
import secrets
from typing import Any, Callable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from stratus import exception, quota
from stratus.compute import power_state, scheduling, vm_states
from stratus.compute.rpcapi import ComputeRPCAPI
from stratus.conductor.rpcapi import ConductorAPI
from stratus.context import RequestContext
from stratus.db import aggregates as db_aggregates
from stratus.db import instances as db_instances
from stratus.db import quotas as db_quotas
from stratus.db import resizes as db_resizes
from stratus.db import services as db_services
from stratus.db import tags as db_tags
from stratus.db import flavors as db_flavors
from stratus.db.models import KeyPair
from stratus.db.session import Database
from stratus.utils import new_uuid, utcnow

LOG = logging.getLogger(__name__)

UNSET: Any = db_instances.UNSET
DEFAULT_AZ = "nova"
_FLAVOR_KEYS = ("flavorid", "name", "memory_mb", "vcpus", "root_gb", "ephemeral_gb", "swap",
                "rxtx_factor", "extra_specs")

# vm_states an operation is allowed from, and the task_state it sets.
_ACTIONS: dict[str, tuple[tuple[str, ...], str | None, str]] = {
    # name: (allowed vm_states, task_state to set, compute RPC method)
    "stop": ((vm_states.ACTIVE, vm_states.ERROR), vm_states.POWERING_OFF, "stop_instance"),
    "start": ((vm_states.STOPPED,), vm_states.POWERING_ON, "start_instance"),
    "pause": ((vm_states.ACTIVE,), vm_states.PAUSING, "pause_instance"),
    "unpause": ((vm_states.PAUSED,), vm_states.UNPAUSING, "unpause_instance"),
    "suspend": ((vm_states.ACTIVE,), vm_states.SUSPENDING, "suspend_instance"),
    "resume": ((vm_states.SUSPENDED,), vm_states.RESUMING, "resume_instance"),
}
_REBOOT_FROM = {
    "SOFT": ((vm_states.ACTIVE,), vm_states.REBOOTING),
    "HARD": ((vm_states.ACTIVE, vm_states.STOPPED, vm_states.PAUSED, vm_states.SUSPENDED,
              vm_states.ERROR), vm_states.REBOOTING_HARD),
}
# vm_states a crash dump may be triggered from (Nova's check_instance_state).
_CRASH_DUMP_FROM = (vm_states.ACTIVE, vm_states.PAUSED, vm_states.RESCUED, vm_states.RESIZED,
                    vm_states.ERROR)
# Task states a reboot may interrupt (Nova allows HARD over a pending soft reboot).
_REBOOT_TASKS = {"SOFT": (None,), "HARD": (None, vm_states.REBOOTING, vm_states.REBOOT_PENDING,
                                            vm_states.REBOOT_STARTED, vm_states.REBOOTING_HARD,
                                            vm_states.REBOOT_PENDING_HARD,
                                            vm_states.REBOOT_STARTED_HARD)}


def _hostname_from(name: str) -> str:
    host = re.sub(r"[^\w.-]+", "-", name.lower()).strip("-.")
    return host[:63] or "server"


def kernel_and_ramdisk(image: dict[str, Any]) -> dict[str, str]:
    """The instance's kernel_id and ramdisk_id: its image's properties, "" for
    none (Nova's _handle_kernel_and_ramdisk)."""
    props = image.get("properties") or {}
    return {"kernel_id": str(props.get("kernel_id") or ""),
            "ramdisk_id": str(props.get("ramdisk_id") or "")}


def tail_lines(log: str, length: int | None) -> str:
    """The last ``length`` lines of ``log`` (Nova's ComputeManager._tail_log)."""
    if length is None:
        return log
    if length <= 0:
        return ""
    return "\n".join(log.split("\n")[-length:])


def _nth_instance(common: dict[str, Any], name: str, index: int,
                  count: int) -> dict[str, Any]:
    """The row of instance ``index`` of ``count`` created together (Nova names
    them ``name-1``, ``name-2``... when there are several)."""
    display_name = name if count == 1 else f"{name}-{index + 1}"
    return dict(common, uuid=new_uuid(), display_name=display_name,
                hostname=_hostname_from(display_name), launch_index=index)


class ComputeAPI:
    def __init__(self, conf: Any, db: Database, transport: Any,
                 image_get: Callable[[RequestContext, str], dict[str, Any]],
                 images: Any = None) -> None:
        self.conf = conf
        self.db = db
        self.image_get = image_get
        self.images = images  # the ImageService: snapshots create image records
        self.quotas = quota.QuotaEngine(conf)
        timeout = conf.DEFAULT.rpc_response_timeout
        self.conductor = ConductorAPI(transport, timeout)
        self.compute_rpc = ComputeRPCAPI(transport, timeout)

    # -- create ----------------------------------------------------------------
    def create(self, ctx: RequestContext, *, name: str, flavor_id: str, image_ref: str,
               metadata: dict[str, str] | None = None, key_name: str | None = None,
               availability_zone: str | None = None, user_data: str | None = None,
               min_count: int = 1, max_count: int = 1, description: str | None = None,
               access_ip_v4: str | None = None, access_ip_v6: str | None = None,
               admin_pass: str | None = None, config_drive: bool = False,
               scheduler_hints: dict[str, Any] | None = None,
               injected_files: Sequence[tuple[str, str]] | None = None,
               tags: Sequence[str] | None = None,
               trusted_certs: Sequence[str] | None = None,
               requested_host: str | None = None,
               requested_hypervisor_hostname: str | None = None,
               ) -> tuple[list[dict[str, Any]], str]:
        """Create ``min_count..max_count`` instances (as many as the quota
        allows, at least min_count) and cast their build to the conductor.
        ``tags`` (2.52) are stored with the instances, in the transaction
        that inserts them; ``trusted_certs`` (2.63) on each instance.
        ``requested_host`` / ``requested_hypervisor_hostname`` (2.74) must
        name an existing compute host / node (ComputeHostNotFound before
        anything is created); the scheduler then considers only that
        host / node, through its filters (Nova's requested_destination)."""
        if min_count > max_count:
            raise exception.Invalid("min_count must be <= max_count")
        flavor = self._flavor_for_boot(ctx, flavor_id)
        image = self._image_for_boot(ctx, image_ref)
        if image.get("min_ram") and flavor["memory_mb"] < image["min_ram"]:
            raise exception.Invalid("Flavor's memory is too small for requested image.")
        if image.get("min_disk") and flavor["root_gb"] and flavor["root_gb"] < image["min_disk"]:
            raise exception.Invalid("Flavor's disk is too small for requested image.")
        key_data = self._key_data(ctx, key_name) if key_name else None
        placement = scheduling.prepare(ctx, self.db, availability_zone, scheduler_hints)
        zone = self._check_zone(placement.zone)
        if requested_host or requested_hypervisor_hostname:
            placement.spec["requested_destination"] = scheduling.requested_destination(
                self.db, requested_host, requested_hypervisor_hostname)
        if user_data is not None:
            try:
                base64.b64decode(user_data)  # lenient, as Nova: line breaks are fine
            except ValueError:
                raise exception.Invalid("Userdata content cannot be decoded.")
        reservation_id = "r-" + secrets.token_hex(4)
        now = utcnow()
        metadata = metadata or {}
        common = {
            "user_id": ctx.user_id, "project_id": ctx.project_id,
            "display_description": description, "availability_zone": zone,
            "image_ref": image["id"], "flavor": flavor, **kernel_and_ramdisk(image),
            "vcpus": flavor["vcpus"], "memory_mb": flavor["memory_mb"],
            "root_gb": flavor["root_gb"], "ephemeral_gb": flavor["ephemeral_gb"],
            "vm_state": vm_states.BUILDING, "task_state": vm_states.SCHEDULING,
            "power_state": power_state.NOSTATE, "key_name": key_name,
            "key_data": key_data, "user_data": user_data,
            "config_drive": "True" if config_drive else "",
            "reservation_id": reservation_id, "access_ip_v4": access_ip_v4,
            "access_ip_v6": access_ip_v6, "metadata": metadata,
            "trusted_certs": list(trusted_certs) if trusted_certs else None,
            "created_at": now, "updated_at": now,
        }
        # Count the project's usage and insert the instances in one transaction
        # that holds the project's quota lock: concurrent creates cannot
        # together pass the quota, and a refused create leaves nothing behind.
        with db_quotas.locked_write(self.db, ctx.project_id) as s:
            limits = self.quotas.limits(s, ctx.project_id)
            quota.check_metadata(limits, len(metadata))
            quota.check_injected_files(limits, injected_files or ())
            count = quota.check_instances(limits, self.quotas.usage(s, ctx.project_id),
                                          flavor["vcpus"], flavor["memory_mb"],
                                          min_count, max_count)
            instances = db_instances.instances_add(
                s, [_nth_instance(common, name, index, count) for index in range(count)],
                action="create", request_id=ctx.request_id)
            if tags:
                for inst in instances:
                    db_tags.tags_add_new(s, inst["uuid"], tags)
            scheduling.record_members(s, placement, [i["uuid"] for i in instances], limits)
        request_spec = {
            "flavor": flavor, "image": {"id": image["id"], "min_ram": image.get("min_ram", 0),
                                        "min_disk": image.get("min_disk", 0),
                                        "properties": image.get("properties", {})},
            "availability_zone": availability_zone, "num_instances": count,
            "project_id": ctx.project_id, "user_id": ctx.user_id,
            "admin_pass": admin_pass, **placement.spec,
            # (path, base64 contents): the config drive's openstack/content files.
            "injected_files": [list(f) for f in injected_files or []],
        }
        self.conductor.build_instances(ctx, [i["uuid"] for i in instances], request_spec)
        return instances, reservation_id

    def _flavor_for_boot(self, ctx: RequestContext, flavor_id: str) -> dict[str, Any]:
        """The flavor as the instance keeps it (a copy: later flavor edits don't touch it)."""
        flavor = db_flavors.flavor_get_by_flavorid(self.db, flavor_id, ctx)
        if flavor["disabled"]:
            raise exception.Invalid("Flavor is disabled.")
        return {key: flavor[key] for key in _FLAVOR_KEYS}

    def _image_for_boot(self, ctx: RequestContext, image_ref: str) -> dict[str, Any]:
        image_id = image_ref.rstrip("/").rsplit("/", 1)[-1]
        image = self.image_get(ctx, image_id)
        if image.get("status") != "active":
            raise exception.Invalid(f"Image {image_id} is not active.")
        return image

    def _key_data(self, ctx: RequestContext, key_name: str) -> str:
        with self.db.read() as s:
            kp = s.scalars(select(KeyPair).where(KeyPair.user_id == ctx.user_id,
                                                 KeyPair.name == key_name)).one_or_none()
            if kp is None:
                raise exception.KeypairNotFound(name=key_name, user_id=ctx.user_id)
            return kp.public_key

    def _check_zone(self, zone: str | None) -> str:
        if not zone or zone == DEFAULT_AZ:
            return DEFAULT_AZ
        if zone not in db_aggregates.zones_in_use(self.db):
            raise exception.Invalid("The requested availability zone is not available")
        return zone

    # -- read ------------------------------------------------------------------
    def get(self, ctx: RequestContext, instance_id: str,
            read_deleted: bool = False) -> dict[str, Any]:
        return db_instances.instance_get(self.db, instance_id,
                                         project_id=None if ctx.is_admin else ctx.project_id,
                                         read_deleted=read_deleted)

    def get_all(self, ctx: RequestContext, *, filters: dict[str, Any],
                limit: int | None = None, marker: str | None = None,
                sort_keys: list[str] | None = None,
                sort_dirs: list[str] | None = None) -> list[dict[str, Any]]:
        if filters.get("ip") or filters.get("ip6"):
            # Nova matches these against the servers' fixed and floating
            # addresses (its _ip_filter); Stratus' servers have none yet
            # ("addresses": {}), so an address filter matches no server.
            return []
        query: dict[str, Any] = {}
        if not (ctx.is_admin and filters.get("all_tenants")):
            query["project_id"] = ctx.project_id
        if ctx.is_admin:
            for key in ("project_id", "host", "node"):
                if filters.get(key):
                    query[key] = filters[key]
        for key in ("name", "reservation_id", "flavor", "tags", "tags-any", "not-tags",
                    "not-tags-any"):
            if filters.get(key):
                query[key] = filters[key]
        if filters.get("image"):
            query["image_ref"] = filters["image"]
        if filters.get("status"):
            statuses = filters["status"]
            if isinstance(statuses, str):
                statuses = [statuses]
            query["states"] = [sel for status in statuses
                               for sel in vm_states.states_from_status(status)]
            if [st.upper() for st in statuses] == ["DELETED"]:
                query["deleted"] = True  # admins may list what was deleted
        for key in ("changes-since", "changes-before"):
            if filters.get(key) is not None:
                query[key.replace("-", "_")] = filters[key]
        if filters.get("locked") is not None:  # 2.73, a boolean
            query["locked"] = bool(filters["locked"])
        return db_instances.instance_get_all(self.db, query, limit=limit, marker=marker,
                                             sort_keys=sort_keys, sort_dirs=sort_dirs)

    # -- update / delete ---------------------------------------------------------
    def update(self, ctx: RequestContext, instance_id: str, *, name: str | None = None,
               description: Any = UNSET, access_ip_v4: Any = UNSET,
               access_ip_v6: Any = UNSET) -> dict[str, Any]:
        self.get(ctx, instance_id)
        updates: dict[str, Any] = {}
        if name is not None:
            updates["display_name"] = name
            updates["hostname"] = _hostname_from(name)
        for key, value in (("display_description", description),
                           ("access_ip_v4", access_ip_v4), ("access_ip_v6", access_ip_v6)):
            if value is not UNSET:
                updates[key] = value
        if not updates:
            return self.get(ctx, instance_id)
        return db_instances.instance_update(self.db, instance_id, updates)

    #: How often a delete re-reads an instance whose task moved on under it.
    DELETE_ATTEMPTS = 10

    def delete(self, ctx: RequestContext, instance_id: str) -> None:
        """Delete wins over whatever task is under way (as Nova's): the task
        state becomes ``deleting`` whatever it was, and the task in flight
        fails its next compare-and-swap and stops."""
        inst = self.get(ctx, instance_id)
        self._check_locked(ctx, inst)
        for _ in range(self.DELETE_ATTEMPTS):
            if inst["task_state"] == vm_states.DELETING:
                return  # a delete is already under way; Nova answers 204 again
            host = inst["host"]
            if not (host and self._host_is_up(host)):
                break
            try:  # the swap only guards against a concurrent delete
                db_instances.instance_update(self.db, instance_id,
                                             {"task_state": vm_states.DELETING},
                                             expected_task_state=inst["task_state"])
            except exception.UnexpectedTaskStateError:
                inst = self.get(ctx, instance_id)  # a build or action moved on: again
                continue
            db_instances.action_start(self.db, instance_id, "delete", ctx.request_id,
                                      ctx.user_id, ctx.project_id)
            self.compute_rpc.terminate_instance(ctx, host, instance_id)
            return
        else:
            raise exception.InstanceInvalidState(action="delete", instance_uuid=instance_id,
                                                 attr="task_state", state=inst["task_state"])
        db_instances.action_start(self.db, instance_id, "delete", ctx.request_id,
                                  ctx.user_id, ctx.project_id)
        # Never scheduled, or its host is down: delete here (Nova's local delete).
        # A build racing with us fails its compare-and-swap on the deleted row
        # and gives its claim back.
        LOG.info("Deleting instance %s locally (host %s)", instance_id, host or "none")
        db_instances.instance_destroy(self.db, instance_id)
        shelved = (inst.get("request_spec") or {}).get("shelved_image_id")
        if shelved and self.images is not None and \
                inst["vm_state"] == vm_states.SHELVED_OFFLOADED:
            try:
                self.images.delete(ctx.elevated(), shelved)
            except exception.StratusException as exc:
                LOG.warning("Could not delete shelved image %s: %s", shelved, exc)

    def _host_is_up(self, host: str) -> bool:
        services = db_services.service_get_all(self.db, binary="stratus-compute", host=host)
        return bool(services) and db_services.service_is_up(
            services[0], self.conf.DEFAULT.service_down_time)

    # -- actions -----------------------------------------------------------------
    def _check_locked(self, ctx: RequestContext, inst: dict[str, Any]) -> None:
        if inst["locked"] and not ctx.is_admin:
            raise exception.InstanceIsLocked(instance_uuid=inst["uuid"])

    def _check_state(self, ctx: RequestContext, instance_id: str, action: str,
                     allowed: tuple[str, ...],
                     allowed_tasks: tuple[str | None, ...] = (None,)) -> dict[str, Any]:
        """The instance, unless it is locked (to non-admins) or its vm state is
        not in ``allowed`` or its task state not in ``allowed_tasks`` (409)."""
        inst = self.get(ctx, instance_id)
        self._check_locked(ctx, inst)
        if inst["vm_state"] not in allowed:
            raise exception.InstanceInvalidState(action=action, instance_uuid=instance_id,
                                                 attr="vm_state", state=inst["vm_state"])
        if inst["task_state"] not in allowed_tasks:
            raise exception.InstanceInvalidState(action=action, instance_uuid=instance_id,
                                                 attr="task_state", state=inst["task_state"])
        return inst

    def _begin(self, ctx: RequestContext, instance_id: str, action: str,
               values: dict[str, Any], allowed_tasks: tuple[str | None, ...] = (None,),
               **expected: Any) -> dict[str, Any]:
        """Write ``values`` if the task state is still one of ``allowed_tasks``
        (compare-and-swap, with any other ``expected_*`` of ``instance_update``;
        409 if another request got there first), then start the instance action."""
        try:
            inst = db_instances.instance_update(self.db, instance_id, values,
                                                expected_task_state=list(allowed_tasks),
                                                **expected)
        except exception.UnexpectedTaskStateError as exc:
            raise exception.InstanceInvalidState(action=action, instance_uuid=instance_id,
                                                 attr="task_state", state=exc.kwargs["actual"])
        db_instances.action_start(self.db, instance_id, action, ctx.request_id,
                                  ctx.user_id, ctx.project_id)
        return inst

    def _start_action(self, ctx: RequestContext, instance_id: str, action: str,
                      allowed: tuple[str, ...], task_state: str,
                      allowed_tasks: tuple[str | None, ...] = (None,)) -> dict[str, Any]:
        self._check_state(ctx, instance_id, action, allowed, allowed_tasks)
        return self._begin(ctx, instance_id, action, {"task_state": task_state}, allowed_tasks)

    def _simple_action(self, ctx: RequestContext, instance_id: str, action: str) -> None:
        allowed, task_state, method = _ACTIONS[action]
        inst = self._start_action(ctx, instance_id, action, allowed, task_state or "")
        self.compute_rpc.instance_action(ctx, inst["host"], instance_id, method)

    def stop(self, ctx: RequestContext, instance_id: str) -> None:
        self._simple_action(ctx, instance_id, "stop")

    def start(self, ctx: RequestContext, instance_id: str) -> None:
        self._simple_action(ctx, instance_id, "start")

    def pause(self, ctx: RequestContext, instance_id: str) -> None:
        self._simple_action(ctx, instance_id, "pause")

    def unpause(self, ctx: RequestContext, instance_id: str) -> None:
        self._simple_action(ctx, instance_id, "unpause")

    def suspend(self, ctx: RequestContext, instance_id: str) -> None:
        self._simple_action(ctx, instance_id, "suspend")

    def resume(self, ctx: RequestContext, instance_id: str) -> None:
        self._simple_action(ctx, instance_id, "resume")

    def reboot(self, ctx: RequestContext, instance_id: str, reboot_type: str) -> None:
        reboot_type = reboot_type.upper()
        allowed, task_state = _REBOOT_FROM[reboot_type]
        inst = self._start_action(ctx, instance_id, "reboot", allowed, task_state,
                                  _REBOOT_TASKS[reboot_type])
        self.compute_rpc.instance_action(ctx, inst["host"], instance_id, "reboot_instance",
                                         reboot_type=reboot_type)

    def trigger_crash_dump(self, ctx: RequestContext, instance_id: str) -> None:
        """Nova's trigger_crash_dump: a server that is not locked (or an
        admin), ACTIVE, PAUSED, RESCUED, RESIZED or ERROR with no task (else
        409); records the action and casts to its host, which injects an NMI."""
        inst = self.get(ctx, instance_id)
        self._check_locked(ctx, inst)
        if inst["vm_state"] not in _CRASH_DUMP_FROM:
            raise exception.InstanceInvalidState(action="trigger_crash_dump",
                                                 instance_uuid=instance_id,
                                                 attr="vm_state", state=inst["vm_state"])
        if inst["task_state"] is not None:
            raise exception.InstanceInvalidState(action="trigger_crash_dump",
                                                 instance_uuid=instance_id,
                                                 attr="task_state", state=inst["task_state"])
        if not inst.get("host"):
            raise exception.InstanceNotReady(instance_uuid=instance_id)
        db_instances.action_start(self.db, instance_id, "trigger_crash_dump", ctx.request_id,
                                  ctx.user_id, ctx.project_id)
        self.compute_rpc.instance_action(ctx, inst["host"], instance_id, "trigger_crash_dump")

    def rebuild(self, ctx: RequestContext, instance_id: str, image_ref: str,
                admin_pass: str | None, *, preserve_ephemeral: bool = False,
                name: str | None = None, metadata: dict[str, str] | None = None,
                access_ip_v4: Any = UNSET, access_ip_v6: Any = UNSET,
                description: Any = UNSET, key_name: Any = UNSET, user_data: Any = UNSET,
                trusted_certs: Any = UNSET) -> dict[str, Any]:
        """Re-create the guest from ``image_ref`` on its host, keeping its uuid,
        flavor, addresses and config drive choice (Nova's rebuild).

        ``key_name`` (2.54) replaces the key pair (None drops it; an unknown
        name is KeypairNotFound), ``user_data`` (2.57) and ``trusted_certs``
        (2.63) replace theirs (None unsets); nothing changes unless all is valid.
        """
        allowed = (vm_states.ACTIVE, vm_states.STOPPED, vm_states.ERROR)
        inst = self.get(ctx, instance_id)
        self._check_locked(ctx, inst)
        if inst["vm_state"] not in allowed:
            raise exception.InstanceInvalidState(action="rebuild", instance_uuid=instance_id,
                                                 attr="vm_state", state=inst["vm_state"])
        if not inst.get("host"):
            raise exception.InstanceInvalidState(action="rebuild", instance_uuid=instance_id,
                                                 attr="host", state="None")
        image = self._image_for_boot(ctx, image_ref)
        flavor = inst.get("flavor") or {}
        if image.get("min_ram") and int(flavor.get("memory_mb") or inst["memory_mb"]) < \
                image["min_ram"]:
            raise exception.Invalid("Flavor's memory is too small for requested image.")
        root_gb = int(inst.get("root_gb") or 0)
        if image.get("min_disk") and root_gb and root_gb < image["min_disk"]:
            raise exception.Invalid("Flavor's disk is too small for requested image.")
        updates: dict[str, Any] = {"task_state": vm_states.REBUILDING, "image_ref": image["id"],
                                   **kernel_and_ramdisk(image)}
        if key_name is not UNSET:
            # The caller's key pair (users own keys, projects own servers).
            updates["key_name"] = key_name or None
            updates["key_data"] = self._key_data(ctx, key_name) if key_name else None
        if user_data is not UNSET:
            updates["user_data"] = user_data
        if trusted_certs is not UNSET:
            updates["trusted_certs"] = list(trusted_certs) if trusted_certs else None
        if name is not None:
            updates["display_name"] = name
        if description is not UNSET:
            updates["display_description"] = description
        if metadata is not None:
            updates["metadata"] = metadata
        if access_ip_v4 is not UNSET:
            updates["access_ip_v4"] = access_ip_v4
        if access_ip_v6 is not UNSET:
            updates["access_ip_v6"] = access_ip_v6
        try:
            inst = db_instances.instance_update(self.db, instance_id, updates,
                                                expected_task_state=[None])
        except exception.UnexpectedTaskStateError as exc:
            raise exception.InstanceInvalidState(action="rebuild", instance_uuid=instance_id,
                                                 attr="task_state", state=exc.kwargs["actual"])
        db_instances.action_start(self.db, instance_id, "rebuild", ctx.request_id,
                                  ctx.user_id, ctx.project_id)
        image_meta = {"id": image["id"], "min_ram": image.get("min_ram", 0),
                      "min_disk": image.get("min_disk", 0),
                      "properties": image.get("properties", {})}
        self.compute_rpc.instance_action(ctx, inst["host"], instance_id, "rebuild_instance",
                                         image=image_meta, admin_pass=admin_pass,
                                         preserve_ephemeral=preserve_ephemeral)
        return inst

    def rescue(self, ctx: RequestContext, instance_id: str, admin_pass: str,
               rescue_image_ref: str | None = None) -> None:
        """Boot the instance from a rescue image (its own image by default),
        its root disk attached second (Nova's rescue)."""
        inst = self.get(ctx, instance_id)
        image = self._image_for_boot(ctx, rescue_image_ref or inst["image_ref"])
        inst = self._start_action(ctx, instance_id, "rescue",
                                  (vm_states.ACTIVE, vm_states.STOPPED, vm_states.ERROR),
                                  vm_states.RESCUING)
        self.compute_rpc.instance_action(ctx, inst["host"], instance_id, "rescue_instance",
                                         image={"id": image["id"],
                                                "properties": image.get("properties", {})},
                                         rescue_password=admin_pass)

    def unrescue(self, ctx: RequestContext, instance_id: str) -> None:
        inst = self._start_action(ctx, instance_id, "unrescue", (vm_states.RESCUED,),
                                  vm_states.UNRESCUING)
        self.compute_rpc.instance_action(ctx, inst["host"], instance_id, "unrescue_instance")

    def snapshot(self, ctx: RequestContext, instance_id: str, name: str,
                 metadata: dict[str, str] | None = None) -> dict[str, Any]:
        """createImage: a queued image record the instance's compute host fills.

        The snapshot inherits the base image's properties (so a kernel_id /
        ramdisk_id image boots the same way) and records Nova's
        ``instance_uuid``, ``image_type=snapshot``, ``base_image_ref``.
        """
        inst = self._check_snapshot_state(ctx, instance_id, "createImage")
        return self._snapshot_and_cast(ctx, inst, "createImage", name, metadata,
                                       vm_states.IMAGE_SNAPSHOT, "snapshot_instance")

    def backup(self, ctx: RequestContext, instance_id: str, name: str, backup_type: str,
               rotation: int, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """createBackup: a snapshot with ``image_type=backup`` and ``backup_type``
        (Nova's backup); the compute host uploads it, then deletes this
        instance's backups of that type beyond the ``rotation`` newest."""
        inst = self._check_snapshot_state(ctx, instance_id, "createBackup")
        return self._snapshot_and_cast(
            ctx, inst, "createBackup", name, metadata, vm_states.IMAGE_BACKUP,
            "backup_instance", image_type="backup", extra={"backup_type": backup_type},
            cast_args={"backup_type": backup_type, "rotation": rotation})

    # -- resize and cold migrate ---------------------------------------------------
    def resize(self, ctx: RequestContext, instance_id: str, flavor_id: str) -> None:
        """Nova's resize: a different flavor, ACTIVE or STOPPED, within quota."""
        inst = self._check_resize_state(ctx, instance_id, "resize")
        try:
            flavor = self._flavor_for_boot(ctx, flavor_id)
        except exception.FlavorNotFound:
            raise exception.Invalid(f"Flavor {flavor_id} could not be found.")
        if flavor["flavorid"] == inst["flavor"].get("flavorid"):
            raise exception.Invalid("When resizing, instances must change flavor!")
        if flavor["root_gb"] < (inst["flavor"].get("root_gb") or 0) and flavor["root_gb"]:
            raise exception.Invalid("Resize error: Unable to resize disk down.")
        dv = flavor["vcpus"] - inst["vcpus"]
        dram = flavor["memory_mb"] - inst["memory_mb"]
        if dv > 0 or dram > 0:
            with db_quotas.locked_write(self.db, inst["project_id"]) as s:
                limits = self.quotas.limits(s, inst["project_id"])
                usage = self.quotas.usage(s, inst["project_id"])
                asked = {"cores": max(dv, 0), "ram": max(dram, 0)}
                overs = [r for r in ("cores", "ram")
                         if asked[r] and quota.is_over(limits[r], usage[r] + asked[r])]
                if overs:
                    raise quota.TooManyInstances(
                        overs=", ".join(overs), req=", ".join(str(asked[r]) for r in overs),
                        used=", ".join(str(usage[r]) for r in overs),
                        allowed=", ".join(str(limits[r]) for r in overs))
        # (The usage grows when the destination finishes, as Nova counts it.)
        self._begin_resize(ctx, inst, "resize")
        self.conductor.migrate_server(ctx, instance_id, flavor, "resize")

    def migrate(self, ctx: RequestContext, instance_id: str,
                host_name: str | None = None) -> None:
        """Cold migrate: the same flavor on another host; ``host_name``
        (2.56) asks for that host only (400 if it is the server's own or
        no compute host has that name, as Nova)."""
        inst = self._check_resize_state(ctx, instance_id, "migrate")
        if host_name is not None:
            self._check_migrate_destination(inst, host_name)
        self._begin_resize(ctx, inst, "migrate")
        self.conductor.migrate_server(ctx, instance_id, inst["flavor"], "migration",
                                      host=host_name)

    def _check_migrate_destination(self, inst: dict[str, Any], host_name: str) -> None:
        if host_name == inst.get("host"):
            raise exception.CannotMigrateToSameHost()
        if not db_services.compute_node_get_all(self.db, host=host_name):
            raise exception.ComputeHostNotFound(host=host_name)

    def _check_resize_state(self, ctx: RequestContext, instance_id: str,
                            action: str) -> dict[str, Any]:
        inst = self._check_state(ctx, instance_id, action, (vm_states.ACTIVE, vm_states.STOPPED))
        if not inst.get("host"):
            raise exception.InstanceInvalidState(action=action, instance_uuid=instance_id,
                                                 attr="host", state=None)
        return inst

    def _begin_resize(self, ctx: RequestContext, inst: dict[str, Any], action: str) -> None:
        self._begin(ctx, inst["uuid"], action, {"task_state": vm_states.RESIZE_PREP},
                    expected_vm_state=[inst["vm_state"]])

    def _finish_resize_action(self, ctx: RequestContext, instance_id: str, action: str,
                              task_state: str) -> dict[str, Any]:
        self._start_action(ctx, instance_id, action, (vm_states.RESIZED,), task_state)
        migration = db_resizes.migration_for_instance(self.db, instance_id, ("finished",))
        if migration is None:
            db_instances.instance_update(self.db, instance_id, {"task_state": None})
            raise exception.NotFound(f"Instance {instance_id} is not resized.")
        status = "confirming" if action == "confirmResize" else "reverting"
        return db_resizes.migration_update(self.db, migration["uuid"], {"status": status})

    def confirm_resize(self, ctx: RequestContext, instance_id: str) -> None:
        migration = self._finish_resize_action(ctx, instance_id, "confirmResize",
                                               vm_states.RESIZE_CONFIRMING)
        self.compute_rpc.instance_action(ctx, migration["source_compute"], instance_id,
                                         "confirm_resize", migration=migration)

    def revert_resize(self, ctx: RequestContext, instance_id: str) -> None:
        migration = self._finish_resize_action(ctx, instance_id, "revertResize",
                                               vm_states.RESIZE_REVERTING)
        self.compute_rpc.instance_action(ctx, migration["dest_compute"], instance_id,
                                         "revert_resize", migration=migration)

    def _check_snapshot_state(self, ctx: RequestContext, instance_id: str,
                              action: str) -> dict[str, Any]:
        if self.images is None:
            raise exception.StratusException("Snapshots need the image service.")
        allowed = (vm_states.ACTIVE, vm_states.STOPPED, vm_states.PAUSED, vm_states.SUSPENDED)
        return self._check_state(ctx, instance_id, action, allowed)

    def _snapshot_image(self, ctx: RequestContext, inst: dict[str, Any], name: str,
                        metadata: dict[str, Any] | None, image_type: str = "snapshot",
                        extra: dict[str, str] | None = None) -> dict[str, Any]:
        """A queued image for a snapshot of ``inst``, inheriting its base image's
        properties, then ``metadata``, then Nova's fixed ones and ``extra``."""
        try:
            base = self.image_get(ctx.elevated(), inst["image_ref"])
        except exception.StratusException:
            base = {}
        props = {k: v for k, v in (base.get("properties") or {}).items()
                 if k not in ("instance_uuid", "image_type", "base_image_ref", "owner_id",
                              "user_id", "image_location")}
        props.update(metadata or {})
        props.update(instance_uuid=inst["uuid"], image_type=image_type,
                     base_image_ref=inst["image_ref"], user_id=ctx.user_id, **(extra or {}))
        return self.images.create(ctx, {
            "name": name, "disk_format": "qcow2", "container_format": "bare",
            "visibility": "private", "min_disk": int(inst["root_gb"] or 0),
            "min_ram": int(base.get("min_ram") or 0), **props})

    def _snapshot_and_cast(self, ctx: RequestContext, inst: dict[str, Any], action: str,
                           name: str, metadata: dict[str, Any] | None, task_state: str,
                           method: str,
                           updates: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                           image_type: str = "snapshot", extra: dict[str, str] | None = None,
                           cast_args: dict[str, Any] | None = None) -> dict[str, Any]:
        """createImage's, createBackup's and shelve's common part: a queued
        snapshot image (``image_type``, ``extra`` properties), the task state
        moved from None to ``task_state`` (with ``updates(image)``; the image
        is deleted if another request got there first), the instance action
        started and ``method`` cast to the instance's host with the image's id
        and ``cast_args``. Returns the image."""
        image = self._snapshot_image(ctx, inst, name, metadata, image_type, extra)
        values = {"task_state": task_state, **(updates(image) if updates else {})}
        try:
            self._begin(ctx, inst["uuid"], action, values)
        except exception.InstanceInvalidState:
            self.images.delete(ctx, image["id"])
            raise
        self.compute_rpc.instance_action(ctx, inst["host"], inst["uuid"], method,
                                         image_id=image["id"], **(cast_args or {}))
        return image

    def shelve(self, ctx: RequestContext, instance_id: str) -> None:
        """Snapshot the instance to ``<name>-shelved`` and free its host (Nova's
        shelve with shelved_offload_time = 0: offloaded at once)."""
        inst = self._check_snapshot_state(ctx, instance_id, "shelve")
        self._snapshot_and_cast(
            ctx, inst, "shelve", f"{inst['display_name']}-shelved", None, vm_states.SHELVING,
            "shelve_instance",
            updates=lambda image: {"request_spec": dict(inst.get("request_spec") or {},
                                                        shelved_image_id=image["id"])})

    def unshelve(self, ctx: RequestContext, instance_id: str) -> None:
        """Schedule a shelved instance again and boot it from its shelved image."""
        self._start_action(ctx, instance_id, "unshelve", (vm_states.SHELVED_OFFLOADED,),
                           vm_states.UNSHELVING)
        self.conductor.unshelve_instance(ctx, instance_id)

    def get_console_output(self, ctx: RequestContext, instance_id: str,
                           length: int | None = None) -> str:
        """The last ``length`` lines of the guest's console log (all when None),
        read from its compute host (409 when it has none yet)."""
        inst = self.get(ctx, instance_id)
        if not inst.get("host"):
            raise exception.InstanceNotReady(instance_uuid=instance_id)
        output = self.compute_rpc.get_console_output(
            ctx, inst["host"], {"uuid": inst["uuid"], "name": inst.get("name")})
        return tail_lines(output, length)

    @staticmethod
    def is_expected_locked_by(ctx: RequestContext, inst: dict[str, Any]) -> bool:
        """Nova's: a lock taken by the server's own project ("owner") may be
        undone by that project, one taken from another project ("admin") only
        by whom the unlock_override policy allows (the API checks it)."""
        expected = "owner" if inst["project_id"] == ctx.project_id else "admin"
        return not (inst["locked_by"] and inst["locked_by"] != expected)

    def lock(self, ctx: RequestContext, instance_id: str, reason: str | None = None) -> None:
        """Lock the server; a ``reason`` (2.73) is kept until it is unlocked
        (as Nova, a lock without one leaves an earlier reason in place)."""
        inst = self.get(ctx, instance_id)
        db_instances.action_start(self.db, instance_id, "lock", ctx.request_id,
                                  ctx.user_id, ctx.project_id)
        updates: dict[str, Any] = {
            "locked": True,
            "locked_by": "owner" if inst["project_id"] == ctx.project_id else "admin"}
        if reason:
            updates["locked_reason"] = reason
        db_instances.instance_update(self.db, instance_id, updates)

    def reset_state(self, ctx: RequestContext, instance_id: str, vm_state: str) -> None:
        """Nova's os-resetState (an admin's repair): the vm state becomes
        ``vm_state`` (active or error) and the task state none, whatever they
        were and whether or not the server is locked; recorded as a
        ``resetState`` action. An operation still running on the host then
        finds its task state gone and stands down, as it does when overtaken."""
        self.get(ctx, instance_id)
        db_instances.action_start(self.db, instance_id, "resetState", ctx.request_id,
                                  ctx.user_id, ctx.project_id)
        db_instances.instance_update(self.db, instance_id,
                                     {"vm_state": vm_state, "task_state": None})

    def unlock(self, ctx: RequestContext, instance_id: str) -> None:
        self.get(ctx, instance_id)
        db_instances.action_start(self.db, instance_id, "unlock", ctx.request_id,
                                  ctx.user_id, ctx.project_id)
        db_instances.instance_update(self.db, instance_id, {"locked": False, "locked_by": None,
                                                            "locked_reason": None})

    # -- metadata ----------------------------------------------------------------
    def get_metadata(self, ctx: RequestContext, instance_id: str) -> dict[str, str]:
        return self.get(ctx, instance_id)["metadata"]

    def update_metadata(self, ctx: RequestContext, instance_id: str, items: dict[str, str],
                        replace: bool = False) -> dict[str, str]:
        inst = self.get(ctx, instance_id)
        self._check_locked(ctx, inst)

        def check(s: Session, project_id: str, count: int) -> None:
            quota.check_metadata(self.quotas.limits(s, project_id), count)

        return db_instances.metadata_update(self.db, instance_id, items, replace, check=check)

    def delete_metadata_item(self, ctx: RequestContext, instance_id: str, key: str) -> None:
        inst = self.get(ctx, instance_id)
        self._check_locked(ctx, inst)
        metadata = dict(inst["metadata"])
        if key not in metadata:
            raise exception.NotFound("Metadata item was not found")
        del metadata[key]
        db_instances.metadata_update(self.db, instance_id, metadata, replace=True)

    # -- instance actions ----------------------------------------------------------
    def get_actions(self, ctx: RequestContext, instance_id: str,
                    read_deleted: bool = False) -> list[dict[str, Any]]:
        self.get(ctx, instance_id, read_deleted)
        return db_instances.actions_get(self.db, instance_id)

    def get_action(self, ctx: RequestContext, instance_id: str,
                   request_id: str, read_deleted: bool = False) -> dict[str, Any]:
        self.get(ctx, instance_id, read_deleted)
        action = db_instances.action_get(self.db, instance_id, request_id)
        if action is None:
            raise exception.NotFound(f"Action {request_id} on instance {instance_id} "
                                     f"could not be found.")
        return action
