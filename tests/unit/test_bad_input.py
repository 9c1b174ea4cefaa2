"""Faults and bad input, on SQLite, PostgreSQL and MariaDB: broken tokens,
tokens of another project, SQL- and path-looking strings in every name and
filter, NUL characters, huge numbers, malformed and oversized bodies.

Each request must get a clean answer in its API's format (stored verbatim and
returned verbatim, or a 4xx), never a 500, and a refused request changes
nothing: every test compares the database (row counts of every table and the
rows of the tables no background task writes) and the state directory's
files before and after.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import threading
import time
from typing import Any, Iterator
from urllib.parse import quote

import pytest
from sqlalchemy import func, select, text
from waitress.server import create_server

from stratus.api.wsgi import BODY_TOO_LARGE, DEFAULT_MAX_BODY_SIZE, NUL_REFUSED
from stratus.db.models import Base
from stratus.identity.tokens import TokenProvider
from tests import dbs
from tests.cloud import InProcessCloud
from tests.tenants import Tenants, cheap_hashing

C = "/compute/v2.1"
SQLISH = ["'; DROP TABLE instances; --", "' OR '1'='1", "%", "_", "\\", "a%b_c\\d",
          "x'); DELETE FROM users; --"]
PATHISH = ["../../etc/passwd", "%2e%2e/", "..\\..\\boot.ini", "..", "/etc/shadow"]
OTHER = ["名前-ü", 'quote"d', "<b>bold</b>", "😀 emoji"]
NASTY = SQLISH + PATHISH + OTHER
# Nova's ``format: name`` takes the Basic Multilingual Plane only.
NOT_A_NOVA_NAME = {"😀 emoji"}
NAME_MESSAGE = ("An invalid 'name' value was provided. The name must be: printable "
                "characters. Can not start or end with whitespace.")
# Tables no background task writes: their rows must be identical after a refusal.
QUIET_TABLES = ("domains", "flavors", "identity_groups", "images", "key_pairs", "projects",
                "roles", "users", "application_credentials", "flavor_extra_specs",
                "flavor_projects", "image_members", "instance_metadata", "role_assignments",
                "role_grants", "user_group_memberships", "revoked_tokens")
# Bookkeeping, not state a user can see: a quota lock row is made on first use.
IGNORED_TABLES = ("quota_locks",)


@pytest.fixture(scope="module", params=dbs.BACKENDS)
def env(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[dict[str, Any]]:
    if not dbs.available(request.param):
        pytest.skip(f"{request.param} is not reachable")
    tmp = tmp_path_factory.mktemp(request.param)
    with cheap_hashing(), dbs.scratch_database(request.param, str(tmp)) as url:
        cloud = InProcessCloud(tmp, db_url=url)
        try:
            t = Tenants(cloud)
            # The name tests create more servers than Nova's default quota allows.
            resp = cloud.compute("PUT", f"/os-quota-sets/{t.project_ids['proj-a']}",
                                 {"quota_set": {"instances": -1, "cores": -1, "ram": -1}})
            assert resp.status_code == 200, resp.get_data(as_text=True)
            public = t.image("admin", "public-cirros", visibility="public")
            yield {"cloud": cloud, "t": t, "public": public, "state": tmp / "state",
                   "a_vm": t.boot("a-member", "a-vm", public),
                   "b_vm": t.boot("b-member", "b-vm", public),
                   "b_image": t.image("b-member", "b-private"),
                   "backend": request.param}
        finally:
            cloud.close()


# -- what "nothing changed" means ---------------------------------------------------------

def snapshot(env: dict[str, Any]) -> dict[str, Any]:
    """Row counts of every table, the rows of the quiet tables, the instances'
    names and states, and the files under the state directory (but the
    database's own)."""
    db = env["cloud"].db
    state: dict[str, Any] = {}
    with db.read() as s:
        for table in Base.metadata.sorted_tables:
            if table.name in IGNORED_TABLES:
                continue
            state[f"count:{table.name}"] = s.scalar(select(func.count()).select_from(table))
            if table.name in QUIET_TABLES:
                rows = s.execute(select(table)).all()
                state[table.name] = sorted(repr(tuple(r)) for r in rows)
        state["instances"] = sorted(repr(tuple(r)) for r in s.execute(text(
            "SELECT uuid, display_name, vm_state, locked, deleted FROM instances")).all())
    root = env["state"]
    state["files"] = sorted(str(p.relative_to(root)) for p in root.rglob("*")
                            if "sqlite" not in p.name)
    return state


@pytest.fixture
def unchanged(env) -> Iterator[None]:
    """The test changes nothing at all."""
    before = snapshot(env)
    yield
    after = snapshot(env)
    assert after == before, {k: (before[k], after.get(k)) for k in before
                             if after.get(k) != before[k]}


def fault(resp: Any, code: int, api: str = "compute") -> str:
    """The error in the API's own format; returns its message."""
    assert resp.status_code == code, resp.get_data(as_text=True)
    body = resp.get_json()
    if api == "compute":
        names = {400: "badRequest", 401: "unauthorized", 403: "forbidden",
                 404: "itemNotFound", 409: "conflictingRequest", 413: "overLimit"}
        assert list(body) == [names[code]] and body[names[code]]["code"] == code, body
        return body[names[code]]["message"]
    if api == "identity":
        assert set(body) == {"error"} and body["error"]["code"] == code, body
        return body["error"]["message"]
    assert body["code"].startswith(str(code)), body  # Glance
    return body["message"]


def no_500(resp: Any) -> Any:
    assert resp.status_code < 500, resp.get_data(as_text=True)
    assert resp.status_code in (200, 201, 202, 204) or resp.get_json() is not None
    return resp


def enc(value: str) -> str:
    return quote(value, safe="")


# -- tokens --------------------------------------------------------------------------------

def _probe_401(env: dict[str, Any], token: str) -> None:
    """Every API refuses ``token`` (401 in its format) and a write with it
    changes nothing."""
    cloud = env["cloud"]
    headers = {"X-Auth-Token": token}
    fault(cloud.client.get(f"{C}/servers", headers=headers), 401)
    fault(cloud.client.post(f"{C}/servers", headers=headers, json={"server": {
        "name": "nope", "flavorRef": "1", "imageRef": env["public"]}}), 401)
    fault(cloud.client.delete(f"{C}/servers/{env['a_vm']['id']}", headers=headers), 401)
    fault(cloud.client.get("/image/v2/images", headers=headers), 401, "image")
    fault(cloud.client.post("/image/v2/images", headers=headers, json={"name": "x"}), 401,
          "image")
    fault(cloud.client.get("/identity/v3/projects", headers=headers), 401, "identity")
    fault(cloud.client.post("/identity/v3/projects", headers=headers,
                            json={"project": {"name": "x"}}), 401, "identity")
    # Validating it as a subject token with a good token: 404 (400 when empty), as Keystone.
    resp = cloud.client.get("/identity/v3/auth/tokens", headers={
        "X-Auth-Token": cloud.token(), "X-Subject-Token": token})
    assert resp.status_code in (400, 401, 404), resp.get_data(as_text=True)


def _flip(token: str, index: int) -> str:
    char = token[index]
    return token[:index] + ("A" if char != "A" else "B") + token[index + 1:]


def test_forged_tokens(env, unchanged):
    token = env["t"].token("a-member")
    forged = [_flip(token, len(token) // 2), _flip(token, len(token) - 2), _flip(token, 10),
              token[:-4], token + "AAAA", token.upper()]
    for bad in forged:
        assert bad != token
        _probe_401(env, bad)


def test_expired_token(env, unchanged):
    cloud, t = env["cloud"], env["t"]
    past = TokenProvider(cloud.conf.identity.key_file, clock=lambda: time.time() - 7200,
                         expiration=3600)
    user, project = t.user_ids["a-member"], t.project_ids["proj-a"]
    expired, _ = past.issue(user, project, ["password"])
    _probe_401(env, expired)
    # The same token, made unexpired, works: it is the expiry that is refused.
    fresh, _ = TokenProvider(cloud.conf.identity.key_file).issue(user, project, ["password"])
    assert cloud.compute("GET", "/servers", token=fresh).status_code == 200


def test_revoked_token(env):
    cloud = env["cloud"]
    resp = cloud.client.post("/identity/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "a-member", "domain": {"id": "default"}, "password": "pw-Tenant-1"}}},
        "scope": {"project": {"name": "proj-a", "domain": {"id": "default"}}}}})
    token = resp.headers["X-Subject-Token"]
    assert cloud.compute("GET", "/servers", token=token).status_code == 200
    resp = cloud.client.delete("/identity/v3/auth/tokens", headers={
        "X-Auth-Token": token, "X-Subject-Token": token})
    assert resp.status_code == 204
    before = snapshot(env)
    _probe_401(env, token)
    assert snapshot(env) == before


@pytest.mark.parametrize("token", [
    "", " ", "garbage", "gAAAAA", "gAAAAAB" + "A" * 200, "x" * 100_000,
    "é\xff", "null", "{}", "%00", "../../etc/passwd", "'; DROP TABLE users; --",
], ids=["empty", "space", "garbage", "fernet-prefix", "fernet-shaped", "100kB", "latin1",
        "null", "json", "pct-nul", "path", "sql"])
def test_malformed_tokens(env, unchanged, token):
    _probe_401(env, token)


def test_no_token(env, unchanged):
    cloud = env["cloud"]
    fault(cloud.client.get(f"{C}/servers"), 401)
    fault(cloud.client.get("/image/v2/images"), 401, "image")
    fault(cloud.client.get("/identity/v3/projects"), 401, "identity")


def test_token_of_project_a_on_project_b(env, unchanged):
    t, b_vm, b_image = env["t"], env["b_vm"]["id"], env["b_image"]
    for method, suffix, body in [("GET", "", None), ("DELETE", "", None),
                                 ("PUT", "", {"server": {"name": "x"}}),
                                 ("POST", "/action", {"os-stop": None}),
                                 ("GET", "/metadata", None),
                                 ("POST", "/metadata", {"metadata": {"a": "b"}}),
                                 ("GET", "/os-instance-actions", None)]:
        fault(t.compute("a-member", method, f"/servers/{b_vm}{suffix}", body), 404)
    for method in ("GET", "DELETE"):
        fault(t.request("a-member", method, f"/image/v2/images/{b_image}"), 404, "image")
        fault(t.compute("a-member", method, f"/images/{b_image}"), 404)
    b_project = t.project_ids["proj-b"]
    fault(t.request("a-member", "GET", f"/identity/v3/projects/{b_project}"), 403, "identity")
    fault(t.request("a-member", "PATCH", f"/identity/v3/projects/{b_project}",
                    {"project": {"name": "mine"}}), 403, "identity")
    # A token scoped to A cannot be rescoped to B, where its user has no role.
    resp = env["cloud"].client.post("/identity/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["token"], "token": {"id": t.token("a-member")}},
        "scope": {"project": {"id": b_project}}}})
    fault(resp, 401, "identity")


# -- names and filters ---------------------------------------------------------------------

def test_server_names_are_stored_verbatim(env):
    t, cloud = env["t"], env["cloud"]
    before = snapshot(env)["count:instances"]
    created = {}
    for name in NASTY:
        resp = t.compute("a-member", "POST", "/servers", {"server": {
            "name": name, "flavorRef": "1", "imageRef": env["public"]}})
        if name in NOT_A_NOVA_NAME:
            assert fault(resp, 400) == NAME_MESSAGE
            continue
        assert resp.status_code == 202, (name, resp.get_data(as_text=True))
        created[name] = resp.get_json()["server"]["id"]
    try:
        assert snapshot(env)["count:instances"] == before + len(created)
        for name, sid in created.items():
            server = t.compute("a-member", "GET", f"/servers/{sid}").get_json()["server"]
            assert server["name"] == name
            # The name filter is a regex: the escaped name finds exactly it.
            resp = t.compute("a-member", "GET", f"/servers?name={enc('^' + re.escape(name) + '$')}")
            assert [s["id"] for s in resp.get_json()["servers"]] == [sid], name
            # The raw name as a regex: results or a clean 400, never an error.
            resp = no_500(t.compute("a-member", "GET", f"/servers/detail?name={enc(name)}"))
            if resp.status_code == 200:
                assert all(re.search(name, s["name"]) for s in resp.get_json()["servers"])
            else:
                assert "is not a 'regex'" in fault(resp, 400)
        # Renaming to each string is verbatim too.
        sid = created[NASTY[0]]
        for name in NASTY:
            resp = t.compute("a-member", "PUT", f"/servers/{sid}", {"server": {"name": name}})
            if name in NOT_A_NOVA_NAME:
                assert fault(resp, 400) == NAME_MESSAGE
                continue
            assert resp.status_code == 200 and resp.get_json()["server"]["name"] == name
    finally:
        for sid in created.values():
            assert t.compute("a-member", "DELETE", f"/servers/{sid}").status_code == 204
        for sid in created.values():
            cloud.wait_for(sid, "DELETED")


@pytest.mark.parametrize("regex", ["\\", "[", "(", "*", "+?", "(?P<", "a{2,1}"])
def test_invalid_name_regex_is_400(env, unchanged, regex):
    for path in ("/servers", "/servers/detail"):
        msg = fault(env["t"].compute("a-member", "GET", f"{path}?name={enc(regex)}"), 400)
        assert msg == f"Invalid input for query parameters name. Value: {regex}. " \
                      f"{regex!r} is not a 'regex'"


def test_server_list_filters(env, unchanged):
    t = env["t"]
    for value in NASTY + ["\u0000", "9" * 40, "-1"]:
        v = enc(value)
        for user in ("a-member", "admin"):
            extra = "all_tenants=1&" if user == "admin" else ""
            for key in ("image", "flavor", "status", "ip", "ip6", "reservation_id", "host",
                        "node", "project_id", "tenant_id", "user_id", "key_name", "locked",
                        "changes-since", "sort_key", "sort_dir", "limit", "marker",
                        "all_tenants", value):
                resp = no_500(t.compute(user, "GET", f"/servers/detail?{extra}{enc(key)}={v}"))
                if resp.status_code == 200:
                    ids = {s["id"] for s in resp.get_json()["servers"]}
                    if user != "admin":
                        assert env["b_vm"]["id"] not in ids
                else:
                    fault(resp, resp.status_code)
                    assert resp.status_code in (400, 403)


def test_metadata_keys_and_values(env):
    t, sid = env["t"], env["a_vm"]["id"]
    path = f"/servers/{sid}/metadata"
    start = t.compute("a-member", "GET", path).get_json()["metadata"]
    # Nova's key pattern: letters, digits, "-_:. ": anything else is a 400 ...
    for key in NASTY:
        if re.fullmatch(r"[a-zA-Z0-9-_:. ]{1,255}", key):
            continue
        before = snapshot(env)
        fault(t.compute("a-member", "POST", path, {"metadata": {key: "v"}}), 400)
        # (a key with a slash is another path once decoded: 404, or 400 for the body)
        resp = t.compute("a-member", "PUT", f"{path}/{enc(key)}", {"meta": {key: "v"}})
        fault(resp, 404 if "/" in key and resp.status_code == 404 else 400)
        resp = no_500(t.compute("a-member", "GET", f"{path}/{enc(key)}"))
        assert resp.status_code == 404
        resp = no_500(t.compute("a-member", "DELETE", f"{path}/{enc(key)}"))
        assert resp.status_code == 404
        assert snapshot(env) == before
    # ... and values are stored and returned verbatim.
    values = {f"k{i}": value for i, value in enumerate(NASTY)}
    values["_"] = "_"
    values[".."] = ".."
    resp = t.compute("a-member", "POST", path, {"metadata": values})
    assert resp.status_code == 200
    assert t.compute("a-member", "GET", path).get_json()["metadata"] == {**start, **values}
    for key in ("_", ".."):
        resp = t.compute("a-member", "GET", f"{path}/{enc(key)}")
        if resp.status_code == 200:  # ".." is a path segment a client may normalise
            assert resp.get_json() == {"meta": {key: key}}
    resp = t.compute("a-member", "PUT", path, {"metadata": start})
    assert resp.get_json()["metadata"] == start


def test_flavor_names_and_ids(env):
    t = env["t"]
    made = []
    try:
        for i, name in enumerate(NASTY):
            resp = t.compute("admin", "POST", "/flavors", {"flavor": {
                "name": name, "ram": 64, "vcpus": 1, "disk": 0, "id": f"bad-input-{i}"}})
            if name in NOT_A_NOVA_NAME:
                assert fault(resp, 400) == NAME_MESSAGE
                continue
            assert resp.status_code == 200, (name, resp.get_data(as_text=True))
            made.append(f"bad-input-{i}")
            assert resp.get_json()["flavor"]["name"] == name
            resp = t.compute("a-member", "GET", f"/flavors/bad-input-{i}")
            assert resp.get_json()["flavor"]["name"] == name
        before = snapshot(env)
        for flavor_id in NASTY:
            resp = t.compute("admin", "POST", "/flavors", {"flavor": {
                "name": f"id {flavor_id}", "ram": 64, "vcpus": 1, "disk": 0, "id": flavor_id}})
            if re.fullmatch(r"(?! )[a-zA-Z0-9. _-]+(?<! )", flavor_id):  # Nova's id pattern
                assert resp.status_code == 200, resp.get_data(as_text=True)
                assert resp.get_json()["flavor"]["id"] == flavor_id
                made.append(flavor_id)
                before = snapshot(env)
                continue
            assert "Invalid input for field/attribute id" in fault(resp, 400)
            no_500(t.compute("a-member", "GET", f"/flavors/{enc(flavor_id)}"))
            for key in ("minRam", "minDisk", "sort_key", "sort_dir", "marker", "is_public",
                        "limit"):
                no_500(t.compute("admin", "GET", f"/flavors/detail?{key}={enc(flavor_id)}"))
        assert snapshot(env) == before
    finally:
        for flavor_id in made:
            assert t.compute("admin", "DELETE", f"/flavors/{enc(flavor_id)}").status_code == 202


def test_keypair_names(env, unchanged):
    t = env["t"]
    for name in NASTY:
        resp = t.compute("a-member", "POST", "/os-keypairs", {"keypair": {"name": name}})
        if name == "_":
            assert resp.status_code == 200
            assert t.compute("a-member", "GET", "/os-keypairs/_").get_json()[
                "keypair"]["name"] == "_"
            assert t.compute("a-member", "DELETE", "/os-keypairs/_").status_code == 202
            continue
        msg = fault(resp, 400)
        assert msg in ("Keypair data is invalid: Keypair name contains unsafe characters",
                       NAME_MESSAGE)
        assert no_500(t.compute("a-member", "GET", f"/os-keypairs/{enc(name)}")).status_code \
            == 404
        no_500(t.compute("a-member", "DELETE", f"/os-keypairs/{enc(name)}"))
        no_500(t.compute("admin", "GET", f"/os-keypairs?user_id={enc(name)}"))


def test_image_names_tags_and_filters(env):
    t = env["t"]
    made = []
    try:
        for i, value in enumerate(NASTY):
            resp = t.request("a-member", "POST", "/image/v2/images", {
                "name": value, "tags": [value], "prop_x": value,
                "disk_format": "raw", "container_format": "bare"})
            assert resp.status_code == 201, (value, resp.get_data(as_text=True))
            image = resp.get_json()
            made.append(image["id"])
            assert (image["name"], image["tags"], image["prop_x"]) == (value, [value], value)
            for key in ("name", "tag", "prop_x"):
                resp = t.request("a-member", "GET", f"/image/v2/images?{key}={enc(value)}")
                assert [i["id"] for i in resp.get_json()["images"]] == [image["id"]], key
            resp = t.compute("a-member", "GET", f"/images?name={enc(value)}")
            assert [i["id"] for i in resp.get_json()["images"]] == [image["id"]]
            resp = t.compute("a-member", "GET", f"/images/detail?property-prop_x={enc(value)}")
            assert [i["id"] for i in resp.get_json()["images"]] == [image["id"]]
            # A tag added through the path is verbatim (or 404 for one with a slash).
            resp = no_500(t.request("a-member", "PUT",
                                    f"/image/v2/images/{image['id']}/tags/{enc(value + '2')}"))
            if resp.status_code == 204:
                tags = t.request("a-member", "GET", f"/image/v2/images/{image['id']}"
                                 ).get_json()["tags"]
                assert value + "2" in tags
        before = snapshot(env)
        for value in NASTY:
            for key in ("id", "status", "owner", "visibility", "sort_key", "sort", "sort_dir",
                        "marker", "limit", "member_status", "size_min", "created_at",
                        "disk_format", "protected", "os_hidden", value):
                no_500(t.request("a-member", "GET", f"/image/v2/images?{enc(key)}={enc(value)}"))
            for key in ("status", "changes-since", "server", "type", "minRam", "marker",
                        "limit"):
                no_500(t.compute("a-member", "GET", f"/images/detail?{key}={enc(value)}"))
            resp = t.request("a-member", "POST", "/image/v2/images", {"name": "x", "id": value})
            fault(resp, 400, "image")
            no_500(t.request("a-member", "GET", f"/image/v2/images/{enc(value)}"))
            no_500(t.compute("a-member", "GET", f"/images/{enc(value)}"))
        assert snapshot(env) == before
    finally:
        for image_id in made:
            assert t.request("a-member", "DELETE",
                             f"/image/v2/images/{image_id}").status_code == 204


def test_paths_touch_no_files(env, unchanged):
    """Image ids and keys that look like paths reach no file: a 4xx, and the
    state directory is as it was (the ``unchanged`` fixture compares it)."""
    t = env["t"]
    outside = env["state"].parent / "passwd"
    octet = {"Content-Type": "application/octet-stream"}
    for value in PATHISH + ["..%2f..%2fpasswd", "%2e%2e%2f%2e%2e%2fpasswd", "/passwd"]:
        for path in (f"/image/v2/images/{enc(value)}/file",
                     f"/image/v2/images/{quote(value, safe='/')}/file",
                     f"/image/v2/images/{enc(value)}"):
            resp = no_500(t.request("a-member", "PUT", path, raw=b"data", headers=octet))
            assert 400 <= resp.status_code < 500
            resp = no_500(t.request("a-member", "GET", path))
            assert 400 <= resp.status_code < 500
            resp = no_500(t.request("admin", "DELETE", path))
            assert 400 <= resp.status_code < 500
        resp = t.request("a-member", "POST", "/image/v2/images", {"name": "x", "id": value})
        assert 400 <= resp.status_code < 500
    assert not outside.exists()
    assert not os.path.exists("/etc/passwd.stratus")


def test_identity_names(env):
    t = env["t"]
    made: list[tuple[str, str]] = []
    try:
        for value in NASTY:
            for kind in ("projects", "users", "groups"):
                body: dict[str, Any] = {"name": value}
                if kind == "users":
                    body["password"] = value
                resp = t.request("admin", "POST", f"/identity/v3/{kind}", {kind[:-1]: body})
                assert resp.status_code == 201, (kind, value, resp.get_data(as_text=True))
                entity = resp.get_json()[kind[:-1]]
                made.append((kind, entity["id"]))
                assert entity["name"] == value
                resp = t.request("admin", "GET", f"/identity/v3/{kind}?name={enc(value)}")
                assert [e["id"] for e in resp.get_json()[kind]] == [entity["id"]]
        # A user with such a name and password can log in.
        resp = env["cloud"].client.post("/identity/v3/auth/tokens", json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": NASTY[0], "domain": {"id": "default"}, "password": NASTY[0]}}}}})
        assert resp.status_code == 201, resp.get_data(as_text=True)
        before = snapshot(env)
        for value in NASTY:
            for path in (f"/identity/v3/projects/{enc(value)}", f"/identity/v3/users/{enc(value)}",
                         f"/identity/v3/role_assignments?user.id={enc(value)}",
                         f"/identity/v3/role_assignments?scope.project.id={enc(value)}",
                         f"/identity/v3/projects?domain_id={enc(value)}"):
                no_500(t.request("admin", "GET", path))
            resp = env["cloud"].client.post("/identity/v3/auth/tokens", json={"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": value, "domain": {"name": value}, "password": value}}}}})
            fault(resp, 401, "identity")
        assert snapshot(env) == before
    finally:
        for kind, ident in made:
            assert t.request("admin", "DELETE", f"/identity/v3/{kind}/{ident}").status_code \
                == 204


def test_nul_characters_are_400_everywhere(env, unchanged):
    t, sid, image = env["t"], env["a_vm"]["id"], env["public"]
    calls = [
        ("a-member", "POST", f"{C}/servers", {"server": {"name": "a\u0000b", "flavorRef": "1",
                                                        "imageRef": image}}, "compute"),
        ("a-member", "POST", f"{C}/servers/{sid}/metadata", {"metadata": {"k": "\u0000"}},
         "compute"),
        ("a-member", "GET", f"{C}/servers?name=%00", None, "compute"),
        ("a-member", "GET", f"{C}/os-keypairs/%00", None, "compute"),
        ("admin", "GET", f"{C}/flavors/detail?marker=%00", None, "compute"),
        ("admin", "POST", f"{C}/flavors/1/action", {"addTenantAccess": {"tenant": "\u0000"}},
         "compute"),
        ("a-member", "POST", "/image/v2/images", {"name": "\u0000"}, "image"),
        ("a-member", "GET", "/image/v2/images?name=%00", None, "image"),
        ("admin", "POST", "/identity/v3/projects", {"project": {"name": "\u0000"}},
         "identity"),
        ("admin", "GET", "/identity/v3/users?name=%00", None, "identity"),
    ]
    for user, method, path, body, api in calls:
        assert fault(t.request(user, method, path, body), 400, api) == NUL_REFUSED, path
    # An escaped backslash followed by "u0000" is text, not a NUL.
    resp = t.request("a-member", "POST", f"{C}/servers/{sid}/metadata",
                     raw=b'{"metadata": {"k": "\\\\u0000"}}')
    assert resp.status_code == 200 and resp.get_json()["metadata"]["k"] == "\\u0000"
    resp = t.request("a-member", "DELETE", f"{C}/servers/{sid}/metadata/k")
    assert resp.status_code == 204


@pytest.mark.parametrize("value", [2 ** 31, 2 ** 63, 2 ** 64, 10 ** 30, -2 ** 63 - 1])
def test_huge_numbers(env, unchanged, value):
    t = env["t"]
    for path in (f"/flavors/detail?minRam={value}", f"/flavors/detail?minDisk={value}",
                 f"/images/detail?minRam={value}", f"/images/detail?minDisk={value}",
                 f"/servers/detail?limit={value}", f"/flavors?limit={value}"):
        resp = no_500(t.compute("a-member", "GET", path))
        assert resp.status_code in (200, 400), path
    for path in (f"/image/v2/images?size_min={value}", f"/image/v2/images?size_max={value}",
                 f"/image/v2/images?limit={value}"):
        resp = no_500(t.request("a-member", "GET", path))
        assert resp.status_code in (200, 400), path
    raw = json.dumps({"flavor": {"name": "huge", "ram": value, "vcpus": 1, "disk": 0}})
    fault(t.request("admin", "POST", f"{C}/flavors", raw=raw.encode()), 400)
    raw = json.dumps({"name": "huge", "min_ram": value})
    fault(t.request("a-member", "POST", "/image/v2/images", raw=raw.encode()), 400, "image")


# -- bodies --------------------------------------------------------------------------------

MALFORMED = [b"", b"{", b"null", b"[]", b"1", b'"text"', b"\xff\xfe\x00", b"[" * 5000,
             b'{"a":' * 3000, b"NaN", b'{"server": 1}']


@pytest.mark.parametrize("raw", MALFORMED, ids=[repr(r[:12]) for r in MALFORMED])
def test_malformed_bodies(env, unchanged, raw):
    t, sid = env["t"], env["a_vm"]["id"]
    for user, path, api in (("a-member", f"{C}/servers", "compute"),
                            ("a-member", f"{C}/servers/{sid}/action", "compute"),
                            ("a-member", f"{C}/servers/{sid}/metadata", "compute"),
                            ("a-member", f"{C}/os-keypairs", "compute"),
                            ("admin", f"{C}/flavors", "compute"),
                            ("a-member", "/image/v2/images", "image"),
                            ("admin", "/identity/v3/projects", "identity")):
        fault(t.request(user, "POST", path, raw=raw), 400, api)
    resp = env["cloud"].client.post("/identity/v3/auth/tokens", data=raw,
                                    content_type="application/json")
    assert resp.status_code in (400, 401), resp.get_data(as_text=True)
    if raw != b"[]":  # (an empty JSON patch is a valid one)
        patch = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
        resp = t.request("admin", "PATCH", f"/image/v2/images/{env['public']}", raw=raw,
                         headers=patch)
        fault(resp, 400, "image")


def big_json(size: int) -> bytes:
    """A valid server-create body of at least ``size`` bytes."""
    return json.dumps({"server": {"name": "big", "flavorRef": "1", "imageRef": "x",
                                  "metadata": {"pad": "p" * size}}}).encode()


def test_oversized_bodies_are_413(env, unchanged):
    t, sid = env["t"], env["a_vm"]["id"]
    huge = big_json(1024 * 1024 + 1)
    for user, method, path, api in (
            ("a-member", "POST", f"{C}/servers", "compute"),
            ("a-member", "PUT", f"{C}/servers/{sid}", "compute"),
            ("a-member", "POST", f"{C}/servers/{sid}/metadata", "compute"),
            ("a-member", "POST", f"{C}/servers/{sid}/action", "compute"),
            ("admin", "POST", f"{C}/flavors", "compute"),
            ("a-member", "POST", "/image/v2/images", "image"),
            ("admin", "PATCH", f"/image/v2/images/{env['public']}", "image"),
            ("admin", "POST", "/identity/v3/projects", "identity"),
            ("admin", "POST", "/identity/v3/auth/tokens", "identity")):
        assert fault(t.request(user, method, path, raw=huge), 413, api) == BODY_TOO_LARGE
    # Refused before authentication, as oslo.middleware's sizelimit is.
    resp = env["cloud"].client.post(f"{C}/servers", data=huge,
                                    content_type="application/json")
    assert fault(resp, 413) == BODY_TOO_LARGE
    # Just under the limit, the request is read and validated as usual.
    body = big_json(DEFAULT_MAX_BODY_SIZE - 200)
    assert len(body) <= DEFAULT_MAX_BODY_SIZE
    fault(t.request("a-member", "POST", f"{C}/servers", raw=body), 400)


def test_image_data_is_not_bound_by_the_body_limit(env):
    t = env["t"]
    data = os.urandom(DEFAULT_MAX_BODY_SIZE * 3)
    image = t.image("a-member", "bigger-than-a-body", data=data)
    try:
        resp = t.request("a-member", "GET", f"/image/v2/images/{image}/file")
        assert resp.status_code == 200 and resp.get_data() == data
    finally:
        assert t.request("a-member", "DELETE", f"/image/v2/images/{image}").status_code == 204


# -- over a real HTTP server -----------------------------------------------------------------

@pytest.fixture
def http_port(env) -> Iterator[int]:
    """The cloud's WSGI app behind waitress, as stratus-api serves it."""
    server = create_server(env["cloud"].app, host="127.0.0.1", port=0, threads=2,
                           ident="stratus", clear_untrusted_proxy_headers=True)

    def serve() -> None:
        try:
            server.run()
        except OSError:  # the socket closed under select() at shutdown
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.effective_port)  # type: ignore[attr-defined]
    finally:
        server.close()
        server.task_dispatcher.shutdown(timeout=5)  # type: ignore[attr-defined]
        thread.join(timeout=5)


def _http(port: int, method: str, path: str, headers: dict[str, str],
          body: Any = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers, encode_chunked=body is not None
                     and not isinstance(body, bytes))
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else None
    finally:
        conn.close()


def test_over_http(env, unchanged, http_port):
    token = env["t"].token("a-member")
    json_headers = {"X-Auth-Token": token, "Content-Type": "application/json"}
    # A 100 kB token header: 401, not a server error.
    status, body = _http(http_port, "GET", f"{C}/servers", {"X-Auth-Token": "x" * 100_000})
    assert status == 401 and body["unauthorized"]["code"] == 401
    # A chunked body (no Content-Length) is cut off at the limit.
    chunks = iter([big_json(1024 * 1024)[i:i + 65536]
                   for i in range(0, 1024 * 1024, 65536)])
    status, body = _http(http_port, "POST", f"{C}/servers", json_headers, chunks)
    assert status == 413 and body == {"overLimit": {"code": 413, "message": BODY_TOO_LARGE}}
    # A declared Content-Length past the limit.
    status, body = _http(http_port, "POST", f"{C}/servers", json_headers,
                         big_json(1024 * 1024))
    assert status == 413 and body["overLimit"]["message"] == BODY_TOO_LARGE
    status, body = _http(http_port, "POST", "/identity/v3/projects", json_headers,
                         big_json(200_000))
    assert status == 413 and body["error"]["code"] == 413
    # Path traversal in the raw request line.
    for path in ("/image/v2/images/../../../etc/passwd/file", "/compute/../../etc/passwd",
                 "/image/v2/images/%2e%2e%2f%2e%2e%2fetc%2fpasswd/file"):
        status, _ = _http(http_port, "GET", path, {"X-Auth-Token": token})
        assert 400 <= status < 500, path
