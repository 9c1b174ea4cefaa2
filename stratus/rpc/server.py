"""RPC server: consume a topic's queues and dispatch requests to endpoints.

One :class:`~stratus.rpc.consumer.ConsumerLoop` thread consumes the queues
``T``, ``T.H`` and a private ``T_fanout_<uuid>`` queue with a prefetch limit;
every delivery is handed to a ``ThreadPoolExecutor`` of ``workers`` threads.
A worker decodes the request, binds its context (so log lines carry the
request id), calls ``endpoint.method(ctxt, **args)``, publishes the reply
(for calls) and only then hands the message back to the consumer thread to
be acked. A request whose server dies or stops first is redelivered.

Dispatch: the first endpoint with a public callable attribute named
``method`` wins; names starting with ``_`` are never dispatched.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Sequence

from kombu.entity import Exchange, Queue
from kombu.message import Message

from stratus import context, exception
from stratus.context import RequestContext
from stratus.rpc import serializer
from stratus.rpc.consumer import AckToken, ConsumerLoop
from stratus.rpc.transport import Transport, control_exchange, fanout_exchange

LOG = logging.getLogger(__name__)

_DEFAULT_EXCHANGE = Exchange("")


class NoSuchMethod(exception.StratusException):
    """The server's endpoints have no public method of the requested name."""

    msg_fmt = "Endpoint does not support RPC method %(method)s"


class Dispatcher:
    """Finds and calls the endpoint method a request names."""

    def __init__(self, endpoints: Sequence[object]) -> None:
        self.endpoints = list(endpoints)

    def lookup(self, method: str) -> Callable[..., Any]:
        if not method or method.startswith("_"):
            raise NoSuchMethod(method=method)
        for endpoint in self.endpoints:
            func: Callable[..., Any] | None = getattr(endpoint, method, None)
            if func is not None and callable(func):
                return func
        raise NoSuchMethod(method=method)

    def dispatch(self, ctxt: RequestContext, method: str, args: dict[str, Any]) -> Any:
        return self.lookup(method)(ctxt, **args)


class RPCServer:
    """Serves ``endpoints`` for ``topic`` (and ``topic.server``)."""

    def __init__(self, transport: Transport, topic: str, server: str | None,
                 endpoints: Sequence[object], workers: int = 16,
                 prefetch_count: int | None = None) -> None:
        self.transport = transport
        self.topic = topic
        self.server = server
        self.dispatcher = Dispatcher(endpoints)
        self.workers = workers
        self.prefetch_count = transport.prefetch_count if prefetch_count is None else prefetch_count
        self._executor: ThreadPoolExecutor | None = None
        self._loop: ConsumerLoop | None = None
        self._inflight = 0
        self._idle = threading.Condition()
        self._state_lock = threading.Lock()
        self._stopping = False

    def __repr__(self) -> str:
        return f"<RPCServer {self.topic}.{self.server}>"

    # -- lifecycle --------------------------------------------------------------

    def start(self, ready_timeout: float = 5.0) -> None:
        """Start the consumer thread and the worker pool; return once the
        queues are declared and consumed (or after ``ready_timeout``; the
        server keeps connecting in the background)."""
        with self._state_lock:
            if self._loop is not None:
                raise RuntimeError(f"{self!r} already started")
            self._executor = ThreadPoolExecutor(self.workers,
                                                thread_name_prefix=f"rpc-{self.topic}")
            self._loop = ConsumerLoop(self.transport, f"{self.topic}.{self.server}",
                                      self._declare, self._on_message,
                                      prefetch_count=self.prefetch_count)
            self._loop.start()
        self.transport.register(self)
        if not self._loop.ready.wait(ready_timeout):
            LOG.warning("%r not connected after %.1fs; retrying in the background",
                        self, ready_timeout)

    @property
    def ready(self) -> bool:
        """True while connected and consuming."""
        return self._loop is not None and self._loop.ready.is_set()

    def stop(self, graceful: bool = True, timeout: float = 30) -> None:
        """Stop consuming; if ``graceful``, wait up to ``timeout`` seconds for
        running handlers and ack those that finish; then close the connection.
        Requests not finished by then (and prefetched ones not started) stay
        unacked and are redelivered to another server. Handlers still running
        are not interrupted (threads cannot be); their replies are still sent."""
        with self._state_lock:
            loop, executor = self._loop, self._executor
            if loop is None or executor is None or self._stopping:
                return
            self._stopping = True
        deadline = time.monotonic() + timeout
        loop.cancel(timeout=min(timeout, 5.0))
        executor.shutdown(wait=False, cancel_futures=True)
        if graceful:
            with self._idle:
                while self._inflight:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        LOG.warning("%r: %d handler(s) still running after %.1fs; "
                                    "their requests will be redelivered",
                                    self, self._inflight, timeout)
                        break
                    self._idle.wait(left)
        loop.close()
        with self._state_lock:
            self._loop = self._executor = None
            self._stopping = False

    # -- consumer thread ----------------------------------------------------------

    def _declare(self, channel: Any) -> list[Queue]:
        exchange = control_exchange()
        queues = [Queue(self.topic, exchange, routing_key=self.topic, durable=True)]
        if self.server:
            key = f"{self.topic}.{self.server}"
            queues.append(Queue(key, exchange, routing_key=key, durable=True))
        queues.append(Queue(f"{self.topic}_fanout_{uuid.uuid4().hex}",
                            fanout_exchange(self.topic), routing_key=self.topic,
                            exclusive=True, auto_delete=True, durable=False))
        bound = [queue.bind(channel) for queue in queues]
        for queue in bound:
            queue.declare()
        return bound

    def _on_message(self, message: Message, token: AckToken) -> None:
        executor, loop = self._executor, self._loop
        if executor is None or loop is None:
            return  # stopping: leave unacked
        with self._idle:
            self._inflight += 1
        try:
            future = executor.submit(self._process, loop, message, token)
        except RuntimeError:  # executor shut down: leave unacked
            self._done(None)
            return
        future.add_done_callback(self._done)

    def _done(self, _future: "Future[None] | None") -> None:
        with self._idle:
            self._inflight -= 1
            self._idle.notify_all()

    # -- worker threads -------------------------------------------------------------

    def _dispatcher_for(self, message: Message) -> Dispatcher | None:
        """The dispatcher of a delivery (one server for many hosts picks by
        routing key; see stratus.compute.fleet); None drops it."""
        return self.dispatcher

    def _process(self, loop: ConsumerLoop, message: Message, token: AckToken) -> None:
        try:
            dispatcher = self._dispatcher_for(message)
            if dispatcher is None:
                LOG.error("%r: no endpoint for routing key %s; dropping the request", self,
                          message.delivery_info.get("routing_key"))
                return
            self._handle(message.body, dispatcher)
        except Exception:
            LOG.exception("%r: unexpected error handling a request", self)
        finally:
            loop.ack(token)

    def _handle(self, body: bytes, dispatcher: Dispatcher) -> None:
        try:
            request = serializer.loads(body)
            method = str(request["method"])
            args = request.get("args") or {}
            ctxt = RequestContext.from_dict(request.get("context") or {})
        except Exception as exc:
            LOG.error("%r: dropping malformed request (%s)", self, exc)
            return
        msg_id, reply_to = request.get("msg_id"), request.get("reply_to")
        reset_token = ctxt.bind()
        try:
            LOG.debug("Dispatching %s.%s (%s, msg_id %s)", self.topic, method,
                      "call" if reply_to else "cast", msg_id)
            try:
                reply = {"msg_id": msg_id,
                         "result": dispatcher.dispatch(ctxt, method, args)}
            except Exception as exc:
                self._log_failure(method, exc, is_call=bool(reply_to))
                reply = {"msg_id": msg_id, "failure": serializer.serialize_exception(exc)}
            if reply_to:
                self._send_reply(reply_to, msg_id, reply)
        finally:
            context.reset(reset_token)

    def _log_failure(self, method: str, exc: Exception, is_call: bool) -> None:
        if isinstance(exc, exception.StratusException) and not isinstance(exc, NoSuchMethod):
            level = logging.DEBUG if is_call else logging.WARNING
            LOG.log(level, "%s.%s raised %s: %s", self.topic, method, type(exc).__name__, exc)
        elif isinstance(exc, NoSuchMethod):
            LOG.error("%r: %s", self, exc)
        else:
            LOG.exception("%s.%s: exception during message handling", self.topic, method)

    def _send_reply(self, reply_to: str, msg_id: str | None, reply: dict[str, Any]) -> None:
        try:
            body = serializer.dumps(reply)
        except TypeError as exc:
            LOG.error("%r: result of msg_id %s is not JSON-able: %s", self, msg_id, exc)
            body = serializer.dumps({"msg_id": msg_id,
                                     "failure": serializer.serialize_exception(exc)})
        try:
            self.transport.publish(body, exchange=_DEFAULT_EXCHANGE, routing_key=reply_to,
                                   persistent=False,
                                   retry_for=self.transport.reply_retry_seconds,
                                   correlation_id=msg_id)
        except Exception as exc:
            LOG.error("%r: could not send the reply to msg_id %s: %s", self, msg_id, exc)
