"""Versioned notifications, the way Nova emits them.

A notification is published to the topic exchange ``stratus_notifications``
with routing key ``notifications.<priority>`` and lands in the durable queue
of the same name (declared on first use), where tools and
:class:`NotificationListener` read it. Body::

    {"message_id": "<uuid>", "publisher_id": "compute.host1",
     "event_type": "instance.create.start", "priority": "INFO",
     "timestamp": "2025-01-01T12:00:00.000000+00:00",
     "payload": {"stratus_object.name": "InstanceCreatePayload",
                 "stratus_object.namespace": "stratus",
                 "stratus_object.version": "1.0",
                 "stratus_object.data": {...}},
     "context": {...RequestContext.to_dict()}}

The payload is wrapped like Nova's ``nova_object.*`` envelopes; its name
defaults to one derived from the event type (``instance.create.start`` ->
``InstanceCreatePayload``). Notifying never raises: a notification that
cannot be sent (broker down longer than ``retry_seconds``) is logged and
dropped, so it cannot fail the operation it describes.
"""
from __future__ import annotations

import logging
import threading
import uuid
from typing import Any, Callable, Sequence

from kombu.entity import Queue
from kombu.message import Message

from stratus.context import RequestContext
from stratus.rpc import serializer
from stratus.rpc.consumer import AckToken, ConsumerLoop
from stratus.rpc.transport import Transport, notification_exchange

LOG = logging.getLogger(__name__)

DEFAULT_TOPIC = "notifications"
PRIORITIES = ("debug", "info", "warn", "error", "critical")
OBJECT_NAMESPACE = "stratus"


def payload_name_for(event_type: str) -> str:
    """``instance.create.start`` -> ``InstanceCreatePayload``."""
    words = [w for w in event_type.replace("_", ".").split(".") if w][:2]
    return "".join(w.capitalize() for w in words) + "Payload"


def wrap_payload(event_type: str, payload: dict[str, Any], name: str | None = None,
                 version: str = "1.0") -> dict[str, Any]:
    """Wrap ``payload`` in the versioned-object envelope (idempotent)."""
    if "stratus_object.data" in payload:
        return payload
    return {
        "stratus_object.name": name or payload_name_for(event_type),
        "stratus_object.namespace": OBJECT_NAMESPACE,
        "stratus_object.version": version,
        "stratus_object.data": payload,
    }


#: memory:// only: an all-in-one has nobody reading notifications.info, so
#: its in-process queues keep the newest this many (RabbitMQ: unbounded).
MEMORY_QUEUE_MAX_LENGTH = 10000


def notification_queue(transport: Transport, topic: str, priority: str,
                       pool: str | None = None) -> Queue:
    """The durable queue notifications of ``priority`` are routed to.
    ``pool`` names a separate queue that gets its own copy of each."""
    key = f"{topic}.{priority}"
    name = f"{key}.{pool}" if pool else key
    arguments = {"x-max-length": MEMORY_QUEUE_MAX_LENGTH} if transport.is_memory else None
    return Queue(name, notification_exchange(), routing_key=key, durable=True,
                 queue_arguments=arguments)


class Notifier:
    """Emits notifications as ``publisher_id``. ``driver="noop"`` drops them."""

    def __init__(self, transport: Transport | None, publisher_id: str,
                 driver: str = "messaging", topics: Sequence[str] = (DEFAULT_TOPIC,),
                 retry_seconds: float = 10.0) -> None:
        if driver not in ("messaging", "noop"):
            raise ValueError(f"Unknown notification driver {driver!r}")
        if driver == "messaging" and transport is None:
            raise ValueError("The messaging notification driver needs a transport")
        self.transport = transport
        self.publisher_id = publisher_id
        self.driver = driver
        self.topics = tuple(topics)
        self.retry_seconds = retry_seconds

    def prepare(self, publisher_id: str) -> "Notifier":
        """A copy publishing as ``publisher_id``."""
        return Notifier(self.transport, publisher_id, self.driver, self.topics,
                        self.retry_seconds)

    def debug(self, ctxt: RequestContext | None, event_type: str,
              payload: dict[str, Any], **kw: Any) -> None:
        self._notify(ctxt, event_type, payload, "debug", **kw)

    def info(self, ctxt: RequestContext | None, event_type: str,
             payload: dict[str, Any], **kw: Any) -> None:
        self._notify(ctxt, event_type, payload, "info", **kw)

    def warn(self, ctxt: RequestContext | None, event_type: str,
             payload: dict[str, Any], **kw: Any) -> None:
        self._notify(ctxt, event_type, payload, "warn", **kw)

    warning = warn

    def error(self, ctxt: RequestContext | None, event_type: str,
              payload: dict[str, Any], **kw: Any) -> None:
        self._notify(ctxt, event_type, payload, "error", **kw)

    def critical(self, ctxt: RequestContext | None, event_type: str,
                 payload: dict[str, Any], **kw: Any) -> None:
        self._notify(ctxt, event_type, payload, "critical", **kw)

    def _notify(self, ctxt: RequestContext | None, event_type: str, payload: dict[str, Any],
                priority: str, payload_name: str | None = None,
                payload_version: str = "1.0") -> None:
        if self.driver == "noop" or self.transport is None:
            return
        message = {
            "message_id": str(uuid.uuid4()),
            "publisher_id": self.publisher_id,
            "event_type": event_type,
            "priority": priority.upper(),
            "timestamp": serializer.utcnow_iso(),
            "payload": wrap_payload(event_type, payload, payload_name, payload_version),
            "context": ctxt.to_dict() if ctxt is not None else {},
        }
        try:
            body = serializer.dumps(message)
            for topic in self.topics:
                queue = notification_queue(self.transport, topic, priority)
                self.transport.publish(body, exchange=queue.exchange,
                                       routing_key=queue.routing_key, persistent=True,
                                       retry_for=self.retry_seconds,
                                       declare=[queue.exchange, queue])
        except Exception as exc:
            LOG.error("Could not send notification %s (%s): %s", event_type, priority, exc)


class NotificationListener:
    """Calls ``callback(notification_dict)`` for each notification of the
    given priorities, then acks it. The callback runs on the listener's
    consumer thread; if it raises, the error is logged and the message acked.

    Without ``pool`` it competes for the shared ``notifications.<priority>``
    queues; with ``pool="x"`` it reads its own ``notifications.<priority>.x``
    queues, which receive a copy of every notification from then on.
    """

    def __init__(self, transport: Transport, callback: Callable[[dict[str, Any]], None],
                 priorities: Sequence[str] = ("info", "error"), topic: str = DEFAULT_TOPIC,
                 pool: str | None = None) -> None:
        self.transport = transport
        self.callback = callback
        self.priorities = tuple(priorities)
        self.topic = topic
        self.pool = pool
        self._loop: ConsumerLoop | None = None
        self._lock = threading.Lock()

    def start(self, ready_timeout: float = 5.0) -> None:
        with self._lock:
            if self._loop is not None:
                raise RuntimeError("listener already started")
            self._loop = ConsumerLoop(self.transport, f"notifications.{self.pool or 'shared'}",
                                      self._declare, self._on_message,
                                      prefetch_count=self.transport.prefetch_count)
            self._loop.start()
        self.transport.register(self)
        self._loop.ready.wait(ready_timeout)

    def stop(self, graceful: bool = True, timeout: float = 30) -> None:
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is not None:
            loop.close(timeout=max(timeout, 1.0))

    def _declare(self, channel: Any) -> list[Queue]:
        queues = [notification_queue(self.transport, self.topic, p, self.pool).bind(channel)
                  for p in self.priorities]
        for queue in queues:
            queue.declare()
        return queues

    def _on_message(self, message: Message, token: AckToken) -> None:
        loop = self._loop
        try:
            self.callback(serializer.loads(message.body))
        except Exception:
            LOG.exception("Notification callback failed")
        finally:
            if loop is not None:
                loop.ack(token)
