"""``POST /v2.1/servers/{id}/action``: the server actions of microversion 2.1
that Stratus implements (os-stop, os-start, reboot, pause, unpause, suspend,
resume, lock, unlock), each answering 202 with an empty body; createImage
and createBackup (202, the new image's URL in ``Location``; from 2.45
``{"image_id": ...}`` instead); rebuild (202, the server with its new
adminPass; key_name from 2.54, user_data from 2.57, trusted certificates
from 2.63; from 2.75 the whole server, as GET shows it); migrate (202; a
host may be named from 2.56); rescue (200 ``{"adminPass": ...}``), unrescue,
shelve and unshelve (202); os-resetState (202, an admin's); and os-getConsoleOutput, answering 200 with ``{"output": "..."}``; from
microversion 2.17 trigger_crash_dump (202; an action named before its
microversion is a 404, as Nova's versioned actions).

As in Nova's wsgi layer, the body must be a JSON object with exactly one key
(else 400 "Malformed request body"), and the key must name an action (else
400 "There is no such action: X") before the server is looked up.
"""
from __future__ import annotations

import re
from typing import Any, Callable

import orjson
from werkzeug.wrappers import Response

from stratus import exception, quota
from stratus.api.compute import common, microversion
from stratus.api.compute.schemas import servers as schema
from stratus.api.wsgi import Request, Route, empty_response, json_response
from stratus.compute import vm_states

ActionHandler = Callable[[Request, str, Any], "Response | None"]
POLICY_UNLOCK_OVERRIDE = "os_compute_api:os-lock-server:unlock:unlock_override"
POLICY_MIGRATE_HOST = "os_compute_api:os-migrate-server:migrate:host"
# From 2.39 createImage no longer holds its metadata to the metadata_items quota.
IMAGE_META_QUOTA_DROPPED_VERSION = "2.39"
# From 2.45 createImage answers {"image_id": ...} (still 202) and no Location.
IMAGE_ID_IN_BODY_VERSION = "2.45"
# os-resetState's states and the vm states they set (Nova's state_map).
RESET_STATES = {"active": vm_states.ACTIVE, "error": vm_states.ERROR}
# Control characters Nova strips from console output (all but \t and \n).
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b-\x1f]")


def routes() -> list[Route]:
    return [Route("POST", "/v2.1/servers/<server_id>/action", server_action)]


def parse_action(data: bytes) -> tuple[str, Any]:
    """(action name, its argument) from a request body, Nova's action_peek."""
    try:
        body = orjson.loads(data) if data else None
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict) or len(body) != 1:
        raise exception.Invalid("Malformed request body")
    name = next(iter(body))
    return name, body


def _stop(req: Request, server_id: str, body: Any) -> None:
    req.state.compute_api.stop(req.context, server_id)


def _start(req: Request, server_id: str, body: Any) -> None:
    req.state.compute_api.start(req.context, server_id)


def _reboot(req: Request, server_id: str, body: Any) -> None:
    req.state.compute_api.reboot(req.context, server_id, body["reboot"]["type"].upper())


def _console_output(req: Request, server_id: str, body: Any) -> Response:
    length = body["os-getConsoleOutput"].get("length")
    if length is not None:
        length = int(length)
        if length == -1:  # unlimited, as Nova
            length = None
    output = req.state.compute_api.get_console_output(req.context, server_id, length)
    return json_response({"output": _CONTROL_CHARS.sub("", output)})


def _rebuild(req: Request, server_id: str, body: Any) -> Response:
    from stratus.api.compute.servers import generate_password
    from stratus.api.compute.views.servers import (ServerViewBuilder, add_server_groups,
                                                   id_from_href)

    args = body["rebuild"]
    password = args["adminPass"] if "adminPass" in args else generate_password()
    changes = {key: args[field] for field, key in (
        ("name", "name"), ("metadata", "metadata"), ("accessIPv4", "access_ip_v4"),
        ("accessIPv6", "access_ip_v6"), ("description", "description")) if field in args}
    changes.update(_rebuild_versioned_changes(req, args))
    try:
        instance = req.state.compute_api.rebuild(
            req.context, server_id, id_from_href(args["imageRef"]), password,
            preserve_ephemeral=bool(args.get("preserve_ephemeral", False)), **changes)
    except exception.ImageNotFound:
        raise exception.Invalid("Cannot find requested image")
    except exception.KeypairNotFound:
        raise exception.Invalid("Invalid key_name provided.")
    # Nova's rebuild answer before 2.75: the core attributes (tempest's
    # rebuild_server is its update_server), locked from 2.9, description
    # from 2.19, and the adminPass; key_name from 2.54, user_data from 2.57.
    # From 2.75 GET's body, without OS-EXT-SRV-ATTR:user_data (user_data is
    # the top-level one, as 2.57's).
    view = ServerViewBuilder.for_request(req)
    if microversion.is_supported(req, schema.FULL_UPDATE_ANSWER_VERSION):
        server = view.show(instance, show_user_data=False)
    else:
        server = view.core(instance)
    server["adminPass"] = password
    if microversion.is_supported(req, schema.REBUILD_KEY_NAME_VERSION):
        server["key_name"] = instance.get("key_name")
    if microversion.is_supported(req, schema.REBUILD_USER_DATA_VERSION):
        server["user_data"] = instance.get("user_data")
    return json_response({"server": add_server_groups(req, server)}, status=202)


def _rebuild_versioned_changes(req: Request, args: dict[str, Any]) -> dict[str, Any]:
    """What a rebuild changes from 2.54 on: key_name (2.54), user_data (2.57),
    trusted certificates (2.63); each only when given (null unsets)."""
    changes: dict[str, Any] = {}
    for field, key, since in (("key_name", "key_name", schema.REBUILD_KEY_NAME_VERSION),
                              ("user_data", "user_data", schema.REBUILD_USER_DATA_VERSION),
                              ("trusted_image_certificates", "trusted_certs",
                               schema.TRUSTED_CERTS_VERSION)):
        if field in args and microversion.is_supported(req, since):
            changes[key] = args[field]
    return changes


def _rescue(req: Request, server_id: str, body: Any) -> Response:
    from stratus.api.compute.servers import generate_password
    from stratus.api.compute.views.servers import id_from_href

    args = body["rescue"] or {}
    password = args["adminPass"] if "adminPass" in args else generate_password()
    image_ref = args.get("rescue_image_ref")
    try:
        req.state.compute_api.rescue(req.context, server_id, password,
                                     id_from_href(image_ref) if image_ref else None)
    except exception.ImageNotFound:
        raise exception.Invalid("Cannot find requested image")
    return json_response({"adminPass": password})


def _check_image_metadata_quota(req: Request, metadata: dict[str, Any]) -> None:
    """Before 2.39, Nova's check_img_metadata_properties_quota (the caller's
    project's metadata_items) for createImage's and createBackup's metadata."""
    if metadata and not microversion.is_supported(req, IMAGE_META_QUOTA_DROPPED_VERSION):
        with req.state.db.read() as s:
            limits = quota.QuotaEngine(req.state.conf).limits(s, req.context.project_id)
        if quota.is_over(limits["metadata_items"], len(metadata)):
            raise exception.Forbidden("Image metadata limit exceeded")


def _image_response(req: Request, image_id: str, location: str | None) -> Response:
    """202 with ``{"image_id": ...}`` from 2.45; before, no body and the
    image's URL in ``Location`` (when there is one; clients take its last part)."""
    if microversion.is_supported(req, IMAGE_ID_IN_BODY_VERSION):
        return json_response({"image_id": image_id}, status=202)
    return empty_response(202, headers={"Location": location} if location else None)


def _create_image(req: Request, server_id: str, body: Any) -> Response:
    args = body["createImage"]
    metadata = args.get("metadata") or {}
    _check_image_metadata_quota(req, metadata)
    image = req.state.compute_api.snapshot(req.context, server_id, args["name"], metadata)
    # Nova's Location here is the image service's URL of the image.
    return _image_response(req, image["id"],
                           f"{req.state.conf.api.public_url}/image/v2/images/{image['id']}")


def _create_backup(req: Request, server_id: str, body: Any) -> Response:
    """os-create-backup: a snapshot tagged ``image_type=backup`` and
    ``backup_type``; the compute host then keeps only the ``rotation``
    newest backups of that type. Before 2.45, as Nova, the Location header
    is the compute API's image URL, and is left out when rotation is 0 (the
    new backup itself is rotated away)."""
    args = body["createBackup"]
    metadata = args.get("metadata") or {}
    rotation = int(args["rotation"])
    _check_image_metadata_quota(req, metadata)
    image = req.state.compute_api.backup(req.context, server_id, args["name"],
                                         args["backup_type"], rotation, metadata)
    location = f"{common.base_url(req)}/v2.1/images/{image['id']}" if rotation > 0 else None
    return _image_response(req, image["id"], location)


def _lock(req: Request, server_id: str, body: Any) -> None:
    """From 2.73 ``{"lock": {"locked_reason": "..."}}`` says why (Nova's)."""
    reason = None
    if microversion.is_supported(req, schema.LOCKED_REASON_VERSION) and \
            isinstance(body["lock"], dict):
        reason = body["lock"].get("locked_reason")
    req.state.compute_api.lock(req.context, server_id, reason=reason)


def _unlock(req: Request, server_id: str, body: Any) -> None:
    instance = req.state.compute_api.get(req.context, server_id)
    if not req.state.compute_api.is_expected_locked_by(req.context, instance):
        # A lock taken from another project (an admin's) needs unlock_override.
        common.authorize(req, POLICY_UNLOCK_OVERRIDE, {"project_id": instance["project_id"]})
    req.state.compute_api.unlock(req.context, server_id)


def _reset_state(req: Request, server_id: str, body: Any) -> None:
    req.state.compute_api.reset_state(req.context, server_id,
                                      RESET_STATES[body["os-resetState"]["state"]])


def _resize(req: Request, server_id: str, body: Any) -> None:
    from stratus.api.compute.views.servers import id_from_href

    req.state.compute_api.resize(req.context, server_id,
                                 id_from_href(str(body["resize"]["flavorRef"])))


def _migrate(req: Request, server_id: str, body: Any) -> None:
    """Cold migrate; from 2.56 ``{"migrate": {"host": "name"}}`` picks the host."""
    host_name = None
    if microversion.is_supported(req, schema.MIGRATE_HOST_VERSION) and \
            body["migrate"] is not None:
        host_name = body["migrate"].get("host")
    if host_name:
        # Nova's rule for naming the destination (ADMIN, as the action's own here).
        instance = req.state.compute_api.get(req.context, server_id)
        common.authorize(req, POLICY_MIGRATE_HOST, {"project_id": instance["project_id"]})
    try:
        req.state.compute_api.migrate(req.context, server_id, host_name=host_name)
    except exception.ComputeHostNotFound as exc:
        raise exception.Invalid(exc.message)  # Nova: a 400, not a 404


def _confirm_resize(req: Request, server_id: str, body: Any) -> Response:
    req.state.compute_api.confirm_resize(req.context, server_id)
    return empty_response(204)


def _simple(method: str) -> ActionHandler:
    def handler(req: Request, server_id: str, body: Any) -> None:
        getattr(req.state.compute_api, method)(req.context, server_id)
    handler.__name__ = f"_{method}"
    return handler


# Actions that exist from a microversion on.
ACTION_VERSIONS: dict[str, tuple[int, int]] = {
    "trigger_crash_dump": (2, 17),
}


# Actions whose body schema changes with the microversion (rebuild's
# description 2.19, key_name 2.54, user_data 2.57, certificates 2.63;
# migrate's host 2.56, lock's reason 2.73): validated with the request's version.
VERSIONED_BODIES: dict[str, Callable[[Any, tuple[int, int]], None]] = {
    "rebuild": schema.validate_rebuild,
    "migrate": schema.validate_migrate,
    "lock": schema.validate_lock,
}


# action name -> (body validator or None, handler, policy rule); the rule's
# target is the server's project and user (Nova's).
ACTIONS: dict[str, tuple[Callable[[Any], None] | None, ActionHandler, str]] = {
    "os-stop": (None, _stop, "os_compute_api:servers:stop"),
    "os-start": (None, _start, "os_compute_api:servers:start"),
    "reboot": (schema.validate_reboot, _reboot, "os_compute_api:servers:reboot"),
    "pause": (None, _simple("pause"), "os_compute_api:os-pause-server:pause"),
    "unpause": (None, _simple("unpause"), "os_compute_api:os-pause-server:unpause"),
    "suspend": (None, _simple("suspend"), "os_compute_api:os-suspend-server:suspend"),
    "resume": (None, _simple("resume"), "os_compute_api:os-suspend-server:resume"),
    "lock": (schema.validate_lock, _lock, "os_compute_api:os-lock-server:lock"),
    "unlock": (None, _unlock, "os_compute_api:os-lock-server:unlock"),
    "os-getConsoleOutput": (schema.validate_get_console_output, _console_output,
                            "os_compute_api:os-console-output"),
    "createImage": (schema.validate_create_image, _create_image,
                    "os_compute_api:servers:create_image"),
    "createBackup": (schema.validate_create_backup, _create_backup,
                     "os_compute_api:os-create-backup"),
    "rebuild": (schema.validate_rebuild, _rebuild, "os_compute_api:servers:rebuild"),
    "rescue": (schema.validate_rescue, _rescue, "os_compute_api:os-rescue"),
    "unrescue": (None, _simple("unrescue"), "os_compute_api:os-unrescue"),
    "shelve": (None, _simple("shelve"), "os_compute_api:os-shelve:shelve"),
    "unshelve": (None, _simple("unshelve"), "os_compute_api:os-shelve:unshelve"),
    "resize": (schema.validate_resize, _resize, "os_compute_api:servers:resize"),
    "confirmResize": (schema.validate_confirm_resize, _confirm_resize,
                      "os_compute_api:servers:confirm_resize"),
    "revertResize": (schema.validate_revert_resize, _simple("revert_resize"),
                     "os_compute_api:servers:revert_resize"),
    "migrate": (None, _migrate, "os_compute_api:os-migrate-server:migrate"),
    "trigger_crash_dump": (schema.validate_trigger_crash_dump, _simple("trigger_crash_dump"),
                           "os_compute_api:servers:trigger_crash_dump"),
    "os-resetState": (schema.validate_reset_state, _reset_state,
                      "os_compute_api:os-admin-actions:reset_state"),
}


def server_action(req: Request, server_id: str) -> Response:
    name, body = parse_action(req.get_data(cache=True))
    if name not in ACTIONS:
        raise exception.Invalid(f"There is no such action: {name}")
    if tuple(req.api_version) < ACTION_VERSIONS.get(name, (2, 1)):
        raise exception.NotFound("The resource could not be found.")
    validator, handler, rule = ACTIONS[name]
    if name in VERSIONED_BODIES:
        VERSIONED_BODIES[name](body, tuple(req.api_version))
    elif validator is not None:
        validator(body)
    common.get_server(req, server_id, rule)
    response = handler(req, server_id, body)
    return response if response is not None else empty_response(202)
