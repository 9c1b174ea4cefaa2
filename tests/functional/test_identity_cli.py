"""Identity v3 management through the unmodified ``openstack`` CLI and
openstacksdk against the all-in-one: domains, projects, users, groups, roles,
role assignments, application credentials, tokens — and a member's token
that stops working the moment its user is disabled, its password changed,
the token revoked or the user deleted."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import Any

import httpx
import pytest

from tests.functional.harness import AllInOne

pytestmark = pytest.mark.functional

OPENSTACK = os.path.join(os.path.dirname(sys.executable), "openstack")
PASSWORD_CLOUD = """\
  {name}:
    auth:
      auth_url: {url}/identity
      username: {user}
      password: {password}
      project_name: {project}
      user_domain_name: {domain}
      project_domain_name: {domain}
    region_name: RegionOne
    identity_api_version: 3
    interface: public
"""
APP_CRED_CLOUD = """\
  {name}:
    auth_type: v3applicationcredential
    auth:
      auth_url: {url}/identity
      application_credential_id: {id}
      application_credential_secret: {secret}
    region_name: RegionOne
    identity_api_version: 3
    interface: public
"""


class Cloud:
    def __init__(self, aio: AllInOne) -> None:
        self.aio = aio
        self.url = aio.url
        self.clouds = os.path.join(aio.state_dir, "clouds-identity.yaml")
        self.entries: dict[str, str] = {}
        self.add_password("admin", "admin", aio.password, "admin")

    def add_password(self, name: str, user: str, password: str, project: str,
                     domain: str = "Default") -> None:
        self.entries[name] = PASSWORD_CLOUD.format(name=name, url=self.url, user=user,
                                                   password=password, project=project,
                                                   domain=domain)
        self._write()

    def add_app_cred(self, name: str, cred_id: str, secret: str) -> None:
        self.entries[name] = APP_CRED_CLOUD.format(name=name, url=self.url, id=cred_id,
                                                   secret=secret)
        self._write()

    def _write(self) -> None:
        with open(self.clouds, "w") as f:
            f.write("clouds:\n" + "".join(self.entries.values()))

    def osc(self, who: str, *args: str, parse: bool = True, ok: bool | None = True) -> Any:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.update(OS_CLIENT_CONFIG_FILE=self.clouds, OS_CLOUD=who)
        cmd = [OPENSTACK, *args] + (["-f", "json"] if parse else [])
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120,
                              cwd=self.aio.state_dir + "/..")
        if ok is None:  # clean-up: whatever happens
            return proc.returncode
        if not ok:
            assert proc.returncode != 0, f"{' '.join(args)} unexpectedly worked:\n{proc.stdout}"
            return proc.stderr
        assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
        return json.loads(proc.stdout) if parse and proc.stdout.strip() else proc.stdout

    def status(self, token: str, path: str = "/compute/v2.1/servers") -> int:
        return httpx.get(self.url + path, headers={"X-Auth-Token": token},
                         timeout=10).status_code


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: Any) -> Any:
    if not os.path.exists(OPENSTACK) and not shutil.which("openstack"):
        pytest.fail("python-openstackclient is not installed (pip install -e '.[test]')")
    aio = AllInOne(str(tmp_path_factory.mktemp("aio") / "state"))
    aio.start()
    yield Cloud(aio)
    assert aio.stop() == 0, aio.process.log()


def by(rows: list[dict[str, Any]], key: str = "Name") -> set[Any]:
    return {r[key] for r in rows}


def test_domains(cloud: Cloud) -> None:
    assert by(cloud.osc("admin", "domain", "list")) == {"Default"}
    created = cloud.osc("admin", "domain", "create", "--description", "Tenant A", "tenant-a")
    assert (created["name"], created["enabled"], created["description"]) == (
        "tenant-a", True, "Tenant A")
    shown = cloud.osc("admin", "domain", "show", "tenant-a")
    assert shown["id"] == created["id"]
    cloud.osc("admin", "domain", "set", "--description", "Tenant A!", "tenant-a", parse=False)
    assert cloud.osc("admin", "domain", "show", created["id"])["description"] == "Tenant A!"
    err = cloud.osc("admin", "domain", "delete", "tenant-a", parse=False, ok=False)
    assert "Cannot delete a domain that is enabled, please disable it first." in err
    assert "403" in err
    cloud.osc("admin", "domain", "set", "--disable", "tenant-a", parse=False)
    assert cloud.osc("admin", "domain", "show", "tenant-a")["enabled"] is False
    cloud.osc("admin", "domain", "delete", "tenant-a", parse=False)
    assert by(cloud.osc("admin", "domain", "list")) == {"Default"}


def test_projects_users_groups_roles_and_assignments(cloud: Cloud) -> None:
    admin = lambda *args, **kw: cloud.osc("admin", *args, **kw)  # noqa: E731
    domain = admin("domain", "create", "acme")
    project = admin("project", "create", "--domain", "acme", "--description", "Web", "web")
    assert (project["domain_id"], project["description"], project["enabled"]) == (
        domain["id"], "Web", True)
    assert by(admin("project", "list", "--domain", "acme")) == {"web"}
    assert admin("project", "show", "--domain", "acme", "web")["id"] == project["id"]
    user = admin("user", "create", "--domain", "acme", "--password", "pw-1",
                 "--email", "ann@acme.example", "ann")
    assert (user["domain_id"], user["email"], user["enabled"]) == (
        domain["id"], "ann@acme.example", True)
    assert by(admin("user", "list", "--domain", "acme")) == {"ann"}
    group = admin("group", "create", "--domain", "acme", "--description", "Ops", "ops")
    admin("group", "add", "user", "--group-domain", "acme", "--user-domain", "acme",
          "ops", "ann", parse=False)
    assert "ann in group ops" in admin("group", "contains", "user", "--group-domain", "acme",
                                       "--user-domain", "acme", "ops", "ann", parse=False)
    assert by(admin("user", "list", "--group", group["id"])) == {"ann"}
    assert by(admin("group", "list", "--user", user["id"])) == {"ops"}
    role = admin("role", "create", "operator")
    assert "operator" in by(admin("role", "list"))
    assert admin("role", "show", "operator")["id"] == role["id"]
    admin("role", "add", "--group", group["id"], "--project", project["id"], "member",
          parse=False)
    admin("role", "add", "--user", user["id"], "--project", project["id"], "operator",
          parse=False)
    admin("role", "add", "--user", user["id"], "--domain", "acme", "reader", parse=False)

    rows = admin("role", "assignment", "list", "--project", project["id"], "--names")
    assert {(r["Role"], r["User"], r["Group"]) for r in rows} == {
        ("member", "", "ops@acme"), ("operator", "ann@acme", "")}
    rows = admin("role", "assignment", "list", "--project", project["id"], "--effective",
                 "--names")
    assert {(r["Role"], r["User"], r["Project"]) for r in rows} == {
        ("member", "ann@acme", "web@acme"), ("operator", "ann@acme", "web@acme")}
    rows = admin("role", "assignment", "list", "--user", user["id"], "--names")
    assert {(r["Role"], r["Project"], r["Domain"]) for r in rows} == {
        ("operator", "web@acme", ""), ("reader", "", "acme")}

    # Ann's project token carries her own and her group's roles.
    cloud.add_password("ann", "ann", "pw-1", "web", domain="acme")
    token = cloud.osc("ann", "token", "issue")
    assert token["project_id"] == project["id"]
    body = httpx.get(cloud.url + "/identity/v3/auth/tokens", headers={
        "X-Auth-Token": token["id"], "X-Subject-Token": token["id"]}).json()["token"]
    assert sorted(r["name"] for r in body["roles"]) == ["member", "operator"]
    assert body["user"]["domain"] == {"id": domain["id"], "name": "acme"}
    assert by(cloud.osc("ann", "project", "list")) == {"web"}
    assert cloud.status(token["id"]) == 200
    # A domain-scoped token from her domain role.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    proc = subprocess.run([OPENSTACK, "--os-auth-url", cloud.url + "/identity",
                           "--os-username", "ann", "--os-password", "pw-1",
                           "--os-user-domain-name", "acme", "--os-domain-name", "acme",
                           "--os-identity-api-version", "3", "--os-region-name", "RegionOne",
                           "token", "issue", "-f", "json"], env=env, capture_output=True,
                          text=True, timeout=120, cwd=cloud.aio.state_dir + "/..")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["domain_id"] == domain["id"]

    admin("group", "remove", "user", "--group-domain", "acme", "--user-domain", "acme",
          "ops", "ann", parse=False)
    assert cloud.osc("ann", "token", "issue")  # still has operator
    admin("role", "remove", "--user", user["id"], "--project", project["id"], "operator",
          parse=False)
    assert cloud.status(token["id"]) == 401  # no role left: at once
    rows = admin("role", "assignment", "list", "--project", project["id"])
    assert {(r["Role"], r["User"], r["Group"]) for r in rows} == {
        (admin("role", "show", "member")["id"], "", group["id"])}
    admin("project", "set", "--name", "web2", "--disable", project["id"], parse=False)
    shown = admin("project", "show", project["id"])
    assert (shown["name"], shown["enabled"]) == ("web2", False)
    admin("user", "set", "--email", "ann@new.example", user["id"], parse=False)
    assert admin("user", "show", user["id"])["email"] == "ann@new.example"
    admin("group", "set", "--name", "sre", group["id"], parse=False)
    assert admin("group", "show", group["id"])["name"] == "sre"
    admin("role", "delete", "operator", parse=False)
    admin("group", "delete", group["id"], parse=False)
    admin("user", "delete", user["id"], parse=False)
    admin("project", "delete", project["id"], parse=False)
    admin("domain", "set", "--disable", "acme", parse=False)
    admin("domain", "delete", "acme", parse=False)
    assert "operator" not in by(admin("role", "list"))


@pytest.fixture
def member(cloud: Cloud) -> Any:
    """A member user of a project of its own, with a cloud entry in the clouds file."""
    admin = lambda *args, **kw: cloud.osc("admin", *args, **kw)  # noqa: E731
    project = admin("project", "create", "team")
    user = admin("user", "create", "--password", "first-pw", "--project", "team", "mia")
    admin("role", "add", "--user", "mia", "--project", "team", "member", parse=False)
    cloud.add_password("mia", "mia", "first-pw", "team")
    yield user
    admin("user", "delete", user["id"], parse=False, ok=None)
    admin("project", "delete", project["id"], parse=False, ok=None)


def test_member_token_stops_at_once(cloud: Cloud, member: dict[str, Any]) -> None:
    admin = lambda *args, **kw: cloud.osc("admin", *args, **kw)  # noqa: E731
    # Disabled: the very next request is refused, and re-enabling does not revive it.
    token = cloud.osc("mia", "token", "issue")["id"]
    assert cloud.status(token) == 200
    admin("user", "set", "--disable", "mia", parse=False)
    assert cloud.status(token) == 401
    admin("user", "set", "--enable", "mia", parse=False)
    assert cloud.status(token) == 401

    # Password changed by the user itself.
    token = cloud.osc("mia", "token", "issue")["id"]
    assert cloud.status(token) == 200
    cloud.osc("mia", "user", "password", "set", "--original-password", "first-pw",
              "--password", "second-pw", parse=False)
    assert cloud.status(token) == 401
    cloud.osc("mia", "token", "issue", ok=False)  # the old password is gone
    cloud.add_password("mia", "mia", "second-pw", "team")

    # Revoked (by the admin, as `openstack token revoke` does).
    token = cloud.osc("mia", "token", "issue")["id"]
    assert cloud.status(token) == 200
    admin("token", "revoke", token, parse=False)
    assert cloud.status(token) == 401
    assert cloud.status(cloud.osc("mia", "token", "issue")["id"]) == 200

    # Deleted.
    token = cloud.osc("mia", "token", "issue")["id"]
    admin("user", "delete", member["id"], parse=False)
    assert cloud.status(token) == 401


def test_application_credentials(cloud: Cloud, member: dict[str, Any]) -> None:
    import openstack

    created = cloud.osc("mia", "application", "credential", "create", "--role", "member",
                        "--description", "CI", "ci")
    assert (created["Name"], created["Description"], created["Unrestricted"]) == (
        "ci", "CI", False)
    assert [r["name"] for r in created["Roles"]] == ["member"]
    secret = created["Secret"]
    listed = cloud.osc("mia", "application", "credential", "list")
    assert by(listed) == {"ci"} and "Secret" not in listed[0]
    shown = cloud.osc("mia", "application", "credential", "show", "ci")
    assert shown["ID"] == created["ID"] and "Secret" not in shown

    # openstacksdk with auth_type v3applicationcredential (by id, then by name + user).
    conn = openstack.connect(auth_type="v3applicationcredential",
                             auth_url=cloud.url + "/identity",
                             application_credential_id=created["ID"],
                             application_credential_secret=secret,
                             region_name="RegionOne")
    assert conn.current_project_id == created["Project ID"]
    assert list(conn.compute.servers()) == []
    by_name = openstack.connect(auth_type="v3applicationcredential",
                                auth_url=cloud.url + "/identity",
                                application_credential_name="ci",
                                application_credential_secret=secret,
                                username="mia", user_domain_name="Default",
                                region_name="RegionOne")
    assert by_name.current_user_id == member["id"]
    token = conn.session.get_token()
    assert cloud.status(token) == 200

    # The CLI with it: a token, but no new credentials from a restricted one.
    cloud.add_app_cred("mia-ci", created["ID"], secret)
    assert cloud.osc("mia-ci", "token", "issue")["project_id"] == created["Project ID"]
    err = cloud.osc("mia-ci", "application", "credential", "create", "child",
                    parse=False, ok=False)
    assert "not allowed for managing additional application credentials" in err

    # Deleted: its tokens stop at once.
    cloud.osc("mia", "application", "credential", "delete", "ci", parse=False)
    assert cloud.status(token) == 401
    assert cloud.osc("mia", "application", "credential", "list") == []
    cloud.osc("mia-ci", "token", "issue", ok=False)
