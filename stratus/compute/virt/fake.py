"""A hypervisor simulated in memory, for tests, development and benchmarks.

Guests are records in a dict guarded by one lock; power states move as a
QEMU/KVM guest's would, resources are counted from the guests held, and
each operation can be made to take ``delay`` seconds (slept outside the lock,
so operations on different guests overlap as on a real host).

Options (the ``[fake]`` config section):

``vcpus`` (64), ``memory_mb`` (131072), ``local_gb`` (2048)
    The simulated host's physical resources.
``hypervisor_hostname`` (the host name)
    The one node this driver reports.
``host_ip`` (None)
    Reported in :class:`HostResources`.
``delay`` (0.0)
    Seconds every guest operation takes.
``fail_spawn_pattern`` (None)
    A regular expression; spawning an instance whose ``display_name`` it
    matches (``re.search``) raises VirtDriverError after the delay, leaving
    nothing behind.

A guest uses ``vcpus``, ``memory_mb`` and ``root_gb + ephemeral_gb +
ceil(swap / 1024)`` GB of local disk (Placement's DISK_GB), in every power
state; disks kept for a resize in progress count towards ``local_gb_used``
only. :meth:`FakeDriver.snapshot` returns a small raw image: a
``STRATUS-FAKE-DISK`` header line followed by a JSON description of the guest
(instance uuid, image id, base image, root_gb).
"""
from __future__ import annotations

import collections
import dataclasses
import json
import math
import re
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from stratus import exception
from stratus.compute import power_state, vm_states
from stratus.compute.virt import driver
from stratus.compute.virt.driver import (
    BlockDeviceInfo, DeviceNotFoundInDriver, HostResources, ImageMeta, Instance, InstanceInfo,
    InstanceNotFoundInDriver, NetworkInfo, SnapshotImage, UpdateTaskState)

if TYPE_CHECKING:
    from stratus.context import RequestContext

HYPERVISOR_TYPE = "fake"
HYPERVISOR_VERSION = 1000
CONSOLE_MAX_LINES = 1000
SNAPSHOT_MAGIC = b"STRATUS-FAKE-DISK\n"

_OPTION_DEFAULTS: dict[str, Any] = {
    "vcpus": 64,
    "memory_mb": 131072,
    "local_gb": 2048,
    "hypervisor_hostname": None,
    "host_ip": None,
    "delay": 0.0,
    "fail_spawn_pattern": None,
}


@dataclasses.dataclass
class _Guest:
    uuid: str
    internal_id: str
    state: int
    vcpus: int
    memory_mb: int
    root_gb: int
    disk_gb: int
    image_ref: str | None
    boot_log: tuple[str, ...]
    volumes: dict[str, Mapping[str, Any]]
    rescue_image_ref: str | None = None
    crash_dumps: int = 0  # NMIs injected (trigger_crash_dump)
    console: collections.deque[str] = dataclasses.field(
        default_factory=lambda: collections.deque(maxlen=CONSOLE_MAX_LINES))

    def boot(self) -> None:
        self.console.extend(self.boot_log)
        self.state = power_state.RUNNING


class FakeDriver(driver.ComputeDriver):
    """An in-memory hypervisor with one node (see the module docstring)."""

    capabilities = {
        "has_imagecache": False,
        "supports_evacuate": True,
        "supports_migrate_to_same_host": True,
        "supports_multiattach": True,
    }

    def __init__(self, host: str, options: Mapping[str, Any]) -> None:
        super().__init__(host, options)
        settings = self.settings("fake", options, _OPTION_DEFAULTS)
        self.vcpus = _positive_int(settings, "vcpus")
        self.memory_mb = _positive_int(settings, "memory_mb")
        self.local_gb = _positive_int(settings, "local_gb")
        self.hypervisor_hostname = str(settings["hypervisor_hostname"] or host)
        self.host_ip: str | None = settings["host_ip"]
        self.delay = _non_negative_float(settings, "delay")
        self.fail_spawn_pattern = _compile_pattern(settings["fail_spawn_pattern"])
        self._lock = threading.Lock()
        self._guests: dict[str, _Guest] = {}
        # Powered-off guests whose disks are kept for a resize in progress.
        self._resize_sources: dict[str, _Guest] = {}
        self._next_internal_id = 1
        self.initialized = False

    # -- fake-only hooks -------------------------------------------------------

    def set_power_state(self, instance_uuid: str, state: int) -> None:
        """Simulate the guest changing state on its own (it shuts itself down,
        crashes...), as the manager's power-state sync would discover it."""
        if state not in power_state.STATE_MAP:
            raise ValueError(f"not a power state: {state!r}")
        with self._lock:
            self._get_guest(instance_uuid).state = state

    # -- host lifecycle --------------------------------------------------------

    def init_host(self, host: str) -> None:
        if host != self.host:
            raise exception.ConfigError(
                reason=f"fake driver was created for host {self.host!r}, not {host!r}")
        self.initialized = True

    def cleanup_host(self, host: str) -> None:
        self.initialized = False

    # -- inventory -------------------------------------------------------------

    def get_info(self, instance: Instance) -> InstanceInfo:
        with self._lock:
            guest = self._get_guest(instance["uuid"])
            return InstanceInfo(state=guest.state, internal_id=guest.internal_id)

    def list_instances(self) -> list[str]:
        with self._lock:
            return list(self._guests)

    def get_available_nodes(self) -> list[str]:
        return [self.hypervisor_hostname]

    def get_available_resource(self, nodename: str) -> HostResources:
        if nodename != self.hypervisor_hostname:
            raise exception.VirtDriverError(
                reason=f"node {nodename!r} is not managed by this host "
                       f"(managed: {self.hypervisor_hostname!r})")
        with self._lock:
            guests = list(self._guests.values())
            kept_disk_gb = sum(g.disk_gb for g in self._resize_sources.values())
        return HostResources(
            vcpus=self.vcpus,
            memory_mb=self.memory_mb,
            local_gb=self.local_gb,
            vcpus_used=sum(g.vcpus for g in guests),
            memory_mb_used=sum(g.memory_mb for g in guests),
            local_gb_used=sum(g.disk_gb for g in guests) + kept_disk_gb,
            hypervisor_type=HYPERVISOR_TYPE,
            hypervisor_version=HYPERVISOR_VERSION,
            hypervisor_hostname=self.hypervisor_hostname,
            cpu_info=json.dumps({
                "arch": "x86_64", "model": "fake", "vendor": "Stratus",
                "topology": {"sockets": 1, "cores": self.vcpus, "threads": 1},
                "features": []}),
            host_ip=self.host_ip,
            running_vms=len(guests),
        )

    # -- lifecycle -------------------------------------------------------------

    def spawn(self, context: RequestContext, instance: Instance, image_meta: ImageMeta,
              injected_files: list[tuple[str, bytes]], admin_password: str | None,
              network_info: NetworkInfo | None = None,
              block_device_info: BlockDeviceInfo | None = None) -> None:
        self._simulate_work()
        display_name = instance.get("display_name") or ""
        if self.fail_spawn_pattern is not None and self.fail_spawn_pattern.search(display_name):
            raise exception.VirtDriverError(
                reason=f"simulated spawn failure for instance {instance['uuid']} "
                       f"({display_name!r} matches {self.fail_spawn_pattern.pattern!r})")
        guest = self._new_guest(instance, image_meta.get("id") or instance.get("image_ref"),
                                _boot_log(instance, network_info, injected_files),
                                _volumes_from(block_device_info))
        with self._lock:
            if instance["uuid"] in self._guests:
                raise exception.VirtDriverError(
                    reason=f"a guest with uuid {instance['uuid']} already exists")
            guest.boot()
            self._guests[guest.uuid] = guest

    def destroy(self, context: RequestContext, instance: Instance,
                network_info: NetworkInfo | None = None,
                block_device_info: BlockDeviceInfo | None = None,
                destroy_disks: bool = True) -> None:
        self._simulate_work()
        with self._lock:
            self._guests.pop(instance["uuid"], None)
            if destroy_disks:
                self._resize_sources.pop(instance["uuid"], None)

    def reboot(self, context: RequestContext, instance: Instance,
               network_info: NetworkInfo | None, reboot_type: str,
               block_device_info: BlockDeviceInfo | None = None) -> None:
        if reboot_type not in driver.REBOOT_TYPES:
            raise ValueError(f"reboot_type must be one of {driver.REBOOT_TYPES}, "
                             f"not {reboot_type!r}")
        self._simulate_work()
        with self._lock:
            guest = self._get_guest(instance["uuid"])
            if reboot_type == "SOFT" and guest.state == power_state.RUNNING:
                guest.console.append("reboot: Restarting system")
            guest.boot()

    def power_off(self, instance: Instance, timeout: int = 0, retry_interval: int = 0) -> None:
        self._simulate_work()
        with self._lock:
            self._power_off(self._get_guest(instance["uuid"]), clean=timeout > 0)

    def power_on(self, context: RequestContext, instance: Instance,
                 network_info: NetworkInfo | None,
                 block_device_info: BlockDeviceInfo | None = None) -> None:
        self._simulate_work()
        with self._lock:
            guest = self._get_guest(instance["uuid"])
            if guest.state == power_state.RUNNING:
                return
            _require_state(guest, "power on", power_state.SHUTDOWN, power_state.CRASHED)
            guest.boot()

    def pause(self, instance: Instance) -> None:
        self._transition(instance, "pause", (power_state.RUNNING,), power_state.PAUSED)

    def unpause(self, instance: Instance) -> None:
        self._transition(instance, "unpause", (power_state.PAUSED,), power_state.RUNNING)

    def suspend(self, context: RequestContext, instance: Instance) -> None:
        self._transition(instance, "suspend", (power_state.RUNNING, power_state.PAUSED),
                         power_state.SUSPENDED)

    def resume(self, context: RequestContext, instance: Instance,
               network_info: NetworkInfo | None,
               block_device_info: BlockDeviceInfo | None = None) -> None:
        self._transition(instance, "resume", (power_state.SUSPENDED,), power_state.RUNNING)

    # -- rescue ----------------------------------------------------------------

    def rescue(self, context: RequestContext, instance: Instance,
               network_info: NetworkInfo | None, image_meta: ImageMeta,
               rescue_password: str | None,
               block_device_info: BlockDeviceInfo | None = None) -> None:
        self._simulate_work()
        with self._lock:
            guest = self._get_guest(instance["uuid"])
            guest.rescue_image_ref = image_meta.get("id")
            guest.console.append(f"Rescue system from image {guest.rescue_image_ref}: "
                                 f"original root disk at /dev/vdb")
            guest.state = power_state.RUNNING

    def unrescue(self, context: RequestContext, instance: Instance) -> None:
        self._simulate_work()
        with self._lock:
            guest = self._get_guest(instance["uuid"])
            if guest.rescue_image_ref is None:
                raise exception.VirtDriverError(
                    reason=f"instance {guest.uuid} is not rescued")
            guest.rescue_image_ref = None
            guest.boot()

    def trigger_crash_dump(self, instance: Instance) -> None:
        """Records the NMI (``crash_dumps``) and logs it on the console, as a
        kernel without kdump would; the guest keeps running."""
        self._simulate_work()
        with self._lock:
            guest = self._get_guest(instance["uuid"])
            _require_state(guest, "trigger a crash dump of", power_state.RUNNING,
                           power_state.PAUSED)
            guest.crash_dumps += 1
            guest.console.append("[  100.000000] Uhhuh. NMI received for unknown reason 00 "
                                 "on CPU 0.")

    # -- console and snapshots ------------------------------------------------

    def get_console_output(self, context: RequestContext, instance: Instance) -> str:
        with self._lock:
            guest = self._get_guest(instance["uuid"])
            return "".join(line + "\n" for line in guest.console)

    def manage_image_cache(self, context: RequestContext,
                           all_instances: list[Instance]) -> None:
        return None  # no image cache: guests are records

    def snapshot(self, context: RequestContext, instance: Instance, image_id: str,
                 update_task_state: UpdateTaskState) -> SnapshotImage:
        with self._lock:
            guest = self._get_guest(instance["uuid"])
            description = {"instance_uuid": guest.uuid, "image_id": image_id,
                           "base_image_ref": guest.image_ref, "root_gb": guest.root_gb}
        update_task_state(task_state=vm_states.IMAGE_PENDING_UPLOAD)
        self._simulate_work()
        data = SNAPSHOT_MAGIC + json.dumps(description, sort_keys=True).encode()
        update_task_state(task_state=vm_states.IMAGE_UPLOADING,
                          expected_state=vm_states.IMAGE_PENDING_UPLOAD)
        return SnapshotImage(disk_format="raw", container_format="bare",
                             chunks=(data,), size=len(data))

    # -- resize and cold migration ---------------------------------------------

    def migrate_disk_and_power_off(self, context: RequestContext, instance: Instance,
                                   dest: str, flavor: Mapping[str, Any],
                                   network_info: NetworkInfo | None,
                                   block_device_info: BlockDeviceInfo | None = None,
                                   timeout: int = 0, retry_interval: int = 0) -> str:
        self._simulate_work()
        with self._lock:
            guest = self._get_guest(instance["uuid"])
            new_root_gb = int(flavor.get("root_gb", 0))
            if new_root_gb < guest.root_gb:
                raise exception.VirtDriverError(
                    reason=f"unable to resize disk down: instance {guest.uuid} root disk "
                           f"is {guest.root_gb} GB, flavor {flavor.get('name')!r} "
                           f"has {new_root_gb} GB")
            self._power_off(guest, clean=timeout > 0)
            self._resize_sources[guest.uuid] = self._guests.pop(guest.uuid)
        return json.dumps([{"type": "raw", "path": f"/fake/{guest.uuid}/disk",
                            "virt_disk_size": guest.root_gb * 1024 ** 3, "dest": dest}])

    def finish_migration(self, context: RequestContext, migration: Mapping[str, Any],
                         instance: Instance, disk_info: str,
                         network_info: NetworkInfo | None, image_meta: ImageMeta,
                         resize_instance: bool,
                         block_device_info: BlockDeviceInfo | None = None,
                         power_on: bool = True) -> None:
        disks = json.loads(disk_info)
        if not isinstance(disks, list) or not disks:
            raise exception.VirtDriverError(
                reason=f"instance {instance['uuid']}: disk_info lists no disks")
        self._simulate_work()
        guest = self._new_guest(instance, instance.get("image_ref"),
                                _boot_log(instance, network_info, []),
                                _volumes_from(block_device_info))
        guest.state = power_state.SHUTDOWN
        with self._lock:
            if instance["uuid"] in self._guests:
                raise exception.VirtDriverError(
                    reason=f"a guest with uuid {instance['uuid']} already exists")
            if power_on:
                guest.boot()
            self._guests[guest.uuid] = guest

    def confirm_migration(self, context: RequestContext, migration: Mapping[str, Any],
                          instance: Instance, network_info: NetworkInfo | None) -> None:
        self._simulate_work()
        with self._lock:
            self._resize_sources.pop(instance["uuid"], None)

    def finish_revert_migration(self, context: RequestContext, instance: Instance,
                                network_info: NetworkInfo | None,
                                migration: Mapping[str, Any],
                                block_device_info: BlockDeviceInfo | None = None,
                                power_on: bool = True) -> None:
        self._simulate_work()
        with self._lock:
            guest = self._resize_sources.pop(instance["uuid"], None)
            if guest is None:
                raise InstanceNotFoundInDriver(instance_uuid=instance["uuid"])
            if power_on:
                guest.boot()
            self._guests[guest.uuid] = guest

    # -- volumes ---------------------------------------------------------------

    def attach_volume(self, context: RequestContext, connection_info: Mapping[str, Any],
                      instance: Instance, mountpoint: str, disk_bus: str | None = None,
                      device_type: str | None = None,
                      encryption: Mapping[str, Any] | None = None) -> None:
        self._simulate_work()
        with self._lock:
            guest = self._get_guest(instance["uuid"])
            if mountpoint in guest.volumes:
                raise exception.VirtDriverError(
                    reason=f"instance {guest.uuid} already has a volume at {mountpoint}")
            guest.volumes[mountpoint] = dict(connection_info)

    def detach_volume(self, context: RequestContext, connection_info: Mapping[str, Any],
                      instance: Instance, mountpoint: str,
                      encryption: Mapping[str, Any] | None = None) -> None:
        self._simulate_work()
        with self._lock:
            guest = self._get_guest(instance["uuid"])
            if guest.volumes.pop(mountpoint, None) is None:
                raise DeviceNotFoundInDriver(mountpoint=mountpoint, instance_uuid=guest.uuid)

    # -- helpers ---------------------------------------------------------------

    def _simulate_work(self) -> None:
        if self.delay > 0:
            time.sleep(self.delay)

    def _get_guest(self, instance_uuid: str) -> _Guest:
        guest = self._guests.get(instance_uuid)
        if guest is None:
            raise InstanceNotFoundInDriver(instance_uuid=instance_uuid)
        return guest

    def _new_guest(self, instance: Instance, image_ref: str | None,
                   boot_log: tuple[str, ...], volumes: dict[str, Mapping[str, Any]]) -> _Guest:
        with self._lock:
            internal_id = f"fake-{self._next_internal_id}"
            self._next_internal_id += 1
        return _Guest(
            uuid=instance["uuid"], internal_id=internal_id, state=power_state.NOSTATE,
            vcpus=int(instance["vcpus"]), memory_mb=int(instance["memory_mb"]),
            root_gb=int(instance["root_gb"]), disk_gb=_disk_gb(instance),
            image_ref=image_ref, boot_log=boot_log, volumes=volumes)

    def _transition(self, instance: Instance, action: str, allowed: tuple[int, ...],
                    new_state: int) -> None:
        self._simulate_work()
        with self._lock:
            guest = self._get_guest(instance["uuid"])
            _require_state(guest, action, *allowed)
            guest.state = new_state

    @staticmethod
    def _power_off(guest: _Guest, clean: bool) -> None:
        if clean and guest.state == power_state.RUNNING:
            guest.console.append("reboot: Power down")
        guest.state = power_state.SHUTDOWN


def _require_state(guest: _Guest, action: str, *allowed: int) -> None:
    if guest.state not in allowed:
        raise exception.VirtDriverError(
            reason=f"cannot {action} instance {guest.uuid} in power state "
                   f"{power_state.STATE_MAP.get(guest.state, guest.state)}")


def _disk_gb(instance: Instance) -> int:
    swap_mb = int(instance.get("swap") or 0)
    return (int(instance["root_gb"]) + int(instance.get("ephemeral_gb") or 0)
            + math.ceil(swap_mb / 1024))


def _volumes_from(block_device_info: BlockDeviceInfo | None) -> dict[str, Mapping[str, Any]]:
    mappings = (block_device_info or {}).get("block_device_mapping") or []
    return {bdm["mount_device"]: dict(bdm.get("connection_info") or {})
            for bdm in mappings if bdm.get("mount_device")}


def _fixed_ips(vif: Mapping[str, Any]) -> list[str]:
    subnets = (vif.get("network") or {}).get("subnets") or []
    return [ip["address"] for subnet in subnets for ip in subnet.get("ips") or []
            if ip.get("address")]


def _boot_log(instance: Instance, network_info: NetworkInfo | None,
              injected_files: list[tuple[str, bytes]]) -> tuple[str, ...]:
    hostname = instance.get("display_name") or instance["name"]
    root_sectors = int(instance["root_gb"]) * 1024 ** 3 // 512
    lines = [
        "[    0.000000] Linux version 6.1.0-stratus-fake (builder@stratus) #1 SMP",
        "[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz root=/dev/vda1 ro console=ttyS0",
        f"[    0.000000] DMI: Stratus fake hypervisor, instance {instance['name']}",
        f"[    0.004000] Memory: {int(instance['memory_mb']) * 1024}K available",
        f"[    0.012000] smpboot: Allowing {int(instance['vcpus'])} CPUs, 0 hotplug CPUs",
        f"[    0.350000] virtio_blk virtio1: [vda] {root_sectors} 512-byte logical blocks",
        "[    1.204000] EXT4-fs (vda1): mounted filesystem with ordered data mode",
        "cloud-init[412]: Cloud-init v. 23.4 running 'init' (fake datasource)",
    ]
    for index, vif in enumerate(network_info or []):
        addresses = ", ".join(_fixed_ips(vif)) or "no address"
        lines.append(f"cloud-init[412]: ci-info: eth{index} {vif.get('address', '-')} {addresses}")
    lines.append(f"cloud-init[412]: Set hostname to <{hostname}>")
    lines.extend(f"cloud-init[412]: Wrote injected file {path}" for path, _ in injected_files)
    if instance.get("key_data"):
        lines.append("cloud-init[412]: Authorized SSH key for the default user")
    if instance.get("user_data"):
        lines.append("cloud-init[412]: Processing user-data")
    lines += [
        "cloud-init[412]: Cloud-init v. 23.4 finished",
        "",
        f"Stratus fake OS {hostname} ttyS0",
        "",
        f"{hostname} login: ",
    ]
    return tuple(lines)


def _positive_int(settings: Mapping[str, Any], key: str) -> int:
    value = settings[key]
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise exception.ConfigError(reason=f"fake driver option {key} must be an integer")
    try:
        number = int(value)
    except ValueError:
        raise exception.ConfigError(
            reason=f"fake driver option {key} must be an integer, not {value!r}") from None
    if number < 1:
        raise exception.ConfigError(reason=f"fake driver option {key} must be >= 1")
    return number


def _non_negative_float(settings: Mapping[str, Any], key: str) -> float:
    value = settings[key]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise exception.ConfigError(
            reason=f"fake driver option {key} must be a number, not {value!r}") from None
    if not number >= 0:
        raise exception.ConfigError(reason=f"fake driver option {key} must be >= 0")
    return number


def _compile_pattern(pattern: str | None) -> re.Pattern[str] | None:
    if pattern is None or pattern == "":
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise exception.ConfigError(
            reason=f"fake driver option fail_spawn_pattern is not a valid regex: {exc}") from None
