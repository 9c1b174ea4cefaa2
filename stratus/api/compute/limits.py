"""``GET /limits``: the project's absolute limits and what it uses of them.

Quotas are not configurable yet: the limits are Nova's default quota values
and the usage is counted from the project's instances that are not deleted.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from werkzeug.wrappers import Response

from stratus.api.compute.common import authorize
from stratus.api.wsgi import Request, Route, json_response
from stratus.db.models import Instance
from stratus.db.session import Database

POLICY_LIMITS = "os_compute_api:limits"
POLICY_OTHER_PROJECT = "os_compute_api:limits:other_project"

# nova/conf/quota.py defaults.
DEFAULT_QUOTAS: dict[str, int] = {
    "instances": 10,
    "cores": 20,
    "ram": 51200,
    "floating_ips": 10,
    "fixed_ips": -1,
    "metadata_items": 128,
    "injected_files": 5,
    "injected_file_content_bytes": 10240,
    "injected_file_path_length": 255,
    "security_groups": 10,
    "security_group_rules": 20,
    "key_pairs": 100,
    "server_groups": 10,
    "server_group_members": 10,
}

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


def project_usage(db: Database, project_id: str | None) -> dict[str, int]:
    """In-use counts of a project's quota resources (instances, cores, ram)."""
    with db.read() as s:
        count, cores, ram = s.execute(
            select(func.count(Instance.id),
                   func.coalesce(func.sum(Instance.vcpus), 0),
                   func.coalesce(func.sum(Instance.memory_mb), 0))
            .where(Instance.project_id == project_id, Instance.deleted.is_(False))).one()
    # Floating IPs and security groups belong to the network service; server
    # groups do not exist yet: none are in use.
    return {"instances": int(count), "cores": int(cores), "ram": int(ram),
            "floating_ips": 0, "security_groups": 0, "server_groups": 0}


def build_limits(quotas: dict[str, int], usage: dict[str, int]) -> dict[str, Any]:
    absolute: dict[str, int] = {}
    for quota, names in _LIMIT_NAMES.items():
        for name in names:
            absolute[name] = quotas[quota]
    for name, quota in _USED_NAMES.items():
        absolute[name] = usage.get(quota, 0)
    return {"limits": {"rate": [], "absolute": absolute}}


def index(req: Request) -> Response:
    project_id = req.context.project_id
    authorize(req, POLICY_LIMITS, {"project_id": project_id})
    if "tenant_id" in req.args:
        project_id = req.args["tenant_id"]
        authorize(req, POLICY_OTHER_PROJECT, {"project_id": project_id})
    usage = project_usage(req.state.db, project_id)
    return json_response(build_limits(DEFAULT_QUOTAS, usage))


def routes() -> list[Route]:
    return [Route("GET", "/limits", index)]
