"""The compute service's RPC endpoint: the instance lifecycle on one host.

Every operation follows one pattern (:meth:`ComputeManager._run_action`):
record the instance-action event, call the virt driver, then move the
instance to its resting state with a compare-and-swap on the task state the
API set (the prologue :meth:`ComputeManager._task`, the epilogue
:meth:`ComputeManager._finish_task`; an operation overtaken meanwhile by a
delete, another request or os-resetState stands down). A failure records
an instance fault, puts the task state back and marks the event as Error,
so no instance is left mid-operation. Operations on one instance are
serialised by a per-instance lock.

The host holds no database credentials: all reads and writes go through the
conductor (:class:`stratus.conductor.rpcapi.ConductorAPI`).
"""
from __future__ import annotations

import base64
import contextlib
import logging
import threading
import time
import traceback as tb
from typing import Any, Callable, Iterator

from stratus import exception
from stratus.compute import power_state, vm_states
from stratus.compute.resources import node_report
from stratus.compute.virt.driver import ComputeDriver, InstanceNotFoundInDriver
from stratus.conductor.rpcapi import ConductorAPI
from stratus.context import RequestContext, get_admin_context
from stratus.notifications import instance_payload
from stratus.utils import isotime_us, utcnow

LOG = logging.getLogger(__name__)
BINARY = "stratus-compute"
TOPIC = "compute"
RESIZE_TASKS = (vm_states.RESIZE_PREP, vm_states.RESIZE_MIGRATING, vm_states.RESIZE_MIGRATED,
                vm_states.RESIZE_FINISH, vm_states.RESIZE_REVERTING,
                vm_states.RESIZE_CONFIRMING)


class ComputeManager:
    def __init__(self, conf: Any, host: str, driver: ComputeDriver, conductor: ConductorAPI,
                 notifier: Any, image_api: Any = None) -> None:
        self.conf = conf
        self.host = host
        self.driver = driver
        self.conductor = conductor
        self.notifier = notifier
        # Uploads snapshots (stratus.image.client.ImageClient: set_formats, upload, delete;
        # list_images for backup rotation).
        self.image_api = image_api
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._build_slots = threading.BoundedSemaphore(conf.compute.max_concurrent_builds)
        self._builds_in_flight = 0  # reported as the node's io_workload

    # -- start-up ------------------------------------------------------------------
    def init_host(self) -> None:
        """Bring the database in line with the hypervisor after a (re)start.

        A build that was spawning when the service stopped cannot be resumed:
        it goes to ERROR with a fault. Other interrupted operations get their
        task state cleared and the power state re-read from the driver.
        Guests of ACTIVE instances found shut off (the host rebooted) are
        booted again with ``[compute] resume_guests_state_on_host_boot``;
        then the power states are synced once (:meth:`sync_power_states`).
        """
        self.driver.init_host(self.host)
        ctxt = get_admin_context()
        self.conductor.wait_until_ready(ctxt)
        migrations = self.conductor.migrations_in_progress(ctxt, self.host)
        self.reconcile(ctxt, self.conductor.instances_get_by_host(ctxt, self.host),
                       migrations)
        self.recover_resizes(ctxt, migrations)
        self.sync_power_states()
        self.update_available_resource()

    def reconcile(self, ctxt: RequestContext, ours: list[dict[str, Any]],
                  migrations: list[dict[str, Any]] | None = None) -> None:
        """Match the hypervisor and ``ours`` (this host's instances in the
        database). The instances of ``migrations`` (resizes in progress with
        this host at one end) are left to :meth:`recover_resizes`."""
        known = set(self.driver.list_instances())
        moving = {m["instance_uuid"] for m in migrations or ()}
        for orphan in known - {inst["uuid"] for inst in ours} - moving:
            # Deleted while this host was down (the API deleted it locally).
            LOG.warning("Destroying guest %s: its instance is gone", orphan)
            with contextlib.suppress(Exception):
                self.driver.destroy(ctxt, {"uuid": orphan})
        for inst in ours:
            uuid = inst["uuid"]
            if inst["vm_state"] == vm_states.BUILDING and \
                    inst["task_state"] != vm_states.SCHEDULING:
                self._set_error(ctxt, uuid, "Instance build was interrupted by a restart "
                                            "of its compute service", None,
                                release_allocations=True)
                with contextlib.suppress(Exception):
                    self.driver.destroy(ctxt, inst)
            elif inst["task_state"] == vm_states.DELETING:
                with contextlib.suppress(Exception):
                    self.driver.destroy(ctxt, inst)
                self.conductor.instance_destroy(ctxt, uuid)
            elif uuid in moving and inst["task_state"] in RESIZE_TASKS:
                continue
            elif inst["task_state"] is not None and inst["task_state"] != vm_states.SCHEDULING:
                state = self._power_state(inst) if uuid in known else power_state.NOSTATE
                self.conductor.instance_update(ctxt, uuid, {"task_state": None,
                                                            "power_state": state})
            elif (inst["task_state"] is None and inst["vm_state"] == vm_states.ACTIVE
                  and self.conf.compute.resume_guests_state_on_host_boot and uuid in known
                  and self._power_state(inst) in (power_state.SHUTDOWN,
                                                  power_state.CRASHED)):
                LOG.info("Booting the guest of ACTIVE instance %s again", uuid)
                try:
                    self.driver.reboot(ctxt, inst, None, "HARD")
                except Exception:  # noqa: BLE001 - the sync below records what it is
                    LOG.exception("Could not boot the guest of %s again", uuid)

    def recover_resizes(self, ctxt: RequestContext, migrations: list[dict[str, Any]]) -> None:
        """Resolve the resizes and cold migrations this host was part of when
        its service stopped, so none is left half-done (Nova's
        ``_init_instance`` rolls back RESIZE_MIGRATING; every step here):

        * source, ``resize_prep``/``resize_migrating``: roll back here (the
          disks set aside are restored, the guest powered on unless it was
          stopped): ACTIVE/STOPPED on the source with a fault naming the
          interruption, migration ``error``, the destination's allocation freed;
        * destination, ``resize_migrated``/``resize_finish`` (not finished
          here): its partial guest is destroyed and its allocation freed, and
          the source rolls back as above (``finish_revert_resize``);
        * ``resize_reverting``: the destination's part (destroy, free) is
          redone if its allocation is still held, else the source's (restore);
        * ``resize_confirming``: the source confirms;
        * source, ``resize_migrated``: its cast to the destination may have
          died with it, so the destination is asked to abandon the resize
          (as above) unless it already started finishing;
        * destination, ``resize_confirming``: left to the source.
        """
        for migration in migrations:
            try:
                inst = self.conductor.instance_get(ctxt, migration["instance_uuid"])
            except exception.InstanceNotFound:
                self.conductor.migration_update(ctxt, migration["uuid"], {"status": "error"},
                                                release_dest=True)
                continue
            try:
                self._recover_resize(ctxt, inst, migration)
            except Exception:  # noqa: BLE001 - one instance must not stop the start-up
                LOG.exception("Could not resolve the interrupted %s of %s",
                              migration["migration_type"], inst["uuid"])

    def _recover_resize(self, ctxt: RequestContext, inst: dict[str, Any],
                        migration: dict[str, Any]) -> None:
        uuid, task = inst["uuid"], inst["task_state"]
        source = migration["source_compute"] == self.host
        dest = migration["dest_compute"] == self.host
        interrupted = (f"{migration['migration_type'].capitalize()} interrupted by a "
                       f"restart of the compute service on {self.host}")
        message = f"{interrupted}: rolled back"
        LOG.warning("Instance %s: %s %s is %s (task %s) at start-up", uuid,
                    migration["migration_type"], migration["uuid"], migration["status"], task)
        if source and task in (vm_states.RESIZE_PREP, vm_states.RESIZE_MIGRATING):
            self._roll_back_resize(ctxt, inst, migration, interrupted)
        elif dest and task in (vm_states.RESIZE_MIGRATED, vm_states.RESIZE_FINISH):
            self.abandon_resize(ctxt, uuid, migration, message, [task])
        elif source and task == vm_states.RESIZE_MIGRATED:
            # Our cast of finish_resize may have died with us: the destination
            # rolls back unless it already started finishing.
            self.compute_rpc.instance_action(
                ctxt, migration["dest_compute"], uuid, "abandon_resize",
                migration=migration, interrupted=message,
                expected=[vm_states.RESIZE_MIGRATED])
        elif task == vm_states.RESIZE_REVERTING and dest and migration["dest_allocated"]:
            self.revert_resize(ctxt, uuid, migration)
        elif task == vm_states.RESIZE_REVERTING and source and not migration["dest_allocated"]:
            self.finish_revert_resize(ctxt, uuid, migration)
        elif task == vm_states.RESIZE_CONFIRMING and source:
            self.confirm_resize(ctxt, uuid, migration)
        elif task not in RESIZE_TASKS and inst["host"] == migration["source_compute"]:
            # The instance moved on without its migration: close it.
            self.conductor.migration_update(ctxt, migration["uuid"], {"status": "error"},
                                            release_dest=True)

    def abandon_resize(self, ctxt: RequestContext, instance_uuid: str,
                       migration: dict[str, Any], interrupted: str,
                       expected: list[str]) -> None:
        """Destination side of an interrupted resize not finished here: never
        half — destroy the partial guest, free this host's allocation and
        have the source restore its kept guest (``finish_revert_resize``
        with ``interrupted``). A compare-and-swap from ``expected`` under the
        instance's lock: a ``finish_resize`` that started first wins."""
        uuid = instance_uuid
        with self._instance_lock(uuid):
            try:
                inst = self.conductor.instance_update(
                    ctxt, uuid, {"task_state": vm_states.RESIZE_REVERTING},
                    expected_task_state=expected)
            except (exception.InstanceNotFound, exception.UnexpectedTaskStateError) as exc:
                LOG.info("Not abandoning the resize of %s: %s", uuid, exc)
                return
            LOG.warning("Abandoning the resize of %s onto %s: %s", uuid, self.host,
                        interrupted)
            if migration["source_compute"] != self.host:  # else the source's guest
                with contextlib.suppress(Exception):
                    self.driver.destroy(ctxt, inst, destroy_disks=True)
            migration = self.conductor.migration_update(
                ctxt, migration["uuid"], {"status": "reverting"}, release_dest=True)
        self.compute_rpc.instance_action(ctxt, migration["source_compute"], uuid,
                                         "finish_revert_resize", migration=migration,
                                         interrupted=interrupted)

    def _roll_back_resize(self, ctxt: RequestContext, inst: dict[str, Any],
                          migration: dict[str, Any], interrupted: str) -> None:
        """Source side: bring the guest back as it was before the resize; a
        guest that cannot be (lost with the host) leaves the instance ERROR."""
        uuid = inst["uuid"]
        old_state = migration.get("old_vm_state") or vm_states.ACTIVE
        try:
            self._restore_source(ctxt, inst, migration, old_state != vm_states.STOPPED)
        except Exception as exc:  # noqa: BLE001 - the guest is lost: ERROR, with why
            LOG.exception("Rolling back the resize of %s failed", uuid)
            message = f"{interrupted}; rolling it back failed: {_fault_message(exc)}"
            details, final = tb.format_exc(), vm_states.ERROR
        else:
            message = details = f"{interrupted}: rolled back"
            final = old_state
        with contextlib.suppress(exception.InstanceNotFound, exception.UnexpectedTaskStateError):
            self.conductor.migration_finish(
                ctxt, migration["uuid"], "error", uuid,
                {"vm_state": final, "task_state": None,
                 "power_state": self._power_state(inst)},
                keep="source", expected_task_state=[inst["task_state"]],
                fault={"code": 500, "message": message, "details": details,
                       "host": self.host})
            LOG.info("Resize of instance %s: %s", uuid, message)

    def _restore_source(self, ctxt: RequestContext, inst: dict[str, Any],
                        migration: dict[str, Any], power_on: bool) -> None:
        """The driver's ``finish_revert_migration``; a guest that was never
        set aside (or was restored before a restart) is only powered on."""
        try:
            self.driver.finish_revert_migration(ctxt, inst, None, migration, power_on=power_on)
        except InstanceNotFoundInDriver:
            if inst["uuid"] not in self.driver.list_instances():
                raise
            if power_on and self._power_state(inst) != power_state.RUNNING:
                self.driver.power_on(ctxt, inst, None)

    def cleanup_host(self) -> None:
        self.driver.cleanup_host(self.host)

    # -- helpers ---------------------------------------------------------------------
    @contextlib.contextmanager
    def _instance_lock(self, uuid: str) -> Iterator[None]:
        with self._locks_guard:
            lock = self._locks.setdefault(uuid, threading.Lock())
        with lock:
            yield

    @contextlib.contextmanager
    def _counting_build(self) -> Iterator[None]:
        with self._locks_guard:
            self._builds_in_flight += 1
        try:
            yield
        finally:
            with self._locks_guard:
                self._builds_in_flight -= 1

    def _power_state(self, inst: dict[str, Any]) -> int:
        try:
            return self.driver.get_info(inst).state
        except InstanceNotFoundInDriver:
            return power_state.NOSTATE

    def _notify(self, ctxt: RequestContext, event: str, inst: dict[str, Any],
                error: bool = False) -> None:
        (self.notifier.error if error else self.notifier.info)(
            ctxt, event, instance_payload(inst))

    def _set_error(self, ctxt: RequestContext, uuid: str, message: str,
                   details: str | None, code: int = 500,
                   event: dict[str, Any] | None = None,
                   release_allocations: bool = False) -> dict[str, Any] | None:
        """ERROR with its fault (and the failed event), in one transaction."""
        try:
            return self.conductor.instance_update(
                ctxt, uuid, {"vm_state": vm_states.ERROR, "task_state": None,
                             "power_state": power_state.NOSTATE},
                fault={"code": code, "message": message, "details": details or message,
                       "host": self.host},
                event=event, release_allocations=release_allocations)
        except exception.InstanceNotFound:
            return None

    # -- the task's prologue and epilogue ------------------------------------------------
    def _claim(self, ctxt: RequestContext, uuid: str, op: str, expected_task: str,
               event: str, updates: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The prologue's compare-and-swap (the caller holds the instance's
        lock): the instance is still in ``expected_task``, the task state the
        API set; in the same transaction it takes ``updates`` and ``event``
        (the instance-action event) starts on this host. None, logged, when
        the operation was overtaken: the instance was deleted, or another
        request or an admin's os-resetState changed its task state."""
        try:
            return self.conductor.instance_update(ctxt, uuid, updates or {},
                                                  expected_task_state=[expected_task],
                                                  event=_start(event, self.host))
        except (exception.InstanceNotFound, exception.UnexpectedTaskStateError) as exc:
            LOG.info("Skipping %s of %s: %s", op, uuid, exc)
            return None

    @contextlib.contextmanager
    def _task(self, ctxt: RequestContext, uuid: str, op: str, expected_task: str,
              event: str, updates: dict[str, Any] | None = None,
              ) -> Iterator[dict[str, Any] | None]:
        """:meth:`_claim` under the instance's lock, held for the ``with``
        body; yields the instance, or None when overtaken (nothing to do)."""
        with self._instance_lock(uuid):
            yield self._claim(ctxt, uuid, op, expected_task, event, updates)

    def _finish_task(self, ctxt: RequestContext, uuid: str, op: str, expected_task: str,
                     event: str, updates: dict[str, Any], release_allocations: bool = False,
                     finish_event_if_overtaken: bool = False) -> dict[str, Any] | None:
        """The epilogue's compare-and-swap: the instance, still in
        ``expected_task``, takes ``updates`` (its resting state) and ``event``
        finishes as Success in one transaction, with ``release_allocations``
        its claimed resources given back. Returns the updated instance, or
        None, logged, when overtaken meanwhile; ``finish_event_if_overtaken``
        then still finishes ``event`` as Success."""
        try:
            return self.conductor.instance_update(ctxt, uuid, updates,
                                                  expected_task_state=[expected_task],
                                                  event=_finish(event, "Success"),
                                                  release_allocations=release_allocations)
        except (exception.InstanceNotFound, exception.UnexpectedTaskStateError) as exc:
            LOG.info("%s of %s overtaken: %s", op, uuid, exc)
            if finish_event_if_overtaken:
                self.conductor.action_event_finish(ctxt, uuid, event, "Success")
            return None

    def _finish_migration_task(self, ctxt: RequestContext, uuid: str, op: str,
                               expected_task: str, event: str, migration: dict[str, Any],
                               status: str, updates: dict[str, Any], keep: str | None,
                               fault: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """:meth:`_finish_task` for a resize step that ends its migration:
        ``conductor.migration_finish`` with the migration's ``status``, the
        allocation ``keep`` holds and an optional instance ``fault``."""
        try:
            return self.conductor.migration_finish(ctxt, migration["uuid"], status, uuid,
                                                   updates, keep=keep,
                                                   expected_task_state=[expected_task],
                                                   event=_finish(event, "Success"), fault=fault)
        except (exception.InstanceNotFound, exception.UnexpectedTaskStateError) as exc:
            LOG.info("%s of %s overtaken: %s", op, uuid, exc)
            return None

    # -- build / delete ------------------------------------------------------------------
    def build_and_run_instance(self, ctxt: RequestContext, instance: dict[str, Any],
                               request_spec: dict[str, Any]) -> None:
        uuid = instance["uuid"]
        event = "compute_build_and_run_instance"
        with self._build_slots, self._instance_lock(uuid), self._counting_build():
            inst = self._claim(ctxt, uuid, "build", vm_states.SCHEDULING, event,
                               {"task_state": vm_states.SPAWNING})
            if inst is None:
                return
            self._notify(ctxt, "instance.create.start", inst)
            started = time.monotonic()
            try:
                self.driver.spawn(ctxt, inst, request_spec.get("image") or {},
                                  decode_injected_files(request_spec.get("injected_files")),
                                  request_spec.get("admin_pass"))
            except Exception as exc:  # noqa: BLE001 - rescheduled, or ERROR
                LOG.exception("Build of instance %s failed", uuid)
                details = tb.format_exc()
                with contextlib.suppress(Exception):
                    self.driver.destroy(ctxt, inst)
                if self._reschedule(ctxt, uuid, request_spec, exc, details, event):
                    return
                failed = self._set_error(ctxt, uuid, _fault_message(exc), details,
                                         getattr(exc, "code", 500),
                                         event=_finish(event, "Error", details),
                                         release_allocations=True)
                self._notify(ctxt, "instance.create.error", failed or inst, error=True)
                return
            try:
                inst = self.conductor.instance_update(ctxt, uuid, {
                    "vm_state": vm_states.ACTIVE, "task_state": None,
                    "power_state": self._power_state(inst),
                    "launched_at": isotime_us(utcnow()),
                    "root_device_name": self.driver.root_device_name},
                    expected_task_state=[vm_states.SPAWNING],
                    event=_finish(event, "Success"))
            except exception.UnexpectedTaskStateError:
                # Deleted while spawning: the queued terminate_instance finishes it.
                LOG.info("Instance %s was deleted while spawning", uuid)
                self.conductor.action_event_finish(ctxt, uuid, event, "Success")
                return
            except exception.InstanceNotFound:
                with contextlib.suppress(Exception):
                    self.driver.destroy(ctxt, inst)
                return
            self._notify(ctxt, "instance.create.end", inst)
            LOG.info("Instance %s is ACTIVE: took %.3f s to spawn on the hypervisor", uuid,
                     time.monotonic() - started)

    def _reschedule(self, ctxt: RequestContext, uuid: str, request_spec: dict[str, Any],
                    exc: Exception, details: str, event: str) -> bool:
        """Send a failed build back to the conductor to try another host, as
        Nova does, up to ``[scheduler] max_attempts`` hosts. A request that is
        wrong in itself (``Invalid``) fails the same everywhere: no retry."""
        attempt = int(request_spec.get("attempt", 1))
        if attempt >= self.conf.scheduler.max_attempts or isinstance(exc, exception.Invalid):
            return False
        spec = dict(request_spec, attempt=attempt + 1,
                    ignore_hosts=[*request_spec.get("ignore_hosts", []), self.host],
                    last_failure=f"{self.host}: {_fault_message(exc)}")
        try:
            self.conductor.instance_update(
                ctxt, uuid, {"task_state": vm_states.SCHEDULING, "host": None, "node": None},
                expected_task_state=[vm_states.SPAWNING],
                event=_finish(event, "Error", details), release_allocations=True)
        except (exception.InstanceNotFound, exception.UnexpectedTaskStateError):
            return True  # deleted meanwhile: nothing left to build
        LOG.warning("Rescheduling instance %s away from %s (attempt %d of %d): %s", uuid,
                    self.host, attempt + 1, self.conf.scheduler.max_attempts, exc)
        self.conductor.build_instances(ctxt, [uuid], spec)
        return True

    def terminate_instance(self, ctxt: RequestContext, instance_uuid: str) -> None:
        event = "compute_terminate_instance"
        with self._instance_lock(instance_uuid):
            try:
                inst = self.conductor.instance_get(ctxt, instance_uuid)
            except exception.InstanceNotFound:
                return
            self.conductor.action_event_start(ctxt, instance_uuid, event, self.host)
            self._notify(ctxt, "instance.delete.start", inst)
            try:
                self.driver.destroy(ctxt, inst)
            except Exception as exc:  # noqa: BLE001
                LOG.exception("Destroying %s failed", instance_uuid)
                details = tb.format_exc()
                self._set_error(ctxt, instance_uuid, _fault_message(exc), details,
                                event=_finish(event, "Error", details))
                return
            inst = self.conductor.instance_destroy(ctxt, instance_uuid)
            self.conductor.action_event_finish(ctxt, instance_uuid, event, "Success")
            LOG.info("Instance %s deleted", instance_uuid)
            self._notify(ctxt, "instance.delete.end", inst)
        with self._locks_guard:
            self._locks.pop(instance_uuid, None)

    # -- power and state actions ---------------------------------------------------------
    def _run_action(self, ctxt: RequestContext, uuid: str, name: str, expected_task: str,
                    operate: Callable[[dict[str, Any]], None], final: dict[str, Any],
                    notify: str) -> None:
        event = f"compute_{name}"
        with self._task(ctxt, uuid, name, expected_task, event) as inst:
            if inst is None:
                return
            self._notify(ctxt, f"instance.{notify}.start", inst)
            try:
                operate(inst)
            except Exception as exc:  # noqa: BLE001
                LOG.exception("%s of %s failed", name, uuid)
                details = tb.format_exc()
                with contextlib.suppress(exception.InstanceNotFound):
                    self.conductor.instance_update(
                        ctxt, uuid, {"task_state": None},
                        event=_finish(event, "Error", details),
                        fault={"code": getattr(exc, "code", 500),
                               "message": _fault_message(exc), "details": details,
                               "host": self.host})
                self._notify(ctxt, f"instance.{notify}.error", inst, error=True)
                return
            updates = dict(final, task_state=None, power_state=self._power_state(inst))
            inst = self._finish_task(ctxt, uuid, name, expected_task, event, updates,
                                     finish_event_if_overtaken=True)
            if inst is None:
                return
            self._notify(ctxt, f"instance.{notify}.end", inst)
            LOG.info("%s of instance %s done", name, uuid)

    def stop_instance(self, ctxt: RequestContext, instance_uuid: str) -> None:
        self._run_action(ctxt, instance_uuid, "stop_instance", vm_states.POWERING_OFF,
                         lambda i: self.driver.power_off(i),
                         {"vm_state": vm_states.STOPPED}, "power_off")

    def start_instance(self, ctxt: RequestContext, instance_uuid: str) -> None:
        self._run_action(ctxt, instance_uuid, "start_instance", vm_states.POWERING_ON,
                         lambda i: self.driver.power_on(ctxt, i, None),
                         {"vm_state": vm_states.ACTIVE}, "power_on")

    def reboot_instance(self, ctxt: RequestContext, instance_uuid: str,
                        reboot_type: str = "SOFT") -> None:
        expected = vm_states.REBOOTING if reboot_type == "SOFT" else vm_states.REBOOTING_HARD
        self._run_action(ctxt, instance_uuid, "reboot_instance", expected,
                         lambda i: self.driver.reboot(ctxt, i, None, reboot_type),
                         {"vm_state": vm_states.ACTIVE}, "reboot")

    def pause_instance(self, ctxt: RequestContext, instance_uuid: str) -> None:
        self._run_action(ctxt, instance_uuid, "pause_instance", vm_states.PAUSING,
                         lambda i: self.driver.pause(i), {"vm_state": vm_states.PAUSED}, "pause")

    def unpause_instance(self, ctxt: RequestContext, instance_uuid: str) -> None:
        self._run_action(ctxt, instance_uuid, "unpause_instance", vm_states.UNPAUSING,
                         lambda i: self.driver.unpause(i), {"vm_state": vm_states.ACTIVE},
                         "unpause")

    def suspend_instance(self, ctxt: RequestContext, instance_uuid: str) -> None:
        self._run_action(ctxt, instance_uuid, "suspend_instance", vm_states.SUSPENDING,
                         lambda i: self.driver.suspend(ctxt, i),
                         {"vm_state": vm_states.SUSPENDED}, "suspend")

    def resume_instance(self, ctxt: RequestContext, instance_uuid: str) -> None:
        self._run_action(ctxt, instance_uuid, "resume_instance", vm_states.RESUMING,
                         lambda i: self.driver.resume(ctxt, i, None),
                         {"vm_state": vm_states.ACTIVE}, "resume")

    def trigger_crash_dump(self, ctxt: RequestContext, instance_uuid: str) -> None:
        """Inject an NMI (Nova's trigger_crash_dump): no task state, and the
        power state is whatever the guest makes of it; the action's event
        records the outcome."""
        uuid = instance_uuid
        event = "compute_trigger_crash_dump"
        with self._instance_lock(uuid):
            try:
                inst = self.conductor.instance_update(ctxt, uuid, {},
                                                      event=_start(event, self.host))
            except exception.InstanceNotFound as exc:
                LOG.info("Skipping the crash dump of %s: %s", uuid, exc)
                return
            self._notify(ctxt, "instance.trigger_crash_dump.start", inst)
            try:
                self.driver.trigger_crash_dump(inst)
            except Exception:  # noqa: BLE001 - recorded on the action's event
                LOG.exception("Crash dump of %s failed", uuid)
                with contextlib.suppress(exception.InstanceNotFound):
                    self.conductor.action_event_finish(ctxt, uuid, event, "Error",
                                                       tb.format_exc())
                self._notify(ctxt, "instance.trigger_crash_dump.error", inst, error=True)
                return
            with contextlib.suppress(exception.InstanceNotFound):
                self.conductor.action_event_finish(ctxt, uuid, event, "Success")
            self._notify(ctxt, "instance.trigger_crash_dump.end", inst)

    # -- rebuild -------------------------------------------------------------------------
    def rebuild_instance(self, ctxt: RequestContext, instance_uuid: str,
                         image: dict[str, Any], admin_pass: str | None = None,
                         preserve_ephemeral: bool = False) -> None:
        """Destroy the guest and its disks, spawn it again from ``image`` (the
        API already set the instance's image_ref); a STOPPED instance stays
        stopped. Failure puts the instance in ERROR with a fault, as Nova."""
        uuid = instance_uuid
        event = "compute_rebuild_instance"
        with self._task(ctxt, uuid, "rebuild", vm_states.REBUILDING, event) as inst:
            if inst is None:
                return
            self._notify(ctxt, "instance.rebuild.start", inst)
            stopped = inst["vm_state"] == vm_states.STOPPED
            try:
                self.driver.destroy(ctxt, inst, destroy_disks=True)
                self.driver.spawn(ctxt, inst, image, [], admin_pass)
                if stopped:
                    self.driver.power_off(inst)
            except Exception as exc:  # noqa: BLE001
                LOG.exception("Rebuild of %s failed", uuid)
                details = tb.format_exc()
                with contextlib.suppress(Exception):
                    self.driver.destroy(ctxt, inst)
                failed = self._set_error(ctxt, uuid, _fault_message(exc), details,
                                         getattr(exc, "code", 500),
                                         event=_finish(event, "Error", details))
                self._notify(ctxt, "instance.rebuild.error", failed or inst, error=True)
                return
            inst = self._finish_task(ctxt, uuid, "rebuild", vm_states.REBUILDING, event, {
                "vm_state": vm_states.STOPPED if stopped else vm_states.ACTIVE,
                "task_state": None, "power_state": self._power_state(inst),
                "launched_at": isotime_us(utcnow())})
            if inst is None:
                return
            self._notify(ctxt, "instance.rebuild.end", inst)
            LOG.info("Instance %s rebuilt", uuid)

    # -- snapshots -----------------------------------------------------------------------
    def snapshot_instance(self, ctxt: RequestContext, instance_uuid: str,
                          image_id: str) -> None:
        """createImage: the driver captures the root disk, this uploads it to the
        queued image ``image_id`` (see :meth:`_snapshot`)."""
        self._snapshot(ctxt, instance_uuid, image_id, "snapshot", vm_states.IMAGE_SNAPSHOT,
                       "compute_snapshot_instance")

    def backup_instance(self, ctxt: RequestContext, instance_uuid: str, image_id: str,
                        backup_type: str, rotation: int) -> None:
        """createBackup: snapshot_instance's upload to ``image_id``, then the
        instance's backups of ``backup_type`` are rotated (Nova's backup_instance)."""
        self._snapshot(ctxt, instance_uuid, image_id, "backup", vm_states.IMAGE_BACKUP,
                       "compute_backup_instance",
                       after_upload=lambda inst: self._rotate_backups(ctxt, inst, backup_type,
                                                                      rotation))

    def _snapshot(self, ctxt: RequestContext, uuid: str, image_id: str, op: str,
                  task: str, event: str,
                  after_upload: Callable[[dict[str, Any]], None] | None = None) -> None:
        """The instance, in ``task``, is captured by the driver (task states
        image_pending_upload, image_uploading) and uploaded to the queued image
        ``image_id``; then ``after_upload(instance)`` runs and the task state
        goes back to None. On failure the image is deleted, the instance gets a
        fault and its task state back to None."""
        with self._task(ctxt, uuid, op, task, event) as inst:
            if inst is None:
                return
            self._notify(ctxt, "instance.snapshot.start", inst)
            current = {"task": task}

            def update_task_state(*, task_state: str, expected_state: str | None = None) -> None:
                self.conductor.instance_update(
                    ctxt, uuid, {"task_state": task_state},
                    expected_task_state=[expected_state or current["task"]])
                current["task"] = task_state

            started = time.monotonic()
            try:
                if self.image_api is None:
                    raise exception.VirtDriverError(reason="this compute host cannot upload "
                                                           "images (no image client)")
                snap = self.driver.snapshot(ctxt, inst, image_id, update_task_state)
                if (snap.disk_format, snap.container_format) != ("qcow2", "bare"):
                    self.image_api.set_formats(image_id, snap.disk_format,
                                               snap.container_format)
                self.image_api.upload(image_id, snap.chunks, snap.size)
            except Exception as exc:  # noqa: BLE001
                LOG.exception("%s of %s failed", op.capitalize(), uuid)
                details = tb.format_exc()
                if self.image_api is not None:
                    with contextlib.suppress(Exception):
                        self.image_api.delete(image_id)
                with contextlib.suppress(exception.InstanceNotFound):
                    self.conductor.instance_update(
                        ctxt, uuid, {"task_state": None},
                        event=_finish(event, "Error", details),
                        fault={"code": getattr(exc, "code", 500),
                               "message": _fault_message(exc), "details": details,
                               "host": self.host})
                self._notify(ctxt, "instance.snapshot.error", inst, error=True)
                return
            if after_upload is not None:
                after_upload(inst)
            inst = self._finish_task(
                ctxt, uuid, op, current["task"], event,
                {"task_state": None, "power_state": self._power_state(inst)})
            if inst is None:
                return
            self._notify(ctxt, "instance.snapshot.end", inst)
            LOG.info("%s %s of instance %s uploaded in %.2f s", op.capitalize(), image_id,
                     uuid, time.monotonic() - started)

    def _rotate_backups(self, ctxt: RequestContext, inst: dict[str, Any], backup_type: str,
                        rotation: int) -> None:
        """Nova's _rotate_backups: delete the instance's backups of
        ``backup_type`` beyond the ``rotation`` newest (by created_at). Only
        images owned by the requester's project (the new backup's owner)
        count: the image client sees every project's. Failures are logged;
        the new backup stays."""
        try:
            images = self.image_api.list_images(
                {"instance_uuid": inst["uuid"], "image_type": "backup",
                 "backup_type": backup_type, "owner": ctxt.project_id or inst["project_id"]},
                sort_key="created_at", sort_dir="desc")
        except Exception:  # noqa: BLE001
            LOG.exception("Cannot list the %s backups of %s to rotate them", backup_type,
                          inst["uuid"])
            return
        for image in images[rotation:]:
            LOG.debug("Rotating out backup %s of %s", image["id"], inst["uuid"])
            try:
                self.image_api.delete(image["id"])
            except Exception as exc:  # noqa: BLE001
                LOG.info("Failed to delete backup %s of %s: %s", image["id"], inst["uuid"], exc)

    # -- shelve --------------------------------------------------------------------------
    _SHELVE_TASKS = {vm_states.IMAGE_PENDING_UPLOAD: vm_states.SHELVING_IMAGE_PENDING_UPLOAD,
                     vm_states.IMAGE_UPLOADING: vm_states.SHELVING_IMAGE_UPLOADING}

    def shelve_instance(self, ctxt: RequestContext, instance_uuid: str, image_id: str) -> None:
        """Power the guest off (cleanly, up to ``[compute] shutdown_timeout``),
        upload its snapshot to ``image_id``, destroy it and give its host's
        resources back: SHELVED_OFFLOADED with no host."""
        uuid = instance_uuid
        event = "compute_shelve_instance"
        with self._task(ctxt, uuid, "shelve", vm_states.SHELVING, event) as inst:
            if inst is None:
                return
            self._notify(ctxt, "instance.shelve.start", inst)
            current = {"task": vm_states.SHELVING}

            def update_task_state(*, task_state: str, expected_state: str | None = None) -> None:
                task = self._SHELVE_TASKS.get(task_state, task_state)
                self.conductor.instance_update(ctxt, uuid, {"task_state": task},
                                               expected_task_state=[current["task"]])
                current["task"] = task

            try:
                if self.image_api is None:
                    raise exception.VirtDriverError(reason="this compute host cannot upload "
                                                           "images (no image client)")
                self.driver.power_off(inst, timeout=self.conf.compute.shutdown_timeout,
                                      retry_interval=10)
                snap = self.driver.snapshot(ctxt, inst, image_id, update_task_state)
                if (snap.disk_format, snap.container_format) != ("qcow2", "bare"):
                    self.image_api.set_formats(image_id, snap.disk_format,
                                               snap.container_format)
                self.image_api.upload(image_id, snap.chunks, snap.size)
                update_task_state(task_state=vm_states.SHELVING_OFFLOADING)
                self.driver.destroy(ctxt, inst)
            except Exception as exc:  # noqa: BLE001
                LOG.exception("Shelving %s failed", uuid)
                details = tb.format_exc()
                if self.image_api is not None:
                    with contextlib.suppress(Exception):
                        self.image_api.delete(image_id)
                with contextlib.suppress(exception.InstanceNotFound):
                    self.conductor.instance_update(
                        ctxt, uuid, {"task_state": None, "power_state": self._power_state(inst)},
                        event=_finish(event, "Error", details),
                        fault={"code": getattr(exc, "code", 500),
                               "message": _fault_message(exc), "details": details,
                               "host": self.host})
                self._notify(ctxt, "instance.shelve.error", inst, error=True)
                return
            inst = self._finish_task(
                ctxt, uuid, "shelve", vm_states.SHELVING_OFFLOADING, event,
                {"vm_state": vm_states.SHELVED_OFFLOADED, "task_state": None,
                 "power_state": power_state.SHUTDOWN, "host": None, "node": None},
                release_allocations=True)
            if inst is None:
                return
            self._notify(ctxt, "instance.shelve_offload.end", inst)
            LOG.info("Instance %s shelved and offloaded (image %s)", uuid, image_id)

    def unshelve_instance(self, ctxt: RequestContext, instance_uuid: str,
                          image: dict[str, Any]) -> None:
        """Boot a shelved instance here from its shelved image (the conductor
        claimed this host), then delete that image. Failure: back to
        SHELVED_OFFLOADED with no host and a fault."""
        uuid = instance_uuid
        event = "compute_unshelve_instance"
        with self._task(ctxt, uuid, "unshelve", vm_states.UNSHELVING, event,
                        {"task_state": vm_states.SPAWNING}) as inst:
            if inst is None:
                return
            self._notify(ctxt, "instance.unshelve.start", inst)
            try:
                self.driver.spawn(ctxt, inst, image, [], None)
            except Exception as exc:  # noqa: BLE001
                LOG.exception("Unshelving %s failed", uuid)
                details = tb.format_exc()
                with contextlib.suppress(Exception):
                    self.driver.destroy(ctxt, inst)
                with contextlib.suppress(exception.InstanceNotFound,
                                         exception.UnexpectedTaskStateError):
                    self.conductor.instance_update(
                        ctxt, uuid, {"task_state": None, "host": None, "node": None},
                        expected_task_state=[vm_states.SPAWNING],
                        event=_finish(event, "Error", details), release_allocations=True,
                        fault={"code": getattr(exc, "code", 500),
                               "message": _fault_message(exc), "details": details,
                               "host": self.host})
                self._notify(ctxt, "instance.unshelve.error", inst, error=True)
                return
            spec = {k: v for k, v in (inst.get("request_spec") or {}).items()
                    if k != "shelved_image_id"}
            inst = self._finish_task(
                ctxt, uuid, "unshelve", vm_states.SPAWNING, event,
                {"vm_state": vm_states.ACTIVE, "task_state": None,
                 "power_state": self._power_state(inst), "request_spec": spec})
            if inst is None:
                return
            if self.image_api is not None and image.get("id"):
                try:
                    self.image_api.delete(image["id"])
                except Exception as exc:  # noqa: BLE001 - the instance is fine
                    LOG.warning("Could not delete shelved image %s: %s", image["id"], exc)
            self._notify(ctxt, "instance.unshelve.end", inst)
            LOG.info("Instance %s unshelved", uuid)

    # -- resize and cold migrate ---------------------------------------------------------
    @property
    def compute_rpc(self) -> Any:
        """Casts to other compute hosts (on the conductor client's transport)."""
        if getattr(self, "_compute_rpc", None) is None:
            from stratus.compute.rpcapi import ComputeRPCAPI
            client = self.conductor.client
            self._compute_rpc = ComputeRPCAPI(client.transport, client.timeout)
        return self._compute_rpc

    def _migration_failed(self, ctxt: RequestContext, uuid: str, migration: dict[str, Any],
                          event: str, exc: Exception, details: str,
                          updates: dict[str, Any] | None = None) -> None:
        """ERROR with a fault, the migration in error, the destination's
        allocation released (the instance keeps its source's)."""
        try:
            inst = self.conductor.migration_finish(
                ctxt, migration["uuid"], "error", uuid,
                {"vm_state": vm_states.ERROR, "task_state": None, **(updates or {})},
                keep="source", event=_finish(event, "Error", details),
                fault={"code": getattr(exc, "code", 500), "message": _fault_message(exc),
                       "details": details, "host": self.host})
        except exception.InstanceNotFound:
            return
        self._notify(ctxt, "instance.resize.error", inst, error=True)

    def resize_instance(self, ctxt: RequestContext, instance_uuid: str,
                        migration: dict[str, Any]) -> None:
        """Source side: power the guest off and set its disks aside for the
        destination, then cast the destination's ``finish_resize``."""
        uuid = instance_uuid
        event = "compute_resize_instance"
        with self._task(ctxt, uuid, "resize", vm_states.RESIZE_PREP, event,
                        {"task_state": vm_states.RESIZE_MIGRATING}) as inst:
            if inst is None:
                with contextlib.suppress(Exception):
                    self.conductor.migration_update(ctxt, migration["uuid"], {"status": "error"},
                                                    release_dest=True)
                return
            self._notify(ctxt, "instance.resize.start", inst)
            try:
                disk_info = self.driver.migrate_disk_and_power_off(
                    ctxt, inst, migration["dest_compute"], migration["new_flavor"], None,
                    timeout=self.conf.compute.shutdown_timeout, retry_interval=10)
            except Exception as exc:  # noqa: BLE001
                LOG.exception("Resize of %s failed on the source", uuid)
                self._migration_failed(ctxt, uuid, migration, event, exc, tb.format_exc(),
                                       {"power_state": self._power_state(inst)})
                return
            # migration_update raises neither InstanceNotFound nor UnexpectedTaskStateError.
            self.conductor.migration_update(ctxt, migration["uuid"], {"status": "post-migrating"})
            if self._finish_task(ctxt, uuid, "resize", vm_states.RESIZE_MIGRATING, event,
                                 {"task_state": vm_states.RESIZE_MIGRATED,
                                  "power_state": power_state.SHUTDOWN}) is None:
                return
        self.compute_rpc.instance_action(ctxt, migration["dest_compute"], uuid,
                                         "finish_resize", migration=migration,
                                         disk_info=disk_info)

    def finish_resize(self, ctxt: RequestContext, instance_uuid: str,
                      migration: dict[str, Any], disk_info: str) -> None:
        """Destination side: create the guest with the new flavor; the instance
        is RESIZED (VERIFY_RESIZE) on this host."""
        uuid = instance_uuid
        event = "compute_finish_resize"
        flavor = migration["new_flavor"]
        sizes = {"flavor": flavor, "vcpus": flavor["vcpus"], "memory_mb": flavor["memory_mb"],
                 "root_gb": flavor["root_gb"], "ephemeral_gb": flavor["ephemeral_gb"]}
        with self._task(ctxt, uuid, "finish_resize", vm_states.RESIZE_MIGRATED, event,
                        {"task_state": vm_states.RESIZE_FINISH}) as claimed:
            if claimed is None:
                return
            inst = dict(claimed, **sizes, swap=flavor.get("swap", 0))
            power_on = migration.get("old_vm_state") != vm_states.STOPPED
            try:
                self.driver.finish_migration(
                    ctxt, migration, inst, disk_info, None, {"id": inst.get("image_ref")},
                    resize_instance=flavor != migration["old_flavor"], power_on=power_on)
            except Exception as exc:  # noqa: BLE001
                LOG.exception("Resize of %s failed on the destination", uuid)
                details = tb.format_exc()
                with contextlib.suppress(Exception):
                    self.driver.destroy(ctxt, inst)
                self._migration_failed(ctxt, uuid, migration, event, exc, details,
                                       {"power_state": power_state.NOSTATE})
                return
            done = self._finish_migration_task(
                ctxt, uuid, "finish_resize", vm_states.RESIZE_FINISH, event, migration,
                "finished", {**sizes, "vm_state": vm_states.RESIZED, "task_state": None,
                             "host": self.host, "node": migration["dest_node"],
                             "power_state": self._power_state(inst)}, keep=None)
            if done is None:
                return
            self._notify(ctxt, "instance.resize.end", done)
            LOG.info("Instance %s resized onto %s: VERIFY_RESIZE", uuid, self.host)

    def confirm_resize(self, ctxt: RequestContext, instance_uuid: str,
                       migration: dict[str, Any]) -> None:
        """Source side: drop the kept disks and the source's allocation."""
        uuid = instance_uuid
        event = "compute_confirm_resize"
        with self._task(ctxt, uuid, "confirm_resize", vm_states.RESIZE_CONFIRMING,
                        event) as inst:
            if inst is None:
                return
            try:
                self.driver.confirm_migration(ctxt, migration, inst, None)
            except Exception as exc:  # noqa: BLE001
                LOG.exception("Confirming the resize of %s failed", uuid)
                details = tb.format_exc()
                with contextlib.suppress(exception.InstanceNotFound):
                    self.conductor.migration_finish(
                        ctxt, migration["uuid"], "error", uuid,
                        {"vm_state": vm_states.ERROR, "task_state": None}, keep="dest",
                        event=_finish(event, "Error", details),
                        fault={"code": getattr(exc, "code", 500),
                               "message": _fault_message(exc), "details": details,
                               "host": self.host})
                return
            final = vm_states.STOPPED if migration.get("old_vm_state") == vm_states.STOPPED \
                else vm_states.ACTIVE
            inst = self._finish_migration_task(
                ctxt, uuid, "confirm_resize", vm_states.RESIZE_CONFIRMING, event, migration,
                "confirmed", {"vm_state": final, "task_state": None}, keep="dest")
            if inst is None:
                return
            self._notify(ctxt, "instance.resize_confirm.end", inst)

    def revert_resize(self, ctxt: RequestContext, instance_uuid: str,
                      migration: dict[str, Any]) -> None:
        """Destination side: destroy the new guest, free this host's
        allocation, then cast the source's ``finish_revert_resize``."""
        uuid = instance_uuid
        event = "compute_revert_resize"
        with self._task(ctxt, uuid, "revert_resize", vm_states.RESIZE_REVERTING,
                        event) as inst:
            if inst is None:
                return
            try:
                self.driver.destroy(ctxt, inst, destroy_disks=True)
            except Exception as exc:  # noqa: BLE001
                LOG.exception("Reverting the resize of %s failed", uuid)
                self._migration_failed(ctxt, uuid, migration, event, exc, tb.format_exc())
                return
            self.conductor.migration_update(ctxt, migration["uuid"], {"status": "reverting"},
                                            release_dest=True)
            self.conductor.action_event_finish(ctxt, uuid, event, "Success")
        self.compute_rpc.instance_action(ctxt, migration["source_compute"], uuid,
                                         "finish_revert_resize", migration=migration)

    def finish_revert_resize(self, ctxt: RequestContext, instance_uuid: str,
                             migration: dict[str, Any], interrupted: str | None = None) -> None:
        """Source side: bring the kept guest back with the old flavor.
        ``interrupted`` (a destination that restarted mid-resize rolls it
        back): the migration ends in ``error`` with that fault instead of
        ``reverted``."""
        uuid = instance_uuid
        event = "compute_finish_revert_resize"
        flavor = migration["old_flavor"]
        sizes = {"flavor": flavor, "vcpus": flavor["vcpus"], "memory_mb": flavor["memory_mb"],
                 "root_gb": flavor["root_gb"], "ephemeral_gb": flavor["ephemeral_gb"]}
        with self._task(ctxt, uuid, "finish_revert_resize", vm_states.RESIZE_REVERTING,
                        event) as claimed:
            if claimed is None:
                return
            inst = dict(claimed, **sizes, swap=flavor.get("swap", 0))
            old_state = migration.get("old_vm_state") or vm_states.ACTIVE
            try:
                self._restore_source(ctxt, inst, migration, old_state != vm_states.STOPPED)
            except Exception as exc:  # noqa: BLE001
                LOG.exception("Restoring %s on the source failed", uuid)
                self._migration_failed(ctxt, uuid, migration, event, exc, tb.format_exc(),
                                       {**sizes, "host": self.host,
                                        "node": migration["source_node"],
                                        "power_state": power_state.NOSTATE})
                return
            done = self._finish_migration_task(
                ctxt, uuid, "finish_revert_resize", vm_states.RESIZE_REVERTING, event,
                migration, "error" if interrupted else "reverted",
                {**sizes, "vm_state": old_state, "task_state": None, "host": self.host,
                 "node": migration["source_node"], "power_state": self._power_state(inst)},
                keep="source", fault=None if interrupted is None else {
                    "code": 500, "message": interrupted, "details": interrupted,
                    "host": self.host})
            if done is None:
                return
            self._notify(ctxt, "instance.resize_revert.end", done)
            LOG.info("Resize of instance %s reverted onto %s", uuid, self.host)

    # -- console -------------------------------------------------------------------------
    def get_console_output(self, ctxt: RequestContext, instance: dict[str, Any]) -> str:
        """The whole console log the driver keeps (the API takes the tail)."""
        return self.driver.get_console_output(ctxt, instance)

    # -- rescue --------------------------------------------------------------------------
    def rescue_instance(self, ctxt: RequestContext, instance_uuid: str,
                        image: dict[str, Any], rescue_password: str | None = None) -> None:
        self._run_action(ctxt, instance_uuid, "rescue_instance", vm_states.RESCUING,
                         lambda i: self.driver.rescue(ctxt, i, None, image, rescue_password),
                         {"vm_state": vm_states.RESCUED}, "rescue")

    def unrescue_instance(self, ctxt: RequestContext, instance_uuid: str) -> None:
        self._run_action(ctxt, instance_uuid, "unrescue_instance", vm_states.UNRESCUING,
                         lambda i: self.driver.unrescue(ctxt, i),
                         {"vm_state": vm_states.ACTIVE}, "unrescue")

    # -- periodic ----------------------------------------------------------------------
    def resource_reports(self) -> list[dict[str, Any]]:
        """One report per node: ``{"host", "nodename", "resources"}``."""
        return [{"host": self.host, "nodename": nodename,
                 "resources": node_report(self.driver.get_available_resource(nodename),
                                          self.conf.compute, self._builds_in_flight)}
                for nodename in self.driver.get_available_nodes()]

    def update_available_resource(self) -> None:
        ctxt = get_admin_context()
        for report in self.resource_reports():
            self.conductor.compute_node_update(ctxt, report["host"], report["nodename"],
                                               report["resources"])

    def sync_power_states(self) -> None:
        """Bring the database in line with what the hypervisor says (Nova's
        ``_sync_power_states``), for the instances of this host that no
        operation is working on:

        * the power state is recorded when it changed;
        * ACTIVE whose guest shut down or crashed on its own -> STOPPED;
        * STOPPED whose guest runs (started behind our back) -> powered off.

        An instance whose lock is held (an operation in flight) is skipped,
        and every write is a compare-and-swap on ``task_state`` None, so an
        operation that started meanwhile wins.
        """
        ctxt = get_admin_context()
        for inst in self.conductor.instances_get_by_host(ctxt, self.host):
            if inst["task_state"] is not None or inst["vm_state"] in (
                    vm_states.BUILDING, vm_states.DELETED, vm_states.ERROR):
                continue
            with self._locks_guard:
                lock = self._locks.setdefault(inst["uuid"], threading.Lock())
            if not lock.acquire(blocking=False):
                continue
            try:
                self._sync_power_state(ctxt, inst)
            except Exception:  # noqa: BLE001 - one instance must not stop the others
                LOG.exception("Power state sync of %s failed", inst["uuid"])
            finally:
                lock.release()

    def _sync_power_state(self, ctxt: RequestContext, inst: dict[str, Any]) -> None:
        uuid = inst["uuid"]
        actual = self._power_state(inst)
        updates: dict[str, Any] = {}
        if inst["vm_state"] == vm_states.ACTIVE and actual in (power_state.SHUTDOWN,
                                                               power_state.CRASHED):
            LOG.warning("Instance %s is %s on the hypervisor: it is now STOPPED", uuid,
                        power_state.STATE_MAP[actual])
            updates["vm_state"] = vm_states.STOPPED
        elif inst["vm_state"] == vm_states.STOPPED and actual == power_state.RUNNING:
            LOG.warning("Instance %s should be stopped but runs: powering it off", uuid)
            self.driver.power_off(inst)
            actual = self._power_state(inst)
        if actual != inst["power_state"]:
            updates["power_state"] = actual
        if not updates:
            return
        try:
            self.conductor.instance_update(ctxt, uuid, updates, expected_task_state=[None])
        except (exception.InstanceNotFound, exception.UnexpectedTaskStateError):
            return
        if "vm_state" in updates:
            self._notify(ctxt, "instance.power_off.end", {**inst, **updates})

    def poll_unconfirmed_resizes(self) -> None:
        """Confirm the resizes onto this host left in VERIFY_RESIZE longer than
        ``[DEFAULT] resize_confirm_window`` seconds (Nova's
        ``_poll_unconfirmed_resizes``): the conductor moves each to
        ``resize_confirming`` (compare-and-swap: a user's confirm or revert
        meanwhile wins) and its source confirms it."""
        window = self.conf.DEFAULT.resize_confirm_window
        if window <= 0:
            return
        ctxt = get_admin_context()
        for migration in self.conductor.confirm_unconfirmed_resizes(ctxt, self.host, window):
            self.compute_rpc.instance_action(ctxt, migration["source_compute"],
                                             migration["instance_uuid"], "confirm_resize",
                                             migration=migration)

    def run_image_cache_manager_pass(self) -> None:
        """Let a driver that caches images remove the ones no guest used lately."""
        ctxt = get_admin_context()
        instances = self.conductor.instances_get_by_host(ctxt, self.host)
        self.driver.manage_image_cache(ctxt, instances)

    def periodic_tasks(self) -> list[tuple[float, Callable[[], Any]]]:
        tasks: list[tuple[float, Callable[[], Any]]] = [
            (self.conf.compute.resource_update_interval, self.update_available_resource)]
        if self.conf.compute.sync_power_state_interval > 0:
            tasks.append((self.conf.compute.sync_power_state_interval, self.sync_power_states))
        if self.conf.DEFAULT.resize_confirm_window > 0:
            tasks.append((min(60.0, self.conf.DEFAULT.resize_confirm_window),
                          self.poll_unconfirmed_resizes))
        interval = self.conf.compute.image_cache_manager_interval
        if self.driver.capabilities.get("has_imagecache") and interval > 0:
            tasks.append((interval, self.run_image_cache_manager_pass))
        return tasks


def _start(event: str, host: str) -> dict[str, Any]:
    return {"event": event, "phase": "start", "host": host}


def _finish(event: str, result: str, traceback: str | None = None) -> dict[str, Any]:
    return {"event": event, "phase": "finish", "result": result, "traceback": traceback}


def decode_injected_files(files: list[Any] | None) -> list[tuple[str, bytes]]:
    """The request's personality files, (path, base64) -> (path, bytes)."""
    return [(str(path), base64.b64decode(contents)) for path, contents in files or []]


def _fault_message(exc: Exception) -> str:
    if isinstance(exc, exception.StratusException):
        return exc.message
    return f"{type(exc).__name__}: {exc}"
