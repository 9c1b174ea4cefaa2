"""Client side of the scheduler's RPC API (topic ``scheduler``)."""
from __future__ import annotations

from typing import Any

from stratus import rpc
from stratus.context import RequestContext

TOPIC = "scheduler"


class SchedulerAPI:
    def __init__(self, transport: Any, timeout: float = 60.0) -> None:
        self.client = rpc.RPCClient(transport, topic=TOPIC, timeout=timeout)

    def select_destinations(self, ctxt: RequestContext, request_spec: dict[str, Any],
                            instance_uuids: list[str]) -> list[dict[str, Any]]:
        """One selection per instance: {host, nodename, compute_node_uuid}; the
        resources are already claimed. Raises NoValidHost."""
        return self.client.call(ctxt, "select_destinations", request_spec=request_spec,
                                instance_uuids=instance_uuids)

    def scheduler_stats(self, ctxt: RequestContext, server: str | None = None,
                        reset: bool = False) -> dict[str, Any]:
        """Decision/claim percentiles of one scheduler (``server``: its host)."""
        client = self.client.prepare(server=server) if server else self.client
        return client.call(ctxt, "scheduler_stats", reset=reset)
