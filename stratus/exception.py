"""Exceptions shared by every Stratus service.

Each exception carries the HTTP status and the Nova error-body key that the
API turns it into, so a failure raised deep in a service (and carried back
over RPC, see :mod:`stratus.rpc`) reaches the user in Nova's wire format:
``{"itemNotFound": {"code": 404, "message": "..."}}``.
"""
from __future__ import annotations

from typing import Any


class StratusException(Exception):
    """Base class. ``msg_fmt`` is formatted with the keyword arguments."""

    msg_fmt = "An unknown exception occurred."
    code = 500
    # Nova's body key for the status (see api.wsgi.FAULT_NAMES).
    fault_name: str | None = None

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        self.kwargs = kwargs
        if message is None:
            try:
                message = self.msg_fmt % kwargs
            except (KeyError, TypeError):
                message = self.msg_fmt
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return self.message


class Invalid(StratusException):
    msg_fmt = "Bad request."
    code = 400


class ValidationError(Invalid):
    msg_fmt = "Invalid input for field/attribute %(field)s."


class NotAuthenticated(StratusException):
    msg_fmt = "The request you have made requires authentication."
    code = 401


class Forbidden(StratusException):
    msg_fmt = "Policy doesn't allow %(action)s to be performed."
    code = 403


class NotFound(StratusException):
    msg_fmt = "Resource could not be found."
    code = 404


class Conflict(StratusException):
    msg_fmt = "Conflict."
    code = 409


class OverQuota(StratusException):
    msg_fmt = "Quota exceeded for resources: %(overs)s."
    code = 403


class InstanceNotFound(NotFound):
    msg_fmt = "Instance %(instance_id)s could not be found."


class FlavorNotFound(NotFound):
    msg_fmt = "Flavor %(flavor_id)s could not be found."


class ImageNotFound(NotFound):
    msg_fmt = "Image %(image_id)s could not be found."


class KeypairNotFound(NotFound):
    msg_fmt = "Keypair %(name)s not found for user %(user_id)s"


class ComputeHostNotFound(NotFound):
    msg_fmt = "Compute host %(host)s could not be found."


class CannotMigrateToSameHost(Invalid):
    msg_fmt = "Cannot migrate to the host where the server exists."


class ServiceNotFound(NotFound):
    msg_fmt = "Service %(service_id)s could not be found."


class InstanceInvalidState(Conflict):
    msg_fmt = ("Cannot '%(action)s' instance %(instance_uuid)s while it is in "
               "%(attr)s %(state)s")


class InstanceNotReady(Conflict):
    msg_fmt = "Instance %(instance_uuid)s is not ready"


class InstanceIsLocked(Conflict):
    msg_fmt = "Instance %(instance_uuid)s is locked"


class UnexpectedTaskStateError(Conflict):
    msg_fmt = ("Conflict updating instance %(instance_uuid)s. "
               "Expected: %(expected)s. Actual: %(actual)s")


class ResourceProviderGenerationConflict(Conflict):
    msg_fmt = "Compute node %(node)s changed while claiming; retry."


class NoValidHost(StratusException):
    msg_fmt = "No valid host was found. %(reason)s"
    code = 500


class InstanceBuildAborted(StratusException):
    msg_fmt = "Build of instance %(instance_uuid)s aborted: %(reason)s"


class VirtDriverError(StratusException):
    msg_fmt = "Virt driver error: %(reason)s"


class MessagingTimeout(StratusException):
    msg_fmt = "Timed out waiting for a reply to %(method)s on %(target)s"
    code = 504


class RemoteError(StratusException):
    """An exception raised on the far side of an RPC call that is not one of
    ours; carries the remote class name, message and traceback."""

    msg_fmt = "Remote error: %(exc_type)s %(value)s\n%(traceback)s."

    def __init__(self, exc_type: str = "", value: str = "", traceback: str = "") -> None:
        self.exc_type = exc_type
        self.value = value
        self.traceback = traceback
        super().__init__(exc_type=exc_type, value=value, traceback=traceback)
        self.message = f"Remote error: {exc_type} {value}"

    def __str__(self) -> str:
        return self.message


class ConfigError(StratusException):
    msg_fmt = "Configuration error: %(reason)s"
