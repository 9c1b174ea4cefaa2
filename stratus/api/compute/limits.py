"""``GET /limits``: the project's absolute limits and what it uses of them.

The limits are the project's quotas (:mod:`stratus.quota`: its own where an
administrator set them, the defaults elsewhere: the ``default`` quota
class's, then ``[quota]``) and the usage is
counted from its instances that are not deleted. An administrator may ask
about another project with ``?tenant_id=``.
"""
from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from stratus.api.compute import microversion
from stratus.api.compute.common import authorize
from stratus.api.wsgi import Request, Route, json_response
from stratus.quota import QuotaEngine

POLICY_LIMITS = "os_compute_api:limits"
POLICY_OTHER_PROJECT = "os_compute_api:limits:other_project"
# 2.36: the network quotas leave the answer (Nova's FILTERED_LIMITS);
# 2.39: so does maxImageMeta (the image-metadata proxy is gone).
NETWORK_LIMITS_REMOVED_VERSION = "2.36"
NETWORK_QUOTAS = frozenset(["floating_ips", "security_groups", "security_group_rules"])
IMAGE_META_REMOVED_VERSION = "2.39"
# 2.57: maxPersonality and maxPersonalitySize go with personality files
# (Nova's FILTERED_LIMITS_2_57).
PERSONALITY_LIMITS_REMOVED_VERSION = "2.57"
PERSONALITY_QUOTAS = frozenset(["injected_files", "injected_file_content_bytes"])

# nova/api/openstack/compute/views/limits.py: quota name -> absolute limit names.
_LIMIT_NAMES: dict[str, tuple[str, ...]] = {
    "ram": ("maxTotalRAMSize",),
    "instances": ("maxTotalInstances",),
    "cores": ("maxTotalCores",),
    "key_pairs": ("maxTotalKeypairs",),
    "floating_ips": ("maxTotalFloatingIps",),
    "metadata_items": ("maxServerMeta", "maxImageMeta"),
    "injected_files": ("maxPersonality",),
    "injected_file_content_bytes": ("maxPersonalitySize",),
    "security_groups": ("maxSecurityGroups",),
    "security_group_rules": ("maxSecurityGroupRules",),
    "server_groups": ("maxServerGroups",),
    "server_group_members": ("maxServerGroupMembers",),
}

_USED_NAMES: dict[str, str] = {
    "totalRAMUsed": "ram",
    "totalCoresUsed": "cores",
    "totalInstancesUsed": "instances",
    "totalFloatingIpsUsed": "floating_ips",
    "totalSecurityGroupsUsed": "security_groups",
    "totalServerGroupsUsed": "server_groups",
}


def build_limits(quotas: dict[str, int], usage: dict[str, int],
                 filtered: frozenset[str] = frozenset(),
                 max_image_meta: bool = True) -> dict[str, Any]:
    """Nova's limits view; ``filtered`` quotas are left out (limit and usage),
    and ``maxImageMeta`` too unless ``max_image_meta``."""
    absolute: dict[str, int] = {}
    for quota, names in _LIMIT_NAMES.items():
        if quota in filtered:
            continue
        for name in names:
            if name == "maxImageMeta" and not max_image_meta:
                continue
            absolute[name] = quotas[quota]
    for name, quota in _USED_NAMES.items():
        if quota not in filtered:
            absolute[name] = usage.get(quota, 0)
    return {"limits": {"rate": [], "absolute": absolute}}


def index(req: Request) -> Response:
    project_id = req.context.project_id
    authorize(req, POLICY_LIMITS, {"project_id": project_id})
    if "tenant_id" in req.args:
        project_id = req.args["tenant_id"]
        authorize(req, POLICY_OTHER_PROJECT, {"project_id": project_id})
    engine = QuotaEngine(req.state.conf)
    with req.state.db.read() as s:
        limits = engine.limits(s, project_id)
        usage = engine.usage(s, project_id)
    filtered: frozenset[str] = frozenset()
    if microversion.is_supported(req, NETWORK_LIMITS_REMOVED_VERSION):
        filtered = NETWORK_QUOTAS
    if microversion.is_supported(req, PERSONALITY_LIMITS_REMOVED_VERSION):
        filtered = filtered | PERSONALITY_QUOTAS
    return json_response(build_limits(
        limits, usage, filtered,
        max_image_meta=not microversion.is_supported(req, IMAGE_META_REMOVED_VERSION)))


def routes() -> list[Route]:
    return [Route("GET", "/limits", index)]
