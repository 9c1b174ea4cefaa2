"""The request context: who is asking, and which request this is.

A context travels with every RPC message, so the ``request_id`` minted by the
API (``x-openstack-request-id``) appears in the log lines of every service the
request touched. The current context lives in a context variable that the log
formatter reads (:mod:`stratus.log`).
"""
from __future__ import annotations

import contextvars
import dataclasses
import uuid
from typing import Any

_current: contextvars.ContextVar["RequestContext | None"] = contextvars.ContextVar(
    "stratus_context", default=None)


def generate_request_id() -> str:
    return "req-" + str(uuid.uuid4())


@dataclasses.dataclass
class RequestContext:
    user_id: str | None = None
    project_id: str | None = None
    roles: list[str] = dataclasses.field(default_factory=list)
    is_admin: bool = False
    request_id: str = dataclasses.field(default_factory=generate_request_id)
    global_request_id: str | None = None
    user_name: str | None = None
    project_name: str | None = None
    auth_token: str | None = None
    read_deleted: str = "no"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("auth_token", None)  # never put tokens on the wire
        return d

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RequestContext":
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in fields})

    def elevated(self) -> "RequestContext":
        ctx = dataclasses.replace(self, roles=list(self.roles))
        ctx.is_admin = True
        if "admin" not in ctx.roles:
            ctx.roles.append("admin")
        return ctx

    def bind(self) -> contextvars.Token:
        """Make this the current context (for logging); returns a reset token."""
        return _current.set(self)


def get_admin_context() -> RequestContext:
    return RequestContext(is_admin=True, roles=["admin"])


def current() -> RequestContext | None:
    return _current.get()


def reset(token: contextvars.Token) -> None:
    _current.reset(token)
