"""Logging set-up: every line names the service, host and request id.

The request id comes from the bound :class:`stratus.context.RequestContext`
(the API binds it per request, the RPC server per message), so one grep for
``req-...`` finds a request in the logs of every service it touched.
"""
from __future__ import annotations

import logging
import sys

from stratus import context

FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s [%(request_id)s] %(message)s"


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            ctx = context.current()
            record.request_id = ctx.request_id if ctx is not None else "-"
        return True


def setup(debug: bool = False, log_file: str | None = None) -> None:
    handler: logging.Handler
    handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for noisy in ("amqp", "kombu", "sqlalchemy", "waitress", "urllib3", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
