"""Running a manager as a service: RPC server, heartbeats, periodic tasks.

An :class:`RPCService` puts a manager (conductor, scheduler, compute) behind
an RPC server on its topic, reports its heartbeat every ``report_interval``
and runs the manager's periodic tasks. ``stop()`` stops consuming, lets the
requests in flight finish (unfinished ones stay unacknowledged and are
redelivered), then stops the timers.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from stratus import rpc

LOG = logging.getLogger(__name__)

Task = tuple[float, Callable[[], Any]]


class PeriodicRunner:
    """Runs ``(interval, fn)`` tasks on one thread until stopped."""

    def __init__(self, tasks: list[Task], name: str) -> None:
        self.tasks = [t for t in tasks if t[0] > 0]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"periodic-{name}", daemon=True)

    def start(self) -> None:
        if self.tasks:
            self._thread.start()

    def _run(self) -> None:
        due = [time.monotonic() + interval for interval, _ in self.tasks]
        while not self._stop.is_set():
            now = time.monotonic()
            for i, (interval, fn) in enumerate(self.tasks):
                if now >= due[i]:
                    try:
                        fn()
                    except Exception:  # noqa: BLE001 - a failing task must not kill the timer
                        LOG.exception("Periodic task %s failed", getattr(fn, "__name__", fn))
                    due[i] = time.monotonic() + interval
            self._stop.wait(max(0.01, min(due) - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)


class RPCService:
    def __init__(self, *, binary: str, topic: str, host: str, manager: Any, transport: Any,
                 heartbeat: Callable[[], Any], report_interval: float, workers: int) -> None:
        self.binary = binary
        self.topic = topic
        self.host = host
        self.manager = manager
        self.transport = transport
        self._heartbeat = heartbeat
        self.server = rpc.RPCServer(transport, topic=topic, server=host, endpoints=[manager],
                                    workers=workers)
        # Heartbeats get their own thread: a slow periodic task (a resource
        # report waiting on a busy conductor) must not make the host look down.
        self.heartbeats = PeriodicRunner([(report_interval, self.heartbeat)],
                                         f"{binary}-heartbeat")
        tasks: list[Task] = list(manager.periodic_tasks()) if hasattr(
            manager, "periodic_tasks") else []
        self.periodic = PeriodicRunner(tasks, binary)

    def heartbeat(self) -> None:
        self._heartbeat()

    def start(self) -> None:
        LOG.info("Starting %s on host %s (topic %s)", self.binary, self.host, self.topic)
        if hasattr(self.manager, "init_host"):
            self.manager.init_host()  # reconcile before taking new requests
        self.server.start()
        self.heartbeat()
        self.heartbeats.start()
        self.periodic.start()

    def stop(self, timeout: float = 30.0) -> None:
        LOG.info("Stopping %s on host %s", self.binary, self.host)
        self.server.stop(graceful=True, timeout=timeout)
        self.periodic.stop()
        self.heartbeats.stop()
        if hasattr(self.manager, "cleanup_host"):
            try:
                self.manager.cleanup_host()
            except Exception:  # noqa: BLE001
                LOG.exception("cleanup_host failed")
