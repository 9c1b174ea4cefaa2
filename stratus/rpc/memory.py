"""In-process kombu transport that wakes consumers instead of polling.

kombu's own ``memory://`` transport finds new messages by polling: with its
default ``polling_interval`` of 1 s every RPC round trip takes a second, and
with 0 an idle consumer spins a core. This transport keeps kombu's virtual
broker (exchanges, bindings, topic/direct/fanout routing, QoS/prefetch, acks)
and changes how a consumer waits:

* every kombu connection (one :class:`Transport` instance) owns a
  ``threading.Event``; ``basic_consume`` registers the connection as a
  listener of the queue, ``basic_cancel`` unregisters it;
* every ``_put`` (direct, topic, fanout, default exchange, redelivery) sets the
  events of that queue's listeners;
* :meth:`Transport.drain_events` tries to deliver and, if nothing was ready,
  waits on the event for at most the caller's timeout, then clears it and
  tries again. Being woken without finding a message (another consumer won
  it, or someone called :meth:`Transport.wake`) ends the call with
  ``socket.timeout`` so the caller's loop can do other work, e.g. ack
  finished messages.

So a delivery wakes exactly the connections consuming from that queue, and an
idle consumer sleeps in ``Event.wait``: no polling, no CPU.

Broker semantics kept close to RabbitMQ's so the same code path is tested:
unacked messages are put back on their queue when the channel closes (as
RabbitMQ does when a consumer's connection closes), a queue declared
``auto_delete`` is deleted when its last consumer goes away, messages with
an ``expiration`` are dropped once expired, the ``x-max-length`` queue
argument drops the oldest messages, and a message for a queue that does not
exist (default exchange) is dropped.

The broker state (exchanges, bindings, queues) is process-global, like a
broker: every ``memory://`` transport in the process talks to the same one.
"""
from __future__ import annotations

import socket
import threading
from queue import Empty, Queue
from time import monotonic
from typing import Any

import kombu.transport
from kombu.transport import memory as kombu_memory
from kombu.transport import virtual

#: Guards routing tables, queue creation/deletion and the listener registry.
_lock = threading.RLock()
#: queue name -> frozenset of Transport instances consuming from it
#: (replaced, never mutated, so ``_put`` can read it without the lock).
_listeners: dict[str, frozenset["Transport"]] = {}
#: queues declared auto_delete: deleted when their last consumer is cancelled.
_auto_delete: set[str] = set()
#: queue name -> x-max-length argument (oldest messages dropped beyond it).
_max_length: dict[str, int] = {}

#: Key added to a delivered message's delivery_info naming its source queue,
#: so a restored (unacked) message goes back to that queue only.
_SOURCE_QUEUE = "x_stratus_queue"
#: Property holding the monotonic deadline of a message with an expiration.
_EXPIRES_AT = "x_stratus_expires_at"


def _notify(queue: str) -> None:
    for transport in _listeners.get(queue, ()):
        transport.wake()


class Channel(kombu_memory.Channel):
    """A virtual channel whose puts wake the consumers of the target queue."""

    #: This broker's queues (separate from kombu's own memory transport).
    queues: dict[str, Queue] = {}
    #: Put unacked messages back when the channel closes (RabbitMQ does too).
    do_restore = True
    #: Bodies are bytes already; no base64 round trip.
    body_encoding = None  # type: ignore[assignment]

    def _new_queue(self, queue: str, **kwargs: Any) -> None:
        with _lock:
            if queue not in self.queues:
                self.queues[queue] = Queue()
            if kwargs.get("auto_delete"):
                _auto_delete.add(queue)
            max_length = (kwargs.get("arguments") or {}).get("x-max-length")
            if max_length is not None:
                _max_length[queue] = int(max_length)

    def _queue_for(self, queue: str) -> Queue:
        q = self.queues.get(queue)
        if q is None:
            with _lock:
                q = self.queues.setdefault(queue, Queue())
        return q

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        q = self._queue_for(queue)
        while True:  # drop expired messages, as RabbitMQ does at the queue head
            raw = q.get(block=False)
            expires_at = raw["properties"].get(_EXPIRES_AT)
            if expires_at is None or monotonic() < expires_at:
                break
        # Copy: a fanout/topic publish puts the same dict into several queues.
        props = dict(raw["properties"])
        props["delivery_info"] = {**props.get("delivery_info", {}), _SOURCE_QUEUE: queue}
        return {**raw, "properties": props}

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        props = message["properties"]
        if props.get("expiration") is not None and _EXPIRES_AT not in props:
            deadline = monotonic() + int(props["expiration"]) / 1000.0
            message = {**message, "properties": {**props, _EXPIRES_AT: deadline}}
        q = self.queues.get(queue)
        if q is None:  # e.g. a reply to a caller that is gone: RabbitMQ drops it too
            return
        max_length = _max_length.get(queue)
        if max_length is not None:
            while q.qsize() >= max_length:
                try:
                    q.get(block=False)
                except Empty:
                    break
        q.put(message)
        _notify(queue)

    def _put_fanout(self, exchange: str, message: dict[str, Any],
                    routing_key: str | None = None, **kwargs: Any) -> None:
        for queue in self._lookup(exchange, routing_key or ""):
            self._put(queue, message)

    def _lookup(self, exchange: str, routing_key: str, default: Any = None) -> Any:
        with _lock:
            return super()._lookup(exchange, routing_key, default)

    def exchange_declare(self, *args: Any, **kwargs: Any) -> None:
        with _lock:
            super().exchange_declare(*args, **kwargs)

    def queue_bind(self, *args: Any, **kwargs: Any) -> None:
        with _lock:
            super().queue_bind(*args, **kwargs)

    def queue_unbind(self, *args: Any, **kwargs: Any) -> None:
        with _lock:
            super().queue_unbind(*args, **kwargs)

    def queue_delete(self, queue: str, if_unused: bool = False,
                     if_empty: bool = False, **kwargs: Any) -> None:
        with _lock:
            if if_unused and _listeners.get(queue):
                return
            if if_empty and self._size(queue):
                return
            for exchange, routing_key, args in list(self.state.queue_bindings(queue)):
                super().queue_unbind(queue, exchange, routing_key, args)
            self.state.queue_bindings_delete(queue)
            self.queues.pop(queue, None)
            _auto_delete.discard(queue)
            _max_length.pop(queue, None)

    def basic_consume(self, queue: str, no_ack: bool, callback: Any,
                      consumer_tag: str, **kwargs: Any) -> Any:
        result = super().basic_consume(queue, no_ack, callback, consumer_tag, **kwargs)
        with _lock:
            _listeners[queue] = _listeners.get(queue, frozenset()) | {self.connection}
        return result

    def basic_cancel(self, consumer_tag: str) -> None:
        queue = self._tag_to_queue.get(consumer_tag)
        transport = self.connection
        super().basic_cancel(consumer_tag)
        if queue is None or queue in self._active_queues:
            return
        with _lock:
            remaining = _listeners.get(queue, frozenset()) - {transport}
            if remaining:
                _listeners[queue] = remaining
            else:
                _listeners.pop(queue, None)
                if queue in _auto_delete:
                    self.queue_delete(queue)

    def _restore(self, message: Any) -> None:
        """Put an unacked message back on the queue it came from (if that
        queue still exists: an auto-deleted queue takes its messages along)."""
        queue = message.delivery_info.get(_SOURCE_QUEUE)
        if queue is None:
            super()._restore(message)
            return
        raw = message.serializable()
        raw["redelivered"] = True
        with _lock:
            if queue not in self.queues:
                return
        self._put(queue, raw)

    def close(self) -> None:
        # kombu's memory Channel.close also drops its view of the queues; the
        # queues belong to the broker, so only do the virtual channel's part.
        virtual.Channel.close(self)


class Transport(kombu_memory.Transport):
    """Memory transport whose ``drain_events`` waits on an event, not a timer."""

    Channel = Channel
    #: This broker's exchanges and bindings (separate from kombu's memory://).
    global_state = virtual.BrokerState()
    driver_type = "memory"
    driver_name = "stratus-memory"

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self._event = threading.Event()

    def wake(self) -> None:
        """Make a pending or the next ``drain_events`` return promptly."""
        self._event.set()

    def drain_events(self, connection: Any, timeout: float | None = None,
                     **kwargs: Any) -> None:
        # The event means "something happened since you last looked". It is
        # only cleared right before a look, so no wake-up is ever lost; a
        # stale one just makes a call return early (as a timeout).
        cycle = self.cycle
        assert cycle is not None
        try:
            cycle.get(self._deliver, timeout=timeout)
            return
        except Empty:
            pass
        if not self._event.wait(timeout):
            raise socket.timeout()
        self._event.clear()
        try:
            cycle.get(self._deliver, timeout=timeout)
        except Empty:
            raise socket.timeout() from None


def reset() -> None:
    """Empty the in-process broker: every queue, exchange and binding.

    For test isolation (each test a fresh broker). Call it only while no
    ``memory://`` server, listener or caller is running.
    """
    with _lock:
        Channel.queues.clear()
        Transport.global_state.clear()
        _listeners.clear()
        _auto_delete.clear()
        _max_length.clear()


def register() -> None:
    """Make ``stratus-memory://`` resolvable by kombu (done on import)."""
    kombu.transport.TRANSPORT_ALIASES.setdefault("stratus-memory", f"{__name__}:Transport")


register()
