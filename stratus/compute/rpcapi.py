"""Client side of the compute service's RPC API (queue ``compute.<host>``)."""
from __future__ import annotations

from typing import Any

from stratus import rpc
from stratus.context import RequestContext

TOPIC = "compute"


class ComputeRPCAPI:
    def __init__(self, transport: Any, timeout: float = 60.0) -> None:
        self.client = rpc.RPCClient(transport, topic=TOPIC, timeout=timeout)

    def _host(self, host: str) -> Any:
        return self.client.prepare(server=host)

    def build_and_run_instance(self, ctxt: RequestContext, host: str, instance: dict[str, Any],
                               request_spec: dict[str, Any]) -> None:
        self._host(host).cast(ctxt, "build_and_run_instance", instance=instance,
                              request_spec=request_spec)

    def terminate_instance(self, ctxt: RequestContext, host: str, instance_uuid: str) -> None:
        self._host(host).cast(ctxt, "terminate_instance", instance_uuid=instance_uuid)

    def get_console_output(self, ctxt: RequestContext, host: str,
                           instance: dict[str, Any]) -> str:
        return self._host(host).call(ctxt, "get_console_output", instance=instance)

    def instance_action(self, ctxt: RequestContext, host: str, instance_uuid: str,
                        action: str, **kwargs: Any) -> None:
        """stop_instance, start_instance, reboot_instance, pause_instance, ..."""
        self._host(host).cast(ctxt, action, instance_uuid=instance_uuid, **kwargs)
