"""The transport: connections to the broker, the topology, and publishing.

Design (read once, applies to the whole package)
================================================
Everything goes through kombu; only the kombu transport differs:
``rabbit://user:pass@host:5672/vhost`` uses py-amqp (RabbitMQ), ``memory://``
uses :mod:`stratus.rpc.memory`, an in-process broker that wakes consumers
instead of polling.

Topology (same names on both brokers)::

    exchange "stratus" (topic, durable)
        queue "T"       binding "T"     shared by every server of topic T
        queue "T.H"     binding "T.H"   server H of topic T only
    exchange "T_fanout" (fanout, durable)
        queue "T_fanout_<uuid>" (exclusive, auto-delete) one per server
    default exchange ""  -> queue "reply_<uuid>" (exclusive, auto-delete),
                            one per Transport (i.e. per process), replies
    exchange "stratus_notifications" (topic, durable)
        queue "notifications.<priority>" (durable) for tools to read

Threads and channels: kombu channels are not thread-safe, so nothing shares
one. Publishing borrows a (connection, channel, producer) slot from a small
pool (:class:`_ProducerPool`) for the duration of one publish; every consumer
(:class:`stratus.rpc.consumer.ConsumerLoop`) owns its connection and thread,
and acks happen on that thread.

Delivery guarantees: requests are published persistent, with publisher
confirms, and retried across connection failures for up to
``cast_retry_seconds`` (calls: up to their timeout), so a request published
while RabbitMQ restarts is delayed, not lost. Servers ack a request only
after its handler finished; a request whose server dies or stops first is
redelivered (at-least-once: handlers should tolerate a repeat). Call
requests carry a per-message TTL equal to the call's timeout, so a request
nobody waits for any more expires in its queue instead of running late.
"""
from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
import urllib.parse
import weakref
from typing import Any, Iterator, Protocol, Sequence

import kombu.exceptions
from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.messaging import Producer

from stratus.rpc import memory
from stratus.rpc.reply import ReplyListener

LOG = logging.getLogger(__name__)

CONTROL_EXCHANGE = "stratus"
NOTIFICATION_EXCHANGE = "stratus_notifications"
DEFAULT_PREFETCH = 64


def control_exchange() -> Exchange:
    """The topic exchange every RPC request is published to."""
    return Exchange(CONTROL_EXCHANGE, type="topic", durable=True)


def fanout_exchange(topic: str) -> Exchange:
    """The fanout exchange of ``topic`` (durable so it never vanishes between
    a client's cached declaration and its publish)."""
    return Exchange(f"{topic}_fanout", type="fanout", durable=True)


def notification_exchange() -> Exchange:
    return Exchange(NOTIFICATION_EXCHANGE, type="topic", durable=True)


def to_kombu_urls(url: str) -> list[str]:
    """Translate a Stratus transport URL into kombu URLs.

    ``memory://`` -> ``stratus-memory://``; ``rabbit://`` (also with several
    comma-separated ``user:pass@host:port`` for failover) -> ``amqp://``.
    """
    parsed = urllib.parse.urlsplit(url)
    scheme = parsed.scheme.lower()
    if scheme in ("memory", "stratus-memory"):
        return ["stratus-memory://"]
    if scheme not in ("rabbit", "amqp", "pyamqp"):
        raise ValueError(f"Unsupported transport URL scheme {scheme!r} in {url!r}")
    path = parsed.path or "/"
    query = f"?{parsed.query}" if parsed.query else ""
    return [f"pyamqp://{netloc}{path}{query}" for netloc in parsed.netloc.split(",")]


class _Closeable(Protocol):
    def stop(self, graceful: bool = True, timeout: float = 30) -> None: ...


class _Slot:
    """One pooled publisher: its own connection, channel and producer."""

    def __init__(self, transport: "Transport") -> None:
        self.connection = transport.connect(publisher=True)
        try:
            self.producer = Producer(self.connection.channel())
        except BaseException:
            self.close(broken=True)
            raise

    def close(self, broken: bool) -> None:
        with contextlib.suppress(Exception):
            if broken:
                self.connection.collect()
            else:
                self.connection.close()


class _ProducerPool:
    """At most ``limit`` publisher slots, created on demand, reused LIFO."""

    def __init__(self, factory: "Transport", limit: int) -> None:
        self._transport = factory
        self._free: list[_Slot] = []
        self._lock = threading.Lock()
        self._sem = threading.BoundedSemaphore(limit)
        self._closed = False

    @contextlib.contextmanager
    def acquire(self) -> Iterator[_Slot]:
        self._sem.acquire()
        try:
            with self._lock:
                if self._closed:
                    raise RuntimeError("transport is cleaned up")
                slot = self._free.pop() if self._free else None
            if slot is None:
                slot = _Slot(self._transport)
            try:
                yield slot
            except BaseException:
                slot.close(broken=True)  # the channel may be unusable now
                raise
            with self._lock:
                closed = self._closed
                if not closed:
                    self._free.append(slot)
            if closed:
                slot.close(broken=False)
        finally:
            self._sem.release()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            slots, self._free = self._free, []
        for slot in slots:
            slot.close(broken=False)


class Transport:
    """A broker URL plus everything that talks to it from this process.

    Create with :func:`get_transport`; share one per process; call
    :meth:`cleanup` at exit.
    """

    def __init__(self, url: str, *, prefetch_count: int = DEFAULT_PREFETCH,
                 pool_size: int = 32, cast_retry_seconds: float = 60.0,
                 reply_retry_seconds: float = 10.0, heartbeat: float = 30.0,
                 publish_timeout: float = 10.0) -> None:
        self.url = url
        self.kombu_urls = to_kombu_urls(url)
        self.is_memory = self.kombu_urls[0].startswith("stratus-memory")
        self.prefetch_count = prefetch_count
        self.cast_retry_seconds = cast_retry_seconds
        self.reply_retry_seconds = reply_retry_seconds
        self.heartbeat = 0.0 if self.is_memory else heartbeat
        #: A publish whose write or broker confirm takes longer than this is
        #: retried on a fresh connection (a dead idle TCP connection would
        #: otherwise block until the kernel gives up on it).
        self.publish_timeout = publish_timeout
        self._pool = _ProducerPool(self, pool_size)
        self._lock = threading.Lock()
        self._reply: ReplyListener | None = None
        self._users: weakref.WeakSet[Any] = weakref.WeakSet()
        self._closed = False
        self._retryable: tuple[type[BaseException], ...] = ()

    def __repr__(self) -> str:
        safe = urllib.parse.urlsplit(self.url)._replace(netloc=self._safe_netloc())
        return f"<Transport {urllib.parse.urlunsplit(safe)}>"

    def _safe_netloc(self) -> str:
        netloc = urllib.parse.urlsplit(self.url).netloc
        return ",".join(part.rsplit("@", 1)[-1] for part in netloc.split(","))

    # -- connections ---------------------------------------------------------

    def connection(self, *, publisher: bool = False) -> Connection:
        """A new, not yet connected kombu connection. Publisher connections use
        publisher confirms; consumer connections use heartbeats."""
        options: dict[str, Any] = {"max_retries": 0}
        if publisher and not self.is_memory:
            options["confirm_publish"] = True
        url: str | list[str] = self.kombu_urls if len(self.kombu_urls) > 1 else self.kombu_urls[0]
        return Connection(url, transport_options=options, connect_timeout=5,
                          heartbeat=0 if publisher else self.heartbeat)

    def connect(self, *, publisher: bool = False) -> Connection:
        """A new connection, connected: one attempt per broker URL, no sleeping
        (callers own their retry policy). Raises the transport's error."""
        conn = self.connection(publisher=publisher)
        try:
            conn.ensure_connection(max_retries=len(self.kombu_urls) - 1, interval_start=0,
                                   reraise_as_library_errors=False)
        except BaseException:
            with contextlib.suppress(Exception):
                conn.collect()
            raise
        return conn

    def retryable_errors(self) -> tuple[type[BaseException], ...]:
        """Errors after which a publish is retried on a fresh connection."""
        if not self._retryable:
            conn = self.connection()
            self._retryable = (conn.recoverable_connection_errors
                               + conn.recoverable_channel_errors
                               + (kombu.exceptions.OperationalError, OSError))
        return self._retryable

    # -- publishing ----------------------------------------------------------

    def publish(self, body: bytes, *, exchange: Exchange, routing_key: str,
                persistent: bool, retry_for: float | None,
                declare: Sequence[Exchange | Queue] = (),
                **properties: Any) -> None:
        """Publish ``body`` (JSON bytes), retrying connection failures with
        back-off for up to ``retry_for`` seconds (``None``: no retry)."""
        deadline = time.monotonic() + (retry_for or 0.0)
        delay = 0.05
        retryable = self.retryable_errors()
        target = f"{exchange.name or '<default>'}/{routing_key}"
        for attempt in itertools.count():
            try:
                with self._pool.acquire() as slot:
                    slot.producer.publish(
                        body, exchange=exchange, routing_key=routing_key,
                        content_type="application/json", content_encoding="utf-8",
                        delivery_mode=2 if persistent else 1,
                        declare=list(declare) or None, retry=False,
                        timeout=self.publish_timeout, confirm_timeout=self.publish_timeout,
                        **properties)
                if attempt:
                    LOG.info("Published to %s after %d retries", target, attempt)
                return
            except retryable as exc:
                if self._closed or retry_for is None or time.monotonic() + delay > deadline:
                    LOG.error("Publish to %s failed: %s", target, exc)
                    raise
                LOG.log(logging.DEBUG if attempt else logging.WARNING,
                        "Publish to %s failed (%s); retrying for up to %.0fs",
                        target, exc, deadline - time.monotonic())
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    # -- replies and lifecycle -------------------------------------------------

    def reply_listener(self) -> ReplyListener:
        """The process's reply queue consumer, started on first use."""
        with self._lock:
            if self._closed:
                raise RuntimeError("transport is cleaned up")
            if self._reply is None:
                self._reply = ReplyListener(self)
                self._reply.start()
            return self._reply

    def register(self, user: _Closeable) -> None:
        """Remember a server/listener so :meth:`cleanup` can stop it."""
        self._users.add(user)

    def cleanup(self) -> None:
        """Stop remaining servers/listeners (not gracefully), the reply
        consumer, and close pooled connections."""
        with self._lock:
            self._closed = True
            reply, self._reply = self._reply, None
        for user in list(self._users):
            with contextlib.suppress(Exception):
                user.stop(graceful=False, timeout=0)
        if reply is not None:
            reply.stop()
        self._pool.close()


def get_transport(url: str, **kwargs: Any) -> Transport:
    """Return a :class:`Transport` for ``rabbit://...`` or ``memory://``."""
    memory.register()
    return Transport(url, **kwargs)
