"""Functional tests of stratus.rpc against a real RabbitMQ on 127.0.0.1:5672.

Skipped when nothing listens there. The restart test uses ``rabbitmqctl
stop_app`` / ``start_app`` and always starts the app again at the end.
"""
from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
import uuid
from typing import Any, Iterator

import pytest
from kombu.connection import Connection

from stratus import exception, rpc
from stratus.context import RequestContext
from stratus.rpc import serializer
from tests import rpc_helpers
from tests.rpc_helpers import Blocking, Endpoint, wait_for

HOST, PORT = "127.0.0.1", 5672
URL = f"rabbit://guest:guest@{HOST}:{PORT}/"
KOMBU_URL = f"pyamqp://guest:guest@{HOST}:{PORT}//"


def _broker_reachable() -> bool:
    try:
        with socket.create_connection((HOST, PORT), timeout=1):
            return True
    except OSError:
        return False


pytestmark = [
    pytest.mark.functional,
    pytest.mark.timeout(180),
    pytest.mark.skipif(not _broker_reachable(), reason=f"RabbitMQ not reachable on {HOST}:{PORT}"),
]


make_server = rpc_helpers.make_server  # the fixture, with this module's transport and topic


@pytest.fixture
def transport() -> Iterator[rpc.Transport]:
    t = rpc.get_transport(URL)
    yield t
    t.cleanup()


@pytest.fixture
def ctxt() -> RequestContext:
    return RequestContext(user_id="u1", project_id="p1")


@pytest.fixture
def topic() -> Iterator[str]:
    """A fresh topic; its durable queues are deleted afterwards."""
    name = f"ftest-{uuid.uuid4().hex[:10]}"
    yield name
    with Connection(KOMBU_URL) as conn:
        channel = conn.channel()
        for queue in (name, f"{name}.h1", f"{name}.h2"):
            with contextlib.suppress(Exception):
                channel.queue_delete(queue)
        with contextlib.suppress(Exception):
            conn.channel().exchange_delete(f"{name}_fanout")


def test_call_cast_fanout_and_routing(make_server: Any, transport: rpc.Transport, topic: str,
                                      ctxt: RequestContext) -> None:
    h1, h2 = Endpoint("h1"), Endpoint("h2")
    make_server("h1", [h1])
    make_server("h2", [h2])
    client = rpc.RPCClient(transport, topic, timeout=10)

    result = client.call(ctxt, "echo", n=1, nested={"a": [1, {"b": None}]})
    assert result["kwargs"] == {"n": 1, "nested": {"a": [1, {"b": None}]}}
    assert result["request_id"] == ctxt.request_id
    assert client.prepare(server="h2").call(ctxt, "echo")["server"] == "h2"
    with pytest.raises(exception.InstanceNotFound, match="Instance gone could not be found"):
        client.call(ctxt, "not_found")

    for i in range(50):
        client.cast(ctxt, "note", value=i)
    client.prepare(server="h1").cast(ctxt, "note", value="h1-only")
    client.prepare(fanout=True).cast(ctxt, "note", value="everyone")
    assert wait_for(lambda: len(h1.values) + len(h2.values) == 53)
    time.sleep(0.2)
    assert "h1-only" in h1.values and "h1-only" not in h2.values
    assert "everyone" in h1.values and "everyone" in h2.values
    shared = sorted(v for v in h1.values + h2.values if isinstance(v, int))
    assert shared == list(range(50))

    n = 300
    start = time.perf_counter()
    for i in range(n):
        client.call(ctxt, "echo", i=i)
    avg_ms = (time.perf_counter() - start) / n * 1000
    print(f"\nRabbitMQ call round trip: {avg_ms:.3f} ms average over {n} calls")
    assert avg_ms < 50


def test_unacked_request_redelivered_to_new_server(make_server: Any, transport: rpc.Transport,
                                                   topic: str, ctxt: RequestContext) -> None:
    first = Blocking()
    server = make_server("h1", [first])
    rpc.RPCClient(transport, topic).cast(ctxt, "slow", value="v1")
    assert first.started.wait(10)
    server.stop(graceful=True, timeout=0.3)  # still running: stays unacked
    second = Blocking()
    second.release.set()
    make_server("h2", [second])
    assert wait_for(lambda: second.finished == ["v1"])
    first.release.set()


def _rabbitmqctl(*args: str, timeout: float = 120) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, timeout=timeout,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _ensure_rabbit_running() -> None:
    if not _broker_reachable():
        _rabbitmqctl("start_app")
    _rabbitmqctl("await_startup")
    assert wait_for(_broker_reachable, 60)


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="rabbitmqctl not installed")
def test_reconnect_across_broker_restart(make_server: Any, transport: rpc.Transport, topic: str,
                                         ctxt: RequestContext) -> None:
    ep = Endpoint("h1")
    server = make_server("h1", [ep], workers=4)
    client = rpc.RPCClient(transport, topic, timeout=10)
    assert client.call(ctxt, "echo")["server"] == "h1"  # reply listener is up too

    sent: list[int] = []
    slow_casts: list[float] = []  # casts that were retried across the outage
    stop_sending = threading.Event()
    send_errors: list[BaseException] = []
    counter = iter(range(10**9))

    def sender() -> None:
        while not stop_sending.is_set():
            value = next(counter)
            start = time.monotonic()
            try:
                client.cast(ctxt, "note", value=value)
            except BaseException as exc:  # pragma: no cover - reported below
                send_errors.append(exc)
                return
            if time.monotonic() - start > 0.5:
                slow_casts.append(time.monotonic() - start)
            sent.append(value)
            time.sleep(0.02)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        assert wait_for(lambda: len(sent) >= 20)
        _rabbitmqctl("stop_app")
        assert not _broker_reachable()
        time.sleep(1.0)  # casts keep coming while the broker is down
        _rabbitmqctl("start_app")
        _ensure_rabbit_running()
        mark = len(sent)
        assert wait_for(lambda: len(sent) >= mark + 50, 60)  # and after the restart
    finally:
        stop_sending.set()
        for thread in threads:
            thread.join(90)
        _ensure_rabbit_running()

    print(f"\n{len(sent)} casts, {len(slow_casts)} of them retried across the outage "
          f"(longest {max(slow_casts, default=0):.1f}s)")
    assert slow_casts, "no cast was sent while the broker was down"
    assert not send_errors
    assert wait_for(lambda: server.ready, 30)
    assert wait_for(lambda: set(sent) <= set(ep.values), 60), (
        f"lost casts: {sorted(set(sent) - set(ep.values))[:20]}")
    # Calls work again (the reply listener reconnected as well).
    assert client.call(ctxt, "echo", after="restart")["kwargs"] == {"after": "restart"}


def test_idle_cpu_over_rabbit(make_server: Any, transport: rpc.Transport, topic: str,
                              ctxt: RequestContext) -> None:
    make_server("h1", [Endpoint("h1")])
    rpc.RPCClient(transport, topic, timeout=10).call(ctxt, "echo")
    before = time.process_time()
    time.sleep(2)
    used = time.process_time() - before
    print(f"\nCPU of an idle process (server + reply listener) over RabbitMQ, 2 s: {used:.3f}s")
    assert used < 0.5


def _take(conn: Connection, queue: str, event_type: str) -> dict[str, Any] | None:
    """Get and ack the notification of ``event_type`` from ``queue``; others
    looked at are left unacked (requeued when the channel closes)."""
    channel = conn.channel()
    try:
        for _ in range(100000):
            message = channel.basic_get(queue, no_ack=False)
            if message is None:
                return None
            body: dict[str, Any] = serializer.loads(message.body)
            if body.get("event_type") == event_type:
                channel.basic_ack(message.delivery_tag)
                return body
        return None
    finally:
        channel.close()


def test_notifications_reach_queue(transport: rpc.Transport, ctxt: RequestContext) -> None:
    event_type = f"instance.create.{uuid.uuid4().hex[:8]}"
    pool = f"ftest-{uuid.uuid4().hex[:8]}"
    received: list[dict[str, Any]] = []
    listener = rpc.NotificationListener(transport, received.append, pool=pool)
    listener.start()
    try:
        notifier = rpc.Notifier(transport, publisher_id="compute.host1")
        notifier.info(ctxt, event_type, {"uuid": "i-1", "state": "building"})
        notifier.error(ctxt, event_type + ".error", {"uuid": "i-1"})
        assert wait_for(lambda: len(received) == 2)
    finally:
        listener.stop()

    # The shared durable queues "notifications.<priority>" hold them for tools.
    with Connection(KOMBU_URL) as conn:
        found = _take(conn, "notifications.info", event_type)
        assert _take(conn, "notifications.error", event_type + ".error") is not None
        for priority in ("info", "error"):
            with contextlib.suppress(Exception):
                conn.channel().queue_delete(f"notifications.{priority}.{pool}")
    assert found is not None
    assert found["publisher_id"] == "compute.host1"
    assert found["priority"] == "INFO"
    assert found["context"]["request_id"] == ctxt.request_id
    assert found["payload"]["stratus_object.name"] == "InstanceCreatePayload"
    assert found["payload"]["stratus_object.version"] == "1.0"
    assert found["payload"]["stratus_object.data"] == {"uuid": "i-1", "state": "building"}
    assert {n["priority"] for n in received} == {"INFO", "ERROR"}
