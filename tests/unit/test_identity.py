"""Identity v3: passwords, Fernet tokens, the authenticator and the Keystone API.

API tests go through werkzeug's test client against a real database: SQLite
in tmp_path, and again on PostgreSQL and MariaDB when they are reachable
(``TestIdentityOnServerDatabases``).
"""
from __future__ import annotations

import dataclasses
import os
import stat
import uuid
from typing import Any, Iterator

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from werkzeug.test import Client, EnvironBuilder

import stratus.conf
from stratus import exception
from stratus.api.wsgi import Request
from stratus.db.models import RevokedToken, RoleAssignment
from stratus.db.session import Database
from stratus.identity import backend, passwords
from stratus.identity.app import build_identity_app
from stratus.identity.auth import make_authenticator
from stratus.identity.service import (BootstrapResult, IdentityService, bootstrap,
                                      build_catalog)
from stratus.identity.tokens import TokenProvider

PUBLIC_URL = "http://stratus.test:8774"
ADMIN_PASSWORD = "s3cret-admin"
DEMO_PASSWORD = "s3cret-demo"


# -- the identity environment -------------------------------------------------------

def make_conf(tmp_path: Any, db_url: str) -> Any:
    return stratus.conf.load(None, {("DEFAULT", "state_path"): str(tmp_path),
                                    ("database", "connection"): db_url,
                                    ("api", "public_url"): PUBLIC_URL})


@dataclasses.dataclass
class IdentityEnv:
    conf: Any
    db: Database
    provider: TokenProvider
    client: Client
    admin: BootstrapResult
    demo_user_id: str
    demo_project_id: str

    def auth_body(self, username: str = "admin", password: str = ADMIN_PASSWORD,
                  project: str | None = "admin", **extra: Any) -> dict[str, Any]:
        auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {
            "user": {"name": username, "domain": {"name": "Default"}, "password": password}}}}
        if project is not None:
            auth["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
        auth.update(extra)
        return {"auth": auth}

    def token(self, username: str = "admin", password: str = ADMIN_PASSWORD,
              project: str | None = "admin") -> str:
        resp = self.client.post("/v3/auth/tokens",
                                json=self.auth_body(username, password, project))
        assert resp.status_code == 201, resp.get_data(as_text=True)
        return resp.headers["X-Subject-Token"]


def build_env(tmp_path: Any, db_url: str) -> Iterator[IdentityEnv]:
    conf = make_conf(tmp_path, db_url)
    db = Database(db_url)
    try:
        admin = bootstrap(db, password=ADMIN_PASSWORD)
        demo_project = backend.create_project(db, "demo", description="Demo project")
        demo = backend.create_user(db, "demo", DEMO_PASSWORD, email="demo@example.org")
        backend.grant_role(db, demo["id"], demo_project["id"], "member")
        provider = TokenProvider(conf.identity.key_file, db, revocation_cache_ttl=0)
        app = build_identity_app(conf, db, provider,
                                 authenticate=make_authenticator(provider, db, cache_ttl=0))
        yield IdentityEnv(conf=conf, db=db, provider=provider, client=Client(app),
                          admin=admin, demo_user_id=demo["id"],
                          demo_project_id=demo_project["id"])
    finally:
        db.dispose()


# -- units without a database ---------------------------------------------------------

class TestPasswords:
    def test_hash_is_salted_self_describing_and_verifies(self) -> None:
        first = passwords.hash_password("correct horse")
        second = passwords.hash_password("correct horse")
        assert first != second
        assert first.startswith("scrypt$256$8$1$")
        assert passwords.verify_password("correct horse", first)
        assert passwords.verify_password("correct horse", second)
        assert not passwords.verify_password("correct horsE", first)

    def test_cost_travels_with_the_hash(self, monkeypatch: pytest.MonkeyPatch) -> None:
        old = passwords.hash_password("pw")
        monkeypatch.setattr(passwords, "DEFAULT_N", 2 ** 9)
        new = passwords.hash_password("pw")
        assert new.startswith("scrypt$512$")
        assert passwords.verify_password("pw", old) and passwords.verify_password("pw", new)

    @pytest.mark.parametrize("stored", [None, "", "plain", "md5$x$y", "scrypt$a$b$c$d$e",
                                        "scrypt$3$8$1$AAAA$AAAA"])
    def test_missing_or_malformed_hash_never_matches(self, stored: str | None) -> None:
        assert not passwords.verify_password("pw", stored)


class TestTokenProvider:
    def test_key_file_created_0600_and_shared(self, tmp_path: Any) -> None:
        key_file = str(tmp_path / "keys" / "fernet.key")
        first = TokenProvider(key_file)
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
        token, data = first.issue("u1", "p1", ["password"])
        again = TokenProvider(key_file).validate(token)
        assert again == data
        assert (again.user_id, again.project_id, again.methods) == ("u1", "p1", ("password",))
        assert len(again.audit_id) == 22 and again.audit_ids == [again.audit_id]
        assert (again.expires_at - again.issued_at).total_seconds() == 3600

    def test_tokens_are_compact_and_carry_known_methods_only(self, tmp_path: Any) -> None:
        provider = TokenProvider(str(tmp_path / "k"))
        token, data = provider.issue(uuid.uuid4().hex, uuid.uuid4().hex,
                                     ["token", "password", "token"])
        assert len(token) < 255 and "=" not in token
        assert data.methods == ("password", "token") == provider.validate(token).methods
        with pytest.raises(ValueError):
            provider.issue("u1", None, ["totp"])

    def test_other_key_or_tampering_is_rejected(self, tmp_path: Any) -> None:
        provider = TokenProvider(str(tmp_path / "a.key"))
        token, _ = provider.issue("u1", None, ["password"])
        with pytest.raises(exception.NotAuthenticated):
            TokenProvider(str(tmp_path / "b.key")).validate(token)
        tampered = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
        for bad in (tampered, token[:40], "", "not a token", token + "!"):
            with pytest.raises(exception.NotAuthenticated):
                provider.validate(bad)

    def test_expiry(self, tmp_path: Any) -> None:
        now = [1_800_000_000.0]
        provider = TokenProvider(str(tmp_path / "k"), expiration=600, clock=lambda: now[0])
        token, data = provider.issue("u1", "p1", ["password"])
        now[0] += 599
        assert provider.validate(token).user_id == "u1"
        now[0] += 1
        with pytest.raises(exception.NotAuthenticated, match="expired"):
            provider.validate(token)

    def test_rotated_keys_validate_old_tokens(self, tmp_path: Any) -> None:
        key_file = tmp_path / "fernet.key"
        old = TokenProvider(str(key_file))
        token, _ = old.issue("u1", None, ["password"])
        key_file.write_bytes(Fernet.generate_key() + b"\n" + key_file.read_bytes())
        rotated = TokenProvider(str(key_file))
        assert rotated.validate(token).user_id == "u1"
        new_token, _ = rotated.issue("u2", None, ["password"])
        with pytest.raises(exception.NotAuthenticated):
            old.validate(new_token)

    def test_invalid_key_file_is_a_config_error(self, tmp_path: Any) -> None:
        key_file = tmp_path / "bad.key"
        key_file.write_text("not-a-fernet-key\n")
        with pytest.raises(exception.ConfigError):
            TokenProvider(str(key_file))


def test_catalog_layout() -> None:
    catalog = build_catalog("http://h:8774/", "RegionTwo")
    urls = {svc["type"]: {e["interface"]: e["url"] for e in svc["endpoints"]}
            for svc in catalog}
    assert urls == {
        "identity": dict.fromkeys(("public", "internal", "admin"), "http://h:8774/identity"),
        "compute": dict.fromkeys(("public", "internal", "admin"),
                                 "http://h:8774/compute/v2.1"),
        "image": dict.fromkeys(("public", "internal", "admin"), "http://h:8774/image"),
    }
    names = {svc["type"]: svc["name"] for svc in catalog}
    assert names == {"identity": "keystone", "compute": "nova", "image": "glance"}
    for svc in catalog:
        for endpoint in svc["endpoints"]:
            assert endpoint["region"] == endpoint["region_id"] == "RegionTwo"
    assert build_catalog("http://h:8774", "RegionTwo") == catalog  # ids are stable


def test_discovery_documents(tmp_path: Any) -> None:
    conf = make_conf(tmp_path, "sqlite://")
    db = Database("sqlite://")
    client = Client(build_identity_app(conf, db, TokenProvider(conf.identity.key_file)))
    for path in ("/", "/v3", "/v3/"):
        resp = client.get(path)
        version = (resp.json["versions"]["values"][0] if path == "/"
                   else resp.json["version"])
        assert resp.status_code == (300 if path == "/" else 200)
        assert version == {
            "id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": f"{PUBLIC_URL}/identity/v3/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.identity-v3+json"}]}
    resp = client.get("/v3/nowhere")
    assert resp.status_code == 404
    assert resp.json == {"error": {"code": 404, "title": "Not Found",
                                   "message": "The resource could not be found."}}


# -- the API on a database ------------------------------------------------------------

class _IdentityScenarios:
    """Tests that need a database; subclasses provide the ``env`` fixture."""

    def test_password_auth_project_scoped(self, env: IdentityEnv) -> None:
        resp = env.client.post("/v3/auth/tokens", json=env.auth_body())
        assert resp.status_code == 201
        token = resp.headers["X-Subject-Token"]
        body = resp.json["token"]
        assert set(body) == {"methods", "user", "audit_ids", "expires_at", "issued_at",
                             "project", "is_domain", "roles", "catalog"}
        assert body["methods"] == ["password"]
        assert body["user"] == {"id": env.admin.user_id, "name": "admin",
                                "domain": {"id": "default", "name": "Default"},
                                "password_expires_at": None}
        assert body["project"] == {"id": env.admin.project_id, "name": "admin",
                                   "domain": {"id": "default", "name": "Default"}}
        assert body["is_domain"] is False
        assert sorted(r["name"] for r in body["roles"]) == ["admin", "member", "reader"]
        assert {r["id"] for r in body["roles"]} == set(env.admin.role_ids.values())
        assert body["catalog"] == build_catalog(PUBLIC_URL, "RegionOne")
        assert body["expires_at"].endswith(".000000Z") and body["issued_at"].endswith("Z")
        data = env.provider.validate(token)
        assert body["audit_ids"] == [data.audit_id]
        assert (data.user_id, data.project_id) == (env.admin.user_id, env.admin.project_id)

    @pytest.mark.parametrize("user_ref, scope", [
        ({"name": "demo", "domain": {"id": "default"}},
         {"project": {"name": "demo", "domain": {"name": "Default"}}}),
        ({"name": "demo", "domain": {"name": "default"}}, None),
        ("by-id", "by-id"),
    ])
    def test_user_and_project_references(self, env: IdentityEnv, user_ref: Any,
                                         scope: Any) -> None:
        if user_ref == "by-id":
            user_ref = {"id": env.demo_user_id}
            scope = {"project": {"id": env.demo_project_id}}
        user_ref = dict(user_ref, password=DEMO_PASSWORD)
        auth: dict[str, Any] = {"identity": {"methods": ["password"],
                                             "password": {"user": user_ref}}}
        if scope is not None:
            auth["scope"] = scope
        resp = env.client.post("/v3/auth/tokens", json={"auth": auth})
        assert resp.status_code == 201, resp.json
        body = resp.json["token"]
        assert body["user"]["id"] == env.demo_user_id
        if scope is None:  # demo has no default project: unscoped
            assert "project" not in body and "catalog" not in body and "roles" not in body
        else:
            assert body["project"]["id"] == env.demo_project_id
            assert [r["name"] for r in body["roles"]] == ["member"]

    def test_default_project_and_explicit_unscoped(self, env: IdentityEnv) -> None:
        user = backend.create_user(env.db, "alice", "pw",
                                   default_project_id=env.demo_project_id)
        backend.grant_role(env.db, user["id"], env.demo_project_id, "reader")
        scoped = env.client.post("/v3/auth/tokens",
                                 json=env.auth_body("alice", "pw", project=None))
        assert scoped.json["token"]["project"]["id"] == env.demo_project_id
        unscoped = env.client.post("/v3/auth/tokens",
                                   json=env.auth_body("alice", "pw", project=None,
                                                      scope="unscoped"))
        assert unscoped.status_code == 201
        assert "project" not in unscoped.json["token"]
        assert env.provider.validate(unscoped.headers["X-Subject-Token"]).project_id is None

    def test_nocatalog(self, env: IdentityEnv) -> None:
        resp = env.client.post("/v3/auth/tokens?nocatalog", json=env.auth_body())
        assert resp.status_code == 201 and "catalog" not in resp.json["token"]
        token = resp.headers["X-Subject-Token"]
        headers = {"X-Auth-Token": token, "X-Subject-Token": token}
        assert "catalog" not in env.client.get("/v3/auth/tokens?nocatalog",
                                               headers=headers).json["token"]
        assert "catalog" in env.client.get("/v3/auth/tokens", headers=headers).json["token"]

    @pytest.mark.parametrize("username, password, project", [
        ("admin", "wrong", "admin"),
        ("nobody", ADMIN_PASSWORD, "admin"),
        ("demo", DEMO_PASSWORD, "admin"),        # no role on the project
        ("admin", ADMIN_PASSWORD, "no-such-project"),
    ])
    def test_bad_credentials_or_scope_are_401(self, env: IdentityEnv, username: str,
                                              password: str, project: str) -> None:
        resp = env.client.post("/v3/auth/tokens", json=env.auth_body(username, password,
                                                                     project))
        assert resp.status_code == 401
        assert resp.json["error"]["code"] == 401
        assert resp.json["error"]["title"] == "Unauthorized"
        assert "X-Subject-Token" not in resp.headers

    def test_disabled_user_cannot_authenticate(self, env: IdentityEnv) -> None:
        backend.set_user_enabled(env.db, env.demo_user_id, False)
        resp = env.client.post("/v3/auth/tokens",
                               json=env.auth_body("demo", DEMO_PASSWORD, "demo"))
        assert resp.status_code == 401

    @pytest.mark.parametrize("body", [
        {},
        {"auth": {}},
        {"auth": {"identity": {"methods": []}}},
        {"auth": {"identity": {"methods": ["password"]}}},
        {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "password": "x"}}}}},                     # no user domain
        {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": 5}}}}},
        {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "id": "x", "password": "x"}}}, "scope": "everything"}},
        ["not", "an", "object"],
    ])
    def test_malformed_requests_are_400(self, env: IdentityEnv, body: Any) -> None:
        resp = env.client.post("/v3/auth/tokens", json=body)
        assert resp.status_code == 400, resp.json
        assert resp.json["error"]["title"] == "Bad Request"
        assert resp.json["error"]["message"]

    def test_malformed_json_is_400(self, env: IdentityEnv) -> None:
        resp = env.client.post("/v3/auth/tokens", data=b"{nope",
                               content_type="application/json")
        assert resp.status_code == 400
        assert resp.json == {"error": {"code": 400, "title": "Bad Request",
                                       "message": "Malformed request body"}}

    def test_unsupported_method_is_401(self, env: IdentityEnv) -> None:
        resp = env.client.post("/v3/auth/tokens", json={"auth": {"identity": {
            "methods": ["totp"], "totp": {}}}})
        assert resp.status_code == 401

    def test_rescope_with_token_method(self, env: IdentityEnv) -> None:
        backend.grant_role(env.db, env.admin.user_id, env.demo_project_id, "member")
        unscoped = env.token(project=None)
        parent = env.provider.validate(unscoped)
        resp = env.client.post("/v3/auth/tokens", json={"auth": {
            "identity": {"methods": ["token"], "token": {"id": unscoped}},
            "scope": {"project": {"id": env.demo_project_id}}}})
        assert resp.status_code == 201
        body = resp.json["token"]
        assert body["methods"] == ["token"]
        assert body["project"]["id"] == env.demo_project_id
        assert body["audit_ids"][1] == parent.audit_id
        child = env.provider.validate(resp.headers["X-Subject-Token"])
        assert child.expires_at == parent.expires_at
        # Revoking the parent revokes what was derived from it.
        env.provider.revoke(parent)
        with pytest.raises(exception.NotAuthenticated):
            env.provider.validate(resp.headers["X-Subject-Token"])

    def test_validate_head_and_revoke(self, env: IdentityEnv) -> None:
        token = env.token()
        headers = {"X-Auth-Token": token, "X-Subject-Token": token}
        resp = env.client.get("/v3/auth/tokens", headers=headers)
        assert resp.status_code == 200
        assert resp.headers["X-Subject-Token"] == token
        assert resp.json["token"]["user"]["id"] == env.admin.user_id
        head = env.client.head("/v3/auth/tokens", headers=headers)
        assert head.status_code == 200 and head.get_data() == b""
        assert env.client.delete("/v3/auth/tokens", headers=headers).status_code == 204
        with env.db.read() as s:
            assert s.scalar(sa.select(sa.func.count()).select_from(RevokedToken)) == 1
        # The revoked token no longer authenticates, nor validates.
        assert env.client.get("/v3/auth/tokens", headers=headers).status_code == 401
        other = env.token()
        resp = env.client.get("/v3/auth/tokens",
                              headers={"X-Auth-Token": other, "X-Subject-Token": token})
        assert resp.status_code == 404
        assert resp.json["error"]["message"] == "Failed to validate token"

    def test_revocation_reaches_other_processes_at_once(self, env: IdentityEnv) -> None:
        token = env.token()
        elsewhere = TokenProvider(env.conf.identity.key_file, env.db,
                                  revocation_cache_ttl=3600)  # the TTL is ignored now
        assert elsewhere.validate(token)  # loads the (empty) revoked set
        env.provider.revoke(env.provider.validate(token))
        # The revocation bumped the change counter: the other process reloads.
        with pytest.raises(exception.NotAuthenticated, match="revoked"):
            elsewhere.validate(token)
        env.provider.revoke(env.provider.decode(token))  # revoking twice is harmless

    def test_validate_needs_admin_or_own_token(self, env: IdentityEnv) -> None:
        admin_token = env.token()
        demo_token = env.token("demo", DEMO_PASSWORD, "demo")
        own = env.client.get("/v3/auth/tokens", headers={"X-Auth-Token": demo_token,
                                                         "X-Subject-Token": demo_token})
        assert own.status_code == 200
        other = env.client.get("/v3/auth/tokens", headers={"X-Auth-Token": demo_token,
                                                           "X-Subject-Token": admin_token})
        assert other.status_code == 403 and other.json["error"]["title"] == "Forbidden"
        by_admin = env.client.get("/v3/auth/tokens", headers={
            "X-Auth-Token": admin_token, "X-Subject-Token": demo_token})
        assert by_admin.json["token"]["user"]["name"] == "demo"
        missing = env.client.get("/v3/auth/tokens", headers={"X-Auth-Token": admin_token})
        assert missing.status_code == 400

    def test_missing_or_bad_token_is_401(self, env: IdentityEnv) -> None:
        for headers in ({}, {"X-Auth-Token": "garbage"}):
            resp = env.client.get("/v3/auth/catalog", headers=headers)
            assert resp.status_code == 401
            assert resp.json["error"] == {
                "code": 401, "title": "Unauthorized",
                "message": "The request you have made requires authentication."}

    def test_catalog_and_projects(self, env: IdentityEnv) -> None:
        token = env.token("demo", DEMO_PASSWORD, "demo")
        catalog = env.client.get("/v3/auth/catalog", headers={"X-Auth-Token": token})
        assert catalog.status_code == 200
        assert catalog.json["catalog"] == build_catalog(PUBLIC_URL, "RegionOne")
        assert catalog.json["links"]["self"] == f"{PUBLIC_URL}/identity/v3/auth/catalog"
        projects = env.client.get("/v3/auth/projects", headers={"X-Auth-Token": token}).json
        assert [p["id"] for p in projects["projects"]] == [env.demo_project_id]
        assert projects["projects"][0] == {
            "id": env.demo_project_id, "name": "demo", "domain_id": "default",
            "description": "Demo project", "enabled": True, "parent_id": "default",
            "is_domain": False, "tags": [], "options": {},
            "links": {"self": f"{PUBLIC_URL}/identity/v3/projects/{env.demo_project_id}"}}
        unscoped = env.token("demo", DEMO_PASSWORD, None)
        assert env.client.get("/v3/auth/catalog",
                              headers={"X-Auth-Token": unscoped}).status_code == 403

    def test_users_projects_roles_policy(self, env: IdentityEnv) -> None:
        admin = {"X-Auth-Token": env.token()}
        demo = {"X-Auth-Token": env.token("demo", DEMO_PASSWORD, "demo")}
        me = env.client.get(f"/v3/users/{env.demo_user_id}", headers=demo)
        assert me.status_code == 200
        assert me.json["user"] == {
            "id": env.demo_user_id, "name": "demo", "domain_id": "default", "enabled": True,
            "password_expires_at": None, "options": {}, "email": "demo@example.org",
            "links": {"self": f"{PUBLIC_URL}/identity/v3/users/{env.demo_user_id}"}}
        assert "password_hash" not in me.get_data(as_text=True)
        assert env.client.get(f"/v3/users/{env.admin.user_id}",
                              headers=demo).status_code == 403
        assert env.client.get(f"/v3/users/{env.demo_user_id}",
                              headers=admin).status_code == 200
        assert env.client.get("/v3/users/nope", headers=admin).status_code == 404
        assert env.client.get(f"/v3/projects/{env.demo_project_id}",
                              headers=demo).json["project"]["name"] == "demo"
        assert env.client.get(f"/v3/projects/{env.admin.project_id}",
                              headers=demo).status_code == 403
        assert env.client.get("/v3/projects/nope", headers=admin).status_code == 404
        roles = env.client.get("/v3/roles", headers=admin).json["roles"]
        assert [r["name"] for r in roles] == ["admin", "member", "reader"]
        assert env.client.get("/v3/roles?name=member",
                              headers=admin).json["roles"][0]["name"] == "member"
        assert env.client.get("/v3/roles", headers=demo).status_code == 403
        assert env.client.get("/v3/projects", headers=demo).status_code == 403
        names = [p["name"] for p in env.client.get("/v3/projects",
                                                   headers=admin).json["projects"]]
        assert names == ["admin", "demo"]
        users = env.client.get("/v3/users?name=demo", headers=admin).json["users"]
        assert [u["id"] for u in users] == [env.demo_user_id]
        mine = env.client.get(f"/v3/users/{env.demo_user_id}/projects", headers=demo).json
        assert [p["name"] for p in mine["projects"]] == ["demo"]

    def test_bootstrap_is_idempotent(self, env: IdentityEnv) -> None:
        again = bootstrap(env.db, password="rotated", project_name="admin")  # CLI's keyword
        assert again == env.admin
        with env.db.read() as s:
            assert len(backend.list_users(s, name="admin")) == 1
            assert len(backend.roles_on_project(s, again.user_id, again.project_id)) == 3
        old = env.client.post("/v3/auth/tokens", json=env.auth_body())
        assert old.status_code == 401
        assert env.token(password="rotated")

    def test_authenticator_context_and_access_changes(self, env: IdentityEnv) -> None:
        authenticate = make_authenticator(env.provider, env.db, cache_ttl=0)
        token = env.token("demo", DEMO_PASSWORD, "demo")

        def request(tok: str | None) -> Request:
            headers = {"X-Auth-Token": tok} if tok else {}
            return Request(EnvironBuilder(headers=headers).get_environ())

        ctx = authenticate(request(token))
        assert ctx is not None
        assert (ctx.user_id, ctx.project_id) == (env.demo_user_id, env.demo_project_id)
        assert (ctx.user_name, ctx.project_name) == ("demo", "demo")
        assert ctx.roles == ["member"] and not ctx.is_admin and ctx.auth_token == token
        admin_ctx = authenticate(request(env.token()))
        assert admin_ctx is not None and admin_ctx.is_admin
        assert authenticate(request(None)) is None
        assert authenticate(request("bogus")) is None
        # Losing the role on the project ends access (TTL 0: at once).
        backend.revoke_role(env.db, env.demo_user_id, env.demo_project_id, "member")
        assert authenticate(request(token)) is None

    def test_authenticator_caches_lookups(self, env: IdentityEnv) -> None:
        authenticate = make_authenticator(env.provider, env.db, cache_ttl=60)
        token = env.token("demo", DEMO_PASSWORD, "demo")
        req = Request(EnvironBuilder(headers={"X-Auth-Token": token}).get_environ())
        assert authenticate(req) is not None
        loads = authenticate.principals.loads
        assert authenticate(req) is not None
        assert authenticate.principals.loads == loads  # cached while nothing changes
        # A change made behind the API's back (no counter bump) is not seen...
        with env.db.write() as s:
            s.execute(sa.delete(RoleAssignment).where(
                RoleAssignment.user_id == env.demo_user_id))
        assert authenticate(req) is not None
        # ...until any identity write bumps the counter (or the TTL passes).
        backend.ensure_role(env.db, "observer")
        assert authenticate(req) is None

    def test_service_authenticate_password(self, env: IdentityEnv) -> None:
        service = IdentityService.from_conf(env.conf, env.db, env.provider)
        issued = service.authenticate_password(username="demo", password=DEMO_PASSWORD,
                                               user_domain="Default", project_name="demo")
        assert issued.body["project"]["id"] == env.demo_project_id
        assert env.provider.validate(issued.token) == issued.data
        by_id = service.authenticate_password(user_id=env.demo_user_id,
                                              password=DEMO_PASSWORD,
                                              project_id=env.demo_project_id,
                                              include_catalog=False)
        assert "catalog" not in by_id.body
        with pytest.raises(exception.NotAuthenticated):
            service.authenticate_password(username="demo", password="no")


class TestIdentityOnSQLite(_IdentityScenarios):
    @pytest.fixture
    def env(self, tmp_path: Any, sqlite_url: str) -> Iterator[IdentityEnv]:
        yield from build_env(tmp_path, sqlite_url)


class TestIdentityOnServerDatabases(_IdentityScenarios):
    """The same tests on PostgreSQL and MariaDB (skipped when unreachable)."""

    @pytest.fixture
    def env(self, tmp_path: Any, empty_server_database: str) -> Iterator[IdentityEnv]:
        yield from build_env(tmp_path, empty_server_database)
