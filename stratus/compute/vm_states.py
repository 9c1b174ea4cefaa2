"""Nova's instance states.

``vm_state`` is where an instance rests, ``task_state`` the operation in
progress (None when idle), ``power_state`` what the hypervisor reports
(:mod:`stratus.compute.power_state`). The API's ``status`` is derived from the
first two (:func:`status_from_state`).
"""
from __future__ import annotations

# vm_state
ACTIVE = "active"
BUILDING = "building"
PAUSED = "paused"
SUSPENDED = "suspended"
STOPPED = "stopped"
RESCUED = "rescued"
RESIZED = "resized"
SOFT_DELETED = "soft-delete"
DELETED = "deleted"
ERROR = "error"
SHELVED = "shelved"
SHELVED_OFFLOADED = "shelved_offloaded"

# task_state
SCHEDULING = "scheduling"
BLOCK_DEVICE_MAPPING = "block_device_mapping"
NETWORKING = "networking"
SPAWNING = "spawning"
IMAGE_SNAPSHOT = "image_snapshot"
IMAGE_BACKUP = "image_backup"
IMAGE_PENDING_UPLOAD = "image_pending_upload"
IMAGE_UPLOADING = "image_uploading"
UPDATING_PASSWORD = "updating_password"
RESIZE_PREP = "resize_prep"
RESIZE_MIGRATING = "resize_migrating"
RESIZE_MIGRATED = "resize_migrated"
RESIZE_FINISH = "resize_finish"
RESIZE_REVERTING = "resize_reverting"
RESIZE_CONFIRMING = "resize_confirming"
REBOOTING = "rebooting"
REBOOT_PENDING = "reboot_pending"
REBOOT_STARTED = "reboot_started"
REBOOTING_HARD = "rebooting_hard"
REBOOT_PENDING_HARD = "reboot_pending_hard"
REBOOT_STARTED_HARD = "reboot_started_hard"
PAUSING = "pausing"
UNPAUSING = "unpausing"
SUSPENDING = "suspending"
RESUMING = "resuming"
POWERING_OFF = "powering-off"
POWERING_ON = "powering-on"
REBUILDING = "rebuilding"
RESCUING = "rescuing"
SHELVING = "shelving"
SHELVING_IMAGE_PENDING_UPLOAD = "shelving_image_pending_upload"
SHELVING_IMAGE_UPLOADING = "shelving_image_uploading"
SHELVING_OFFLOADING = "shelving_offloading"
UNSHELVING = "unshelving"
UNRESCUING = "unrescuing"
MIGRATING = "migrating"
DELETING = "deleting"

_REBOOT = (REBOOTING, REBOOT_PENDING, REBOOT_STARTED)
_HARD_REBOOT = (REBOOTING_HARD, REBOOT_PENDING_HARD, REBOOT_STARTED_HARD)
_RESIZE = (RESIZE_PREP, RESIZE_MIGRATING, RESIZE_MIGRATED, RESIZE_FINISH)

# vm_state -> {task_state: status}, "default" when the task has no status of its own.
_STATUS_MAP: dict[str, dict[str | None, str]] = {
    ACTIVE: {"default": "ACTIVE", **{t: "REBOOT" for t in _REBOOT},
             **{t: "HARD_REBOOT" for t in _HARD_REBOOT},
             UPDATING_PASSWORD: "PASSWORD", REBUILDING: "REBUILD", MIGRATING: "MIGRATING",
             **{t: "RESIZE" for t in _RESIZE}},
    BUILDING: {"default": "BUILD"},
    STOPPED: {"default": "SHUTOFF", REBUILDING: "REBUILD", **{t: "RESIZE" for t in _RESIZE}},
    RESIZED: {"default": "VERIFY_RESIZE", RESIZE_REVERTING: "REVERT_RESIZE"},
    PAUSED: {"default": "PAUSED", MIGRATING: "MIGRATING"},
    SUSPENDED: {"default": "SUSPENDED"},
    RESCUED: {"default": "RESCUE"},
    ERROR: {"default": "ERROR", REBUILDING: "REBUILD"},
    DELETED: {"default": "DELETED"},
    SOFT_DELETED: {"default": "SOFT_DELETED"},
    SHELVED: {"default": "SHELVED"},
    SHELVED_OFFLOADED: {"default": "SHELVED_OFFLOADED"},
}


def status_from_state(vm_state: str | None, task_state: str | None) -> str:
    """The API ``status`` of an instance (Nova's api/openstack/common.py)."""
    task_map = _STATUS_MAP.get(vm_state or "", {"default": "UNKNOWN"})
    status = task_map.get(task_state, task_map["default"])
    if status == "UNKNOWN":
        return "UNKNOWN"
    return status


def states_from_status(status: str) -> list[tuple[str, str | None, tuple[str, ...]]]:
    """What an API status filter selects: ``(vm_state, task_state, excluded)``.

    ``task_state`` None means any task state except those in ``excluded`` (the
    tasks that give that vm_state a status of their own: ACTIVE excludes
    rebooting, which shows as REBOOT).
    """
    wanted = status.upper()
    selected: list[tuple[str, str | None, tuple[str, ...]]] = []
    for vm_state, task_map in _STATUS_MAP.items():
        own = tuple(t for t in task_map if t != "default")
        for task_state, name in task_map.items():
            if name != wanted:
                continue
            if task_state == "default":
                selected.append((vm_state, None, own))
            else:
                selected.append((vm_state, task_state, ()))
    return selected
