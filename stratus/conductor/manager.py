"""The conductor's RPC endpoint.

Two roles, as in Nova: it orchestrates builds (ask the scheduler, record the
host, hand the instance to its compute host) and it does the database work
of compute hosts, which hold no database credentials. It also reaps builds
that stalled (a compute host died mid-way), so no instance stays in BUILD.
"""
from __future__ import annotations

import contextlib
import datetime
import logging
import traceback as tb
from typing import Any

from stratus import exception
from stratus.compute import power_state, vm_states
from stratus.compute.rpcapi import ComputeRPCAPI
from stratus.context import RequestContext, get_admin_context
from stratus.db import instances as db_instances
from stratus.db import resizes as db_resizes
from stratus.db import services as db_services
from stratus.db.session import Database
from stratus.notifications import instance_payload
from stratus.scheduler.rpcapi import SchedulerAPI
from stratus.utils import new_uuid, utcnow

LOG = logging.getLogger(__name__)
_UNSET = "__unset__"


class ConductorManager:
    def __init__(self, conf: Any, db: Database, transport: Any, notifier: Any) -> None:
        self.conf = conf
        self.db = db
        self.notifier = notifier
        timeout = conf.DEFAULT.rpc_response_timeout
        self.scheduler = SchedulerAPI(transport, timeout)
        self.compute_rpc = ComputeRPCAPI(transport, timeout)

    # -- build orchestration -----------------------------------------------------
    def build_instances(self, ctxt: RequestContext, instance_uuids: list[str],
                        request_spec: dict[str, Any]) -> None:
        try:
            selections = self.scheduler.select_destinations(ctxt, request_spec, instance_uuids)
        except exception.NoValidHost as exc:
            LOG.warning("No valid host for %s: %s", instance_uuids, exc)
            if request_spec.get("last_failure"):  # a reschedule ran out of hosts
                exc = exception.NoValidHost(reason=f"Exceeded maximum number of retries. "
                                                   f"Last failure on {request_spec['last_failure']}")
            for uuid in instance_uuids:
                self._fail_build(ctxt, uuid, exc, with_traceback=False)
            return
        except Exception as exc:  # noqa: BLE001 - scheduler unreachable, timeout, ...
            LOG.exception("Scheduling %s failed", instance_uuids)
            for uuid in instance_uuids:
                self._fail_build(ctxt, uuid, exc)
            return
        for sel in selections:
            uuid = sel["instance_uuid"]
            try:
                inst = db_instances.instance_update(
                    self.db, uuid, {"host": sel["host"], "node": sel["nodename"],
                                    "launched_on": sel["host"]},
                    expected_task_state=[vm_states.SCHEDULING])
            except (exception.InstanceNotFound, exception.UnexpectedTaskStateError):
                # Deleted while we were scheduling it: give the claim back.
                LOG.info("Instance %s went away during scheduling", uuid)
                db_instances.allocations_delete(self.db, uuid)
                continue
            LOG.info("Building instance %s on host %s", uuid, sel["host"])
            self.compute_rpc.build_and_run_instance(ctxt, sel["host"], inst, request_spec)

    def unshelve_instance(self, ctxt: RequestContext, instance_uuid: str) -> None:
        """Pick a host for a shelved-offloaded instance (a new claim) and have it
        boot the instance from its shelved image. No host: the instance stays
        SHELVED_OFFLOADED with a fault."""
        uuid = instance_uuid
        try:
            inst = db_instances.instance_get(self.db, uuid)
        except exception.InstanceNotFound:
            return
        image_id = (inst.get("request_spec") or {}).get("shelved_image_id")
        spec = {"flavor": inst["flavor"], "image": {"id": image_id},
                "availability_zone": inst.get("availability_zone"), "num_instances": 1,
                "project_id": inst["project_id"], "user_id": inst["user_id"]}
        try:
            if not image_id:
                raise exception.Invalid(f"Instance {uuid} has no shelved image.")
            selection = self.scheduler.select_destinations(ctxt, spec, [uuid])[0]
        except Exception as exc:  # noqa: BLE001 - NoValidHost, scheduler down...
            LOG.warning("Cannot unshelve %s: %s", uuid, exc)
            message = str(exc) if isinstance(exc, exception.StratusException) else \
                f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(exception.InstanceNotFound,
                                     exception.UnexpectedTaskStateError):
                db_instances.instance_update(
                    self.db, uuid, {"task_state": None},
                    expected_task_state=[vm_states.UNSHELVING],
                    fault={"code": getattr(exc, "code", 500), "message": message,
                           "details": message},
                    event={"request_id": ctxt.request_id, "phase": "finish",
                           "result": "Error", "event": "conductor_unshelve_instance",
                           "traceback": message})
            return
        try:
            db_instances.instance_update(
                self.db, uuid, {"host": selection["host"], "node": selection["nodename"],
                                "launched_on": selection["host"]},
                expected_task_state=[vm_states.UNSHELVING])
        except (exception.InstanceNotFound, exception.UnexpectedTaskStateError):
            db_instances.allocations_delete(self.db, uuid)
            return
        LOG.info("Unshelving instance %s on host %s", uuid, selection["host"])
        self.compute_rpc.instance_action(ctxt, selection["host"], uuid, "unshelve_instance",
                                         image=spec["image"])

    def migrate_server(self, ctxt: RequestContext, instance_uuid: str, flavor: dict[str, Any],
                       migration_type: str, host: str | None = None) -> None:
        """Resize or cold-migrate (Nova's flow): record the migration, have the
        scheduler claim ``flavor`` on a destination under the migration's uuid
        (the instance keeps its allocation on the source), then cast the
        source host's ``resize_instance``. No host: back to the state it was
        in with a fault, the migration in error. ``host`` (a cold migration's
        requested destination, 2.56) is the only host the scheduler may pick,
        and only when it passes every filter (Nova's requested_destination)."""
        uuid = instance_uuid
        try:
            inst = db_instances.instance_get(self.db, uuid)
        except exception.InstanceNotFound:
            return
        migration = db_resizes.migration_create(self.db, {
            "uuid": new_uuid(), "instance_uuid": uuid, "source_compute": inst["host"],
            "source_node": inst["node"], "old_flavor": inst["flavor"], "new_flavor": flavor,
            "old_vm_state": inst["vm_state"], "status": "pre-migrating",
            "migration_type": migration_type})
        spec = dict(inst.get("request_spec") or {})
        spec.update({"flavor": flavor, "num_instances": 1, "project_id": inst["project_id"],
                     "user_id": inst["user_id"],
                     "availability_zone": inst.get("availability_zone")})
        spec.pop("shelved_image_id", None)
        spec.setdefault("image", {"id": inst.get("image_ref")})
        same_host = migration_type == "resize" and self.conf.DEFAULT.allow_resize_to_same_host
        if not same_host:
            spec["ignore_hosts"] = [inst["host"]]
        else:
            spec.pop("ignore_hosts", None)
        for key in ("attempt", "last_failure", "admin_pass", "injected_files",
                    "force_hosts", "force_nodes", "requested_destination"):
            spec.pop(key, None)  # a boot's forced host does not bind a move (Nova's reset)
        if host:
            spec["requested_destination"] = {"host": host}
        try:
            selection = self.scheduler.select_destinations(ctxt, spec, [migration["uuid"]])[0]
        except Exception as exc:  # noqa: BLE001 - NoValidHost, scheduler down...
            LOG.warning("Cannot %s %s: %s", migration_type, uuid, exc)
            message = str(exc) if isinstance(exc, exception.StratusException) else \
                f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(exception.InstanceNotFound,
                                     exception.UnexpectedTaskStateError):
                db_resizes.finish(
                    self.db, migration["uuid"], "error", uuid, {"task_state": None},
                    keep="source", expected_task_state=[vm_states.RESIZE_PREP],
                    fault={"code": getattr(exc, "code", 500), "message": message,
                           "details": message},
                    event={"request_id": ctxt.request_id, "phase": "finish",
                           "result": "Error", "event": "conductor_migrate_server",
                           "traceback": message})
            return
        migration = db_resizes.migration_update(
            self.db, migration["uuid"], {"dest_compute": selection["host"],
                                         "dest_node": selection["nodename"],
                                         "status": "migrating"})
        LOG.info("%s of instance %s: %s -> %s", migration_type, uuid, inst["host"],
                 selection["host"])
        self.compute_rpc.instance_action(ctxt, inst["host"], uuid, "resize_instance",
                                         migration=migration)

    def _fail_build(self, ctxt: RequestContext, uuid: str, exc: Exception,
                    with_traceback: bool = True) -> None:
        code = getattr(exc, "code", 500)
        message = str(exc) if isinstance(exc, exception.StratusException) else \
            f"{type(exc).__name__}: {exc}"
        details = tb.format_exc() if with_traceback else message
        try:
            inst = db_instances.instance_update(
                self.db, uuid, {"vm_state": vm_states.ERROR, "task_state": None},
                fault={"code": code, "message": message, "details": details},
                release_allocations=True,
                event={"request_id": ctxt.request_id, "phase": "finish", "result": "Error",
                       "event": "conductor_schedule_and_build_instances",
                       "traceback": details})
        except exception.InstanceNotFound:
            return
        self.notifier.error(ctxt, "instance.create.error", instance_payload(inst))

    # -- database work for compute hosts --------------------------------------------
    def ping(self, ctxt: RequestContext) -> str:
        return "pong"

    def instance_get(self, ctxt: RequestContext, instance_uuid: str) -> dict[str, Any]:
        return db_instances.instance_get(self.db, instance_uuid)

    def instance_update(self, ctxt: RequestContext, instance_uuid: str, updates: dict[str, Any],
                        expected_task_state: Any = _UNSET,
                        event: dict[str, Any] | None = None,
                        fault: dict[str, Any] | None = None,
                        release_allocations: bool = False,
                        retried: bool = False) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"fault": fault, "release_allocations": release_allocations,
                                  "retried": retried}
        if expected_task_state != _UNSET:
            kwargs["expected_task_state"] = expected_task_state
        if event is not None:
            kwargs["event"] = dict(event, request_id=ctxt.request_id)
        return db_instances.instance_update(self.db, instance_uuid, updates, **kwargs)

    def migration_get(self, ctxt: RequestContext, migration_uuid: str) -> dict[str, Any]:
        return db_resizes.migration_get(self.db, migration_uuid)

    def migration_update(self, ctxt: RequestContext, migration_uuid: str,
                         updates: dict[str, Any], release_dest: bool = False) -> dict[str, Any]:
        return db_resizes.migration_update(self.db, migration_uuid, updates, release_dest)

    def migration_finish(self, ctxt: RequestContext, migration_uuid: str, status: str,
                         instance_uuid: str, instance_updates: dict[str, Any],
                         keep: str | None, expected_task_state: Any = _UNSET,
                         event: dict[str, Any] | None = None,
                         fault: dict[str, Any] | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if expected_task_state != _UNSET:
            kwargs["expected_task_state"] = expected_task_state
        if event is not None:
            event = dict(event, request_id=ctxt.request_id)
        return db_resizes.finish(self.db, migration_uuid, status, instance_uuid,
                                 instance_updates, keep, event=event, fault=fault, **kwargs)

    def migrations_in_progress(self, ctxt: RequestContext, host: str) -> list[dict[str, Any]]:
        return db_resizes.migrations_in_progress(self.db, host)

    def migrations_in_progress_by_hosts(self, ctxt: RequestContext, hosts: list[str]
                                        ) -> dict[str, list[dict[str, Any]]]:
        return db_resizes.migrations_in_progress_by_hosts(self.db, hosts)

    def confirm_unconfirmed_resizes(self, ctxt: RequestContext, dest_host: str,
                                    window: float) -> list[dict[str, Any]]:
        """Start confirming the resizes onto ``dest_host`` that waited in
        VERIFY_RESIZE longer than ``window`` seconds (Nova's
        ``_poll_unconfirmed_resizes``); the caller casts their sources'
        ``confirm_resize``."""
        cutoff = utcnow() - datetime.timedelta(seconds=window)
        started = []
        for migration in db_resizes.unconfirmed(self.db, dest_host, cutoff):
            confirming = db_resizes.start_confirm(self.db, migration["instance_uuid"],
                                                  ctxt.request_id)
            if confirming is not None:
                LOG.info("Automatically confirming the resize of %s (older than %g s)",
                         migration["instance_uuid"], window)
                started.append(confirming)
        return started

    def instance_destroy(self, ctxt: RequestContext, instance_uuid: str) -> dict[str, Any]:
        return db_instances.instance_destroy(self.db, instance_uuid)

    def instances_get_by_host(self, ctxt: RequestContext, host: str) -> list[dict[str, Any]]:
        return db_instances.instances_get_by_host(self.db, host)

    def action_event_start(self, ctxt: RequestContext, instance_uuid: str, event: str,
                           host: str) -> None:
        db_instances.action_event_start(self.db, instance_uuid, ctxt.request_id, event, host)

    def action_event_finish(self, ctxt: RequestContext, instance_uuid: str, event: str,
                            result: str, traceback: str | None = None) -> None:
        db_instances.action_event_finish(self.db, instance_uuid, ctxt.request_id, event,
                                         result, traceback)

    def compute_node_update(self, ctxt: RequestContext, host: str, nodename: str,
                            resources: dict[str, Any]) -> dict[str, Any]:
        return db_services.compute_node_update(self.db, host, nodename, resources)

    def service_heartbeat(self, ctxt: RequestContext, host: str, binary: str,
                          topic: str) -> dict[str, Any]:
        return db_services.service_heartbeat(self.db, host, binary, topic)

    # -- batched, for a process running many (fake) hosts ---------------------------
    def service_heartbeats(self, ctxt: RequestContext, hosts: list[str], binary: str,
                           topic: str) -> int:
        return db_services.service_heartbeats(self.db, hosts, binary, topic)

    def compute_nodes_update(self, ctxt: RequestContext, reports: list[dict[str, Any]]) -> int:
        return db_services.compute_nodes_update(self.db, reports)

    def instances_get_by_hosts(self, ctxt: RequestContext,
                               hosts: list[str]) -> dict[str, list[dict[str, Any]]]:
        return db_instances.instances_get_by_hosts(self.db, hosts)

    # -- periodic ------------------------------------------------------------------
    def reap_stalled_builds(self) -> int:
        """Put instances that stayed in BUILD past instance_build_timeout in ERROR."""
        timeout = self.conf.DEFAULT.instance_build_timeout
        if not timeout:
            return 0
        ctxt = get_admin_context()
        cutoff = utcnow() - datetime.timedelta(seconds=timeout)
        reaped = 0
        for uuid in db_instances.instances_stuck_building(self.db, cutoff):
            message = f"Build of instance {uuid} timed out after {timeout:g} seconds"
            try:
                inst = db_instances.instance_update(
                    self.db, uuid, {"vm_state": vm_states.ERROR, "task_state": None,
                                    "power_state": power_state.NOSTATE},
                    expected_vm_state=[vm_states.BUILDING],
                    fault={"code": 500, "message": message, "details": message},
                    release_allocations=True)
            except (exception.InstanceNotFound, exception.UnexpectedTaskStateError):
                continue
            self.notifier.error(ctxt, "instance.create.error", instance_payload(inst))
            LOG.warning(message)
            reaped += 1
        return reaped

    def periodic_tasks(self) -> list[tuple[float, Any]]:
        interval = max(1.0, min(60.0, (self.conf.DEFAULT.instance_build_timeout or 60) / 4))
        return [(interval, self.reap_stalled_builds)]
