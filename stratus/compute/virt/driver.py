"""The virt driver interface: how stratus-compute drives a hypervisor.

Modelled on Nova's ``nova/virt/driver.py``. :class:`ComputeDriver` is the only
place each operation is documented; drivers (:mod:`stratus.compute.virt.fake`,
later libvirt/QEMU) implement it without restating the contract, and the
compute manager uses nothing but this class, so drivers are interchangeable.

Arguments the manager passes, in the shapes Nova uses:

``instance``
    A plain dict, as the compute manager receives it from the conductor over
    RPC. Drivers rely on these keys: ``uuid`` (the guest's identity on the
    hypervisor, e.g. the libvirt domain UUID), ``name`` (``instance-0000000a``,
    the hypervisor-side name), ``display_name``, ``vcpus``, ``memory_mb``,
    ``root_gb``, ``ephemeral_gb``, ``swap`` (MB), ``flavor`` (dict),
    ``image_ref``, ``user_data`` (base64 str or None), ``key_data`` and
    ``metadata`` (dict). The manager updates the dict's sizes to the new
    flavor before ``finish_migration``.
``network_info``
    Nova's VIF list: ``[{"id", "address" (MAC), "type", "devname",
    "network": {"id", "label", "bridge", "subnets": [{"cidr", "gateway",
    "ips": [{"address", "floating_ips"}]}]}}]``; None or [] for no network.
``block_device_info``
    Nova's driver block device dict: ``{"root_device_name": "/dev/vda",
    "ephemerals": [...], "swap": {...} | None, "block_device_mapping":
    [{"connection_info": {...}, "mount_device": "/dev/vdb",
    "delete_on_termination": bool, "disk_bus", "device_type",
    "boot_index"}]}``; None when the instance has no volumes.
``image_meta``
    The Image v2 record of the image booted: ``id``, ``name``,
    ``disk_format``, ``container_format``, ``min_disk``, ``min_ram``,
    ``size`` and ``properties`` (dict).
``context``
    The :class:`stratus.context.RequestContext` of the request.

Errors: an operation on a guest the driver does not have raises
:class:`InstanceNotFoundInDriver`; an operation the guest's power state does
not allow, or that the hypervisor refuses, raises
:class:`stratus.exception.VirtDriverError`.
"""
from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from stratus import exception

if TYPE_CHECKING:
    from stratus.context import RequestContext

Instance = Mapping[str, Any]
NetworkInfo = list[dict[str, Any]]
BlockDeviceInfo = dict[str, Any]
ImageMeta = Mapping[str, Any]
#: The values of ``reboot``'s ``reboot_type`` (a str, as it arrives over RPC).
REBOOT_TYPES: tuple[str, ...] = ("SOFT", "HARD")


class InstanceNotFoundInDriver(exception.StratusException):
    msg_fmt = "Instance %(instance_uuid)s is not known to the virt driver."
    code = 404


class DeviceNotFoundInDriver(exception.StratusException):
    msg_fmt = "No device is attached at %(mountpoint)s on instance %(instance_uuid)s."
    code = 404


@dataclasses.dataclass(frozen=True)
class InstanceInfo:
    """What the hypervisor reports about one guest.

    ``state`` is a :mod:`stratus.compute.power_state` value; ``internal_id``
    the hypervisor's own handle for the guest (a libvirt domain id), if any.
    """

    state: int
    internal_id: str | None = None


@dataclasses.dataclass(frozen=True)
class HostResources:
    """The resources of one node, as reported to the conductor.

    Totals are physical (allocation ratios and reservations are applied by
    the resource tracker, not the driver); ``*_used`` is what the guests the
    driver holds take; ``running_vms`` counts those guests in any power
    state, as Nova does. ``cpu_info`` is a JSON string (libvirt's layout:
    arch, model, vendor, topology, features).
    """

    vcpus: int
    memory_mb: int
    local_gb: int
    vcpus_used: int
    memory_mb_used: int
    local_gb_used: int
    hypervisor_type: str
    hypervisor_version: int
    hypervisor_hostname: str
    cpu_info: str
    host_ip: str | None = None
    running_vms: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class SnapshotImage:
    """The image data a snapshot produced, for the manager to upload.

    ``chunks`` yields the image content; it may be a one-shot iterator
    (a driver streaming a disk file), so read it once. ``size`` is the total
    byte count when known.
    """

    disk_format: str
    container_format: str
    chunks: Iterable[bytes]
    size: int | None = None


class UpdateTaskState(Protocol):
    """The manager's callback that moves the instance's ``task_state``.

    ``expected_state`` is the task state the instance must still be in (the
    update fails with UnexpectedTaskStateError otherwise, e.g. when the
    instance was deleted meanwhile).
    """

    def __call__(self, *, task_state: str, expected_state: str | None = ...) -> None: ...


class ComputeDriver(abc.ABC):
    """A hypervisor, as one stratus-compute host sees it.

    One driver object serves one compute host (``host``); it may manage
    several nodes (:meth:`get_available_nodes`), though the drivers shipped
    manage one. Methods may be called from several threads at once (the
    manager runs up to ``max_concurrent_builds`` operations in parallel), on
    different instances or the same one, so drivers guard their state.
    Operations block until done.
    """

    #: What the driver supports, for the manager to check before trying:
    #: ``has_imagecache``: keeps a local cache of base images it can prune;
    #: ``supports_evacuate``: can rebuild a guest of a failed host here;
    #: ``supports_migrate_to_same_host``: can resize a guest in place;
    #: ``supports_multiattach``: can attach one volume to several guests.
    capabilities: ClassVar[Mapping[str, bool]] = {
        "has_imagecache": False,
        "supports_evacuate": False,
        "supports_migrate_to_same_host": False,
        "supports_multiattach": False,
    }
    #: The guest's root disk as the API shows it (``OS-EXT-SRV-ATTR:
    #: root_device_name``, microversion 2.3; Nova's default_root_device_name):
    #: both drivers attach the root disk as the first virtio disk.
    root_device_name: ClassVar[str] = "/dev/vda"

    def __init__(self, host: str, options: Mapping[str, Any]) -> None:
        """``host`` is the compute service's host name; ``options`` the
        driver's own settings (each driver documents its keys and raises
        :class:`stratus.exception.ConfigError` for bad ones)."""
        self.host = host

    @staticmethod
    def settings(kind: str, options: Mapping[str, Any],
                 defaults: Mapping[str, Any]) -> dict[str, Any]:
        """``options`` over ``defaults``; a key ``defaults`` lacks is a ConfigError
        naming the ``kind`` of driver."""
        unknown = set(options) - set(defaults)
        if unknown:
            raise exception.ConfigError(
                reason=f"unknown {kind} driver option(s): {', '.join(sorted(unknown))}")
        return {**defaults, **options}

    # -- host lifecycle --------------------------------------------------------

    @abc.abstractmethod
    def init_host(self, host: str) -> None:
        """Prepare the hypervisor connection when the compute service starts.

        Called once, before any other operation, with the service's host
        name. Raises :class:`stratus.exception.ConfigError` or
        :class:`stratus.exception.VirtDriverError` when the host cannot be
        used.
        """

    def cleanup_host(self, host: str) -> None:
        """Release what :meth:`init_host` acquired, when the service stops.

        Guests keep running. The default does nothing.
        """

    # -- inventory -------------------------------------------------------------

    @abc.abstractmethod
    def get_info(self, instance: Instance) -> InstanceInfo:
        """The power state (and hypervisor id) of ``instance``.

        Raises :class:`InstanceNotFoundInDriver` when the driver has no guest
        with that uuid.
        """

    @abc.abstractmethod
    def list_instances(self) -> list[str]:
        """The uuids of every guest defined on this host, in any power state."""

    def instance_exists(self, instance: Instance) -> bool:
        """Whether the driver has a guest for ``instance`` (by uuid)."""
        return instance["uuid"] in self.list_instances()

    @abc.abstractmethod
    def get_available_resource(self, nodename: str) -> HostResources:
        """The resources of node ``nodename`` (one of
        :meth:`get_available_nodes`); raises
        :class:`stratus.exception.VirtDriverError` for a node it does not
        manage."""

    @abc.abstractmethod
    def get_available_nodes(self) -> list[str]:
        """The hypervisor host names of the nodes this driver manages."""

    # -- lifecycle -------------------------------------------------------------

    @abc.abstractmethod
    def spawn(self, context: RequestContext, instance: Instance, image_meta: ImageMeta,
              injected_files: list[tuple[str, bytes]], admin_password: str | None,
              network_info: NetworkInfo | None = None,
              block_device_info: BlockDeviceInfo | None = None) -> None:
        """Create and boot a guest for ``instance``; it is RUNNING on return.

        The guest boots from ``image_meta`` with the instance's sizes, its
        VIFs from ``network_info`` and volumes from ``block_device_info``.
        ``injected_files`` (``(path, contents)`` pairs), ``admin_password``,
        the instance's ``user_data``, ``key_data`` and ``metadata`` reach the
        guest through the config drive or metadata service. Raises
        :class:`stratus.exception.VirtDriverError` when the guest cannot be
        created (including when one with this uuid already exists); the
        manager then puts the instance in ERROR or reschedules it, and calls
        :meth:`destroy` to clear what was left.
        """

    @abc.abstractmethod
    def destroy(self, context: RequestContext, instance: Instance,
                network_info: NetworkInfo | None = None,
                block_device_info: BlockDeviceInfo | None = None,
                destroy_disks: bool = True) -> None:
        """Stop the guest and remove it from the hypervisor.

        Idempotent: destroying a guest the driver does not have succeeds.
        ``destroy_disks=False`` keeps the local disks (the manager passes it
        when they are shared with another host, e.g. reverting a resize on
        the same host); with True the disks go too, including those kept by
        :meth:`migrate_disk_and_power_off`. Attached volumes are disconnected,
        never deleted.
        """

    @abc.abstractmethod
    def reboot(self, context: RequestContext, instance: Instance,
               network_info: NetworkInfo | None, reboot_type: str,
               block_device_info: BlockDeviceInfo | None = None) -> None:
        """Restart the guest; it is RUNNING on return.

        ``"SOFT"`` asks the guest OS to restart; when the guest is not
        running (paused, suspended, shut down, crashed) drivers fall back to
        ``"HARD"``, which power-cycles it from any state. Raises
        :class:`ValueError` for another ``reboot_type``.
        """

    @abc.abstractmethod
    def power_off(self, instance: Instance, timeout: int = 0, retry_interval: int = 0) -> None:
        """Stop the guest, leaving it defined (SHUTDOWN) with its disks.

        With ``timeout`` > 0 the guest OS is first asked to shut down and
        given ``timeout`` seconds (asking again every ``retry_interval``)
        before it is forced off; with 0 it is forced off at once. Works from
        any state; powering off a SHUTDOWN guest is a no-op.
        """

    @abc.abstractmethod
    def power_on(self, context: RequestContext, instance: Instance,
                 network_info: NetworkInfo | None,
                 block_device_info: BlockDeviceInfo | None = None) -> None:
        """Start the guest (a cold boot from SHUTDOWN or CRASHED); it is
        RUNNING on return. Powering on a RUNNING guest is a no-op; other
        states raise :class:`stratus.exception.VirtDriverError`."""

    @abc.abstractmethod
    def pause(self, instance: Instance) -> None:
        """Freeze the guest's vCPUs in memory: RUNNING -> PAUSED.

        Raises :class:`stratus.exception.VirtDriverError` unless RUNNING.
        """

    @abc.abstractmethod
    def unpause(self, instance: Instance) -> None:
        """Let a paused guest run again: PAUSED -> RUNNING.

        Raises :class:`stratus.exception.VirtDriverError` unless PAUSED.
        """

    @abc.abstractmethod
    def suspend(self, context: RequestContext, instance: Instance) -> None:
        """Save the guest's memory to disk and stop it: RUNNING or PAUSED ->
        SUSPENDED (libvirt's managed save). Raises
        :class:`stratus.exception.VirtDriverError` from other states."""

    @abc.abstractmethod
    def resume(self, context: RequestContext, instance: Instance,
               network_info: NetworkInfo | None,
               block_device_info: BlockDeviceInfo | None = None) -> None:
        """Restore a suspended guest from its saved memory: SUSPENDED ->
        RUNNING. Raises :class:`stratus.exception.VirtDriverError` from other
        states."""

    # -- rescue ----------------------------------------------------------------

    def rescue(self, context: RequestContext, instance: Instance,
               network_info: NetworkInfo | None, image_meta: ImageMeta,
               rescue_password: str | None,
               block_device_info: BlockDeviceInfo | None = None) -> None:
        """Boot the guest from ``image_meta`` (the rescue image) with its own
        root disk attached as the second disk, so a broken system can be
        repaired; the guest is RUNNING on return. Its original definition is
        kept for :meth:`unrescue`. Works from any power state."""
        raise NotImplementedError(f"{type(self).__name__} cannot rescue")

    def unrescue(self, context: RequestContext, instance: Instance) -> None:
        """Leave rescue: boot the guest again from its own disks (RUNNING on
        return) and remove what :meth:`rescue` added. Raises
        :class:`stratus.exception.VirtDriverError` when it is not rescued."""
        raise NotImplementedError(f"{type(self).__name__} cannot unrescue")

    def trigger_crash_dump(self, instance: Instance) -> None:
        """Inject a non-maskable interrupt into the running guest, so a guest
        set up for it (kdump) dumps its memory and crashes (Nova's
        trigger_crash_dump, microversion 2.17). The power state is left as
        it is: what the guest does is its own configuration.

        Raises :class:`stratus.exception.VirtDriverError` when the guest is
        not running or the hypervisor cannot inject an NMI.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot trigger a crash dump")

    # -- console and snapshots ------------------------------------------------

    def get_console_output(self, context: RequestContext, instance: Instance) -> str:
        """The guest's serial console log (oldest line first), in any power
        state. Drivers may cap its length, keeping the newest output."""
        raise NotImplementedError(f"{type(self).__name__} has no console log")

    def manage_image_cache(self, context: RequestContext,
                           all_instances: list[Instance]) -> None:
        """Remove cached images that no guest of this host uses and that were
        last used longer ago than the driver's configured age. The manager
        calls it periodically (``[compute] image_cache_manager_interval``)
        when ``capabilities["has_imagecache"]``; ``all_instances`` are the
        instances the database places on this host. The default does nothing.
        """

    def snapshot(self, context: RequestContext, instance: Instance, image_id: str,
                 update_task_state: UpdateTaskState) -> SnapshotImage:
        """Capture the guest's root disk as the data of image ``image_id``.

        As Nova's drivers do, calls
        ``update_task_state(task_state="image_pending_upload")`` before
        capturing, then ``update_task_state(task_state="image_uploading",
        expected_state="image_pending_upload")`` once the data is ready. The
        driver does not talk to the image service: it returns the data and
        the manager uploads it to ``image_id``. Works in any power state;
        the guest's state is unchanged on return.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot snapshot")

    # -- resize and cold migration ---------------------------------------------
    #
    # The manager calls, in order: migrate_disk_and_power_off on the source,
    # finish_migration on the destination, then either confirm_migration on
    # the source, or destroy on the destination and finish_revert_migration on
    # the source. Source and destination may be the same host (see
    # capabilities["supports_migrate_to_same_host"]). ``migration`` is the
    # migration record as a dict (uuid, source_compute, dest_compute,
    # source_node, dest_node, migration_type, status).

    def migrate_disk_and_power_off(self, context: RequestContext, instance: Instance,
                                   dest: str, flavor: Mapping[str, Any],
                                   network_info: NetworkInfo | None,
                                   block_device_info: BlockDeviceInfo | None = None,
                                   timeout: int = 0, retry_interval: int = 0) -> str:
        """Source side: power the guest off (as :meth:`power_off`) and set its
        disks aside for host ``dest`` and the new ``flavor``.

        Afterwards the source no longer lists the guest, but keeps its disks
        until :meth:`confirm_migration` or :meth:`finish_revert_migration`.
        Returns ``disk_info``, an opaque JSON string the manager hands to
        :meth:`finish_migration`. Raises
        :class:`stratus.exception.VirtDriverError`, leaving the guest as it
        was, when the disks cannot be migrated (e.g. the new flavor's root
        disk is smaller).
        """
        raise NotImplementedError(f"{type(self).__name__} cannot resize or migrate")

    def finish_migration(self, context: RequestContext, migration: Mapping[str, Any],
                         instance: Instance, disk_info: str,
                         network_info: NetworkInfo | None, image_meta: ImageMeta,
                         resize_instance: bool,
                         block_device_info: BlockDeviceInfo | None = None,
                         power_on: bool = True) -> None:
        """Destination side: create the guest from the migrated disks with the
        instance's (new) sizes, growing the disks when ``resize_instance``.
        The guest is RUNNING on return if ``power_on``, else SHUTDOWN."""
        raise NotImplementedError(f"{type(self).__name__} cannot resize or migrate")

    def confirm_migration(self, context: RequestContext, migration: Mapping[str, Any],
                          instance: Instance, network_info: NetworkInfo | None) -> None:
        """Source side: the resize is accepted; delete the disks
        :meth:`migrate_disk_and_power_off` kept. Idempotent."""
        raise NotImplementedError(f"{type(self).__name__} cannot resize or migrate")

    def finish_revert_migration(self, context: RequestContext, instance: Instance,
                                network_info: NetworkInfo | None,
                                migration: Mapping[str, Any],
                                block_device_info: BlockDeviceInfo | None = None,
                                power_on: bool = True) -> None:
        """Source side: the resize is rolled back; recreate the guest from the
        kept disks with its old sizes, RUNNING if ``power_on`` else SHUTDOWN.
        Raises :class:`InstanceNotFoundInDriver` when no disks were kept."""
        raise NotImplementedError(f"{type(self).__name__} cannot resize or migrate")

    # -- volumes ---------------------------------------------------------------

    def attach_volume(self, context: RequestContext, connection_info: Mapping[str, Any],
                      instance: Instance, mountpoint: str, disk_bus: str | None = None,
                      device_type: str | None = None,
                      encryption: Mapping[str, Any] | None = None) -> None:
        """Connect the volume described by ``connection_info`` (the volume
        service's connection info: ``driver_volume_type``, ``data``,
        ``serial`` = volume id) to the guest as ``mountpoint``
        (``/dev/vdb``). Raises :class:`stratus.exception.VirtDriverError` when
        the mountpoint is taken."""
        raise NotImplementedError(f"{type(self).__name__} cannot attach volumes")

    def detach_volume(self, context: RequestContext, connection_info: Mapping[str, Any],
                      instance: Instance, mountpoint: str,
                      encryption: Mapping[str, Any] | None = None) -> None:
        """Disconnect the volume at ``mountpoint`` from the guest. Raises
        :class:`DeviceNotFoundInDriver` when nothing is attached there (the
        manager treats that as already detached)."""
        raise NotImplementedError(f"{type(self).__name__} cannot detach volumes")
