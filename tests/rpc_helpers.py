"""What the RPC tests share, on the memory transport (tests/unit/test_rpc.py)
and on RabbitMQ (tests/functional/test_rpc_rabbit.py): an endpoint that
records what it handled, a handler that blocks until released, a poll, and
the ``make_server`` fixture (it needs the module's ``transport`` and
``topic`` fixtures; import it into the test module)."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator

import pytest

from stratus import context, exception, rpc
from stratus.context import RequestContext


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


class Endpoint:
    """Records what it handled; a few methods to exercise dispatch."""

    def __init__(self, name: str = "ep") -> None:
        self.name = name
        self.handled: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        self.request_ids: list[str | None] = []

    @property
    def values(self) -> list[Any]:
        """The values of the ``note`` casts handled, in order."""
        with self.lock:
            return [value for method, value in self.handled if method == "note"]

    def _record(self, method: str, value: Any) -> None:
        with self.lock:
            self.handled.append((method, value))

    def echo(self, ctxt: RequestContext, **kwargs: Any) -> dict[str, Any]:
        current = context.current()
        self.request_ids.append(current.request_id if current else None)
        return {"kwargs": kwargs, "server": self.name, "user": ctxt.user_id,
                "request_id": ctxt.request_id}

    def add(self, ctxt: RequestContext, a: int, b: int) -> int:
        return a + b

    def note(self, ctxt: RequestContext, value: Any) -> None:
        self._record("note", value)

    def not_found(self, ctxt: RequestContext, instance_id: str = "gone") -> None:
        raise exception.InstanceNotFound(instance_id=instance_id)

    def bad_value(self, ctxt: RequestContext) -> None:
        raise ValueError("that value is wrong")

    def unserializable(self, ctxt: RequestContext) -> object:
        return object()

    def _secret(self, ctxt: RequestContext) -> str:
        return "never dispatched"


class Blocking:
    """A handler that blocks until released (or ``timeout`` seconds)."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.finished: list[Any] = []
        self.timeout = timeout

    def slow(self, ctxt: RequestContext, value: Any) -> str:
        self.started.set()
        self.release.wait(self.timeout)
        self.finished.append(value)
        return "done"


@pytest.fixture
def make_server(transport: rpc.Transport, topic: str) -> Iterator[Callable[..., rpc.RPCServer]]:
    """Start RPC servers (``make(server, endpoints, topic_=..., **kw)``;
    an :class:`Endpoint` named after the server by default); all are
    stopped at the end of the test."""
    servers: list[rpc.RPCServer] = []

    def make(server: str = "h1", endpoints: list[object] | None = None,
             topic_: str | None = None, **kw: Any) -> rpc.RPCServer:
        srv = rpc.RPCServer(transport, topic_ or topic, server,
                            endpoints if endpoints is not None else [Endpoint(server)], **kw)
        srv.start()
        assert srv.ready
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.stop(graceful=False, timeout=1)
