"""The process's reply queue: one consumer thread resolves waiting calls.

Every :meth:`RPCClient.call` registers a future under a fresh ``msg_id``
(also the AMQP correlation id), publishes its request with
``reply_to=<this queue>`` and waits on the future. The server publishes the
reply, non-persistent, to the default exchange with the queue's name as
routing key; this listener's thread decodes it and resolves the future.

The queue is ``reply_<uuid>``, exclusive and auto-delete. It gets a fresh
name each time the listener (re)connects: an exclusive queue dies with its
connection, and a new name can never collide with a dying old one. Replies
in flight during a reconnect are lost; their callers time out.
"""
from __future__ import annotations

import logging
import threading
import uuid
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from kombu.entity import Queue
from kombu.message import Message

from stratus.rpc import serializer
from stratus.rpc.consumer import AckToken, ConsumerLoop

if TYPE_CHECKING:
    from stratus.rpc.transport import Transport

LOG = logging.getLogger(__name__)


class ReplyListener:
    """Owns the reply queue and the futures of calls waiting for replies."""

    def __init__(self, transport: "Transport") -> None:
        self._transport = transport
        self._waiters: dict[str, Future[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._queue_name = ""
        self._loop = ConsumerLoop(transport, "reply", self._declare, self._on_message,
                                  no_ack=True)

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.close()

    def wait_ready(self, timeout: float | None) -> str | None:
        """Wait until the reply queue is consumed; return its name, or
        ``None`` if it was not ready within ``timeout``."""
        if not self._loop.ready.wait(timeout):
            return None
        return self._queue_name

    def register(self, msg_id: str) -> "Future[dict[str, Any]]":
        future: Future[dict[str, Any]] = Future()
        with self._lock:
            self._waiters[msg_id] = future
        return future

    def unregister(self, msg_id: str) -> None:
        with self._lock:
            self._waiters.pop(msg_id, None)

    def _declare(self, channel: Any) -> list[Queue]:
        name = f"reply_{uuid.uuid4().hex}"
        queue = Queue(name, exchange=None, routing_key=name, exclusive=True,
                      auto_delete=True, durable=False, channel=channel)
        queue.queue_declare()
        self._queue_name = name
        return [queue]

    def _on_message(self, message: Message, token: AckToken) -> None:
        try:
            reply = serializer.loads(message.body)
            msg_id = reply["msg_id"]
        except Exception:
            LOG.exception("Dropping malformed reply")
            return
        with self._lock:
            future = self._waiters.pop(msg_id, None)
        if future is None:
            LOG.debug("Reply to %s arrived after its caller gave up", msg_id)
            return
        future.set_result(reply)
