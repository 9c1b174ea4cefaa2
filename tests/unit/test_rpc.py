"""Unit tests of stratus.rpc over the in-process ``memory://`` transport.

Same code path as RabbitMQ (everything goes through kombu), so these cover
routing, dispatch, errors, acks and shutdown; tests/functional covers the
real broker (persistence, reconnection).
"""
from __future__ import annotations

import datetime
import logging
import threading
import time
import uuid
from typing import Any, Iterator

import pytest

from stratus import exception, rpc
from stratus.context import RequestContext
from stratus.rpc import memory, serializer
from tests import rpc_helpers
from tests.rpc_helpers import Blocking, Endpoint, wait_for

pytestmark = pytest.mark.timeout(60)


make_server = rpc_helpers.make_server  # the fixture, with this module's transport and topic


@pytest.fixture
def transport() -> Iterator[rpc.Transport]:
    t = rpc.get_transport("memory://")
    yield t
    t.cleanup()


@pytest.fixture
def topic() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def ctxt() -> RequestContext:
    return RequestContext(user_id="u1", project_id="p1", roles=["member"])


def test_call_returns_value(make_server: Any, transport: rpc.Transport, topic: str,
                            ctxt: RequestContext) -> None:
    make_server()
    client = rpc.RPCClient(transport, topic, timeout=5)
    assert client.call(ctxt, "add", a=2, b=3) == 5
    assert client.call(ctxt, "echo")["user"] == "u1"


def test_call_kwargs_datetimes_and_nested(make_server: Any, transport: rpc.Transport,
                                          topic: str, ctxt: RequestContext) -> None:
    make_server()
    client = rpc.RPCClient(transport, topic, timeout=5)
    when = datetime.datetime(2024, 5, 17, 12, 30, 45, 123456, tzinfo=datetime.timezone.utc)
    nested = {"a": [1, 2, {"b": None, "c": [True, 1.5]}], "d": {"e": {"f": "g"}}}
    result = client.call(ctxt, "echo", when=when, nested=nested, ids={3}, n=7)
    kwargs = result["kwargs"]
    assert kwargs["nested"] == nested
    assert kwargs["n"] == 7 and kwargs["ids"] == [3]
    # Datetimes arrive as ISO strings (documented) and parse back exactly.
    assert isinstance(kwargs["when"], str)
    assert rpc.parse_isotime(kwargs["when"]) == when
    assert kwargs["when"] == rpc.to_primitive(when)


def test_handler_runs_with_bound_context(make_server: Any, transport: rpc.Transport,
                                         topic: str, ctxt: RequestContext,
                                         caplog: pytest.LogCaptureFixture) -> None:
    ep = Endpoint()
    make_server(endpoints=[ep])
    with caplog.at_level(logging.DEBUG, logger="stratus.rpc.server"):
        rpc.RPCClient(transport, topic, timeout=5).call(ctxt, "echo")
    assert ep.request_ids == [ctxt.request_id]
    assert any("Dispatching" in r.getMessage() and ".echo" in r.getMessage()
               for r in caplog.records)


def test_cast_is_handled(make_server: Any, transport: rpc.Transport, topic: str,
                         ctxt: RequestContext) -> None:
    ep = Endpoint()
    make_server(endpoints=[ep])
    client = rpc.RPCClient(transport, topic)
    client.cast(ctxt, "note", value={"x": 1})
    assert wait_for(lambda: ep.handled == [("note", {"x": 1})])


def test_competing_consumers_each_cast_handled_once(make_server: Any, transport: rpc.Transport,
                                                     topic: str, ctxt: RequestContext) -> None:
    eps = [Endpoint("h1"), Endpoint("h2")]
    make_server("h1", [eps[0]])
    make_server("h2", [eps[1]])
    client = rpc.RPCClient(transport, topic)
    for i in range(100):
        client.cast(ctxt, "note", value=i)
    assert wait_for(lambda: sum(len(e.handled) for e in eps) == 100)
    time.sleep(0.05)
    values = sorted(v for e in eps for _, v in e.handled)
    assert values == list(range(100))


def test_fanout_reaches_every_server(make_server: Any, transport: rpc.Transport, topic: str,
                                     ctxt: RequestContext) -> None:
    eps = [Endpoint(f"h{i}") for i in range(3)]
    for ep in eps:
        make_server(ep.name, [ep])
    other = Endpoint("other-topic")
    make_server("h0", [other], topic_=topic + "-other")
    rpc.RPCClient(transport, topic).prepare(fanout=True).cast(ctxt, "note", value="all")
    assert wait_for(lambda: all(ep.handled == [("note", "all")] for ep in eps))
    time.sleep(0.05)
    assert other.handled == []
    with pytest.raises(ValueError):
        rpc.RPCClient(transport, topic).prepare(fanout=True).call(ctxt, "echo")


def test_per_host_routing(make_server: Any, transport: rpc.Transport, topic: str,
                          ctxt: RequestContext) -> None:
    h1, h2 = Endpoint("h1"), Endpoint("h2")
    make_server("h1", [h1])
    make_server("h2", [h2])
    client = rpc.RPCClient(transport, topic, timeout=5)
    to_h1 = client.prepare(server="h1")
    assert to_h1.server == "h1" and client.server is None  # prepare copies
    for i in range(20):
        assert to_h1.call(ctxt, "echo")["server"] == "h1"
        to_h1.cast(ctxt, "note", value=i)
    assert client.prepare(server="h2").call(ctxt, "echo")["server"] == "h2"
    assert wait_for(lambda: len(h1.handled) == 20)
    time.sleep(0.05)
    assert h2.handled == []


def test_stratus_exception_reraised_with_same_class(make_server: Any, transport: rpc.Transport,
                                                    topic: str, ctxt: RequestContext) -> None:
    make_server()
    client = rpc.RPCClient(transport, topic, timeout=5)
    with pytest.raises(exception.InstanceNotFound) as info:
        client.call(ctxt, "not_found", instance_id="x")
    exc = info.value
    assert type(exc) is exception.InstanceNotFound
    assert str(exc) == "Instance x could not be found."
    assert exc.kwargs == {"instance_id": "x"}
    assert exc.code == 404
    assert "not_found" in exc.remote_traceback  # type: ignore[attr-defined]


def test_other_exception_becomes_remote_error(make_server: Any, transport: rpc.Transport,
                                              topic: str, ctxt: RequestContext) -> None:
    make_server()
    client = rpc.RPCClient(transport, topic, timeout=5)
    with pytest.raises(exception.RemoteError) as info:
        client.call(ctxt, "bad_value")
    assert info.value.exc_type == "ValueError"
    assert info.value.value == "that value is wrong"
    assert "ValueError" in str(info.value) and "that value is wrong" in str(info.value)
    assert "Traceback" in info.value.traceback
    # A result that cannot be serialized is an error too, not a hang.
    with pytest.raises(exception.RemoteError) as info:
        client.call(ctxt, "unserializable")
    assert info.value.exc_type == "TypeError"


def test_unknown_and_private_methods(make_server: Any, transport: rpc.Transport, topic: str,
                                     ctxt: RequestContext,
                                     caplog: pytest.LogCaptureFixture) -> None:
    make_server()
    client = rpc.RPCClient(transport, topic, timeout=5)
    with pytest.raises(rpc.NoSuchMethod, match="no_such_method"):
        client.call(ctxt, "no_such_method")
    with pytest.raises(rpc.NoSuchMethod):
        client.call(ctxt, "_secret")
    with pytest.raises(rpc.NoSuchMethod):
        client.call(ctxt, "__init__")
    with caplog.at_level(logging.ERROR, logger="stratus.rpc.server"):
        client.cast(ctxt, "cast_to_nowhere")
        assert wait_for(lambda: any("cast_to_nowhere" in r.getMessage()
                                    for r in caplog.records))


def test_unserializable_argument_fails_on_the_client(transport: rpc.Transport, topic: str,
                                                     ctxt: RequestContext) -> None:
    client = rpc.RPCClient(transport, topic, timeout=1)
    with pytest.raises(TypeError):
        client.cast(ctxt, "note", value=object())


def test_call_timeout(transport: rpc.Transport, topic: str, ctxt: RequestContext) -> None:
    client = rpc.RPCClient(transport, topic, timeout=60).prepare(timeout=0.2)
    start = time.monotonic()
    with pytest.raises(exception.MessagingTimeout) as info:
        client.call(ctxt, "echo")
    elapsed = time.monotonic() - start
    assert 0.15 < elapsed < 1.0
    assert "echo" in str(info.value) and topic in str(info.value)


def test_concurrent_calls_from_20_threads(make_server: Any, transport: rpc.Transport,
                                          topic: str, ctxt: RequestContext) -> None:
    make_server(workers=8)
    client = rpc.RPCClient(transport, topic, timeout=10)
    errors: list[BaseException] = []
    results: dict[int, list[int]] = {}

    def worker(n: int) -> None:
        try:
            results[n] = [client.call(ctxt, "add", a=n, b=i) for i in range(25)]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert results == {n: [n + i for i in range(25)] for n in range(20)}


def test_graceful_stop_waits_for_inflight_handler(make_server: Any, transport: rpc.Transport,
                                                  topic: str, ctxt: RequestContext) -> None:
    blocking = Blocking()
    server = make_server(endpoints=[blocking])
    rpc.RPCClient(transport, topic).cast(ctxt, "slow", value=1)
    assert blocking.started.wait(5)
    threading.Timer(0.3, blocking.release.set).start()
    start = time.monotonic()
    server.stop(graceful=True, timeout=10)
    assert time.monotonic() - start >= 0.25
    assert blocking.finished == [1]
    # It was acked: a new server of the topic does not get it again.
    after = Endpoint()
    make_server("h2", [after, Blocking()])
    time.sleep(0.2)
    assert blocking.finished == [1] and after.handled == []


def test_unfinished_request_is_redelivered_after_stop(make_server: Any,
                                                       transport: rpc.Transport, topic: str,
                                                       ctxt: RequestContext) -> None:
    first = Blocking()
    server = make_server("h1", [first])
    rpc.RPCClient(transport, topic).cast(ctxt, "slow", value="again")
    assert first.started.wait(5)
    start = time.monotonic()
    server.stop(graceful=True, timeout=0.2)  # handler still running: not acked
    assert time.monotonic() - start < 2
    second = Blocking()
    second.release.set()
    make_server("h2", [second])
    assert wait_for(lambda: second.finished == ["again"])
    first.release.set()


def test_prefetch_limits_what_one_server_takes(make_server: Any, transport: rpc.Transport,
                                               topic: str, ctxt: RequestContext) -> None:
    first = Blocking()
    make_server("h1", [first], workers=1, prefetch_count=2)
    client = rpc.RPCClient(transport, topic)
    for i in range(6):
        client.cast(ctxt, "slow", value=i)
    assert first.started.wait(5)
    # h1 holds at most 2 (one running, one waiting); h2 takes the rest.
    second = Blocking()
    second.release.set()
    make_server("h2", [second])
    assert wait_for(lambda: len(second.finished) == 4)
    first.release.set()
    assert wait_for(lambda: len(first.finished) == 2)
    assert sorted(first.finished + second.finished) == list(range(6))


def test_idle_process_uses_no_cpu(make_server: Any, transport: rpc.Transport, topic: str,
                                  ctxt: RequestContext) -> None:
    make_server("h1")
    make_server("h2")
    assert rpc.RPCClient(transport, topic, timeout=5).call(ctxt, "add", a=1, b=1) == 2
    before = time.process_time()
    time.sleep(2)
    used = time.process_time() - before
    print(f"\nCPU used by an idle process with 2 servers + reply listener over 2 s: {used:.4f}s")
    assert used < 0.1


def test_round_trip_latency(make_server: Any, transport: rpc.Transport, topic: str,
                            ctxt: RequestContext) -> None:
    make_server()
    client = rpc.RPCClient(transport, topic, timeout=5)
    client.call(ctxt, "add", a=0, b=0)  # warm up (reply listener)
    n = 300
    start = time.perf_counter()
    for i in range(n):
        client.call(ctxt, "add", a=i, b=1)
    avg_ms = (time.perf_counter() - start) / n * 1000
    print(f"\nmemory:// call round trip: {avg_ms:.3f} ms average over {n} calls")
    assert avg_ms < 50


def test_notifications(transport: rpc.Transport, ctxt: RequestContext) -> None:
    received: list[dict[str, Any]] = []
    pool = f"test-{uuid.uuid4().hex[:8]}"
    listener = rpc.NotificationListener(transport, received.append, pool=pool)
    listener.start()
    notifier = rpc.Notifier(transport, publisher_id="compute.host1")
    notifier.info(ctxt, "instance.create.start", {"uuid": "i-1", "when": datetime.date(2024, 1, 2)})
    notifier.error(ctxt, "instance.create.error", {"uuid": "i-1", "reason": "boom"})
    rpc.Notifier(transport, publisher_id="compute.host1", driver="noop").info(
        ctxt, "instance.noop", {"x": 1})
    assert wait_for(lambda: len(received) == 2)
    time.sleep(0.05)
    listener.stop()
    by_type = {n["event_type"]: n for n in received}
    assert set(by_type) == {"instance.create.start", "instance.create.error"}
    start = by_type["instance.create.start"]
    assert start["publisher_id"] == "compute.host1"
    assert start["priority"] == "INFO"
    assert start["context"]["request_id"] == ctxt.request_id
    assert start["payload"] == {
        "stratus_object.name": "InstanceCreatePayload",
        "stratus_object.namespace": "stratus",
        "stratus_object.version": "1.0",
        "stratus_object.data": {"uuid": "i-1", "when": "2024-01-02"},
    }
    assert by_type["instance.create.error"]["priority"] == "ERROR"
    assert uuid.UUID(start["message_id"])
    assert serializer.parse_isotime(start["timestamp"]).tzinfo is not None
    with pytest.raises(ValueError):
        rpc.Notifier(transport, publisher_id="x", driver="carrier-pigeon")


def test_serializer_exception_round_trip_fallbacks() -> None:
    # Unknown remote class -> RemoteError naming it.
    exc = serializer.deserialize_exception(
        {"class": "KeyError", "module": "builtins", "message": "'k'", "traceback": "tb"})
    assert isinstance(exc, exception.RemoteError) and exc.exc_type == "KeyError"
    # A class that is not a StratusException is never instantiated by name.
    exc = serializer.deserialize_exception({"class": "SystemExit", "module": "builtins",
                                            "message": "bye"})
    assert isinstance(exc, exception.RemoteError)
    # RemoteError itself, with its own constructor, survives a second hop.
    original = exception.RemoteError(exc_type="OSError", value="disk", traceback="t")
    again = serializer.deserialize_exception(serializer.serialize_exception(original))
    assert type(again) is exception.RemoteError
    assert str(again) == str(original) and again.exc_type == "OSError"


def test_memory_transport_registered_and_waking() -> None:
    import kombu
    import kombu.transport

    assert kombu.transport.TRANSPORT_ALIASES["stratus-memory"] == "stratus.rpc.memory:Transport"
    with kombu.Connection("stratus-memory://") as conn:
        assert isinstance(conn.transport, memory.Transport)
        name = f"q-{uuid.uuid4().hex[:8]}"
        queue = kombu.Queue(name, kombu.Exchange(name, type="fanout"), channel=conn.channel())
        queue.declare()
        got: list[bytes] = []
        consumer = kombu.Consumer(conn.channel(), [queue], no_ack=True,
                                  on_message=lambda m: got.append(m.body))
        consumer.consume()

        def publish() -> None:
            with kombu.Connection("stratus-memory://") as other:
                kombu.Producer(other.channel()).publish(b"hi", exchange=name)

        threading.Timer(0.2, publish).start()
        start = time.monotonic()
        while not got and time.monotonic() - start < 5:
            try:
                conn.drain_events(timeout=5)  # returns on delivery, not on a poll tick
            except TimeoutError:  # a stale wake-up may end a drain early
                pass
        assert got == [b"hi"]
        assert 0.15 < time.monotonic() - start < 1.0
        queue.delete()


def test_requests_wait_for_a_server_and_calls_expire(make_server: Any, transport: rpc.Transport,
                                                     topic: str, ctxt: RequestContext) -> None:
    first = make_server("h1", [Endpoint("h1")])
    first.stop()  # the durable topic queues stay
    client = rpc.RPCClient(transport, topic, timeout=0.2)
    client.cast(ctxt, "note", value="queued")
    with pytest.raises(exception.MessagingTimeout):
        client.call(ctxt, "note", value="expired call")
    time.sleep(0.1)
    ep = Endpoint("h2")
    make_server("h2", [ep])
    assert wait_for(lambda: ep.handled == [("note", "queued")])
    time.sleep(0.1)
    assert ep.handled == [("note", "queued")]


def test_memory_queue_max_length_drops_oldest() -> None:
    import kombu

    name = f"capped-{uuid.uuid4().hex[:8]}"
    with kombu.Connection("stratus-memory://") as conn:
        channel = conn.channel()
        queue = kombu.Queue(name, kombu.Exchange(name, type="direct"), routing_key=name,
                            queue_arguments={"x-max-length": 3}, channel=channel)
        queue.declare()
        producer = kombu.Producer(channel)
        for i in range(5):
            producer.publish(str(i).encode(), exchange=name, routing_key=name,
                             content_type="application/json", content_encoding="utf-8")
        bodies = []
        while (message := queue.get(no_ack=True)) is not None:
            bodies.append(message.body)
        assert bodies == [b"2", b"3", b"4"]
        queue.delete()


def test_start_stop_is_prompt(transport: rpc.Transport, topic: str,
                              ctxt: RequestContext) -> None:
    client = rpc.RPCClient(transport, topic, timeout=5)
    for _ in range(20):
        server = rpc.RPCServer(transport, topic, "h1", [Endpoint()])
        server.start()
        assert client.call(ctxt, "add", a=1, b=2) == 3
        start = time.monotonic()
        server.stop(graceful=True, timeout=10)
        assert time.monotonic() - start < 0.5


def test_consumer_reconnects_after_connection_error(make_server: Any, transport: rpc.Transport,
                                                    topic: str, ctxt: RequestContext,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """The reconnect path without a broker restart (see tests/functional for that)."""
    ep = Endpoint()
    server = make_server(endpoints=[ep])
    original = memory.Transport.drain_events
    failures: list[str] = []

    def flaky(self: memory.Transport, connection: Any, timeout: float | None = None,
              **kwargs: Any) -> None:
        if topic in self._callbacks and not failures:
            failures.append("simulated")
            raise ConnectionResetError("simulated connection loss")
        original(self, connection, timeout=timeout, **kwargs)

    monkeypatch.setattr(memory.Transport, "drain_events", flaky)
    client = rpc.RPCClient(transport, topic, timeout=5)
    with caplog.at_level(logging.INFO, logger="stratus.rpc.consumer"):
        for i in range(20):
            client.cast(ctxt, "note", value=i)
        assert wait_for(lambda: len({v for _, v in ep.handled}) == 20)
    assert failures == ["simulated"]
    assert any("reconnected" in r.getMessage() for r in caplog.records)
    assert server.ready
    assert client.call(ctxt, "add", a=1, b=1) == 2


def test_memory_reset_gives_an_empty_broker(topic: str, ctxt: RequestContext) -> None:
    transport = rpc.get_transport("memory://")
    try:
        server = rpc.RPCServer(transport, topic, "h1", [Endpoint()])
        server.start()
        server.stop()
        rpc.RPCClient(transport, topic).cast(ctxt, "note", value="stale")  # queued, no server
    finally:
        transport.cleanup()
    assert topic in memory.Channel.queues
    if memory._listeners:
        pytest.skip("another test's memory:// consumer is still running")
    memory.reset()
    assert memory.Channel.queues == {} and memory.Transport.global_state.exchanges == {}
    transport = rpc.get_transport("memory://")
    try:
        ep = Endpoint()
        server = rpc.RPCServer(transport, topic, "h1", [ep])
        server.start()
        assert rpc.RPCClient(transport, topic, timeout=5).call(ctxt, "add", a=1, b=2) == 3
        time.sleep(0.05)
        assert ep.handled == []  # the stale cast went with the old broker
        server.stop()
    finally:
        transport.cleanup()


def test_serializer_conversions() -> None:
    import dataclasses
    import decimal

    @dataclasses.dataclass
    class Point:
        x: int
        y: int

    ctxt = RequestContext(user_id="u", auth_token="secret-token")
    value = serializer.to_primitive({
        1: "int key", "d": decimal.Decimal("1.50"), "p": Point(1, 2), "ctx": ctxt,
        "u": uuid.UUID(int=5), "t": (1, 2), "naive": datetime.datetime(2024, 1, 2, 3, 4, 5),
    })
    assert value["1"] == "int key" and value["d"] == "1.50" and value["t"] == [1, 2]
    assert value["p"] == {"x": 1, "y": 2}
    assert value["ctx"]["user_id"] == "u" and "auth_token" not in value["ctx"]
    assert value["u"] == "00000000-0000-0000-0000-000000000005"
    assert rpc.parse_isotime(value["naive"]) == datetime.datetime(2024, 1, 2, 3, 4, 5)
    assert rpc.parse_isotime("2024-01-02T03:04:05Z").tzinfo == datetime.timezone.utc
    with pytest.raises(TypeError):
        serializer.dumps({"x": object()})
