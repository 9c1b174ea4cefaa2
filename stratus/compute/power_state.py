"""Nova's power states: what the hypervisor says about a guest.

Stored as ints in ``instances.power_state`` and shown by the API as
``OS-EXT-STS:power_state``; the values are Nova's, so clients see the same
numbers. 2 (BLOCKED) and 5 (SHUTOFF) were retired by Nova and are not used.
"""
from __future__ import annotations

NOSTATE = 0
RUNNING = 1
PAUSED = 3
SHUTDOWN = 4
CRASHED = 6
SUSPENDED = 7

STATE_MAP: dict[int, str] = {
    NOSTATE: "NOSTATE",
    RUNNING: "RUNNING",
    PAUSED: "PAUSED",
    SHUTDOWN: "SHUTDOWN",
    CRASHED: "CRASHED",
    SUSPENDED: "SUSPENDED",
}
