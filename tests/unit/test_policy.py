"""Policy: check strings, role implication, defaults, policy files, the CLI."""
from __future__ import annotations

import subprocess
import sys

import pytest

from stratus import exception
from stratus.context import RequestContext
from stratus.policy import Enforcer
from stratus.policy.checks import PolicySyntaxError, expand_roles, parse


def ctx(roles, project="p1", user="u1"):
    return RequestContext(user_id=user, project_id=project, roles=list(roles),
                          is_admin="admin" in roles)


def evaluate(text, roles=(), target=None, project="p1", user="u1"):
    creds = {"roles": expand_roles(list(roles)), "project_id": project, "user_id": user,
             "is_admin": "admin" in roles}
    rules = {"yes": parse("@"), "no": parse("!")}
    return parse(text)(creds, target or {"project_id": "p1"}, rules.__getitem__)


@pytest.mark.parametrize("text, roles, expected", [
    ("@", (), True),
    ("!", ("admin",), False),
    ("", (), True),
    ("role:admin", ("admin",), True),
    ("role:admin", ("member",), False),
    ("role:reader", ("admin",), True),                  # admin implies member implies reader
    ("role:member and project_id:%(project_id)s", ("member",), True),
    ("role:member and project_id:%(project_id)s", ("reader",), False),
    ("not role:reader", ("member",), False),
    ("rule:no or (role:member and not rule:no)", ("member",), True),
    ("is_admin:True", ("admin",), True),
    ("is_admin:True", ("member",), False),
    ("user_id:%(user_id)s", ("member",), False),        # target has no user_id: no match
])
def test_check_strings(text, roles, expected):
    assert evaluate(text, roles) is expected


def test_project_must_match_the_target():
    assert not evaluate("role:member and project_id:%(project_id)s", ("member",),
                        target={"project_id": "other"})


@pytest.mark.parametrize("bad", ["role:", "(role:admin", "role:admin and", "oops",
                                 "role:admin )"])
def test_syntax_errors(bad):
    with pytest.raises(PolicySyntaxError):
        parse(bad)


def test_defaults_give_reader_member_admin_their_powers():
    enforcer = Enforcer()
    reader, member, admin = ctx(["reader"]), ctx(["member"]), ctx(["admin"], project="adm")
    own = {"project_id": "p1", "user_id": "u1"}
    assert enforcer.check(reader, "os_compute_api:servers:show", own)
    assert not enforcer.check(reader, "os_compute_api:servers:create", own)
    assert enforcer.check(member, "os_compute_api:servers:create", own)
    assert not enforcer.check(member, "os_compute_api:servers:show", {"project_id": "p2"})
    assert enforcer.check(admin, "os_compute_api:servers:delete", {"project_id": "p2"})
    assert not enforcer.check(member, "os_compute_api:servers:detail:get_all_tenants")
    assert enforcer.check(admin, "os_compute_api:servers:detail:get_all_tenants")
    assert not enforcer.check(member, "os_compute_api:os-hypervisors:list")
    with pytest.raises(exception.Forbidden) as err:
        enforcer.authorize(member, "os_compute_api:os-services:list")
    assert err.value.code == 403
    assert str(err.value) == "Policy doesn't allow os_compute_api:os-services:list to be " \
                             "performed."


def test_policy_file_overrides_and_extends(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text('"os_compute_api:os-hypervisors:list": "role:reader"\n'
                    '"custom:rule": "rule:context_is_admin"\n')
    enforcer = Enforcer(policy_file=str(path))
    assert enforcer.check(ctx(["reader"]), "os_compute_api:os-hypervisors:list")
    assert enforcer.effective()["custom:rule"] == "rule:context_is_admin"
    bad = tmp_path / "bad.yaml"
    bad.write_text('"x": "role:"\n')
    with pytest.raises(exception.ConfigError, match="policy rule 'x'"):
        Enforcer(policy_file=str(bad))


def test_every_default_parses_and_references_exist():
    enforcer = Enforcer()
    for name in enforcer.effective():
        enforcer.check(ctx(["admin"]), name, {"project_id": "p1", "user_id": "u1"})


def test_policy_list_command(tmp_path):
    conf = tmp_path / "stratus.conf"
    policy = tmp_path / "policy.yaml"
    policy.write_text('"os_compute_api:limits": "role:admin"\n')
    conf.write_text(f"[oslo_policy]\npolicy_file = {policy}\n")
    out = subprocess.run([sys.executable, "-m", "stratus.cli", "policy", "list",
                          "--config", str(conf)], capture_output=True, text=True, check=True)
    assert '"os_compute_api:limits": "role:admin"  # overridden' in out.stdout
    assert '"os_compute_api:servers:create": "rule:project_member_or_admin"' in out.stdout


def test_quoted_literals_compare_with_the_target():
    """oslo.policy's ``'public':%(visibility)s`` (Glance's rules use it)."""
    assert evaluate("'public':%(visibility)s", target={"visibility": "public"})
    assert evaluate('"shared":%(visibility)s', target={"visibility": "shared"})
    assert not evaluate("'public':%(visibility)s", target={"visibility": "private"})
    assert not evaluate("'public':%(visibility)s", target={})
    enforcer = Enforcer()
    reader = ctx(["reader"], project="p1")
    image = {"project_id": "p2", "owner": "p2", "member_id": None}
    assert enforcer.check(reader, "get_image", {**image, "visibility": "public"})
    assert not enforcer.check(reader, "get_image", {**image, "visibility": "private"})
    assert not enforcer.check(reader, "download_image", {**image, "visibility": "public"})
    assert not enforcer.check(reader, "delete_image", {**image, "project_id": "p1"})
    assert enforcer.check(ctx(["member"]), "delete_image", {**image, "project_id": "p1"})
