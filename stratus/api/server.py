"""stratus-api: the WSGI application and the server that runs it.

One port serves the three APIs under their catalog prefixes: ``/identity``
(Identity v3), ``/image`` (Image v2) and ``/compute`` (Compute v2.1).
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import create_server

from stratus import policy
from stratus.api import wsgi
from stratus.api.compute.app import build_compute_app
from stratus.api.compute.common import ComputeState
from stratus.compute.api import ComputeAPI
from stratus.db.session import Database
from stratus.identity.app import build_identity_app
from stratus.identity.auth import make_authenticator
from stratus.identity.tokens import TokenProvider
from stratus.image.app import build_image_app
from stratus.image.service import ImageService
from stratus.image.store import FileStore

LOG = logging.getLogger(__name__)


def build_app(conf: Any, db: Database, transport: Any) -> Callable:
    """The WSGI callable serving every API of this deployment."""
    policy.configure(conf.oslo_policy.policy_file)
    provider = TokenProvider(conf.identity.key_file, expiration=conf.identity.token_expiration,
                             db=db)
    authenticate = make_authenticator(provider, db)
    store = FileStore(conf.image.store_dir)
    images = ImageService.from_conf(conf, db, store)
    compute_api = ComputeAPI(conf, db, transport, image_get=images.get, images=images)
    state = ComputeState(conf=conf, db=db, compute_api=compute_api)
    return wsgi.PrefixDispatcher({
        "/identity": build_identity_app(conf, db, provider, authenticate=authenticate),
        "/image": build_image_app(conf, db, store, authenticate),
        "/compute": build_compute_app(state, authenticate),
    })


class ThreadedServer:
    """A WSGI app served by waitress on a thread of its own, stopped cleanly."""

    def __init__(self, app: Any, *, host: str, port: int, **options: Any) -> None:
        self.server = create_server(app, host=host, port=port, **options)
        self._thread: threading.Thread | None = None
        self._stopping = False

    @property
    def port(self) -> int:
        return int(self.server.effective_port)  # type: ignore[attr-defined]

    def start(self, name: str = "stratus-api") -> None:
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            self.server.run()
        except OSError:
            # stop() closes sockets in the loop's thread; a socket closed
            # under the loop while stopping is still no error.
            if not self._stopping:
                raise

    def stop(self, timeout: float = 10.0) -> None:
        """Stop listening, let the requests in flight finish, then close the
        idle keep-alive connections (clients' HTTP sessions keep them) so the
        server loop ends at once instead of after ``timeout``.

        Sockets are closed in the loop's own thread, through waitress'
        trigger: closing one under the loop's running select() kills the loop
        (EBADF) before the answers in flight are written.
        """
        self._stopping = True
        server = self.server
        if self._thread is None or not self._thread.is_alive():
            server.close()
            server.task_dispatcher.shutdown(timeout=timeout)  # type: ignore[attr-defined]
            return
        listening_closed = threading.Event()

        def close_listener() -> None:
            wasyncore.dispatcher.close(server)  # the listening socket, not the trigger
            listening_closed.set()

        server.trigger.pull_trigger(close_listener)  # type: ignore[attr-defined]
        listening_closed.wait(timeout)
        # waitress' task dispatcher finishes the requests in flight.
        server.task_dispatcher.shutdown(timeout=timeout)  # type: ignore[attr-defined]

        def close_connections() -> None:
            for channel in list(server._map.values()):  # type: ignore[attr-defined]
                if isinstance(channel, HTTPChannel):
                    channel.close_when_flushed = True  # as waitress' channel timeout
            server.trigger.close()  # type: ignore[attr-defined]

        server.trigger.pull_trigger(close_connections)  # type: ignore[attr-defined]
        self._thread.join(timeout=timeout)


class ApiService(ThreadedServer):
    """Serves :func:`build_app` on the configured address."""

    def __init__(self, conf: Any, db: Database, transport: Any) -> None:
        self.conf = conf
        self.app = build_app(conf, db, transport)
        super().__init__(self.app, host=conf.api.listen, port=conf.api.port,
                         threads=conf.api.threads, ident="stratus",
                         clear_untrusted_proxy_headers=True,
                         channel_timeout=300,
                         # Image uploads up to [image] max_image_size (the
                         # image API answers 413 past it); waitress' own cap
                         # would otherwise be 1 GiB.
                         max_request_body_size=conf.image.max_image_size + 1024 * 1024,
                         recv_bytes=256 * 1024)

    def start(self, name: str = "stratus-api") -> None:
        LOG.info("stratus-api listening on http://%s:%s", self.conf.api.listen, self.port)
        super().start(name)

