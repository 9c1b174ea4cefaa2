"""Client side of the conductor's RPC API (topic ``conductor``).

Compute hosts hold no database credentials: every write they make goes
through these calls, as in Nova.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from stratus import exception, rpc
from stratus.context import RequestContext

LOG = logging.getLogger(__name__)
TOPIC = "conductor"
UPDATE_ATTEMPTS = 3


class ConductorAPI:
    def __init__(self, transport: Any, timeout: float = 60.0) -> None:
        self.client = rpc.RPCClient(transport, topic=TOPIC, timeout=timeout)

    # -- from the API ---------------------------------------------------------
    def build_instances(self, ctxt: RequestContext, instance_uuids: list[str],
                        request_spec: dict[str, Any]) -> None:
        self.client.cast(ctxt, "build_instances", instance_uuids=instance_uuids,
                         request_spec=request_spec)

    def unshelve_instance(self, ctxt: RequestContext, instance_uuid: str) -> None:
        self.client.cast(ctxt, "unshelve_instance", instance_uuid=instance_uuid)

    def migrate_server(self, ctxt: RequestContext, instance_uuid: str, flavor: dict[str, Any],
                       migration_type: str, host: str | None = None) -> None:
        """Resize (``migration_type`` "resize") or cold-migrate ("migration"),
        to ``host`` only when one is named (2.56)."""
        extra = {"host": host} if host else {}  # an older conductor takes no host
        self.client.cast(ctxt, "migrate_server", instance_uuid=instance_uuid, flavor=flavor,
                         migration_type=migration_type, **extra)

    # -- from compute hosts -----------------------------------------------------
    def wait_until_ready(self, ctxt: RequestContext, attempt_timeout: float = 2.0,
                         deadline: float | None = None) -> None:
        """Block until a conductor answers (a compute host starting before the
        conductor has anyone to talk to), as Nova's compute does."""
        start = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            try:
                self.client.prepare(timeout=attempt_timeout).call(ctxt, "ping")
                return
            except exception.MessagingTimeout:
                if deadline is not None and time.monotonic() - start > deadline:
                    raise
                if attempts == 1 or attempts % 10 == 0:
                    LOG.warning("Waiting for a conductor to answer (attempt %d)", attempts)

    def instance_get(self, ctxt: RequestContext, instance_uuid: str) -> dict[str, Any]:
        return self.client.call(ctxt, "instance_get", instance_uuid=instance_uuid)

    def instance_update(self, ctxt: RequestContext, instance_uuid: str, updates: dict[str, Any],
                        expected_task_state: Any = "__unset__",
                        event: dict[str, Any] | None = None,
                        fault: dict[str, Any] | None = None,
                        release_allocations: bool = False) -> dict[str, Any]:
        """Update (compare-and-swap on ``expected_task_state``) and, with
        ``event`` ({"event", "phase": "start"|"finish", "host", "result",
        "traceback"}), record an instance-action event of the request in the
        same transaction; so does ``fault`` ({"code", "message", "details",
        "host"}), an instance fault, and ``release_allocations``, which gives
        the instance's claimed resources back."""
        # A lost reply is retried: the compare-and-swap plus ``retried`` make
        # the repeat harmless (see db.instances.instance_update).
        for attempt in range(UPDATE_ATTEMPTS):
            try:
                return self.client.call(ctxt, "instance_update", instance_uuid=instance_uuid,
                                        updates=updates,
                                        expected_task_state=expected_task_state, event=event,
                                        fault=fault, release_allocations=release_allocations,
                                        retried=attempt > 0)
            except exception.MessagingTimeout:
                if attempt == UPDATE_ATTEMPTS - 1:
                    raise
                LOG.warning("No reply to instance_update of %s; retrying", instance_uuid)
        raise AssertionError("unreachable")

    def instance_destroy(self, ctxt: RequestContext, instance_uuid: str) -> dict[str, Any]:
        return self.client.call(ctxt, "instance_destroy", instance_uuid=instance_uuid)

    def instances_get_by_host(self, ctxt: RequestContext, host: str) -> list[dict[str, Any]]:
        return self.client.call(ctxt, "instances_get_by_host", host=host)

    def action_event_start(self, ctxt: RequestContext, instance_uuid: str, event: str,
                           host: str) -> None:
        self.client.call(ctxt, "action_event_start", instance_uuid=instance_uuid, event=event,
                         host=host)

    def action_event_finish(self, ctxt: RequestContext, instance_uuid: str, event: str,
                            result: str, traceback: str | None = None) -> None:
        self.client.call(ctxt, "action_event_finish", instance_uuid=instance_uuid, event=event,
                         result=result, traceback=traceback)

    def compute_node_update(self, ctxt: RequestContext, host: str, nodename: str,
                            resources: dict[str, Any]) -> dict[str, Any]:
        return self.client.call(ctxt, "compute_node_update", host=host, nodename=nodename,
                                resources=resources)

    def service_heartbeat(self, ctxt: RequestContext, host: str, binary: str,
                          topic: str) -> dict[str, Any]:
        return self.client.call(ctxt, "service_heartbeat", host=host, binary=binary, topic=topic)

    # -- batched, for a process running many (fake) hosts ---------------------------
    def service_heartbeats(self, ctxt: RequestContext, hosts: list[str], binary: str,
                           topic: str) -> int:
        return self.client.call(ctxt, "service_heartbeats", hosts=hosts, binary=binary,
                                topic=topic)

    def compute_nodes_update(self, ctxt: RequestContext, reports: list[dict[str, Any]]) -> int:
        """Many nodes' reports (``[{"host", "nodename", "resources"}]``) in one call."""
        return self.client.call(ctxt, "compute_nodes_update", reports=reports)

    def instances_get_by_hosts(self, ctxt: RequestContext,
                               hosts: list[str]) -> dict[str, list[dict[str, Any]]]:
        return self.client.call(ctxt, "instances_get_by_hosts", hosts=hosts)

    # -- migrations (resize and cold migrate) --------------------------------------
    def migration_get(self, ctxt: RequestContext, migration_uuid: str) -> dict[str, Any]:
        return self.client.call(ctxt, "migration_get", migration_uuid=migration_uuid)

    def migration_update(self, ctxt: RequestContext, migration_uuid: str,
                         updates: dict[str, Any], release_dest: bool = False) -> dict[str, Any]:
        return self.client.call(ctxt, "migration_update", migration_uuid=migration_uuid,
                                updates=updates, release_dest=release_dest)

    def migrations_in_progress(self, ctxt: RequestContext, host: str) -> list[dict[str, Any]]:
        return self.client.call(ctxt, "migrations_in_progress", host=host)

    def migrations_in_progress_by_hosts(self, ctxt: RequestContext, hosts: list[str]
                                        ) -> dict[str, list[dict[str, Any]]]:
        return self.client.call(ctxt, "migrations_in_progress_by_hosts", hosts=hosts)

    def confirm_unconfirmed_resizes(self, ctxt: RequestContext, dest_host: str,
                                    window: float) -> list[dict[str, Any]]:
        return self.client.call(ctxt, "confirm_unconfirmed_resizes", dest_host=dest_host,
                                window=window)

    def migration_finish(self, ctxt: RequestContext, migration_uuid: str, status: str,
                         instance_uuid: str, instance_updates: dict[str, Any],
                         keep: str | None, expected_task_state: Any = "__unset__",
                         event: dict[str, Any] | None = None,
                         fault: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.client.call(ctxt, "migration_finish", migration_uuid=migration_uuid,
                                status=status, instance_uuid=instance_uuid,
                                instance_updates=instance_updates, keep=keep,
                                expected_task_state=expected_task_state, event=event,
                                fault=fault)
