"""Stratus messaging: kombu-based RPC and notifications.

::

    from stratus import rpc
    transport = rpc.get_transport("rabbit://guest:guest@127.0.0.1:5672/")  # or "memory://"
    client = rpc.RPCClient(transport, topic="conductor")
    client.call(ctxt, "method", **kwargs)          # blocks for the reply
    client.prepare(server="host1").cast(ctxt, "m")  # one host, no reply
    client.prepare(fanout=True).cast(ctxt, "m")     # every server of the topic

    server = rpc.RPCServer(transport, "compute", "host1", [manager], workers=16)
    server.start(); ...; server.stop(graceful=True, timeout=30)

    rpc.Notifier(transport, publisher_id="compute.host1").info(ctxt, "x.y", {...})
    transport.cleanup()

Design notes live in :mod:`stratus.rpc.transport` (topology, threading,
delivery guarantees), :mod:`stratus.rpc.consumer` (reconnection, acks),
:mod:`stratus.rpc.memory` (the in-process broker) and
:mod:`stratus.rpc.serializer` (wire format; datetimes arrive as strings).
"""
from __future__ import annotations

from stratus.rpc.client import RPCClient
from stratus.rpc.notifier import NotificationListener, Notifier
from stratus.rpc.serializer import parse_isotime, to_primitive
from stratus.rpc.server import Dispatcher, NoSuchMethod, RPCServer
from stratus.rpc.transport import Transport, get_transport

__all__ = [
    "Dispatcher",
    "NoSuchMethod",
    "NotificationListener",
    "Notifier",
    "RPCClient",
    "RPCServer",
    "Transport",
    "get_transport",
    "parse_isotime",
    "to_primitive",
]
