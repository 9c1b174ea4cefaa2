"""stratus-api as a WSGI application for an external WSGI server.

    STRATUS_CONFIG=/etc/stratus/stratus.conf gunicorn -w 4 'stratus.wsgi:application'

The configuration file is the same one ``stratus api --config`` reads; the
application is built on the first request, in each worker process, so no
database or broker connection crosses a fork.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Callable, Iterable

_app: Callable[..., Iterable[bytes]] | None = None
_lock = threading.Lock()


def _build() -> Callable[..., Iterable[bytes]]:
    from stratus import conf as conf_mod
    from stratus import launch, log, rpc
    from stratus.api.server import build_app

    conf = conf_mod.load(os.environ.get("STRATUS_CONFIG"))
    log.setup(conf.DEFAULT.debug, conf.DEFAULT.log_file)
    return build_app(conf, launch.make_database(conf),
                     rpc.get_transport(conf.DEFAULT.transport_url))


def application(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
    global _app
    if _app is None:
        with _lock:
            if _app is None:
                _app = _build()
    return _app(environ, start_response)
