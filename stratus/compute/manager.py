"""The compute service's RPC endpoint: the instance lifecycle on one host.

Every operation follows one pattern (:meth:`ComputeManager._run_action`):
record the instance-action event, call the virt driver, then move the
instance to its resting state with a compare-and-swap on the task state the
API set. A failure records an instance fault, puts the task state back and
marks the event as Error, so no instance is left mid-operation. Operations
on one instance are serialised by a per-instance lock.

The host holds no database credentials: all reads and writes go through the
conductor (:class:`stratus.conductor.rpcapi.ConductorAPI`).
"""
from __future__ import annotations

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


class ComputeManager:
    def __init__(self, conf: Any, host: str, driver: ComputeDriver, conductor: ConductorAPI,
                 notifier: Any) -> None:
        self.conf = conf
        self.host = host
        self.driver = driver
        self.conductor = conductor
        self.notifier = notifier
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
        """
        self.driver.init_host(self.host)
        ctxt = get_admin_context()
        self.conductor.wait_until_ready(ctxt)
        self.reconcile(ctxt, self.conductor.instances_get_by_host(ctxt, self.host))
        self.update_available_resource()

    def reconcile(self, ctxt: RequestContext, ours: list[dict[str, Any]]) -> None:
        """Match the hypervisor and ``ours`` (this host's instances in the database)."""
        known = set(self.driver.list_instances())
        for orphan in known - {inst["uuid"] for inst in ours}:
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
            elif inst["task_state"] is not None and inst["task_state"] != vm_states.SCHEDULING:
                state = self._power_state(inst) if uuid in known else power_state.NOSTATE
                self.conductor.instance_update(ctxt, uuid, {"task_state": None,
                                                            "power_state": state})

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

    # -- build / delete ------------------------------------------------------------------
    def build_and_run_instance(self, ctxt: RequestContext, instance: dict[str, Any],
                               request_spec: dict[str, Any]) -> None:
        uuid = instance["uuid"]
        event = "compute_build_and_run_instance"
        with self._build_slots, self._instance_lock(uuid), self._counting_build():
            try:
                inst = self.conductor.instance_update(
                    ctxt, uuid, {"task_state": vm_states.SPAWNING},
                    expected_task_state=[vm_states.SCHEDULING],
                    event=_start(event, self.host))
            except (exception.InstanceNotFound, exception.UnexpectedTaskStateError) as exc:
                LOG.info("Not building %s: %s", uuid, exc)
                return
            self._notify(ctxt, "instance.create.start", inst)
            started = time.monotonic()
            try:
                self.driver.spawn(ctxt, inst, request_spec.get("image") or {}, [],
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
                    "launched_at": isotime_us(utcnow())},
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
        with self._instance_lock(uuid):
            try:
                # Still ours? Checks the task state the API set and opens the event.
                inst = self.conductor.instance_update(ctxt, uuid, {},
                                                      expected_task_state=[expected_task],
                                                      event=_start(event, self.host))
            except (exception.InstanceNotFound, exception.UnexpectedTaskStateError) as exc:
                LOG.info("Skipping %s of %s: %s", name, uuid, exc)
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
            try:
                inst = self.conductor.instance_update(ctxt, uuid, updates,
                                                      expected_task_state=[expected_task],
                                                      event=_finish(event, "Success"))
            except (exception.InstanceNotFound, exception.UnexpectedTaskStateError) as exc:
                LOG.info("%s of %s overtaken: %s", name, uuid, exc)
                self.conductor.action_event_finish(ctxt, uuid, event, "Success")
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

    def periodic_tasks(self) -> list[tuple[float, Callable[[], Any]]]:
        return [(self.conf.compute.resource_update_interval, self.update_available_resource)]


def _start(event: str, host: str) -> dict[str, Any]:
    return {"event": event, "phase": "start", "host": host}


def _finish(event: str, result: str, traceback: str | None = None) -> dict[str, Any]:
    return {"event": event, "phase": "finish", "result": result, "traceback": traceback}


def _fault_message(exc: Exception) -> str:
    if isinstance(exc, exception.StratusException):
        return exc.message
    return f"{type(exc).__name__}: {exc}"
