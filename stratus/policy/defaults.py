"""The default rules: OpenStack's current defaults (admin, member, reader).

Names are Nova's (``os_compute_api:...``) and Glance's (``add_image``,
``get_image``...) so an operator's policy file for Nova or Glance carries
over. ``reader`` may only read its project, ``member`` may act
in its project, ``admin`` may act everywhere.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class RuleDefault:
    name: str
    check_str: str
    description: str = ""


ADMIN = "rule:context_is_admin"
PROJECT_READER_OR_ADMIN = "rule:project_reader_or_admin"
PROJECT_MEMBER_OR_ADMIN = "rule:project_member_or_admin"
OWNER_OR_ADMIN = "rule:admin_or_owner"
ANY = "@"

BASE = [
    RuleDefault("context_is_admin", "role:admin", "Administrators of the cloud."),
    RuleDefault("project_member_api", "role:member and project_id:%(project_id)s",
                "A member of the target's project."),
    RuleDefault("project_reader_api", "role:reader and project_id:%(project_id)s",
                "A reader of the target's project."),
    RuleDefault("project_member_or_admin", "rule:project_member_api or rule:context_is_admin"),
    RuleDefault("project_reader_or_admin", "rule:project_reader_api or rule:context_is_admin"),
    RuleDefault("admin_or_owner", "rule:context_is_admin or user_id:%(user_id)s",
                "The owning user (keypairs) or an administrator."),
]


def _servers() -> list[RuleDefault]:
    p = "os_compute_api:servers"
    reads = ["index", "detail", "show"]
    writes = ["create", "update", "delete", "start", "stop", "reboot"]
    rules = [RuleDefault(f"{p}:{r}", PROJECT_READER_OR_ADMIN, f"Servers: {r}") for r in reads]
    rules += [RuleDefault(f"{p}:{w}", PROJECT_MEMBER_OR_ADMIN, f"Servers: {w}") for w in writes]
    rules += [
        RuleDefault(f"{p}:index:get_all_tenants", ADMIN, "List servers of every project."),
        RuleDefault(f"{p}:detail:get_all_tenants", ADMIN, "List servers of every project."),
        RuleDefault(f"{p}:allow_all_filters", ADMIN, "Use admin-only list filters."),
        RuleDefault(f"{p}:show:host_status", ADMIN, "See the host status of a server."),
        RuleDefault(f"{p}:create:forced_host", ADMIN,
                    "Create a server on a given host (availability_zone zone:host)."),
        RuleDefault("compute:servers:create:requested_destination", ADMIN,
                    "Create a server on a requested host or node through the "
                    "scheduler's filters (host / hypervisor_hostname, 2.74)."),
        RuleDefault("os_compute_api:os-extended-server-attributes", ADMIN,
                    "See a server's host, hypervisor and instance name "
                    "(OS-EXT-SRV-ATTR:*)."),
    ]
    for name, action in (("os-pause-server", "pause"), ("os-pause-server", "unpause"),
                         ("os-suspend-server", "suspend"), ("os-suspend-server", "resume"),
                         ("os-lock-server", "lock"), ("os-lock-server", "unlock")):
        rules.append(RuleDefault(f"os_compute_api:{name}:{action}", PROJECT_MEMBER_OR_ADMIN))
    rules.append(RuleDefault("os_compute_api:os-lock-server:unlock:unlock_override", ADMIN,
                             "Unlock a server locked by an administrator."))
    rules += [RuleDefault(name, PROJECT_MEMBER_OR_ADMIN, what) for name, what in (
        ("os_compute_api:os-console-output", "Show a server's console output."),
        (f"{p}:create_image", "Snapshot a server (createImage)."),
        ("os_compute_api:os-create-backup", "Back up a server (createBackup)."),
        (f"{p}:rebuild", "Rebuild a server from an image."),
        ("os_compute_api:os-rescue", "Rescue a server."),
        ("os_compute_api:os-unrescue", "Unrescue a server."),
        ("os_compute_api:os-shelve:shelve", "Shelve a server."),
        ("os_compute_api:os-shelve:unshelve", "Unshelve a server."),
        (f"{p}:resize", "Resize a server to another flavor."),
        (f"{p}:confirm_resize", "Confirm a server's resize or migration."),
        (f"{p}:revert_resize", "Revert a server's resize or migration."),
        (f"{p}:trigger_crash_dump", "Trigger a crash dump in a server (NMI)."))]
    rules.append(RuleDefault("os_compute_api:os-admin-actions:reset_state", ADMIN,
                             "Reset a server's state to active or error."))
    rules.append(RuleDefault("os_compute_api:os-migrate-server:migrate", ADMIN,
                             "Cold migrate a server to another host."))
    rules.append(RuleDefault("os_compute_api:os-migrate-server:migrate:host", ADMIN,
                             "Cold migrate a server to a specified host (2.56)."))
    rules += [RuleDefault("os_compute_api:os-migrations:index", ADMIN,
                          "List the migrations of every server."),
              RuleDefault(f"{p}:migrations:index", ADMIN,
                          "List a server's migrations in progress (2.23)."),
              RuleDefault(f"{p}:migrations:show", ADMIN,
                          "Show a server's migration in progress (2.23).")]
    m = "os_compute_api:server-metadata"
    rules += [RuleDefault(f"{m}:{r}", PROJECT_READER_OR_ADMIN) for r in ("index", "show")]
    rules += [RuleDefault(f"{m}:{w}", PROJECT_MEMBER_OR_ADMIN)
              for w in ("create", "update", "update_all", "delete")]
    t = "os_compute_api:os-server-tags"
    rules += [RuleDefault(f"{t}:{r}", PROJECT_READER_OR_ADMIN, f"Server tags: {r}")
              for r in ("index", "show")]
    rules += [RuleDefault(f"{t}:{w}", PROJECT_MEMBER_OR_ADMIN, f"Server tags: {w}")
              for w in ("update", "update_all", "delete", "delete_all")]
    a = "os_compute_api:os-instance-actions"
    rules += [RuleDefault(f"{a}:list", PROJECT_READER_OR_ADMIN),
              RuleDefault(f"{a}:show", PROJECT_READER_OR_ADMIN),
              RuleDefault(f"{a}:events", ADMIN, "See the events of an action."),
              RuleDefault(f"{a}:events:details", ADMIN, "See event tracebacks.")]
    return rules


def _resources() -> list[RuleDefault]:
    c = "os_compute_api"
    return [
        RuleDefault(f"{c}:os-flavor-manage:create", ADMIN),
        RuleDefault(f"{c}:os-flavor-manage:update", ADMIN),
        RuleDefault(f"{c}:os-flavor-manage:delete", ADMIN),
        RuleDefault(f"{c}:os-flavor-extra-specs:index", PROJECT_READER_OR_ADMIN),
        RuleDefault(f"{c}:os-flavor-extra-specs:show", PROJECT_READER_OR_ADMIN),
        RuleDefault(f"{c}:os-flavor-extra-specs:create", ADMIN),
        RuleDefault(f"{c}:os-flavor-extra-specs:update", ADMIN),
        RuleDefault(f"{c}:os-flavor-extra-specs:delete", ADMIN),
        RuleDefault(f"{c}:os-flavor-access", ADMIN),
        RuleDefault(f"{c}:os-flavor-access:add_tenant_access", ADMIN),
        RuleDefault(f"{c}:os-flavor-access:remove_tenant_access", ADMIN),
        RuleDefault(f"{c}:os-keypairs:index", OWNER_OR_ADMIN),
        RuleDefault(f"{c}:os-keypairs:show", OWNER_OR_ADMIN),
        RuleDefault(f"{c}:os-keypairs:create", OWNER_OR_ADMIN),
        RuleDefault(f"{c}:os-keypairs:delete", OWNER_OR_ADMIN),
        RuleDefault(f"{c}:os-services:list", ADMIN),
        RuleDefault(f"{c}:os-services:update", ADMIN),
        RuleDefault(f"{c}:os-services:delete", ADMIN),
        RuleDefault(f"{c}:os-hypervisors:list", ADMIN),
        RuleDefault(f"{c}:os-hypervisors:list-detail", ADMIN),
        RuleDefault(f"{c}:os-hypervisors:show", ADMIN),
        RuleDefault(f"{c}:os-hypervisors:statistics", ADMIN),
        RuleDefault(f"{c}:os-hypervisors:search", ADMIN),
        RuleDefault(f"{c}:os-hypervisors:servers", ADMIN),
        *(RuleDefault(f"{c}:os-aggregates:{action}", ADMIN, f"Host aggregates: {action}")
          for action in ("index", "create", "show", "update", "delete", "add_host",
                         "remove_host", "set_metadata")),
        RuleDefault(f"{c}:os-server-groups:index", PROJECT_READER_OR_ADMIN),
        RuleDefault(f"{c}:os-server-groups:index:all_projects", ADMIN,
                    "List the server groups of every project."),
        RuleDefault(f"{c}:os-server-groups:show", PROJECT_READER_OR_ADMIN),
        RuleDefault(f"{c}:os-server-groups:create", PROJECT_MEMBER_OR_ADMIN),
        RuleDefault(f"{c}:os-server-groups:delete", PROJECT_MEMBER_OR_ADMIN),
        RuleDefault(f"{c}:os-hypervisors:uptime", ADMIN),
        RuleDefault(f"{c}:os-simple-tenant-usage:list", ADMIN),
        RuleDefault(f"{c}:os-simple-tenant-usage:show", PROJECT_READER_OR_ADMIN),
        RuleDefault(f"{c}:os-availability-zone:list", ANY),
        RuleDefault(f"{c}:os-availability-zone:detail", ADMIN),
        RuleDefault(f"{c}:limits", ANY),
        RuleDefault(f"{c}:limits:other_project", ADMIN),
        RuleDefault(f"{c}:os-quota-sets:show", PROJECT_READER_OR_ADMIN),
        RuleDefault(f"{c}:os-quota-sets:detail", PROJECT_READER_OR_ADMIN),
        RuleDefault(f"{c}:os-quota-sets:defaults", ANY),
        RuleDefault(f"{c}:os-quota-sets:update", ADMIN),
        RuleDefault(f"{c}:os-quota-sets:delete", ADMIN),
        RuleDefault(f"{c}:os-quota-class-sets:show", ADMIN, "Show a quota class's limits."),
        RuleDefault(f"{c}:os-quota-class-sets:update", ADMIN,
                    "Set a quota class's limits (the 'default' class: every project's "
                    "defaults)."),
    ]


# Glance's current defaults (glance/policies/base.py, image.py). The target of
# an image rule is the image: ``project_id`` and ``owner`` are its owner,
# ``visibility`` its visibility and ``member_id`` the caller's project when
# that project is a member of the image (or the member acted on).
GLANCE_ADMIN_OR_PROJECT_MEMBER = "role:admin or (role:member and project_id:%(project_id)s)"
GLANCE_ADMIN_OR_PROJECT_READER = "role:admin or (role:reader and project_id:%(project_id)s)"
_GLANCE_VISIBLE = ("(project_id:%(project_id)s or project_id:%(member_id)s or "
                   "'community':%(visibility)s or 'public':%(visibility)s or "
                   "'shared':%(visibility)s)")


def _images() -> list[RuleDefault]:
    member, reader = GLANCE_ADMIN_OR_PROJECT_MEMBER, GLANCE_ADMIN_OR_PROJECT_READER
    return [
        RuleDefault("add_image",
                    "role:admin or (role:member and project_id:%(project_id)s and "
                    "project_id:%(owner)s)", "Create an image (POST /v2/images)."),
        RuleDefault("delete_image", member, "Delete an image."),
        RuleDefault("get_image", f"role:admin or (role:reader and {_GLANCE_VISIBLE})",
                    "Show an image."),
        RuleDefault("get_images", reader, "List images."),
        RuleDefault("modify_image", member, "Update an image (PATCH, tags)."),
        RuleDefault("publicize_image", "role:admin", "Make an image public."),
        RuleDefault("communitize_image", member, "Make an image community."),
        RuleDefault("download_image", f"role:admin or (role:member and {_GLANCE_VISIBLE})",
                    "Download an image's data."),
        RuleDefault("upload_image", member, "Upload an image's data."),
        RuleDefault("add_member", member, "Share an image with a project."),
        RuleDefault("delete_member", member, "Stop sharing an image with a project."),
        RuleDefault("get_member", "role:admin or (role:reader and (project_id:%(project_id)s "
                                  "or project_id:%(member_id)s))", "Show an image member."),
        RuleDefault("get_members", "role:admin or (role:reader and (project_id:%(project_id)s "
                                   "or project_id:%(member_id)s))", "List image members."),
        RuleDefault("modify_member", "role:admin or (role:member and "
                                     "project_id:%(member_id)s)",
                    "Accept or reject an image shared with one's project."),
        RuleDefault("deactivate", member, "Deactivate an image."),
        RuleDefault("reactivate", member, "Reactivate an image."),
    ]


def all_defaults() -> list[RuleDefault]:
    return BASE + _servers() + _resources() + _images()
