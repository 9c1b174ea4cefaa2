"""Many fake compute hosts in one process (``stratus compute --fake-hosts N``).

Each host is a real :class:`ComputeManager` with its own fake driver, its
own service row and compute node, heartbeating and reporting like a
``stratus compute`` of its own; what is shared is the plumbing, so that
10,000 hosts fit in one process on a small machine:

* **one queue** for every host's requests: bound to the exchange with each
  host's routing key (``compute.<host>``); a request goes to the manager its
  routing key names (RabbitMQ routes; nobody declares 10,000 queues);
* **batched, staggered reports**: heartbeats and resource reports are cut
  into slots spread evenly over ``report_interval`` and
  ``resource_update_interval``; each slot is one conductor call carrying its
  hosts (``service_heartbeats``, ``compute_nodes_update``), so every host
  still heartbeats once per interval, and the conductor sees a steady trickle
  instead of 10,000 calls at once. Reports that did not change write nothing;
* **batched start-up**: the hosts' instances are fetched per 1,000 hosts and
  the first reports and heartbeats go per chunk.
"""
from __future__ import annotations

import logging
import math
import threading
from typing import Any, Callable

from kombu.entity import Queue, binding
from kombu.message import Message

from stratus import rpc
from stratus.compute import manager as compute_manager
from stratus.compute.virt import load_driver
from stratus.conductor.rpcapi import ConductorAPI
from stratus.context import get_admin_context
from stratus.rpc.server import Dispatcher
from stratus.rpc.transport import control_exchange
from stratus.service import PeriodicRunner

LOG = logging.getLogger(__name__)

#: Seconds between two slots of a staggered periodic report.
SLOT = 0.25
#: Hosts per conductor call at start-up.
CHUNK = 500


def host_names(prefix: str, count: int) -> list[str]:
    width = max(5, len(str(count)))
    return [f"{prefix}-{i:0{width}d}" for i in range(1, count + 1)]


def slots(items: list[Any], interval: float) -> list[list[Any]]:
    """``items`` cut into consecutive slots, one per SLOT of ``interval``."""
    count = max(1, min(len(items), round(interval / SLOT)))
    size = math.ceil(len(items) / count) if items else 0
    return [items[i:i + size] for i in range(0, len(items), size)] if size else []


class Staggered:
    """Calls ``send(slot)`` for one slot every ``interval / len(slots)`` seconds."""

    def __init__(self, parts: list[list[Any]], interval: float,
                 send: Callable[[list[Any]], None]) -> None:
        self.parts = parts
        self.period = interval / max(1, len(parts))
        self._send = send
        self._next = 0
        self.__name__ = getattr(send, "__name__", "staggered")

    def __call__(self) -> None:
        if self.parts:
            part = self.parts[self._next % len(self.parts)]
            self._next += 1
            self._send(part)


class FleetRPCServer(rpc.RPCServer):
    """One queue, many hosts: dispatch by the routing key's host."""

    def __init__(self, transport: Any, topic: str, name: str,
                 managers: dict[str, compute_manager.ComputeManager], workers: int) -> None:
        super().__init__(transport, topic=topic, server=name, endpoints=[], workers=workers)
        self.dispatchers = {f"{topic}.{host}": Dispatcher([m]) for host, m in managers.items()}

    def _declare(self, channel: Any) -> list[Queue]:
        exchange = control_exchange()
        queue = Queue(f"{self.topic}.fleet.{self.server}", exchange, durable=True,
                      bindings=[binding(exchange, routing_key=key) for key in self.dispatchers])
        bound = queue.bind(channel)
        bound.declare()
        return [bound]

    def _dispatcher_for(self, message: Message) -> Dispatcher | None:
        return self.dispatchers.get(message.delivery_info.get("routing_key", ""))


class FakeFleet:
    """N compute hosts named ``<[DEFAULT] host>-00001``...; start() and stop()
    like an :class:`stratus.service.RPCService`."""

    binary = compute_manager.BINARY

    def __init__(self, conf: Any, transport: Any, count: int, notifier: Any) -> None:
        self.conf = conf
        self.host = conf.DEFAULT.host
        self.conductor = ConductorAPI(transport, conf.DEFAULT.rpc_response_timeout)
        options = {"vcpus": conf.fake.vcpus, "memory_mb": conf.fake.memory_mb,
                   "local_gb": conf.fake.local_gb, "delay": conf.fake.delay}
        self.hosts = host_names(self.host, count)
        self.managers = {
            host: compute_manager.ComputeManager(
                conf, host, load_driver(conf.compute.driver, host, options), self.conductor,
                notifier)
            for host in self.hosts}
        self.server = FleetRPCServer(transport, compute_manager.TOPIC, self.host, self.managers,
                                     conf.DEFAULT.executor_thread_pool_size)
        self.heartbeat = Staggered(slots(self.hosts, conf.DEFAULT.report_interval),
                                   conf.DEFAULT.report_interval, self.send_heartbeats)
        self.reports = Staggered(slots(self.hosts, conf.compute.resource_update_interval),
                                 conf.compute.resource_update_interval, self.send_reports)
        self.periodic = PeriodicRunner([(self.heartbeat.period, self.heartbeat),
                                        (self.reports.period, self.reports)], "fleet")
        self._stopped = threading.Event()

    def __repr__(self) -> str:
        return f"<FakeFleet {self.host} x{len(self.hosts)}>"

    # -- batched calls -------------------------------------------------------------
    def send_heartbeats(self, hosts: list[str]) -> None:
        self.conductor.service_heartbeats(get_admin_context(), hosts, self.binary,
                                          compute_manager.TOPIC)

    def send_reports(self, hosts: list[str]) -> None:
        reports = [report for host in hosts
                   for report in self.managers[host].resource_reports()]
        self.conductor.compute_nodes_update(get_admin_context(), reports)

    def _chunks(self) -> list[list[str]]:
        return [self.hosts[i:i + CHUNK] for i in range(0, len(self.hosts), CHUNK)]

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        LOG.info("Starting %d fake compute hosts (%s ... %s)", len(self.hosts), self.hosts[0],
                 self.hosts[-1])
        self.init_hosts()
        self.server.start()
        for chunk in self._chunks():
            self.send_heartbeats(chunk)
        self.periodic.start()
        LOG.info("%d fake compute hosts are up", len(self.hosts))

    def init_hosts(self) -> None:
        """Every host's ``ComputeManager.init_host``, with one query per chunk
        of hosts: match the drivers and the database, resolve the resizes
        each host was part of, report the resources."""
        ctxt = get_admin_context()
        for manager in self.managers.values():
            manager.driver.init_host(manager.host)
        self.conductor.wait_until_ready(ctxt)
        for chunk in self._chunks():
            ours = self.conductor.instances_get_by_hosts(ctxt, chunk)
            moving = self.conductor.migrations_in_progress_by_hosts(ctxt, chunk)
            for host in chunk:
                # What ComputeManager.init_host does, with one query per chunk.
                self.managers[host].reconcile(ctxt, ours.get(host, []), moving.get(host))
                if host in moving:
                    self.managers[host].recover_resizes(ctxt, moving[host])
            self.send_reports(chunk)

    def stop(self, timeout: float = 30.0) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        LOG.info("Stopping %d fake compute hosts", len(self.hosts))
        self.server.stop(graceful=True, timeout=timeout)
        self.periodic.stop()
        for manager in self.managers.values():
            try:
                manager.cleanup_host()
            except Exception:  # noqa: BLE001
                LOG.exception("cleanup_host of %s failed", manager.host)
