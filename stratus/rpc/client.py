"""RPC client: ``call`` (request/reply) and ``cast`` (fire and forget).

Routing (see :mod:`stratus.rpc.transport` for the topology):

* ``server=None`` -> routing key ``topic`` on exchange ``stratus``: one of the
  topic's servers gets it (competing consumers);
* ``server="h1"`` -> routing key ``topic.h1``: only that server;
* ``fanout=True`` (cast only) -> exchange ``topic_fanout``: every server.

A client is immutable and thread-safe; :meth:`RPCClient.prepare` returns a
modified copy.

Request body (JSON, see :mod:`stratus.rpc.serializer`)::

    {"version": "1.0", "msg_id": "...", "reply_to": "reply_..." | null,
     "method": "...", "args": {...}, "context": {...RequestContext.to_dict()}}

Reply body: ``{"msg_id": ..., "result": ...}`` or
``{"msg_id": ..., "failure": serialize_exception(exc)}``.
"""
from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from stratus import exception
from stratus.context import RequestContext
from stratus.rpc import serializer
from stratus.rpc.transport import Transport, control_exchange, fanout_exchange

LOG = logging.getLogger(__name__)

MESSAGE_VERSION = "1.0"


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()


def encode_request(ctxt: RequestContext | None, method: str, args: dict[str, Any],
                   msg_id: str, reply_to: str | None) -> bytes:
    """Build the JSON body of a request (raises TypeError if not JSON-able)."""
    return serializer.dumps({
        "version": MESSAGE_VERSION,
        "msg_id": msg_id,
        "reply_to": reply_to,
        "method": method,
        "args": args,
        "context": ctxt.to_dict() if ctxt is not None else {},
    })


class RPCClient:
    """Sends requests to the servers of ``topic`` (optionally one ``server``)."""

    def __init__(self, transport: Transport, topic: str, server: str | None = None,
                 timeout: float | None = 60.0, fanout: bool = False) -> None:
        self.transport = transport
        self.topic = topic
        self.server = server
        self.timeout = timeout
        self.fanout = fanout

    def __repr__(self) -> str:
        return f"<RPCClient {self.target}{' fanout' if self.fanout else ''}>"

    @property
    def target(self) -> str:
        """Human-readable destination, also the routing key of non-fanout sends."""
        return f"{self.topic}.{self.server}" if self.server else self.topic

    def prepare(self, server: str | None = _UNSET, fanout: bool = _UNSET,
                timeout: float | None = _UNSET) -> "RPCClient":
        """A copy with ``server``, ``fanout`` and/or ``timeout`` changed."""
        return RPCClient(
            self.transport, self.topic,
            server=self.server if server is _UNSET else server,
            timeout=self.timeout if timeout is _UNSET else timeout,
            fanout=self.fanout if fanout is _UNSET else fanout)

    def cast(self, ctxt: RequestContext | None, method: str, **kwargs: Any) -> None:
        """Send ``method(**kwargs)``; do not wait. Retries while the broker is
        unreachable for up to the transport's ``cast_retry_seconds``."""
        body = encode_request(ctxt, method, kwargs, uuid.uuid4().hex, None)
        if self.fanout:
            exchange, routing_key = fanout_exchange(self.topic), self.topic
        else:
            exchange, routing_key = control_exchange(), self.target
        LOG.debug("cast %s to %s%s", method, self.target, " (fanout)" if self.fanout else "")
        self.transport.publish(body, exchange=exchange, routing_key=routing_key,
                               persistent=True, retry_for=self.transport.cast_retry_seconds,
                               declare=[exchange])

    def call(self, ctxt: RequestContext | None, method: str, **kwargs: Any) -> Any:
        """Send ``method(**kwargs)`` to one server and return its result.

        The request expires in its queue after ``timeout`` seconds (AMQP
        per-message TTL), so a call nobody waits for any more is not started
        late; one already delivered is still handled and acked.

        Raises the remote StratusException (same class and message),
        :class:`~stratus.exception.RemoteError` for other remote exceptions,
        or :class:`~stratus.exception.MessagingTimeout` if no reply came
        within ``timeout`` seconds.
        """
        if self.fanout:
            raise ValueError("call() cannot be sent to a fanout target; use cast()")
        timeout = self.timeout
        deadline = None if timeout is None else time.monotonic() + timeout

        def remaining() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        msg_id = uuid.uuid4().hex
        listener = self.transport.reply_listener()
        reply_to = listener.wait_ready(remaining())
        if reply_to is None:
            raise exception.MessagingTimeout(method=method, target=self.target)
        body = encode_request(ctxt, method, kwargs, msg_id, reply_to)
        future = listener.register(msg_id)
        try:
            LOG.debug("call %s on %s (msg_id %s)", method, self.target, msg_id)
            exchange = control_exchange()
            retry_for = self.transport.cast_retry_seconds if deadline is None else remaining()
            try:
                self.transport.publish(body, exchange=exchange, routing_key=self.target,
                                       persistent=True, retry_for=retry_for,
                                       declare=[exchange], correlation_id=msg_id,
                                       reply_to=reply_to, expiration=timeout)
            except self.transport.retryable_errors() as exc:
                LOG.warning("call %s on %s: could not publish: %s", method, self.target, exc)
                raise exception.MessagingTimeout(method=method, target=self.target) from exc
            try:
                reply = future.result(remaining())
            except FutureTimeout:
                raise exception.MessagingTimeout(method=method, target=self.target) from None
        finally:
            listener.unregister(msg_id)
        if "failure" in reply:
            raise serializer.deserialize_exception(reply["failure"])
        return reply.get("result")
