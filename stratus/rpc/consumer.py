"""A consumer thread that owns one connection and survives broker restarts.

Used by the RPC server, the reply listener and the notification listener.
The thread connects, declares its queues (``declare`` callback), consumes,
and then loops: ack what workers finished, ``drain_events`` for a short
slice, repeat. On any connection error it closes the connection, backs off
(0.1 s doubling to 2 s) and starts over with a new connection: queues are
re-declared (exclusive ones get fresh names from ``declare``) and consuming
resumes. Messages delivered on a lost connection are redelivered by the
broker, so their late acks are dropped (tokens carry a connection
generation).

Acks are only ever sent from this thread (kombu channels are not
thread-safe): :meth:`ConsumerLoop.ack` queues the token and wakes the loop.
On ``memory://`` a wake-up is immediate (the drain waits on an event); on
RabbitMQ the loop's drain slice (50 ms) bounds how late an ack goes out.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import socket
import threading
from typing import TYPE_CHECKING, Any, Callable

from kombu.connection import Connection
from kombu.entity import Queue
from kombu.message import Message
from kombu.messaging import Consumer

if TYPE_CHECKING:
    from stratus.rpc.transport import Transport

LOG = logging.getLogger(__name__)

#: (connection generation, message): what a worker hands back to be acked.
AckToken = tuple[int, Message]
DeclareFn = Callable[[Any], list[Queue]]
OnMessageFn = Callable[[Message, AckToken], None]

_BACKOFF_START = 0.1
_BACKOFF_MAX = 2.0


class ConsumerLoop:
    """Consume ``declare(channel)``'s queues on a thread of its own."""

    def __init__(self, transport: "Transport", name: str, declare: DeclareFn,
                 on_message: OnMessageFn, *, no_ack: bool = False,
                 prefetch_count: int = 0) -> None:
        self.name = name
        self._transport = transport
        self._declare = declare
        self._on_message = on_message
        self._no_ack = no_ack
        self._prefetch = prefetch_count
        # memory:// wakes the drain on demand, so it may block for long.
        self._slice = 5.0 if transport.is_memory else 0.05
        self._acks: collections.deque[AckToken] = collections.deque()
        self._generation = 0
        self._waker: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None
        #: set while connected and consuming
        self.ready = threading.Event()
        self._cancel = threading.Event()      # stop taking new messages
        self._cancelled = threading.Event()   # ... and the loop has done so
        self._closing = threading.Event()     # leave the loop

    # -- called from other threads -----------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"rpc-consumer-{self.name}",
                                        daemon=True)
        self._thread.start()

    def ack(self, token: AckToken) -> None:
        """Ack ``token``'s message from the consumer thread (soon)."""
        self._acks.append(token)
        self._wake()

    def cancel(self, timeout: float = 5.0) -> None:
        """Stop consuming (deliveries after this are left unacked) but keep
        sending acks; wait up to ``timeout`` for the loop to confirm."""
        self._cancel.set()
        self._wake()
        self._cancelled.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Send pending acks, close the connection (the broker requeues what
        is still unacked) and join the thread."""
        self._cancel.set()
        self._closing.set()
        self._wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                LOG.warning("Consumer %s did not stop within %.1fs", self.name, timeout)

    def _wake(self) -> None:
        waker = self._waker
        if waker is not None:
            waker()

    # -- the consumer thread ----------------------------------------------------

    def _run(self) -> None:
        delay = _BACKOFF_START
        failed = False
        while not self._closing.is_set():
            conn: Connection | None = None
            clean = False
            try:
                conn = self._transport.connect()
                channel = conn.channel()
                if self._prefetch:
                    channel.basic_qos(0, self._prefetch, False)
                consumer = Consumer(channel, self._declare(channel), no_ack=self._no_ack,
                                    on_message=self._deliver, auto_declare=False)
                self._generation += 1
                self._waker = getattr(conn.transport, "wake", None)
                if not self._cancel.is_set():
                    consumer.consume()
                self.ready.set()
                if failed:
                    LOG.info("Consumer %s reconnected to %s", self.name, self._transport)
                failed, delay = False, _BACKOFF_START
                self._serve(conn, consumer)
                clean = True
            except Exception as exc:  # connection lost, broker down, ...
                self.ready.clear()
                if self._closing.is_set():
                    break
                if failed:  # still down: the first failure was logged already
                    LOG.debug("Consumer %s: still failing: %r", self.name, exc)
                elif isinstance(exc, self._transport.retryable_errors()):
                    LOG.warning("Consumer %s: connection problem (%s: %s); reconnecting",
                                self.name, type(exc).__name__, exc)
                else:
                    LOG.exception("Consumer %s failed; restarting it", self.name)
                failed = True
                if self._cancel.is_set():
                    self._cancelled.set()
                self._closing.wait(delay)
                delay = min(delay * 2, _BACKOFF_MAX)
            finally:
                self.ready.clear()
                self._waker = None
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close() if clean else conn.collect()
        self._cancelled.set()

    def _serve(self, conn: Connection, consumer: Consumer) -> None:
        generation = self._generation
        cancelled = False
        while True:
            self._flush_acks(generation)
            if self._cancel.is_set() and not cancelled:
                with contextlib.suppress(Exception):
                    consumer.cancel()
                cancelled = True
                self._cancelled.set()
            if self._closing.is_set():
                self._flush_acks(generation)
                return
            try:
                conn.drain_events(timeout=self._slice)
            except socket.timeout:
                pass
            if self._transport.heartbeat:
                conn.heartbeat_check()

    def _flush_acks(self, generation: int) -> None:
        while True:
            try:
                token_generation, message = self._acks.popleft()
            except IndexError:
                return
            if token_generation == generation:
                message.ack()
            else:
                LOG.debug("Consumer %s: not acking a message of a lost connection "
                          "(the broker redelivers it)", self.name)

    def _deliver(self, message: Message) -> None:
        if self._cancel.is_set():
            return  # left unacked: requeued when the connection closes
        self._on_message(message, (self._generation, message))
