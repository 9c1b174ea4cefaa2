"""Identity v3 management: domains, projects, users, groups, roles, grants, role
assignments, application credentials, password changes, and tokens that stop
working at once — on SQLite, and again on PostgreSQL and MariaDB.

"Another API process" is modelled by a second app with a provider and
authenticator of its own over the same database (long cache TTL): what it
sees must change on its very next request.
"""
from __future__ import annotations

import datetime
import threading
import time
from typing import Any, Iterator

import pytest
import sqlalchemy as sa
from werkzeug.test import Client

from stratus.db.models import ApplicationCredential, IdentityState
from stratus.db.session import Database
from stratus.identity import backend, changes
from stratus.identity.app import build_identity_app
from stratus.identity.auth import make_authenticator
from stratus.identity.tokens import TokenProvider
from tests.unit.test_identity import (DEMO_PASSWORD, PUBLIC_URL, IdentityEnv,
                                      build_env)

V3 = f"{PUBLIC_URL}/identity/v3"


class Api:
    """Requests as one token holder."""

    def __init__(self, client: Client, token: str | None) -> None:
        self.client = client
        self.token = token

    def __call__(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        hdrs = dict(headers)
        if self.token:
            hdrs["X-Auth-Token"] = self.token
        return self.client.open(path, method=method, json=body, headers=hdrs)


def other_process(env: IdentityEnv) -> Client:
    """A second API process over the same database (its own caches)."""
    provider = TokenProvider(env.conf.identity.key_file, env.db)
    return Client(build_identity_app(env.conf, env.db, provider,
                                     authenticate=make_authenticator(provider, env.db,
                                                                     cache_ttl=3600)))


def password_auth(name: str, password: str, scope: Any = None, domain: str = "Default",
                  user_id: str | None = None) -> dict[str, Any]:
    user: dict[str, Any] = {"password": password}
    if user_id:
        user["id"] = user_id
    else:
        user.update(name=name, domain={"name": domain})
    auth: dict[str, Any] = {"identity": {"methods": ["password"],
                                         "password": {"user": user}}}
    if scope is not None:
        auth["scope"] = scope
    return {"auth": auth}


def issue(env: IdentityEnv, body: dict[str, Any], status: int = 201) -> Any:
    resp = env.client.post("/v3/auth/tokens", json=body)
    assert resp.status_code == status, resp.get_data(as_text=True)
    return resp


def works(client: Client, token: str) -> bool:
    """Does ``token`` still authenticate (validating itself)?"""
    resp = client.get("/v3/auth/tokens", headers={"X-Auth-Token": token,
                                                  "X-Subject-Token": token})
    assert resp.status_code in (200, 401), resp.get_data(as_text=True)
    return resp.status_code == 200


class _Scenarios:
    @pytest.fixture
    def admin(self, env: IdentityEnv) -> Api:
        return Api(env.client, env.token())

    @pytest.fixture
    def demo(self, env: IdentityEnv) -> Api:
        return Api(env.client, env.token("demo", DEMO_PASSWORD, "demo"))

    def role_id(self, env: IdentityEnv, name: str) -> str:
        with env.db.read() as s:
            return backend.list_roles(s, name=name)[0].id

    def make_user(self, admin: Api, name: str, password: str = "pw",
                  **extra: Any) -> dict[str, Any]:
        resp = admin("POST", "/v3/users", {"user": dict(name=name, password=password,
                                                         **extra)})
        assert resp.status_code == 201, resp.json
        return resp.json["user"]

    def make_project(self, admin: Api, name: str, **extra: Any) -> dict[str, Any]:
        resp = admin("POST", "/v3/projects", {"project": dict(name=name, **extra)})
        assert resp.status_code == 201, resp.json
        return resp.json["project"]

    # -- domains ----------------------------------------------------------------------
    def test_domains_crud(self, env: IdentityEnv, admin: Api) -> None:
        listed = admin("GET", "/v3/domains").json
        assert listed["domains"] == [{
            "id": "default", "name": "Default", "description": "The default domain",
            "enabled": True, "tags": [], "options": {},
            "links": {"self": f"{V3}/domains/default"}}]
        assert listed["links"] == {"self": f"{V3}/domains", "previous": None, "next": None}
        created = admin("POST", "/v3/domains", {"domain": {"name": "acme",
                                                           "description": "ACME"}})
        assert created.status_code == 201
        domain = created.json["domain"]
        assert (domain["name"], domain["enabled"], len(domain["id"])) == ("acme", True, 32)
        assert admin("POST", "/v3/domains", {"domain": {"name": "acme"}}).status_code == 409
        assert admin("GET", f"/v3/domains/{domain['id']}").json["domain"] == domain
        assert [d["name"] for d in admin("GET", "/v3/domains?name=acme").json["domains"]] \
            == ["acme"]
        patched = admin("PATCH", f"/v3/domains/{domain['id']}",
                        {"domain": {"description": "A.C.M.E."}}).json["domain"]
        assert patched["description"] == "A.C.M.E."
        # Keystone's rule: disable before deleting.
        refused = admin("DELETE", f"/v3/domains/{domain['id']}")
        assert refused.status_code == 403
        assert refused.json == {"error": {
            "code": 403, "title": "Forbidden",
            "message": "Cannot delete a domain that is enabled, please disable it first."}}
        # Its contents go with it.
        project = self.make_project(admin, "acme-p", domain_id=domain["id"])
        user = self.make_user(admin, "acme-u", domain_id=domain["id"])
        group = admin("POST", "/v3/groups", {"group": {"name": "acme-g",
                                                       "domain_id": domain["id"]}}).json
        assert admin("PATCH", f"/v3/domains/{domain['id']}",
                     {"domain": {"enabled": False}}).json["domain"]["enabled"] is False
        assert [d["name"] for d in admin("GET", "/v3/domains?enabled=false")
                .json["domains"]] == ["acme"]
        assert admin("DELETE", f"/v3/domains/{domain['id']}").status_code == 204
        for path in (f"/v3/domains/{domain['id']}", f"/v3/projects/{project['id']}",
                     f"/v3/users/{user['id']}", f"/v3/groups/{group['group']['id']}"):
            missing = admin("GET", path)
            assert missing.status_code == 404, path
        assert missing.json["error"]["message"] == (
            f"Could not find group: {group['group']['id']}.")
        assert admin("POST", "/v3/projects", {"project": {
            "name": "x", "domain_id": domain["id"]}}).status_code == 404

    def test_names_are_per_domain_and_login_by_domain_name(self, env: IdentityEnv,
                                                           admin: Api) -> None:
        domain = admin("POST", "/v3/domains", {"domain": {"name": "other"}}).json["domain"]
        project = self.make_project(admin, "demo", domain_id=domain["id"])  # same name
        user = self.make_user(admin, "demo", "other-pw", domain_id=domain["id"])
        admin("PUT", f"/v3/projects/{project['id']}/users/{user['id']}/roles/"
                     f"{self.role_id(env, 'member')}")
        body = issue(env, password_auth("demo", "other-pw", {"project": {
            "name": "demo", "domain": {"name": "other"}}}, domain="other")).json["token"]
        assert body["user"]["domain"] == {"id": domain["id"], "name": "other"}
        assert body["project"] == {"id": project["id"], "name": "demo",
                                   "domain": {"id": domain["id"], "name": "other"}}
        issue(env, password_auth("demo", "other-pw"), 401)  # Default's demo has another
        # A disabled domain stops its users' and projects' tokens.
        token = env.client.post("/v3/auth/tokens", json=password_auth(
            "demo", "other-pw", {"project": {"id": project["id"]}}, domain="other")
        ).headers["X-Subject-Token"]
        assert works(env.client, token)
        admin("PATCH", f"/v3/domains/{domain['id']}", {"domain": {"enabled": False}})
        assert not works(env.client, token)

    # -- projects and users -----------------------------------------------------------
    def test_projects_crud_and_filters(self, env: IdentityEnv, admin: Api) -> None:
        project = self.make_project(admin, "web", description="Web tier")
        assert project == {
            "id": project["id"], "name": "web", "domain_id": "default",
            "description": "Web tier", "enabled": True, "parent_id": "default",
            "is_domain": False, "tags": [], "options": {},
            "links": {"self": f"{V3}/projects/{project['id']}"}}
        assert admin("POST", "/v3/projects", {"project": {"name": "web"}}).status_code == 409
        assert admin("POST", "/v3/projects", {"project": {}}).status_code == 400
        assert admin("POST", "/v3/projects", {"project": {
            "name": "child", "parent_id": project["id"]}}).status_code == 400
        updated = admin("PATCH", f"/v3/projects/{project['id']}", {"project": {
            "name": "web2", "enabled": False}}).json["project"]
        assert (updated["name"], updated["enabled"]) == ("web2", False)
        names = lambda q: [p["name"] for p in admin("GET", f"/v3/projects{q}")  # noqa: E731
                           .json["projects"]]
        assert names("") == ["admin", "demo", "web2"]
        assert names("?enabled=false") == ["web2"]
        assert names("?enabled=true") == ["admin", "demo"]
        assert names("?name=demo&domain_id=default") == ["demo"]
        assert names("?domain_id=nope") == []
        assert admin("DELETE", f"/v3/projects/{project['id']}").status_code == 204
        assert admin("DELETE", f"/v3/projects/{project['id']}").status_code == 404

    def test_users_crud_and_filters(self, env: IdentityEnv, admin: Api) -> None:
        user = self.make_user(admin, "carol", "carol-pw", email="c@example.org",
                              default_project_id=env.demo_project_id)
        assert user == {
            "id": user["id"], "name": "carol", "domain_id": "default", "enabled": True,
            "password_expires_at": None, "options": {}, "email": "c@example.org",
            "default_project_id": env.demo_project_id,
            "links": {"self": f"{V3}/users/{user['id']}"}}
        with env.db.read() as s:
            stored = backend.get_user(s, user["id"]).password_hash
        assert stored.startswith("scrypt$") and "carol-pw" not in stored
        assert admin("POST", "/v3/users", {"user": {"name": "carol"}}).status_code == 409
        issue(env, password_auth("carol", "carol-pw", "unscoped"))
        patched = admin("PATCH", f"/v3/users/{user['id']}", {"user": {
            "name": "caroline", "enabled": False}}).json["user"]
        assert (patched["name"], patched["enabled"]) == ("caroline", False)
        issue(env, password_auth("caroline", "carol-pw", "unscoped"), 401)
        names = lambda q: [u["name"] for u in admin("GET", f"/v3/users{q}")  # noqa: E731
                           .json["users"]]
        assert names("?enabled=false") == ["caroline"]
        assert names("?domain_id=default&enabled=true") == ["admin", "demo"]
        admin("PATCH", f"/v3/users/{user['id']}", {"user": {"enabled": True,
                                                            "password": "new-pw"}})
        issue(env, password_auth("caroline", "carol-pw", "unscoped"), 401)
        issue(env, password_auth("caroline", "new-pw", "unscoped"))
        assert admin("DELETE", f"/v3/users/{user['id']}").status_code == 204
        assert admin("GET", f"/v3/users/{user['id']}").status_code == 404
        issue(env, password_auth("caroline", "new-pw", "unscoped"), 401)

    def test_password_change(self, env: IdentityEnv) -> None:
        path = f"/v3/users/{env.demo_user_id}/password"
        token = env.token("demo", DEMO_PASSWORD, "demo")
        elsewhere = other_process(env)
        assert works(elsewhere, token)
        wrong = env.client.post(path, json={"user": {"original_password": "nope",
                                                      "password": "next"}})
        assert wrong.status_code == 401
        assert wrong.json["error"]["message"] == (
            "Error when changing user password: Invalid user / password")
        assert env.client.post(path, json={"user": {"password": "x"}}).status_code == 400
        # No token needed: the original password is the proof (as Keystone).
        done = env.client.post(path, json={"user": {"original_password": DEMO_PASSWORD,
                                                     "password": "next"}})
        assert done.status_code == 204 and done.get_data() == b""
        assert not works(elsewhere, token) and not works(env.client, token)
        issue(env, password_auth("demo", DEMO_PASSWORD, "unscoped"), 401)
        fresh = env.token("demo", "next", "demo")  # even within the same second
        assert works(elsewhere, fresh)

    # -- groups -----------------------------------------------------------------------
    def test_groups_and_membership(self, env: IdentityEnv, admin: Api) -> None:
        created = admin("POST", "/v3/groups", {"group": {"name": "ops",
                                                         "description": "Operators"}})
        assert created.status_code == 201
        group = created.json["group"]
        assert group == {"id": group["id"], "name": "ops", "domain_id": "default",
                         "description": "Operators",
                         "links": {"self": f"{V3}/groups/{group['id']}"}}
        gid, uid = group["id"], env.demo_user_id
        assert admin("POST", "/v3/groups", {"group": {"name": "ops"}}).status_code == 409
        assert admin("HEAD", f"/v3/groups/{gid}/users/{uid}").status_code == 404
        assert admin("PUT", f"/v3/groups/{gid}/users/{uid}").status_code == 204
        assert admin("PUT", f"/v3/groups/{gid}/users/{uid}").status_code == 204  # again
        assert admin("HEAD", f"/v3/groups/{gid}/users/{uid}").status_code == 204
        assert admin("PUT", f"/v3/groups/{gid}/users/nope").status_code == 404
        members = admin("GET", f"/v3/groups/{gid}/users").json
        assert [u["id"] for u in members["users"]] == [uid]
        assert members["links"]["self"] == f"{V3}/groups/{gid}/users"
        demo = Api(env.client, env.token("demo", DEMO_PASSWORD, "demo"))
        mine = demo("GET", f"/v3/users/{uid}/groups").json["groups"]
        assert [g["name"] for g in mine] == ["ops"]
        assert demo("GET", f"/v3/users/{env.admin.user_id}/groups").status_code == 403
        assert [g["name"] for g in admin("GET", "/v3/groups?name=ops").json["groups"]] \
            == ["ops"]
        assert admin("PATCH", f"/v3/groups/{gid}", {"group": {"name": "sre"}}) \
            .json["group"]["name"] == "sre"
        assert admin("DELETE", f"/v3/groups/{gid}/users/{uid}").status_code == 204
        assert admin("DELETE", f"/v3/groups/{gid}/users/{uid}").status_code == 404
        assert admin("GET", f"/v3/groups/{gid}/users").json["users"] == []
        assert admin("DELETE", f"/v3/groups/{gid}").status_code == 204
        assert admin("GET", f"/v3/groups/{gid}").status_code == 404

    def test_group_roles_count_toward_tokens_and_end_at_once(self, env: IdentityEnv,
                                                            admin: Api) -> None:
        user = self.make_user(admin, "gina")
        project = self.make_project(admin, "shared")
        gid = admin("POST", "/v3/groups", {"group": {"name": "team"}}).json["group"]["id"]
        member = self.role_id(env, "member")
        scope = {"project": {"id": project["id"]}}
        issue(env, password_auth("gina", "pw", scope), 401)  # no role yet
        admin("PUT", f"/v3/projects/{project['id']}/groups/{gid}/roles/{member}")
        issue(env, password_auth("gina", "pw", scope), 401)  # not in the group yet
        admin("PUT", f"/v3/groups/{gid}/users/{user['id']}")
        resp = issue(env, password_auth("gina", "pw", scope))
        assert [r["name"] for r in resp.json["token"]["roles"]] == ["member"]
        token = resp.headers["X-Subject-Token"]
        assert [p["name"] for p in Api(env.client, token)("GET", "/v3/auth/projects")
                .json["projects"]] == ["shared"]
        elsewhere = other_process(env)
        assert works(elsewhere, token)
        admin("DELETE", f"/v3/groups/{gid}/users/{user['id']}")
        assert not works(elsewhere, token)
        admin("PUT", f"/v3/groups/{gid}/users/{user['id']}")
        assert works(elsewhere, token)  # a role lost and regained: the token is fine
        admin("DELETE", f"/v3/projects/{project['id']}/groups/{gid}/roles/{member}")
        assert not works(elsewhere, token)

    # -- roles and grants -------------------------------------------------------------
    def test_roles_crud(self, env: IdentityEnv, admin: Api) -> None:
        created = admin("POST", "/v3/roles", {"role": {"name": "auditor"}})
        assert created.status_code == 201
        role = created.json["role"]
        assert role == {"id": role["id"], "name": "auditor", "domain_id": None,
                        "description": None, "options": {},
                        "links": {"self": f"{V3}/roles/{role['id']}"}}
        assert admin("POST", "/v3/roles", {"role": {"name": "auditor"}}).status_code == 409
        assert admin("GET", f"/v3/roles/{role['id']}").json["role"] == role
        renamed = admin("PATCH", f"/v3/roles/{role['id']}", {"role": {"name": "audit"}})
        assert renamed.json["role"]["name"] == "audit"
        admin("PUT", f"/v3/projects/{env.demo_project_id}/users/{env.demo_user_id}/roles/"
                     f"{role['id']}")
        assert admin("DELETE", f"/v3/roles/{role['id']}").status_code == 204
        assert admin("GET", f"/v3/roles/{role['id']}").status_code == 404
        rows = admin("GET", f"/v3/role_assignments?role.id={role['id']}").json
        assert rows["role_assignments"] == []

    @pytest.mark.parametrize("actor, target", [("users", "projects"), ("groups", "projects"),
                                               ("users", "domains"), ("groups", "domains")])
    def test_grant_put_check_list_delete(self, env: IdentityEnv, admin: Api, actor: str,
                                         target: str) -> None:
        actor_id = (env.demo_user_id if actor == "users" else
                    admin("POST", "/v3/groups", {"group": {"name": "g"}}).json["group"]["id"])
        target_id = env.demo_project_id if target == "projects" else "default"
        reader = self.role_id(env, "reader")
        base = f"/v3/{target}/{target_id}/{actor}/{actor_id}/roles"
        check = admin("HEAD", f"{base}/{reader}")
        assert check.status_code == 404
        assert admin("GET", f"{base}/{reader}").json["error"]["message"] == (
            f"Could not find role assignment with role: {reader}, user or group: "
            f"{actor_id}, project, domain, or system: {target_id}.")
        assert admin("PUT", f"{base}/{reader}").status_code == 204
        assert admin("PUT", f"{base}/{reader}").status_code == 204  # idempotent
        assert admin("HEAD", f"{base}/{reader}").status_code == 204
        listed = admin("GET", base).json
        assert "reader" in [r["name"] for r in listed["roles"]]
        assert listed["links"]["self"] == V3 + base[3:]
        assert admin("PUT", f"{base}/nope").status_code == 404
        assert admin("PUT", f"/v3/{target}/nope/{actor}/{actor_id}/roles/{reader}") \
            .status_code == 404
        assert admin("DELETE", f"{base}/{reader}").status_code == 204
        assert admin("DELETE", f"{base}/{reader}").status_code == 404
        assert admin("HEAD", f"{base}/{reader}").status_code == 404

    def test_role_assignments_list(self, env: IdentityEnv, admin: Api) -> None:
        member, reader = self.role_id(env, "member"), self.role_id(env, "reader")
        gid = admin("POST", "/v3/groups", {"group": {"name": "readers"}}).json["group"]["id"]
        admin("PUT", f"/v3/groups/{gid}/users/{env.demo_user_id}")
        admin("PUT", f"/v3/projects/{env.demo_project_id}/groups/{gid}/roles/{reader}")
        admin("PUT", f"/v3/domains/default/users/{env.demo_user_id}/roles/{reader}")

        def rows(query: str) -> list[dict[str, Any]]:
            resp = admin("GET", f"/v3/role_assignments{query}")
            assert resp.status_code == 200, resp.json
            assert resp.json["links"]["self"] == f"{V3}/role_assignments"
            return resp.json["role_assignments"]

        demo_project = rows(f"?scope.project.id={env.demo_project_id}")
        assert {(("user", r["user"]["id"]) if "user" in r else ("group", r["group"]["id"]),
                 r["role"]["id"]) for r in demo_project} == {
            (("user", env.demo_user_id), member), (("group", gid), reader)}
        direct = [r for r in demo_project if "user" in r][0]
        assert direct == {
            "user": {"id": env.demo_user_id}, "role": {"id": member},
            "scope": {"project": {"id": env.demo_project_id}},
            "links": {"assignment": f"{V3}/projects/{env.demo_project_id}/users/"
                                    f"{env.demo_user_id}/roles/{member}"}}
        effective = rows(f"?scope.project.id={env.demo_project_id}&effective&include_names")
        assert sorted((r["user"]["name"], r["role"]["name"]) for r in effective) == [
            ("demo", "member"), ("demo", "reader")]
        via_group = [r for r in effective if r["role"]["name"] == "reader"][0]
        assert via_group == {
            "user": {"id": env.demo_user_id, "name": "demo",
                     "domain": {"id": "default", "name": "Default"}},
            "role": {"id": reader, "name": "reader"},
            "scope": {"project": {"id": env.demo_project_id, "name": "demo",
                                  "domain": {"id": "default", "name": "Default"}}},
            "links": {"assignment": f"{V3}/projects/{env.demo_project_id}/groups/{gid}/"
                                    f"roles/{reader}",
                      "membership": f"{V3}/groups/{gid}/users/{env.demo_user_id}"}}
        assert [r["scope"] for r in rows("?scope.domain.id=default")] == [
            {"domain": {"id": "default"}}]
        assert len(rows(f"?user.id={env.demo_user_id}")) == 2  # direct only
        assert len(rows(f"?user.id={env.demo_user_id}&effective=true")) == 3
        assert len(rows(f"?user.id={env.demo_user_id}&effective=false")) == 2
        assert [r["group"]["id"] for r in rows(f"?group.id={gid}")] == [gid]
        assert len(rows(f"?role.id={reader}")) == 3  # group, domain, admin's
        admin_rows = rows(f"?user.id={env.admin.user_id}&include_names=1")
        assert sorted(r["role"]["name"] for r in admin_rows) == ["admin", "member", "reader"]
        for bad in (f"?user.id=x&group.id={gid}", "?scope.domain.id=d&scope.project.id=p",
                    f"?group.id={gid}&effective"):
            assert admin("GET", f"/v3/role_assignments{bad}").status_code == 400

    # -- domain scope -----------------------------------------------------------------
    def test_domain_scoped_tokens(self, env: IdentityEnv, admin: Api) -> None:
        gid = admin("POST", "/v3/groups", {"group": {"name": "dadmins"}}).json["group"]["id"]
        admin("PUT", f"/v3/groups/{gid}/users/{env.demo_user_id}")
        scope = {"domain": {"name": "Default"}}
        issue(env, password_auth("demo", DEMO_PASSWORD, scope), 401)
        admin("PUT", f"/v3/domains/default/groups/{gid}/roles/{self.role_id(env, 'reader')}")
        resp = issue(env, password_auth("demo", DEMO_PASSWORD, scope))
        body = resp.json["token"]
        assert body["domain"] == {"id": "default", "name": "Default"}
        assert [r["name"] for r in body["roles"]] == ["reader"]
        assert "project" not in body and "catalog" in body
        token = resp.headers["X-Subject-Token"]
        demo = Api(env.client, token)
        assert demo("GET", "/v3/auth/catalog").status_code == 200
        assert [d["id"] for d in demo("GET", "/v3/auth/domains").json["domains"]] \
            == ["default"]
        assert env.provider.validate(token).domain_id == "default"
        admin("PATCH", "/v3/domains/default", {"domain": {"enabled": False}})
        assert not works(env.client, token)

    # -- application credentials --------------------------------------------------------
    def create_app_cred(self, api: Api, user_id: str, **values: Any) -> Any:
        return api("POST", f"/v3/users/{user_id}/application_credentials",
                   {"application_credential": values})

    def test_application_credentials(self, env: IdentityEnv, demo: Api, admin: Api) -> None:
        uid = env.demo_user_id
        admin("PUT", f"/v3/projects/{env.demo_project_id}/users/{uid}/roles/"
                     f"{self.role_id(env, 'reader')}")
        demo = Api(env.client, env.token("demo", DEMO_PASSWORD, "demo"))
        created = self.create_app_cred(demo, uid, name="backup", description="nightly",
                                       roles=[{"name": "reader"}])
        assert created.status_code == 201, created.json
        cred = created.json["application_credential"]
        secret = cred.pop("secret")
        assert len(secret) == 86
        assert cred == {
            "id": cred["id"], "name": "backup", "description": "nightly", "expires_at": None,
            "project_id": env.demo_project_id, "unrestricted": False, "access_rules": [],
            "roles": [{"id": self.role_id(env, "reader"), "name": "reader",
                       "domain_id": None}],
            "links": {"self": f"{V3}/users/{uid}/application_credentials/{cred['id']}"}}
        with env.db.read() as s:
            stored = s.get(ApplicationCredential, cred["id"]).secret_hash
        assert stored.startswith("scrypt$") and secret not in stored
        listed = demo("GET", f"/v3/users/{uid}/application_credentials").json
        assert listed["application_credentials"] == [cred]  # never the secret again
        assert demo("GET", f"/v3/users/{uid}/application_credentials/{cred['id']}") \
            .json["application_credential"] == cred
        assert self.create_app_cred(demo, uid, name="backup").status_code == 409
        bad_role = self.create_app_cred(demo, uid, name="x", roles=[{"name": "admin"}])
        assert bad_role.status_code == 400
        assert "unassigned role" in bad_role.json["error"]["message"]
        assert self.create_app_cred(demo, uid, name="old",
                                    expires_at="2001-01-01T00:00:00").status_code == 400
        assert self.create_app_cred(demo, env.admin.user_id, name="x").status_code == 403

        # Authenticate with it, by id and by name + user.
        by_id = issue(env, {"auth": {"identity": {
            "methods": ["application_credential"],
            "application_credential": {"id": cred["id"], "secret": secret}}}})
        body = by_id.json["token"]
        assert body["methods"] == ["application_credential"]
        assert body["project"]["id"] == env.demo_project_id
        assert [r["name"] for r in body["roles"]] == ["reader"]
        assert body["application_credential"] == {"id": cred["id"], "name": "backup",
                                                  "restricted": True}
        issue(env, {"auth": {"identity": {
            "methods": ["application_credential"],
            "application_credential": {"name": "backup", "secret": secret,
                                       "user": {"name": "demo",
                                                "domain": {"name": "Default"}}}}}})
        for wrong in ({"id": cred["id"], "secret": "nope"}, {"id": "nope", "secret": secret}):
            issue(env, {"auth": {"identity": {"methods": ["application_credential"],
                                              "application_credential": wrong}}}, 401)
        token = by_id.headers["X-Subject-Token"]
        restricted = Api(env.client, token)
        assert restricted("GET", f"/v3/users/{uid}/application_credentials").status_code \
            == 200
        refused = self.create_app_cred(restricted, uid, name="child")
        assert refused.status_code == 403
        assert refused.json["error"]["message"] == (
            "You are not authorized to perform the requested action: Using method "
            "'application_credential' is not allowed for managing additional application "
            "credentials.")
        assert restricted("DELETE", f"/v3/users/{uid}/application_credentials/"
                                    f"{cred['id']}").status_code == 403
        # Unrestricted ones may create more.
        free = self.create_app_cred(demo, uid, name="free", unrestricted=True).json
        free_token = issue(env, {"auth": {"identity": {
            "methods": ["application_credential"], "application_credential": {
                "id": free["application_credential"]["id"],
                "secret": free["application_credential"]["secret"]}}}}
        ).headers["X-Subject-Token"]
        assert self.create_app_cred(Api(env.client, free_token), uid,
                                    name="child").status_code == 201
        # Someone else's: 403 (the owner comes from the credential, not the path).
        other = self.make_user(admin, "mallory")
        admin("PUT", f"/v3/projects/{env.demo_project_id}/users/{other['id']}/roles/"
                     f"{self.role_id(env, 'member')}")
        mallory = Api(env.client, env.token("mallory", "pw", "demo"))
        assert mallory("GET", f"/v3/users/{uid}/application_credentials").status_code == 403
        assert mallory("GET", f"/v3/users/{other['id']}/application_credentials/"
                              f"{cred['id']}").status_code == 403
        assert admin("GET", f"/v3/users/{uid}/application_credentials/{cred['id']}") \
            .status_code == 200
        # Deleting it ends its tokens at once, everywhere.
        elsewhere = other_process(env)
        assert works(elsewhere, token)
        assert demo("DELETE", f"/v3/users/{uid}/application_credentials/{cred['id']}") \
            .status_code == 204
        assert not works(elsewhere, token)
        assert demo("GET", f"/v3/users/{uid}/application_credentials/{cred['id']}") \
            .status_code == 404

    def test_application_credential_tokens_follow_the_user(self, env: IdentityEnv,
                                                          demo: Api, admin: Api) -> None:
        uid = env.demo_user_id
        cred = self.create_app_cred(demo, uid, name="ci").json["application_credential"]
        auth = {"auth": {"identity": {"methods": ["application_credential"],
                                      "application_credential": {
                                          "id": cred["id"], "secret": cred["secret"]}}}}
        token = issue(env, auth).headers["X-Subject-Token"]
        assert works(env.client, token)
        # Losing the role the credential delegates ends it; so does disabling the user.
        member = self.role_id(env, "member")
        admin("DELETE", f"/v3/projects/{env.demo_project_id}/users/{uid}/roles/{member}")
        assert not works(env.client, token)
        issue(env, auth, 401)
        admin("PUT", f"/v3/projects/{env.demo_project_id}/users/{uid}/roles/{member}")
        token = issue(env, auth).headers["X-Subject-Token"]
        admin("PATCH", f"/v3/users/{uid}", {"user": {"enabled": False}})
        assert not works(env.client, token)
        issue(env, auth, 401)
        # An expired credential neither authenticates nor keeps its tokens.
        admin("PATCH", f"/v3/users/{uid}", {"user": {"enabled": True}})
        token = issue(env, auth).headers["X-Subject-Token"]
        with env.db.write() as s:
            s.get(ApplicationCredential, cred["id"]).expires_at = (
                datetime.datetime.utcnow() - datetime.timedelta(seconds=1))
            changes.bump(s)
        assert not works(env.client, token)
        issue(env, auth, 401)

    # -- tokens stop at once ------------------------------------------------------------
    def test_existing_tokens_stop_at_once_everywhere(self, env: IdentityEnv,
                                                     admin: Api) -> None:
        elsewhere = other_process(env)

        def demo_token() -> str:
            token = env.token("demo", DEMO_PASSWORD, "demo")
            assert works(elsewhere, token)  # cached over there now
            return token

        uid, pid = env.demo_user_id, env.demo_project_id
        token = demo_token()
        admin("PATCH", f"/v3/users/{uid}", {"user": {"enabled": False}})
        assert not works(elsewhere, token)
        admin("PATCH", f"/v3/users/{uid}", {"user": {"enabled": True}})
        assert not works(elsewhere, token)  # re-enabling does not revive it

        token = demo_token()
        admin("PATCH", f"/v3/projects/{pid}", {"project": {"enabled": False}})
        assert not works(elsewhere, token)
        admin("PATCH", f"/v3/projects/{pid}", {"project": {"enabled": True}})
        assert not works(elsewhere, token)

        token = demo_token()
        revoke = env.client.delete("/v3/auth/tokens", headers={
            "X-Auth-Token": admin.token, "X-Subject-Token": token})
        assert revoke.status_code == 204
        assert not works(elsewhere, token)

        token = demo_token()
        admin("DELETE", f"/v3/projects/{pid}/users/{uid}/roles/{self.role_id(env, 'member')}")
        assert not works(elsewhere, token)

        admin("PUT", f"/v3/projects/{pid}/users/{uid}/roles/{self.role_id(env, 'member')}")
        token = demo_token()
        admin("DELETE", f"/v3/users/{uid}")
        assert not works(elsewhere, token)

    def test_rescoping_needs_a_live_token(self, env: IdentityEnv, admin: Api) -> None:
        unscoped = env.token("demo", DEMO_PASSWORD, None)
        rescope = {"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped}},
                            "scope": {"project": {"id": env.demo_project_id}}}}
        issue(env, rescope)
        backend.set_password(env.db, env.demo_user_id, "changed")
        issue(env, rescope, 401)

    # -- policy -------------------------------------------------------------------------
    @pytest.mark.parametrize("method, path, body", [
        ("GET", "/v3/domains", None),
        ("POST", "/v3/domains", {"domain": {"name": "x"}}),
        ("PATCH", "/v3/domains/default", {"domain": {"enabled": False}}),
        ("POST", "/v3/projects", {"project": {"name": "x"}}),
        ("DELETE", "/v3/projects/{project}", None),
        ("POST", "/v3/users", {"user": {"name": "x"}}),
        ("PATCH", "/v3/users/{user}", {"user": {"name": "boss"}}),
        ("DELETE", "/v3/users/{user}", None),
        ("GET", "/v3/groups", None),
        ("POST", "/v3/groups", {"group": {"name": "x"}}),
        ("POST", "/v3/roles", {"role": {"name": "x"}}),
        ("PUT", "/v3/projects/{project}/users/{user}/roles/{admin_role}", None),
        ("GET", "/v3/role_assignments", None),
        ("GET", "/v3/users", None),
    ])
    def test_members_are_refused_in_keystones_format(self, env: IdentityEnv, demo: Api,
                                                     method: str, path: str,
                                                     body: Any) -> None:
        path = path.format(project=env.demo_project_id, user=env.demo_user_id,
                           admin_role=env.admin.role_ids["admin"])
        resp = demo(method, path, body)
        assert resp.status_code == 403, resp.get_data(as_text=True)
        assert resp.json["error"]["code"] == 403
        assert resp.json["error"]["title"] == "Forbidden"
        assert resp.json["error"]["message"].startswith(
            "You are not authorized to perform the requested action: identity:")

    def test_members_may_read_themselves(self, env: IdentityEnv, demo: Api) -> None:
        uid = env.demo_user_id
        assert demo("GET", f"/v3/users/{uid}").status_code == 200
        assert [p["id"] for p in demo("GET", f"/v3/users/{uid}/projects").json["projects"]] \
            == [env.demo_project_id]
        assert [p["id"] for p in demo("GET", "/v3/auth/projects").json["projects"]] \
            == [env.demo_project_id]
        assert demo("GET", f"/v3/users/{uid}/groups").json["groups"] == []
        assert demo("GET", f"/v3/users/{uid}/application_credentials").status_code == 200

    def test_malformed_bodies_are_400(self, env: IdentityEnv, admin: Api) -> None:
        for path, body in (("/v3/users", {"user": {"name": ""}}),
                           ("/v3/users", {"name": "x"}),
                           ("/v3/domains", {"domain": {"name": "x", "enabled": "yes"}}),
                           ("/v3/groups", {"group": {"name": 5}}),
                           ("/v3/roles", {"role": {}})):
            resp = admin("POST", path, body)
            assert resp.status_code == 400, (path, resp.json)
            assert resp.json["error"]["title"] == "Bad Request"


class TestManagementOnSQLite(_Scenarios):
    @pytest.fixture
    def env(self, tmp_path: Any, sqlite_url: str) -> Iterator[IdentityEnv]:
        yield from build_env(tmp_path, sqlite_url)


class TestManagementOnServerDatabases(_Scenarios):
    """The same scenarios on PostgreSQL and MariaDB (skipped when unreachable)."""

    @pytest.fixture
    def env(self, tmp_path: Any, empty_server_database: str) -> Iterator[IdentityEnv]:
        yield from build_env(tmp_path, empty_server_database)


# -- the change counter -------------------------------------------------------------------

def test_change_counter_shares_reads_between_concurrent_requests(
        sqlite_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = changes.ChangeCounter(sqlite_db)
    assert counter.current() == 0
    with sqlite_db.write() as s:
        changes.bump(s)
    assert counter.current() == 1  # a new request always reads anew
    real_read = counter._read
    gate = threading.Event()

    def slow_read() -> int:
        gate.wait(5)
        return real_read()

    monkeypatch.setattr(counter, "_read", slow_read)
    before = counter.reads
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(counter.current()))
               for _ in range(20)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    with sqlite_db.write() as s:  # committed while the first read is in flight
        changes.bump(s)
    gate.set()
    for t in threads:
        t.join(5)
    # 20 requests, at most two reads: the one in flight and one that started
    # after the others arrived; those that arrived after the bump see it.
    assert len(results) == 20 and counter.reads - before <= 2
    assert results.count(2) >= 19


def test_bump_creates_the_counter_row(sqlite_db: Database) -> None:
    with sqlite_db.write() as s:
        s.execute(sa.delete(IdentityState))
    assert changes.read(sqlite_db) == 0
    with sqlite_db.write() as s:
        changes.bump(s)
    with sqlite_db.write() as s:
        changes.bump(s)
    assert changes.read(sqlite_db) == 2


def test_token_payloads(tmp_path: Any) -> None:
    provider = TokenProvider(str(tmp_path / "k"))
    uid, pid = "a" * 32, "b" * 32
    token, data = provider.issue(uid, pid, ["password"], user_generation=3,
                                 scope_generation=2)
    assert len(token) < 255
    assert provider.validate(token) == data
    assert (data.user_generation, data.scope_generation) == (3, 2)
    token, data = provider.issue(uid, None, ["password"], domain_id="default")
    back = provider.validate(token)
    assert (back.project_id, back.domain_id, back.is_scoped) == (None, "default", True)
    token, data = provider.issue(uid, pid, ["application_credential"], app_cred_id="c" * 32)
    assert provider.validate(token).app_cred_id == "c" * 32
    with pytest.raises(ValueError):
        provider.issue(uid, pid, ["password"], domain_id="default")


def test_version_1_tokens_still_validate(tmp_path: Any) -> None:
    import orjson

    provider = TokenProvider(str(tmp_path / "k"))
    now = int(time.time())
    raw = provider._fernet.encrypt_at_time(orjson.dumps(
        [1, "u1", "p1", 1, "A" * 22, None, now + 60]), now).rstrip(b"=").decode()
    data = provider.validate(raw)
    assert (data.user_id, data.project_id, data.user_generation, data.domain_id) == (
        "u1", "p1", 0, None)


