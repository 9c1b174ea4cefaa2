"""The libvirt/QEMU driver: real guests.

Each instance is a persistent libvirt domain whose uuid is the instance's,
named ``<instance name>-<first 8 hex of the uuid>`` (unique even when
several deployments share one libvirtd), with its files in
``INSTANCES_PATH/<uuid>/``::

    disk          qcow2 overlay on the cached base image, the flavor's root_gb big
    disk.eph0     ephemeral disk (raw, ext4 "ephemeral0"), if the flavor has one
    disk.swap     swap disk (raw, mkswap), if the flavor has swap
    disk.config   the config drive (ISO 9660 "config-2"), when asked for or forced
    kernel, ramdisk   hard links to the cached kernel_id / ramdisk_id images
    console.log   the serial console, appended by virtlogd across boots
    bases.json    the cached files this guest uses (for the image cache cleanup)

Domains carry the instances directory in their ``<metadata>``; this driver
lists and manages only the domains of its own directory.

Options (from ``[libvirt]``, see :mod:`stratus.conf.opts`): ``virt_type``,
``connection_uri``, ``instances_path``, ``images_path``,
``wait_soft_reboot_seconds``, ``image_cache_max_age``; and
``force_config_drive`` (``[DEFAULT]``) and ``image_client`` (an
:class:`stratus.image.client.ImageClient`, or any object with ``get(id)``
and ``download(id)``).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import libvirt

from stratus import exception
from stratus.utils import is_uuid_like
from stratus.compute import power_state, vm_states
from stratus.compute.virt import driver
from stratus.compute.virt.driver import (
    BlockDeviceInfo, HostResources, ImageMeta, Instance, InstanceInfo,
    InstanceNotFoundInDriver, NetworkInfo, SnapshotImage)
from stratus.compute.virt.libvirt import config, configdrive, disk, imagecache

if TYPE_CHECKING:
    from stratus.context import RequestContext

LOG = logging.getLogger(__name__)
# libvirt prints every error to stderr by default; they are raised as exceptions.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

HYPERVISOR_TYPE = "QEMU"
#: Most console output returned (Nova's MAX_CONSOLE_BYTES).
MAX_CONSOLE_BYTES = 100 * 1024
DEFAULT_CMDLINE = "root=/dev/vda console=tty0 console=ttyS0"
_OPTIONS = {"virt_type": "kvm", "connection_uri": "qemu:///system", "instances_path": None,
            "images_path": None, "wait_soft_reboot_seconds": 120.0,
            "image_cache_max_age": 86400.0, "force_config_drive": False,
            "image_client": None}
_STATE = {
    libvirt.VIR_DOMAIN_NOSTATE: power_state.NOSTATE,
    libvirt.VIR_DOMAIN_RUNNING: power_state.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: power_state.RUNNING,
    libvirt.VIR_DOMAIN_PAUSED: power_state.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: power_state.SHUTDOWN,
    libvirt.VIR_DOMAIN_SHUTOFF: power_state.SHUTDOWN,
    libvirt.VIR_DOMAIN_CRASHED: power_state.CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: power_state.SUSPENDED,
}


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)


class LibvirtDriver(driver.ComputeDriver):
    capabilities = {
        "has_imagecache": True,
        "supports_evacuate": False,
        "supports_migrate_to_same_host": False,
        "supports_multiattach": False,
    }

    def __init__(self, host: str, options: Mapping[str, Any]) -> None:
        super().__init__(host, options)
        settings = self.settings("libvirt", options, _OPTIONS)
        self.virt_type = settings["virt_type"]
        if self.virt_type not in ("kvm", "qemu"):
            raise exception.ConfigError(
                reason=f"[libvirt] virt_type must be kvm or qemu, not {self.virt_type!r}")
        self.uri = settings["connection_uri"] or "qemu:///system"
        if not settings["instances_path"]:
            raise exception.ConfigError(reason="[libvirt] instances_path is not set")
        self.instances_path = os.path.abspath(settings["instances_path"])
        self.images_path = os.path.abspath(settings["images_path"] or
                                           os.path.join(self.instances_path, "_base"))
        self.soft_reboot_wait = float(settings["wait_soft_reboot_seconds"])
        self.image_cache_max_age = float(settings["image_cache_max_age"])
        self.force_config_drive = _truthy(settings["force_config_drive"])
        self.image_client = settings["image_client"]
        self.disk_cache = "none"
        self._conn: libvirt.virConnect | None = None
        self._conn_lock = threading.Lock()
        self._imagecache: imagecache.ImageCache | None = None

    # -- connection --------------------------------------------------------------------
    def _connection(self) -> libvirt.virConnect:
        with self._conn_lock:
            if self._conn is not None:
                try:
                    if self._conn.isAlive():
                        return self._conn
                except libvirt.libvirtError:
                    pass
                LOG.warning("Lost the libvirt connection to %s: reconnecting", self.uri)
                self._conn = None
            try:
                self._conn = libvirt.open(self.uri)
            except libvirt.libvirtError as exc:
                raise exception.VirtDriverError(
                    reason=f"cannot connect to libvirt at {self.uri}: "
                           f"{exc.get_error_message()}") from None
            return self._conn

    @property
    def imagecache(self) -> imagecache.ImageCache:
        if self._imagecache is None:
            if self.image_client is None:
                raise exception.VirtDriverError(
                    reason="the libvirt driver has no image client: cannot fetch images")
            self._imagecache = imagecache.ImageCache(
                self.images_path, self.image_client.get, self.image_client.download)
        return self._imagecache

    # -- host lifecycle -------------------------------------------------------------------
    def init_host(self, host: str) -> None:
        if self.virt_type == "kvm" and not os.path.exists("/dev/kvm"):
            raise exception.ConfigError(
                reason="[libvirt] virt_type = kvm needs /dev/kvm; use virt_type = qemu")
        for path in (self.instances_path, self.images_path):
            os.makedirs(path, mode=0o755, exist_ok=True)
        # Snapshots whose upload a stop interrupted.
        shutil.rmtree(os.path.join(self.instances_path, "_snapshots"), ignore_errors=True)
        conn = self._connection()
        self._remove_stale_instance_dirs()
        self.disk_cache = "none" if disk.supports_direct_io(self.instances_path) else "writeback"
        _warn_if_unreachable(self.instances_path)
        LOG.info("libvirt driver: %s (libvirt %s, QEMU %s), virt_type=%s, instances in %s, "
                 "disk cache=%s", self.uri, _version(conn.getLibVersion()),
                 _version(conn.getVersion()), self.virt_type, self.instances_path,
                 self.disk_cache)

    def _remove_stale_instance_dirs(self) -> None:
        """Instance directories with no domain: left by a spawn the service died in
        (the manager puts such builds in ERROR, and their guests never existed)."""
        domains = set(self.list_instances())
        for name in os.listdir(self.instances_path):
            path = os.path.join(self.instances_path, name)
            if is_uuid_like(name) and name not in domains and os.path.isdir(path):
                LOG.warning("Removing %s: no guest uses it", path)
                shutil.rmtree(path, ignore_errors=True)

    def cleanup_host(self, host: str) -> None:
        with self._conn_lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                except libvirt.libvirtError:
                    pass
                self._conn = None

    # -- domains -------------------------------------------------------------------------
    def _domain_name(self, instance: Instance) -> str:
        return f"{instance.get('name') or 'instance'}-{instance['uuid'][:8]}"

    def _instance_dir(self, uuid: str) -> str:
        return os.path.join(self.instances_path, uuid)

    def _lookup(self, uuid: str) -> libvirt.virDomain:
        try:
            return self._connection().lookupByUUIDString(uuid)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise InstanceNotFoundInDriver(instance_uuid=uuid) from None
            raise _error(exc, f"looking up instance {uuid}") from None

    def _owned(self, dom: libvirt.virDomain) -> bool:
        try:
            owner = config.read_owner(dom.XMLDesc(0))
        except libvirt.libvirtError:
            return False
        return owner.get("instances_path") == self.instances_path

    def _state(self, dom: libvirt.virDomain) -> int:
        state, _reason = dom.state()
        if state == libvirt.VIR_DOMAIN_SHUTOFF and dom.hasManagedSaveImage(0):
            return power_state.SUSPENDED
        return _STATE.get(state, power_state.NOSTATE)

    def _wait_for(self, dom: libvirt.virDomain, states: tuple[int, ...],
                  timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self._state(dom) in states:
                    return True
            except libvirt.libvirtError:
                pass
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)

    # -- inventory -------------------------------------------------------------------------
    def get_info(self, instance: Instance) -> InstanceInfo:
        dom = self._lookup(instance["uuid"])
        try:
            state = self._state(dom)
            internal = str(dom.ID()) if dom.isActive() else None
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise InstanceNotFoundInDriver(instance_uuid=instance["uuid"]) from None
            raise _error(exc, "reading the guest's state") from None
        return InstanceInfo(state=state, internal_id=internal)

    def list_instances(self) -> list[str]:
        return [dom.UUIDString() for dom in self._domains()]

    def _domains(self) -> list[libvirt.virDomain]:
        try:
            domains = self._connection().listAllDomains(0)
        except libvirt.libvirtError as exc:
            raise _error(exc, "listing domains") from None
        return [d for d in domains if self._owned(d)]

    def instance_exists(self, instance: Instance) -> bool:
        try:
            self._lookup(instance["uuid"])
            return True
        except InstanceNotFoundInDriver:
            return False

    def get_available_nodes(self) -> list[str]:
        return [self.host]

    def get_available_resource(self, nodename: str) -> HostResources:
        if nodename != self.host:
            raise exception.VirtDriverError(reason=f"node {nodename!r} is not managed here")
        conn = self._connection()
        _model, memory_mb, cpus, *_ = conn.getInfo()
        fs = os.statvfs(self.instances_path)
        total_gb = fs.f_frsize * fs.f_blocks // 1024 ** 3
        free_gb = fs.f_frsize * fs.f_bavail // 1024 ** 3
        vcpus_used = memory_used = 0
        domains = self._domains()
        for dom in domains:
            try:
                _state, max_mem_kib, _mem, nr_vcpus, _cpu_time = dom.info()
            except libvirt.libvirtError:
                continue
            vcpus_used += nr_vcpus
            memory_used += max_mem_kib // 1024
        return HostResources(
            vcpus=int(cpus), memory_mb=int(memory_mb), local_gb=int(total_gb),
            vcpus_used=vcpus_used, memory_mb_used=memory_used,
            local_gb_used=int(total_gb - free_gb), hypervisor_type=HYPERVISOR_TYPE,
            hypervisor_version=int(conn.getVersion()), hypervisor_hostname=self.host,
            cpu_info=json.dumps(_cpu_info(conn.getCapabilities())), host_ip=None,
            running_vms=len(domains))

    # -- spawn / destroy --------------------------------------------------------------------
    def spawn(self, context: RequestContext, instance: Instance, image_meta: ImageMeta,
              injected_files: list[tuple[str, bytes]], admin_password: str | None,
              network_info: NetworkInfo | None = None,
              block_device_info: BlockDeviceInfo | None = None) -> None:
        uuid = instance["uuid"]
        started = time.monotonic()
        if self.instance_exists(instance):
            raise exception.VirtDriverError(reason=f"a guest with uuid {uuid} already exists")
        inst_dir = self._instance_dir(uuid)
        dom = None
        try:
            if os.path.exists(inst_dir):  # left by a crash: no domain uses it
                shutil.rmtree(inst_dir, ignore_errors=True)
            os.makedirs(inst_dir, mode=0o755)
            spec = self._prepare(instance, image_meta, injected_files, admin_password,
                                 network_info, inst_dir)
            xml = config.domain_xml(spec)
            conn = self._connection()
            dom = conn.defineXML(xml)
            dom.create()
            if not self._wait_for(dom, (power_state.RUNNING,), 30):
                raise exception.VirtDriverError(reason=f"guest {uuid} did not start")
        except BaseException as exc:
            LOG.warning("Spawning %s failed (%s): removing what was made", uuid, exc)
            self._cleanup(uuid, dom, inst_dir)
            if isinstance(exc, libvirt.libvirtError):
                raise _error(exc, "starting the guest") from exc
            if isinstance(exc, OSError):
                raise exception.VirtDriverError(reason=f"spawn failed: {exc}") from exc
            raise
        LOG.info("Guest %s (%s) started in %.2f s", uuid, spec.name,
                 time.monotonic() - started)

    def _prepare(self, instance: Instance, image_meta: ImageMeta,
                 injected_files: list[tuple[str, bytes]], admin_password: str | None,
                 network_info: NetworkInfo | None, inst_dir: str) -> config.GuestSpec:
        image_id = image_meta.get("id") or instance.get("image_ref")
        if not image_id:
            raise exception.VirtDriverError(reason="no image to boot from")
        base = self.imagecache.fetch(str(image_id))
        if base.format in ("kernel", "ramdisk"):
            raise exception.Invalid(f"Image {image_id} is a {base.format} "
                                    f"({base.image.get('disk_format')}), not a bootable disk.")
        bases = [base.path]
        flavor = instance.get("flavor") or {}
        disks: list[config.Disk] = []

        # Root disk: an overlay on the base, grown to root_gb.
        virtual_size = int(disk.info(base.path, base.format)["virtual-size"])
        root_gb = int(instance.get("root_gb") or 0)
        size = root_gb * disk.GiB if root_gb else None
        if size is not None and size < virtual_size:
            raise exception.Invalid(
                f"Flavor's disk is too small for requested image: the image's virtual size "
                f"is {virtual_size} bytes, the flavor's root disk {root_gb} GB.")
        root = os.path.join(inst_dir, "disk")
        disk.create_overlay(base.path, base.format, root, size)
        disks.append(config.Disk(root, "qcow2", "vda"))

        ephemeral_gb = int(instance.get("ephemeral_gb") or flavor.get("ephemeral_gb") or 0)
        if ephemeral_gb:
            path = os.path.join(inst_dir, "disk.eph0")
            disk.create_ephemeral(path, ephemeral_gb)
            disks.append(config.Disk(path, "raw", config.disk_target(len(disks))))
        swap_mb = int(instance.get("swap") or flavor.get("swap") or 0)
        if swap_mb:
            path = os.path.join(inst_dir, "disk.swap")
            disk.create_swap(path, swap_mb)
            disks.append(config.Disk(path, "raw", config.disk_target(len(disks))))
        if self.force_config_drive or _truthy(instance.get("config_drive")):
            path = os.path.join(inst_dir, "disk.config")
            configdrive.write_iso(path, configdrive.contents(
                instance, admin_password, injected_files, network_info))
            disks.append(config.Disk(path, "raw", config.disk_target(len(disks)),
                                     readonly=True))

        # Direct kernel boot: kernel_id / ramdisk_id properties (Glance v2 puts them at
        # the top level of the image record; image_meta has them under properties).
        props = {**(image_meta.get("properties") or {}), **dict(base.image)}
        kernel = initrd = cmdline = None
        if props.get("kernel_id"):
            kernel = self._link_cached(str(props["kernel_id"]), inst_dir, "kernel", bases)
            if props.get("ramdisk_id"):
                initrd = self._link_cached(str(props["ramdisk_id"]), inst_dir, "ramdisk",
                                           bases)
            cmdline = str(props.get("os_command_line") or DEFAULT_CMDLINE)
        with open(os.path.join(inst_dir, "bases.json"), "w", encoding="utf-8") as f:
            json.dump(bases, f)

        return config.GuestSpec(
            name=self._domain_name(instance), uuid=instance["uuid"],
            virt_type=self.virt_type, memory_mb=int(instance["memory_mb"]),
            vcpus=int(instance["vcpus"]), disks=disks,
            console_log=os.path.join(inst_dir, "console.log"),
            owner={"instances_path": self.instances_path, "host": self.host,
                   "display_name": instance.get("display_name"),
                   "project": instance.get("project_id"), "user": instance.get("user_id"),
                   "flavor": flavor.get("name")},
            kernel=kernel, initrd=initrd, cmdline=cmdline,
            interfaces=config.interfaces_from(network_info), disk_cache=self.disk_cache)

    def _link_cached(self, image_id: str, inst_dir: str, name: str,
                     bases: list[str]) -> str:
        cached = self.imagecache.fetch(image_id)
        dest = os.path.join(inst_dir, name)
        try:
            os.link(cached.path, dest)  # instant, and survives the cache entry's removal
        except OSError:
            shutil.copyfile(cached.path, dest)
        bases.append(cached.path)
        return dest

    def _cleanup(self, uuid: str, dom: libvirt.virDomain | None, inst_dir: str) -> None:
        if dom is not None:
            try:
                if dom.isActive():
                    dom.destroy()
            except libvirt.libvirtError:
                pass
            try:
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
            except libvirt.libvirtError:
                pass
        shutil.rmtree(inst_dir, ignore_errors=True)

    def destroy(self, context: RequestContext, instance: Instance,
                network_info: NetworkInfo | None = None,
                block_device_info: BlockDeviceInfo | None = None,
                destroy_disks: bool = True) -> None:
        uuid = instance["uuid"]
        try:
            dom = self._lookup(uuid)
        except InstanceNotFoundInDriver:
            dom = None
        if dom is not None:
            try:
                if dom.isActive():
                    dom.destroy()
            except libvirt.libvirtError as exc:
                if exc.get_error_code() not in (libvirt.VIR_ERR_NO_DOMAIN,
                                                libvirt.VIR_ERR_OPERATION_INVALID):
                    raise _error(exc, "stopping the guest") from None
            try:
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                    raise _error(exc, "removing the guest") from None
        if destroy_disks:
            shutil.rmtree(self._instance_dir(uuid), ignore_errors=True)

    # -- power -------------------------------------------------------------------------------
    def _clean_shutdown(self, dom: libvirt.virDomain, timeout: float,
                        retry_interval: float = 10.0) -> bool:
        """Ask the guest OS to power off (ACPI) and wait up to ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                dom.shutdown()
            except libvirt.libvirtError as exc:
                if not dom.isActive():
                    return True
                LOG.debug("ACPI shutdown request failed: %s", exc)
            until = min(time.monotonic() + (retry_interval or timeout), deadline)
            while time.monotonic() < until:
                if not dom.isActive():
                    return True
                time.sleep(0.1)
        return not dom.isActive()

    def _start(self, dom: libvirt.virDomain, uuid: str) -> None:
        try:
            dom.create()
        except libvirt.libvirtError as exc:
            raise _error(exc, "starting the guest") from None
        if not self._wait_for(dom, (power_state.RUNNING,), 30):
            raise exception.VirtDriverError(reason=f"guest {uuid} did not start")

    def _restore(self, dom: libvirt.virDomain, uuid: str, state: int) -> None:
        """Start a guest from its managed save, in ``state`` (RUNNING or PAUSED)."""
        try:
            dom.create()
        except libvirt.libvirtError as exc:
            raise _error(exc, "restoring the guest") from None
        if not self._wait_for(dom, (power_state.RUNNING, power_state.PAUSED), 30):
            raise exception.VirtDriverError(reason=f"guest {uuid} did not come back")
        if state == power_state.PAUSED and self._state(dom) == power_state.RUNNING:
            _call(dom.suspend, "pausing the guest again")

    def _hard_reboot(self, dom: libvirt.virDomain, instance: Instance) -> None:
        """Power-cycle from any state, redefining the domain first (as Nova's hard
        reboot regenerates the XML): a guest defined under other settings
        (virt_type, disk cache) or sizes comes back with the current ones."""
        uuid = instance["uuid"]
        self._power_off_now(dom, "stopping the guest")
        dom = self._redefine(dom, instance)
        self._start(dom, uuid)

    def _redefine(self, dom: libvirt.virDomain, instance: Instance) -> libvirt.virDomain:
        """The domain's XML rebuilt from the instance and the files in its
        directory, keeping its kernel, ramdisk, command line and VIFs. A
        rescued guest, or one whose root disk is missing, is left as it is."""
        uuid = instance["uuid"]
        inst_dir = self._instance_dir(uuid)
        root_disk = os.path.join(inst_dir, "disk")
        if (os.path.exists(os.path.join(inst_dir, "unrescue.xml"))
                or not os.path.exists(root_disk)
                or not instance.get("memory_mb") or not instance.get("vcpus")):
            return dom
        try:
            old = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            root = ET.fromstring(old)
        except (libvirt.libvirtError, ET.ParseError):
            return dom
        disks: list[config.Disk] = []
        for name, fmt, readonly in (("disk", "qcow2", False), ("disk.eph0", "raw", False),
                                    ("disk.swap", "raw", False),
                                    ("disk.config", "raw", True)):
            if os.path.exists(os.path.join(inst_dir, name)):
                disks.append(config.Disk(os.path.join(inst_dir, name), fmt,
                                         config.disk_target(len(disks)), readonly=readonly))
        interfaces = [config.Interface(mac=i.find("mac").get("address", ""),
                                       bridge=i.find("source").get("bridge", ""))
                      for i in root.findall("devices/interface[@type='bridge']")
                      if i.find("mac") is not None and i.find("source") is not None]
        spec = config.GuestSpec(
            name=dom.name(), uuid=uuid, virt_type=self.virt_type,
            memory_mb=int(instance["memory_mb"]), vcpus=int(instance["vcpus"]), disks=disks,
            console_log=os.path.join(inst_dir, "console.log"),
            owner=config.read_owner(old), kernel=root.findtext("os/kernel"),
            initrd=root.findtext("os/initrd"), cmdline=root.findtext("os/cmdline"),
            interfaces=interfaces, disk_cache=self.disk_cache)
        try:
            return self._connection().defineXML(config.domain_xml(spec))
        except libvirt.libvirtError as exc:
            raise _error(exc, "redefining the guest") from None

    def reboot(self, context: RequestContext, instance: Instance,
               network_info: NetworkInfo | None, reboot_type: str,
               block_device_info: BlockDeviceInfo | None = None) -> None:
        if reboot_type not in driver.REBOOT_TYPES:
            raise ValueError(f"reboot_type must be one of {driver.REBOOT_TYPES}, "
                             f"not {reboot_type!r}")
        uuid = instance["uuid"]
        dom = self._lookup(uuid)
        if reboot_type == "SOFT" and self._state(dom) == power_state.RUNNING:
            if self._clean_shutdown(dom, self.soft_reboot_wait):
                LOG.info("Guest %s shut down cleanly: starting it again", uuid)
                self._start(dom, uuid)
                return
            LOG.warning("Guest %s did not shut down within %.0f s: rebooting it hard",
                        uuid, self.soft_reboot_wait)
        self._hard_reboot(dom, instance)

    def power_off(self, instance: Instance, timeout: int = 0, retry_interval: int = 0) -> None:
        dom = self._lookup(instance["uuid"])
        state = self._state(dom)
        if timeout > 0 and state == power_state.RUNNING:
            if self._clean_shutdown(dom, timeout, retry_interval or 10):
                return
        try:
            if dom.isActive():
                dom.destroy()
        except libvirt.libvirtError as exc:
            if dom.isActive():
                raise _error(exc, "powering off the guest") from None

    def power_on(self, context: RequestContext, instance: Instance,
                 network_info: NetworkInfo | None,
                 block_device_info: BlockDeviceInfo | None = None) -> None:
        uuid = instance["uuid"]
        dom = self._lookup(uuid)
        state = self._state(dom)
        if state == power_state.RUNNING:
            return
        if state not in (power_state.SHUTDOWN, power_state.CRASHED):
            raise _state_error(uuid, "power on", state)
        self._hard_reboot(dom, instance)

    def _require(self, instance: Instance, action: str,
                 *allowed: int) -> tuple[libvirt.virDomain, int]:
        dom = self._lookup(instance["uuid"])
        state = self._state(dom)
        if state not in allowed:
            raise _state_error(instance["uuid"], action, state)
        return dom, state

    def pause(self, instance: Instance) -> None:
        dom, _ = self._require(instance, "pause", power_state.RUNNING)
        _call(dom.suspend, "pausing the guest")

    def unpause(self, instance: Instance) -> None:
        dom, _ = self._require(instance, "unpause", power_state.PAUSED)
        _call(dom.resume, "unpausing the guest")

    def trigger_crash_dump(self, instance: Instance) -> None:
        dom, _ = self._require(instance, "trigger a crash dump of", power_state.RUNNING,
                               power_state.PAUSED)
        _call(lambda: dom.injectNMI(0), "injecting an NMI into the guest")

    def suspend(self, context: RequestContext, instance: Instance) -> None:
        dom, _ = self._require(instance, "suspend", power_state.RUNNING, power_state.PAUSED)
        # Restored running, even when saved paused.
        _call(lambda: dom.managedSave(libvirt.VIR_DOMAIN_SAVE_RUNNING), "suspending the guest")

    def resume(self, context: RequestContext, instance: Instance,
               network_info: NetworkInfo | None,
               block_device_info: BlockDeviceInfo | None = None) -> None:
        dom, _ = self._require(instance, "resume", power_state.SUSPENDED)
        self._start(dom, instance["uuid"])

    # -- rescue ------------------------------------------------------------------------------
    def rescue(self, context: RequestContext, instance: Instance,
               network_info: NetworkInfo | None, image_meta: ImageMeta,
               rescue_password: str | None,
               block_device_info: BlockDeviceInfo | None = None) -> None:
        """As Nova's: the guest's definition is kept in ``unrescue.xml``; it is
        redefined to boot ``disk.rescue`` (an overlay on the rescue image, with
        its kernel/ramdisk if it has them) with its own root disk second and a
        config drive carrying the rescue password."""
        uuid = instance["uuid"]
        dom = self._lookup(uuid)
        inst_dir = self._instance_dir(uuid)
        unrescue_xml = os.path.join(inst_dir, "unrescue.xml")
        if os.path.exists(unrescue_xml):
            raise exception.VirtDriverError(reason=f"instance {uuid} is already rescued")
        original = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        added: list[str] = []
        try:
            base = self.imagecache.fetch(str(image_meta.get("id") or instance["image_ref"]))
            if base.format in ("kernel", "ramdisk"):
                raise exception.Invalid(f"Image {base.image.get('id')} is not a bootable disk.")
            rescue_disk = os.path.join(inst_dir, "disk.rescue")
            disk.create_overlay(base.path, base.format, rescue_disk, None)
            added.append(rescue_disk)
            disks = [config.Disk(rescue_disk, "qcow2", "vda"),
                     config.Disk(os.path.join(inst_dir, "disk"), "qcow2", "vdb")]
            if self.force_config_drive or _truthy(instance.get("config_drive")):
                path = os.path.join(inst_dir, "disk.config.rescue")
                configdrive.write_iso(path, configdrive.contents(instance, rescue_password))
                added.append(path)
                disks.append(config.Disk(path, "raw", "vdc", readonly=True))
            bases = [base.path]
            props = {**(image_meta.get("properties") or {}), **dict(base.image)}
            kernel = initrd = cmdline = None
            if props.get("kernel_id"):
                kernel = self._link_cached(str(props["kernel_id"]), inst_dir,
                                           "kernel.rescue", bases)
                added.append(kernel)
                if props.get("ramdisk_id"):
                    initrd = self._link_cached(str(props["ramdisk_id"]), inst_dir,
                                               "ramdisk.rescue", bases)
                    added.append(initrd)
                cmdline = str(props.get("os_command_line") or DEFAULT_CMDLINE)
            with open(os.path.join(inst_dir, "bases.json"), encoding="utf-8") as f:
                kept = json.load(f)
            with open(os.path.join(inst_dir, "bases.json"), "w", encoding="utf-8") as f:
                json.dump(sorted(set(kept) | set(bases)), f)
            owner = config.read_owner(original)
            spec = config.GuestSpec(
                name=dom.name(), uuid=uuid, virt_type=self.virt_type,
                memory_mb=int(instance["memory_mb"]), vcpus=int(instance["vcpus"]),
                disks=disks, console_log=os.path.join(inst_dir, "console.log"),
                owner=owner, kernel=kernel, initrd=initrd, cmdline=cmdline,
                interfaces=config.interfaces_from(network_info), disk_cache=self.disk_cache)
            with open(unrescue_xml, "w", encoding="utf-8") as f:
                f.write(original)
            added.append(unrescue_xml)
            self._power_off_now(dom)
            dom = self._connection().defineXML(config.domain_xml(spec))
            self._start(dom, uuid)
        except BaseException:
            if os.path.exists(unrescue_xml):  # put the guest back as it was
                with contextlib.suppress(Exception):
                    self._power_off_now(dom)
                    self._connection().defineXML(original)
            for path in added:
                _unlink(path)
            raise

    def unrescue(self, context: RequestContext, instance: Instance) -> None:
        uuid = instance["uuid"]
        dom = self._lookup(uuid)
        inst_dir = self._instance_dir(uuid)
        unrescue_xml = os.path.join(inst_dir, "unrescue.xml")
        try:
            with open(unrescue_xml, encoding="utf-8") as f:
                original = f.read()
        except FileNotFoundError:
            raise exception.VirtDriverError(reason=f"instance {uuid} is not rescued") from None
        self._power_off_now(dom)
        try:
            dom = self._connection().defineXML(original)
        except libvirt.libvirtError as exc:
            raise _error(exc, "restoring the guest's definition") from None
        for name in ("disk.rescue", "disk.config.rescue", "kernel.rescue", "ramdisk.rescue",
                     "unrescue.xml"):
            _unlink(os.path.join(inst_dir, name))
        self._start(dom, uuid)

    def _power_off_now(self, dom: libvirt.virDomain,
                       doing: str = "powering off the guest") -> None:
        """Destroy the guest if it runs and drop its managed save (a suspended
        guest's memory)."""
        try:
            if dom.isActive():
                dom.destroy()
            if dom.hasManagedSaveImage(0):
                dom.managedSaveRemove(0)
        except libvirt.libvirtError as exc:
            raise _error(exc, doing) from None

    # -- snapshots ---------------------------------------------------------------------------
    def snapshot(self, context: RequestContext, instance: Instance, image_id: str,
                 update_task_state: driver.UpdateTaskState) -> SnapshotImage:
        """A cold snapshot, as Nova's when a live one is not possible: a running
        or paused guest is saved to disk (managed save) while ``qemu-img
        convert`` flattens its root disk (overlay + base) into one qcow2, then
        restored as it was. A stopped or suspended guest is not touched."""
        uuid = instance["uuid"]
        dom = self._lookup(uuid)
        update_task_state(task_state=vm_states.IMAGE_PENDING_UPLOAD)
        state = self._state(dom)
        snap_dir = os.path.join(self.instances_path, "_snapshots")
        os.makedirs(snap_dir, mode=0o700, exist_ok=True)
        path = os.path.join(snap_dir, f"{image_id}.qcow2")
        saved = False
        try:
            if state in (power_state.RUNNING, power_state.PAUSED):
                flag = (libvirt.VIR_DOMAIN_SAVE_PAUSED if state == power_state.PAUSED
                        else libvirt.VIR_DOMAIN_SAVE_RUNNING)
                _call(lambda: dom.managedSave(flag), "saving the guest for a snapshot")
                saved = True
            disk.convert(os.path.join(self._instance_dir(uuid), "disk"), "qcow2", path,
                         "qcow2")
        except BaseException:
            _unlink(path)
            raise
        finally:
            if saved:
                self._restore(dom, uuid, state)
        update_task_state(task_state=vm_states.IMAGE_UPLOADING,
                          expected_state=vm_states.IMAGE_PENDING_UPLOAD)
        return SnapshotImage(disk_format="qcow2", container_format="bare",
                             chunks=_read_then_delete(path), size=os.path.getsize(path))

    # -- console ---------------------------------------------------------------------------
    # -- resize and cold migration (same machine: instances paths both readable) -----
    def _resize_dir(self, uuid: str) -> str:
        return self._instance_dir(uuid) + "_resize"

    def migrate_disk_and_power_off(self, context: RequestContext, instance: Instance,
                                   dest: str, flavor: Mapping[str, Any],
                                   network_info: NetworkInfo | None,
                                   block_device_info: BlockDeviceInfo | None = None,
                                   timeout: int = 0, retry_interval: int = 0) -> str:
        """Power off, keep the domain's XML, undefine it (its uuid is the
        destination's to define) and move the instance directory aside to
        ``<uuid>_resize``; the destination reads the disks from there."""
        uuid = instance["uuid"]
        dom = self._lookup(uuid)
        new_root = int(flavor.get("root_gb") or 0)
        if new_root and new_root < int(instance.get("root_gb") or 0):
            raise exception.VirtDriverError(
                reason=f"unable to resize disk down: instance {uuid} root disk is "
                       f"{instance.get('root_gb')} GB, flavor {flavor.get('name')!r} has "
                       f"{new_root} GB")
        inst_dir, aside = self._instance_dir(uuid), self._resize_dir(uuid)
        self.power_off(instance, timeout, retry_interval)
        try:
            xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            with open(os.path.join(inst_dir, "resize.xml"), "w", encoding="utf-8") as f:
                f.write(xml)
            if dom.hasManagedSaveImage(0):
                dom.managedSaveRemove(0)
            shutil.rmtree(aside, ignore_errors=True)
            os.rename(inst_dir, aside)
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
        except (libvirt.libvirtError, OSError) as exc:
            if os.path.isdir(aside) and not os.path.exists(inst_dir):
                os.rename(aside, inst_dir)
            raise exception.VirtDriverError(
                reason=f"setting the disks of {uuid} aside failed: {exc}") from exc
        info = {"dir": aside, "root": os.path.join(aside, "disk"),
                "xml": os.path.join(aside, "resize.xml")}
        return json.dumps(info)

    def finish_migration(self, context: RequestContext, migration: Mapping[str, Any],
                         instance: Instance, disk_info: str,
                         network_info: NetworkInfo | None, image_meta: ImageMeta,
                         resize_instance: bool,
                         block_device_info: BlockDeviceInfo | None = None,
                         power_on: bool = True) -> None:
        """Copy the root disk flattened (no base needed in this host's cache),
        grow it to the new root_gb, recreate ephemeral/swap for the new
        flavor, copy the config drive and kernel/ramdisk, define and start."""
        uuid = instance["uuid"]
        info = json.loads(disk_info)
        src_dir = info["dir"]
        inst_dir = self._instance_dir(uuid)
        dom = None
        try:
            with open(info["xml"], encoding="utf-8") as f:
                old = ET.fromstring(f.read())
            shutil.rmtree(inst_dir, ignore_errors=True)
            os.makedirs(inst_dir, mode=0o755)
            root = os.path.join(inst_dir, "disk")
            disk.convert(info["root"], "qcow2", root, "qcow2")
            root_gb = int(instance.get("root_gb") or 0)
            if root_gb and root_gb * disk.GiB > int(disk.info(root, "qcow2")["virtual-size"]):
                disk.resize(root, root_gb * disk.GiB)
            disks = [config.Disk(root, "qcow2", "vda")]
            ephemeral_gb = int(instance.get("ephemeral_gb") or 0)
            if ephemeral_gb:
                path = os.path.join(inst_dir, "disk.eph0")
                disk.create_ephemeral(path, ephemeral_gb)
                disks.append(config.Disk(path, "raw", config.disk_target(len(disks))))
            swap_mb = int(instance.get("swap") or 0)
            if swap_mb:
                path = os.path.join(inst_dir, "disk.swap")
                disk.create_swap(path, swap_mb)
                disks.append(config.Disk(path, "raw", config.disk_target(len(disks))))
            if os.path.exists(os.path.join(src_dir, "disk.config")):
                path = os.path.join(inst_dir, "disk.config")
                shutil.copyfile(os.path.join(src_dir, "disk.config"), path)
                disks.append(config.Disk(path, "raw", config.disk_target(len(disks)),
                                         readonly=True))
            boot: dict[str, str | None] = {}
            for name, tag in (("kernel", "os/kernel"), ("ramdisk", "os/initrd")):
                src = old.findtext(tag)
                boot[name] = None
                if src:
                    boot[name] = os.path.join(inst_dir, name)
                    shutil.copyfile(os.path.join(src_dir, os.path.basename(src)), boot[name])
            with open(os.path.join(inst_dir, "bases.json"), "w", encoding="utf-8") as f:
                json.dump([], f)
            flavor = instance.get("flavor") or {}
            owner = dict(config.read_owner(ET.tostring(old, encoding="unicode")) or {})
            owner.update(instances_path=self.instances_path, host=self.host,
                         flavor=flavor.get("name"))
            interfaces = config.interfaces_from(network_info) if network_info else [
                config.Interface(mac=i.find("mac").get("address", ""),
                                 bridge=i.find("source").get("bridge", ""))
                for i in old.findall("devices/interface[@type='bridge']")
                if i.find("mac") is not None and i.find("source") is not None]
            spec = config.GuestSpec(
                name=self._domain_name(instance), uuid=uuid, virt_type=self.virt_type,
                memory_mb=int(instance["memory_mb"]), vcpus=int(instance["vcpus"]),
                disks=disks, console_log=os.path.join(inst_dir, "console.log"), owner=owner,
                kernel=boot["kernel"], initrd=boot["ramdisk"],
                cmdline=old.findtext("os/cmdline"), interfaces=interfaces,
                disk_cache=self.disk_cache)
            dom = self._connection().defineXML(config.domain_xml(spec))
            if power_on:
                self._start(dom, uuid)
        except BaseException as exc:
            LOG.warning("Finishing the migration of %s failed (%s): removing what was made",
                        uuid, exc)
            self._cleanup(uuid, dom, inst_dir)
            if isinstance(exc, libvirt.libvirtError):
                raise _error(exc, "defining the migrated guest") from exc
            if isinstance(exc, (OSError, ET.ParseError, KeyError, ValueError)):
                raise exception.VirtDriverError(reason=f"finish_migration failed: {exc}") \
                    from exc
            raise

    def confirm_migration(self, context: RequestContext, migration: Mapping[str, Any],
                          instance: Instance, network_info: NetworkInfo | None) -> None:
        shutil.rmtree(self._resize_dir(instance["uuid"]), ignore_errors=True)

    def finish_revert_migration(self, context: RequestContext, instance: Instance,
                                network_info: NetworkInfo | None,
                                migration: Mapping[str, Any],
                                block_device_info: BlockDeviceInfo | None = None,
                                power_on: bool = True) -> None:
        uuid = instance["uuid"]
        inst_dir, aside = self._instance_dir(uuid), self._resize_dir(uuid)
        if not os.path.isdir(aside):
            raise InstanceNotFoundInDriver(instance_uuid=uuid)
        try:
            if os.path.exists(inst_dir):
                shutil.rmtree(inst_dir)
            os.rename(aside, inst_dir)
            with open(os.path.join(inst_dir, "resize.xml"), encoding="utf-8") as f:
                dom = self._connection().defineXML(f.read())
            os.unlink(os.path.join(inst_dir, "resize.xml"))
        except libvirt.libvirtError as exc:
            raise _error(exc, "restoring the guest") from None
        except OSError as exc:
            raise exception.VirtDriverError(reason=f"restoring {uuid} failed: {exc}") from exc
        if power_on:
            self._start(dom, uuid)

    def get_console_output(self, context: RequestContext, instance: Instance) -> str:
        self._lookup(instance["uuid"])
        path = os.path.join(self._instance_dir(instance["uuid"]), "console.log")
        try:
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - MAX_CONSOLE_BYTES))
                data = f.read()
        except FileNotFoundError:
            return ""
        if size > MAX_CONSOLE_BYTES:  # start at a whole line
            data = data.split(b"\n", 1)[-1]
        return data.decode("utf-8", errors="replace").replace("\r\n", "\n")

    # -- image cache -------------------------------------------------------------------------
    def manage_image_cache(self, context: RequestContext,
                           all_instances: list[Instance]) -> None:
        in_use: list[str] = []
        try:
            names = os.listdir(self.instances_path)
        except FileNotFoundError:
            return
        for name in names:
            try:
                with open(os.path.join(self.instances_path, name, "bases.json"),
                          encoding="utf-8") as f:
                    in_use.extend(json.load(f))
            except (OSError, ValueError):
                continue
        if self._imagecache is None and not os.path.isdir(self.images_path):
            return
        cache = self._imagecache or imagecache.ImageCache(
            self.images_path, _unavailable, _unavailable)
        cache.remove_unused(in_use, self.image_cache_max_age)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _read_then_delete(path: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
    try:
        with open(path, "rb") as f:
            while chunk := f.read(chunk_size):
                yield chunk
    finally:
        _unlink(path)


def _unavailable(_image_id: str) -> Any:
    raise exception.VirtDriverError(reason="no image client")


def _call(fn: Callable[[], Any], what: str) -> None:
    try:
        fn()
    except libvirt.libvirtError as exc:
        raise _error(exc, what) from None


def _error(exc: libvirt.libvirtError, what: str) -> exception.VirtDriverError:
    return exception.VirtDriverError(reason=f"libvirt error {what}: {exc.get_error_message()}")


def _state_error(uuid: str, action: str, state: int) -> exception.VirtDriverError:
    return exception.VirtDriverError(
        reason=f"cannot {action} instance {uuid} in power state "
               f"{power_state.STATE_MAP.get(state, state)}")


def _version(number: int) -> str:
    return f"{number // 1000000}.{number // 1000 % 1000}.{number % 1000}"


def _cpu_info(capabilities_xml: str) -> dict[str, Any]:
    try:
        cpu = ET.fromstring(capabilities_xml).find("host/cpu")
    except ET.ParseError:
        return {}
    if cpu is None:
        return {}
    topology = cpu.find("topology")
    return {
        "arch": cpu.findtext("arch"),
        "model": cpu.findtext("model"),
        "vendor": cpu.findtext("vendor"),
        "topology": {k: int(topology.get(k, 1)) for k in ("sockets", "cores", "threads")}
        if topology is not None else {},
        "features": sorted(f.get("name", "") for f in cpu.findall("feature")),
    }


def _warn_if_unreachable(path: str) -> None:
    """QEMU runs as an unprivileged user (libvirt-qemu on Debian): every directory
    above the instances must let others through (o+x)."""
    current = os.path.abspath(path)
    while current != "/":
        try:
            mode = os.stat(current).st_mode
        except OSError:
            return
        if not mode & 0o001:
            LOG.warning("%s is not searchable by others (mode %o): QEMU, running as "
                        "libvirt-qemu, cannot open guest disks under %s", current,
                        mode & 0o777, path)
            return
        current = os.path.dirname(current)
