"""Policy end to end, with real tokens from the Identity API: projects A and B,
users with the admin, member and reader roles, and what each may do through
the compute, image and identity APIs (OpenStack's defaults: a reader reads its
project, a member acts in its project, an admin acts everywhere)."""
from __future__ import annotations

import ast
import pathlib
import re
import subprocess
import sys
from typing import Any, Iterator

import pytest

from stratus.policy.defaults import all_defaults
from tests.cloud import InProcessCloud
from tests.tenants import Tenants, cheap_hashing

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """One cloud for the module: tenants, a public image, a server and a private
    image in each project."""
    with cheap_hashing():
        cloud = InProcessCloud(tmp_path_factory.mktemp("policy"))
        try:
            t = Tenants(cloud)
            public = t.image("admin", "public-cirros", visibility="public")
            env = {"t": t, "cloud": cloud, "public": public,
                   "a_image": t.image("a-member", "a-private"),
                   "b_image": t.image("b-member", "b-private"),
                   "a_vm": t.boot("a-member", "a-vm", public),
                   "b_vm": t.boot("b-member", "b-vm", public)}
            resp = t.compute("a-member", "POST", f"/servers/{env['a_vm']['id']}/metadata",
                             {"metadata": {"color": "red"}})
            assert resp.status_code == 200
            yield env
        finally:
            cloud.close()


def forbidden(resp: Any, rule: str | None = None) -> str:
    """Nova's 403 body; returns the message."""
    assert resp.status_code == 403, resp.get_data(as_text=True)
    body = resp.get_json()
    assert set(body) == {"forbidden"} and body["forbidden"]["code"] == 403
    message = body["forbidden"]["message"]
    if rule is not None:
        assert message == f"Policy doesn't allow {rule} to be performed."
    return message


def not_found(resp: Any) -> None:
    assert resp.status_code == 404, resp.get_data(as_text=True)
    body = resp.get_json()
    assert set(body) == {"itemNotFound"} and body["itemNotFound"]["code"] == 404


def server_state(env: dict[str, Any], server_id: str) -> dict[str, Any]:
    """What an admin sees of a server: status, name, metadata, lock, actions."""
    t = env["t"]
    server = t.compute("admin", "GET", f"/servers/{server_id}").get_json()["server"]
    actions = t.compute("admin", "GET", f"/servers/{server_id}/os-instance-actions")
    return {"status": server["status"], "task": server["OS-EXT-STS:task_state"],
            "name": server["name"], "metadata": server["metadata"],
            "actions": len(actions.get_json()["instanceActions"])}


def server_ids(env: dict[str, Any], user: str, query: str = "") -> set[str]:
    resp = env["t"].compute(user, "GET", f"/servers/detail{query}")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return {s["id"] for s in resp.get_json()["servers"]}


def all_server_count(env: dict[str, Any]) -> int:
    return len(server_ids(env, "admin", "?all_tenants=1"))


# -- the rule names ------------------------------------------------------------------

# function -> index of its policy rule argument
_RULE_CALLS = {"authorize": 1, "can": 1, "check": 1, "get_server": 2, "_authorized_user": 1,
               "_get_writable": 3}
# Calls whose rule is a variable: the rules are constants of a table in the
# same module (caught by the constant scan).
_RULE_VARIABLES = {("stratus/api/compute/server_actions.py", "rule"),
                   ("stratus/api/compute/aggregates.py", "rule")}
_RULE_LIKE = re.compile(r"^os_compute_api:[\w:.-]+$")


def _module_constants(tree: ast.Module) -> dict[str, Any]:
    consts: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = node.targets
            if isinstance(node.value, ast.Tuple) and len(targets) == 1 \
                    and isinstance(targets[0], ast.Tuple):
                pairs = zip(targets[0].elts, node.value.elts)
            else:
                pairs = ((t, node.value) for t in targets)
            for target, value in pairs:
                if isinstance(target, ast.Name):
                    try:
                        consts[target.id] = _evaluate(value, consts)
                    except ValueError:
                        pass
    return consts


def _evaluate(node: ast.AST, consts: dict[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in consts:
        return consts[node.id]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _evaluate(node.left, consts) + _evaluate(node.right, consts)
    if isinstance(node, ast.IfExp):
        return [_evaluate(node.body, consts), _evaluate(node.orelse, consts)]
    raise ValueError(ast.dump(node))


def referenced_rules() -> dict[str, list[str]]:
    """Every policy rule name the API code uses -> where. A call to
    authorize/can/check/get_server must name its rule with a constant (or a
    module-level constant), so that this test sees every rule."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "stratus").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        if rel.startswith("stratus/policy/"):
            continue
        tree = ast.parse(path.read_text())
        consts = _module_constants(tree)
        params = {a.arg for f in ast.walk(tree)
                  if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                  for a in f.args.args + f.args.kwonlyargs}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and _RULE_LIKE.match(node.value):
                found.setdefault(node.value, []).append(f"{rel}:{node.lineno}")
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name not in _RULE_CALLS:
                continue
            if name == "check" and not (isinstance(func, ast.Attribute)
                                        and getattr(func.value, "id", "") == "policy"):
                continue
            index = _RULE_CALLS[name]
            if len(node.args) <= index:
                continue
            arg = node.args[index]
            if isinstance(arg, ast.Name) and arg.id not in consts and (
                    arg.id in params or (rel, arg.id) in _RULE_VARIABLES):
                continue  # a wrapper passing its caller's rule on
            try:
                value = _evaluate(arg, consts)
            except ValueError:
                raise AssertionError(f"{rel}:{node.lineno}: the policy rule of {name}() is "
                                     f"not a constant")
            for rule in value if isinstance(value, list) else [value]:
                found.setdefault(rule, []).append(f"{rel}:{node.lineno}")
    # ACTIONS tables name their rules as constants: covered by the Constant scan.
    return found


def test_every_rule_the_code_uses_is_declared():
    declared = {d.name for d in all_defaults()}
    used = referenced_rules()
    assert len(used) > 60  # compute + image rules were found
    missing = {rule: where for rule, where in used.items() if rule not in declared}
    assert not missing, f"rules used but not in stratus/policy/defaults.py: {missing}"
    for rule in ("add_image", "delete_image", "modify_member", "get_images",
                 "os_compute_api:servers:create", "os_compute_api:os-keypairs:index",
                 "os_compute_api:os-lock-server:unlock:unlock_override"):
        assert rule in used


def test_no_alias_left():
    """require_admin is gone from the compute API: every check is authorize()."""
    source = "\n".join(p.read_text() for p in (ROOT / "stratus/api").rglob("*.py"))
    assert "require_admin" not in source


def test_policy_list_prints_every_rule_in_use(tmp_path):
    out = subprocess.run([sys.executable, "-m", "stratus.cli", "policy", "list"],
                         capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    listed = {line.split('"')[1] for line in out.splitlines() if line.startswith('"')}
    assert set(referenced_rules()) <= listed
    assert '"add_image": "role:admin or (role:member and project_id:%(project_id)s and ' \
           'project_id:%(owner)s)"' in out


# -- readers -------------------------------------------------------------------------

def test_reader_reads_its_project(env):
    t, a_vm = env["t"], env["a_vm"]["id"]
    assert server_ids(env, "a-reader") == {a_vm}
    resp = t.compute("a-reader", "GET", "/servers")
    assert {s["id"] for s in resp.get_json()["servers"]} == {a_vm}
    assert t.compute("a-reader", "GET", f"/servers/{a_vm}").status_code == 200
    resp = t.compute("a-reader", "GET", f"/servers/{a_vm}/metadata")
    assert resp.get_json() == {"metadata": {"color": "red"}}
    assert t.compute("a-reader", "GET", f"/servers/{a_vm}/metadata/color").status_code == 200
    resp = t.compute("a-reader", "GET", f"/servers/{a_vm}/os-instance-actions")
    actions = resp.get_json()["instanceActions"]
    assert actions and resp.status_code == 200
    resp = t.compute("a-reader", "GET",
                     f"/servers/{a_vm}/os-instance-actions/{actions[-1]['request_id']}")
    assert resp.status_code == 200 and "events" not in resp.get_json()["instanceAction"]
    for path in ("/flavors", "/flavors/detail", "/flavors/1", "/flavors/1/os-extra_specs",
                 "/limits", "/os-availability-zone", "/os-keypairs", "/images",
                 "/images/detail", f"/images/{env['a_image']}",
                 f"/images/{env['a_image']}/metadata"):
        resp = t.compute("a-reader", "GET", path)
        assert resp.status_code == 200, (path, resp.get_data(as_text=True))
    images = {i["id"] for i in t.compute("a-reader", "GET", "/images").get_json()["images"]}
    assert {env["a_image"], env["public"]} <= images and env["b_image"] not in images
    resp = t.request("a-reader", "GET", "/image/v2/images")
    assert env["a_image"] in {i["id"] for i in resp.get_json()["images"]}
    resp = t.request("a-reader", "GET", f"/image/v2/images/{env['a_image']}")
    assert resp.status_code == 200


SERVER_WRITES = [
    ("PUT", "", {"server": {"name": "renamed"}}, "os_compute_api:servers:update"),
    ("DELETE", "", None, "os_compute_api:servers:delete"),
    ("POST", "/action", {"os-stop": None}, "os_compute_api:servers:stop"),
    ("POST", "/action", {"os-start": None}, "os_compute_api:servers:start"),
    ("POST", "/action", {"reboot": {"type": "HARD"}}, "os_compute_api:servers:reboot"),
    ("POST", "/action", {"pause": None}, "os_compute_api:os-pause-server:pause"),
    ("POST", "/action", {"unpause": None}, "os_compute_api:os-pause-server:unpause"),
    ("POST", "/action", {"suspend": None}, "os_compute_api:os-suspend-server:suspend"),
    ("POST", "/action", {"resume": None}, "os_compute_api:os-suspend-server:resume"),
    ("POST", "/action", {"lock": None}, "os_compute_api:os-lock-server:lock"),
    ("POST", "/action", {"unlock": None}, "os_compute_api:os-lock-server:unlock"),
    ("POST", "/metadata", {"metadata": {"k": "v"}}, "os_compute_api:server-metadata:create"),
    ("PUT", "/metadata", {"metadata": {"k": "v"}}, "os_compute_api:server-metadata:update_all"),
    ("PUT", "/metadata/k", {"meta": {"k": "v"}}, "os_compute_api:server-metadata:update"),
    ("DELETE", "/metadata/color", None, "os_compute_api:server-metadata:delete"),
]


@pytest.mark.parametrize("method, suffix, body, rule", SERVER_WRITES,
                         ids=[f"{m} {s} {r.rsplit(':', 1)[-1]}" for m, s, _, r in SERVER_WRITES])
def test_reader_cannot_act_on_its_servers(env, method, suffix, body, rule):
    a_vm = env["a_vm"]["id"]
    before = server_state(env, a_vm)
    resp = env["t"].compute("a-reader", method, f"/servers/{a_vm}{suffix}", body)
    forbidden(resp, rule)
    assert server_state(env, a_vm) == before


def test_reader_cannot_create_servers(env):
    before = all_server_count(env)
    resp = env["t"].compute("a-reader", "POST", "/servers", {"server": {
        "name": "nope", "flavorRef": "1", "imageRef": env["public"]}})
    forbidden(resp, "os_compute_api:servers:create")
    # Bad input is still a 400 first, as Nova validates before the policy.
    resp = env["t"].compute("a-reader", "POST", "/servers", {"server": {"name": ""}})
    assert resp.status_code == 400
    assert all_server_count(env) == before


def image_record(env: dict[str, Any], image_id: str) -> dict[str, Any]:
    resp = env["t"].request("admin", "GET", f"/image/v2/images/{image_id}")
    assert resp.status_code == 200
    return resp.get_json()


def admin_image_count(env: dict[str, Any]) -> int:
    resp = env["t"].request("admin", "GET", "/image/v2/images?limit=1000")
    return len(resp.get_json()["images"])


def glance_forbidden(resp: Any, rule: str) -> None:
    assert resp.status_code == 403, resp.get_data(as_text=True)
    assert resp.get_json() == {"code": "403 Forbidden", "title": "Forbidden",
                               "message": f"You are not authorized to complete {rule} "
                                          f"action."}


def test_reader_cannot_change_images(env):
    t, image = env["t"], env["a_image"]
    before, count = image_record(env, image), admin_image_count(env)
    resp = t.request("a-reader", "POST", "/image/v2/images", {
        "name": "nope", "disk_format": "raw", "container_format": "bare"})
    glance_forbidden(resp, "add_image")
    patch = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
    resp = t.request("a-reader", "PATCH", f"/image/v2/images/{image}",
                     [{"op": "replace", "path": "/name", "value": "x"}], headers=patch)
    glance_forbidden(resp, "modify_image")
    glance_forbidden(t.request("a-reader", "DELETE", f"/image/v2/images/{image}"),
                     "delete_image")
    glance_forbidden(t.request("a-reader", "PUT", f"/image/v2/images/{image}/tags/t"),
                     "modify_image")
    glance_forbidden(t.request("a-reader", "POST",
                               f"/image/v2/images/{image}/actions/deactivate"), "deactivate")
    glance_forbidden(t.request("a-reader", "GET", f"/image/v2/images/{image}/file"),
                     "download_image")
    # A queued image of the project: the reader may not upload its data.
    queued = t.image("a-member", "a-queued", data=None)
    resp = t.request("a-reader", "PUT", f"/image/v2/images/{queued}/file", raw=b"x" * 10,
                     headers={"Content-Type": "application/octet-stream"})
    glance_forbidden(resp, "upload_image")
    assert image_record(env, queued)["status"] == "queued"
    # The compute API's image proxy applies the same rules.
    resp = t.compute("a-reader", "DELETE", f"/images/{image}")
    forbidden(resp)
    resp = t.compute("a-reader", "POST", f"/images/{image}/metadata",
                     {"metadata": {"k": "v"}})
    forbidden(resp)
    resp = t.compute("a-reader", "DELETE", f"/images/{queued}")
    forbidden(resp)
    assert image_record(env, image) == before
    assert admin_image_count(env) == count + 1  # the member's queued image only
    assert t.request("a-member", "DELETE", f"/image/v2/images/{queued}").status_code == 204


def test_reader_cannot_change_image_members(env):
    t = env["t"]
    shared = t.image("a-member", "a-shared", visibility="shared")
    b = t.project_ids["proj-b"]
    resp = t.request("a-reader", "POST", f"/image/v2/images/{shared}/members", {"member": b})
    glance_forbidden(resp, "add_member")
    resp = t.request("a-member", "POST", f"/image/v2/images/{shared}/members", {"member": b})
    assert resp.status_code == 200
    resp = t.request("a-reader", "DELETE", f"/image/v2/images/{shared}/members/{b}")
    glance_forbidden(resp, "delete_member")
    # The reader of project A reads the members; B's reader may not accept.
    resp = t.request("a-reader", "GET", f"/image/v2/images/{shared}/members")
    assert [m["member_id"] for m in resp.get_json()["members"]] == [b]
    resp = t.request("b-reader", "PUT", f"/image/v2/images/{shared}/members/{b}",
                     {"status": "accepted"})
    glance_forbidden(resp, "modify_member")
    resp = t.request("b-member", "GET", f"/image/v2/images/{shared}/members/{b}")
    assert resp.get_json()["status"] == "pending"
    resp = t.request("b-member", "PUT", f"/image/v2/images/{shared}/members/{b}",
                     {"status": "accepted"})
    assert resp.status_code == 200 and resp.get_json()["status"] == "accepted"
    assert t.request("a-member", "DELETE", f"/image/v2/images/{shared}").status_code == 204


def test_reader_cannot_manage_identity(env):
    t = env["t"]
    reader_id = t.user_ids["a-reader"]
    for method, path, body in [
            ("POST", "/v3/projects", {"project": {"name": "evil"}}),
            ("POST", "/v3/users", {"user": {"name": "evil", "password": "x"}}),
            ("PATCH", f"/v3/users/{reader_id}", {"user": {"name": "evil"}}),
            ("PUT", f"/v3/projects/{t.project_ids['proj-a']}/users/{reader_id}/roles/x", None),
            ("GET", "/v3/users", None)]:
        resp = t.request("a-reader", method, "/identity" + path, body)
        assert resp.status_code == 403, (path, resp.get_data(as_text=True))
        assert resp.get_json()["error"]["code"] == 403
    resp = t.request("a-reader", "GET", f"/identity/v3/users/{reader_id}")
    assert resp.status_code == 200 and resp.get_json()["user"]["name"] == "a-reader"
    resp = t.request("admin", "GET", "/identity/v3/projects?name=evil")
    assert resp.get_json()["projects"] == []
    resp = t.request("admin", "GET", "/identity/v3/users?name=evil")
    assert resp.get_json()["users"] == []
    resp = t.request("admin", "GET", f"/identity/v3/role_assignments?user.id={reader_id}")
    assert len(resp.get_json()["role_assignments"]) == 1


# -- members -------------------------------------------------------------------------

def test_member_acts_in_its_project(env):
    t, public = env["t"], env["public"]
    server = t.boot("a-member", "a-temp", public)
    sid = server["id"]
    resp = t.compute("a-member2", "PUT", f"/servers/{sid}", {"server": {"name": "a-temp2"}})
    assert resp.status_code == 200 and resp.get_json()["server"]["name"] == "a-temp2"
    resp = t.compute("a-member", "PUT", f"/servers/{sid}/metadata/k", {"meta": {"k": "v"}})
    assert resp.status_code == 200
    assert t.compute("a-member", "POST", f"/servers/{sid}/action",
                     {"os-stop": None}).status_code == 202
    env["cloud"].wait_for(sid, "SHUTOFF")
    assert t.compute("a-member", "POST", f"/servers/{sid}/action",
                     {"os-start": None}).status_code == 202
    env["cloud"].wait_for(sid, "ACTIVE")
    for action in ("lock", "unlock"):
        assert t.compute("a-member", "POST", f"/servers/{sid}/action",
                         {action: None}).status_code == 202
    resp = t.compute("a-member", "GET", f"/servers/{sid}")
    assert "OS-EXT-SRV-ATTR:host" not in resp.get_json()["server"]
    resp = t.compute("admin", "GET", f"/servers/{sid}")
    assert resp.get_json()["server"]["OS-EXT-SRV-ATTR:host"] == "host1"
    assert t.compute("a-member", "DELETE", f"/servers/{sid}").status_code == 204
    env["cloud"].wait_for(sid, "DELETED")
    image = t.image("a-member", "a-temp-image")
    assert t.compute("a-member", "POST", f"/images/{image}/metadata",
                     {"metadata": {"k": "v"}}).status_code == 200
    assert t.compute("a-member", "DELETE", f"/images/{image}").status_code == 204


def test_admin_lock_needs_unlock_override(env):
    t, a_vm = env["t"], env["a_vm"]["id"]
    assert t.compute("admin", "POST", f"/servers/{a_vm}/action",
                     {"lock": None}).status_code == 202
    try:
        resp = t.compute("a-member", "POST", f"/servers/{a_vm}/action", {"unlock": None})
        forbidden(resp, "os_compute_api:os-lock-server:unlock:unlock_override")
        resp = t.compute("a-member", "POST", f"/servers/{a_vm}/action", {"os-stop": None})
        assert resp.status_code == 409  # locked
    finally:
        assert t.compute("admin", "POST", f"/servers/{a_vm}/action",
                         {"unlock": None}).status_code == 202


B_SERVER_CALLS = [
    ("GET", "", None), ("PUT", "", {"server": {"name": "x"}}), ("DELETE", "", None),
    ("POST", "/action", {"os-stop": None}), ("POST", "/action", {"reboot": {"type": "SOFT"}}),
    ("POST", "/action", {"lock": None}), ("GET", "/metadata", None),
    ("GET", "/metadata/color", None), ("POST", "/metadata", {"metadata": {"k": "v"}}),
    ("PUT", "/metadata", {"metadata": {}}), ("PUT", "/metadata/k", {"meta": {"k": "v"}}),
    ("DELETE", "/metadata/k", None), ("GET", "/os-instance-actions", None),
]


@pytest.mark.parametrize("user", ["a-member", "a-reader"])
def test_other_projects_servers_are_not_found(env, user):
    t, b_vm = env["t"], env["b_vm"]["id"]
    before = server_state(env, b_vm)
    for method, suffix, body in B_SERVER_CALLS:
        not_found(t.compute(user, method, f"/servers/{b_vm}{suffix}", body))
    assert server_state(env, b_vm) == before


def test_lists_stay_in_the_project(env):
    a_vm, b_vm = env["a_vm"]["id"], env["b_vm"]["id"]
    b_project = env["t"].project_ids["proj-b"]
    for user in ("a-member", "a-reader"):
        ids = server_ids(env, user)
        assert a_vm in ids and b_vm not in ids
        # project_id/tenant_id without all_tenants are ignored (lp:#1185290)
        assert b_vm not in server_ids(env, user, f"?project_id={b_project}")
        assert b_vm not in server_ids(env, user, f"?tenant_id={b_project}")
        assert b_vm not in server_ids(env, user, "?name=b-vm")
        for query in ("?all_tenants=1", "?all_tenants", f"?all_tenants=1&project_id={b_project}"):
            forbidden(env["t"].compute(user, "GET", f"/servers/detail{query}"),
                      "os_compute_api:servers:detail:get_all_tenants")
            forbidden(env["t"].compute(user, "GET", f"/servers{query}"),
                      "os_compute_api:servers:index:get_all_tenants")
        # all_tenants=0 is no request for every project.
        assert b_vm not in server_ids(env, user, "?all_tenants=0")
    assert {a_vm, b_vm} <= server_ids(env, "admin", "?all_tenants=1")
    assert server_ids(env, "admin", f"?all_tenants=1&project_id={b_project}") == {b_vm}
    assert b_vm not in server_ids(env, "admin")  # admin's own project by default


def test_admin_acts_everywhere(env):
    t, b_vm = env["t"], env["b_vm"]["id"]
    assert t.compute("admin", "GET", f"/servers/{b_vm}").status_code == 200
    resp = t.compute("admin", "PUT", f"/servers/{b_vm}/metadata/by", {"meta": {"by": "admin"}})
    assert resp.status_code == 200
    assert t.compute("admin", "DELETE", f"/servers/{b_vm}/metadata/by").status_code == 204
    assert t.compute("admin", "GET", f"/images/{env['b_image']}").status_code == 200


def test_other_projects_images_are_not_found(env):
    t, b_image = env["t"], env["b_image"]
    before = image_record(env, b_image)
    for method, path in (("GET", ""), ("DELETE", ""), ("GET", "/file"), ("PUT", "/tags/x")):
        resp = t.request("a-member", method, f"/image/v2/images/{b_image}{path}")
        assert resp.status_code == 404, (path, resp.get_data(as_text=True))
    for method, path, body in (("GET", "", None), ("DELETE", "", None),
                               ("GET", "/metadata", None),
                               ("POST", "/metadata", {"metadata": {"k": "v"}})):
        not_found(t.compute("a-member", method, f"/images/{b_image}{path}", body))
    # Someone else's public image: visible, but not theirs to change.
    resp = t.request("a-member", "DELETE", f"/image/v2/images/{env['public']}")
    assert resp.status_code == 403
    assert image_record(env, b_image) == before


def test_member_is_refused_admin_apis(env):
    t = env["t"]
    b_project = t.project_ids["proj-b"]
    calls = [
        ("GET", "/os-services", None, "os_compute_api:os-services:list"),
        ("PUT", "/os-services/disable", {"host": "host1", "binary": "nova-compute"},
         "os_compute_api:os-services:update"),
        ("GET", "/os-hypervisors", None, "os_compute_api:os-hypervisors:list"),
        ("GET", "/os-hypervisors/detail", None, "os_compute_api:os-hypervisors:list-detail"),
        ("GET", "/os-hypervisors/statistics", None, "os_compute_api:os-hypervisors:statistics"),
        ("GET", "/os-availability-zone/detail", None,
         "os_compute_api:os-availability-zone:detail"),
        ("POST", "/flavors", {"flavor": {"name": "evil", "ram": 1, "vcpus": 1, "disk": 0}},
         "os_compute_api:os-flavor-manage:create"),
        ("DELETE", "/flavors/1", None, "os_compute_api:os-flavor-manage:delete"),
        ("POST", "/flavors/1/os-extra_specs", {"extra_specs": {"a": "b"}},
         "os_compute_api:os-flavor-extra-specs:create"),
        ("GET", f"/limits?tenant_id={b_project}", None, "os_compute_api:limits:other_project"),
    ]
    def services_state() -> list[tuple[Any, ...]]:
        # (heartbeats move updated_at and may flip state meanwhile: not ours to compare)
        return [(s["id"], s["binary"], s["host"], s["status"], s["disabled_reason"])
                for s in t.compute("admin", "GET", "/os-services").get_json()["services"]]

    services = services_state()
    flavors = t.compute("admin", "GET", "/flavors/detail?is_public=none").get_json()
    for user in ("a-member", "a-reader"):
        for method, path, body, rule in calls:
            forbidden(t.compute(user, method, path, body), rule)
    assert services_state() == services
    assert t.compute("admin", "GET", "/flavors/detail?is_public=none").get_json() == flavors


def test_keypairs_belong_to_their_user(env):
    # user_id names another user's key pairs from microversion 2.10 (it is
    # ignored before, as Nova's).
    t, v210 = env["t"], {"headers": {"OpenStack-API-Version": "compute 2.10"}}
    member = t.user_ids["a-member"]
    resp = t.compute("a-member", "POST", "/os-keypairs", {"keypair": {"name": "mine"}})
    assert resp.status_code == 200
    try:
        names = [k["keypair"]["name"]
                 for k in t.compute("a-member", "GET", "/os-keypairs").get_json()["keypairs"]]
        assert names == ["mine"]
        # Another user of the same project sees none of it.
        assert t.compute("a-reader", "GET", "/os-keypairs").get_json() == {"keypairs": []}
        assert t.compute("a-reader", "GET", "/os-keypairs/mine").status_code == 404
        for method, path in (("GET", f"/os-keypairs?user_id={member}"),
                             ("GET", f"/os-keypairs/mine?user_id={member}"),
                             ("DELETE", f"/os-keypairs/mine?user_id={member}")):
            rule = {"GET": "show" if "/mine" in path else "index", "DELETE": "delete"}[method]
            forbidden(t.compute("a-reader", method, path, **v210),
                      f"os_compute_api:os-keypairs:{rule}")
        # An admin names the user.
        resp = t.compute("admin", "GET", f"/os-keypairs?user_id={member}", **v210)
        assert [k["keypair"]["name"] for k in resp.get_json()["keypairs"]] == ["mine"]
        resp = t.compute("admin", "GET", f"/os-keypairs/mine?user_id={member}", **v210)
        assert resp.get_json()["keypair"]["user_id"] == member
        # At 2.9 the query parameter is ignored: the admin's own key pairs.
        resp = t.compute("admin", "GET", f"/os-keypairs?user_id={member}",
                         headers={"OpenStack-API-Version": "compute 2.9"})
        assert "mine" not in [k["keypair"]["name"] for k in resp.get_json()["keypairs"]]
        # A reader owns key pairs of its own (Nova's rules are the user's, not the project's).
        resp = t.compute("a-reader", "POST", "/os-keypairs", {"keypair": {"name": "r"}})
        assert resp.status_code == 200
        assert t.compute("a-reader", "DELETE", "/os-keypairs/r").status_code == 202
    finally:
        resp = t.compute("admin", "DELETE", f"/os-keypairs/mine?user_id={member}", **v210)
        assert resp.status_code == 204
    assert t.compute("a-member", "GET", "/os-keypairs").get_json() == {"keypairs": []}


def test_a_token_of_project_a_on_project_b(env):
    """Project-scoped tokens never reach another project's resources by id."""
    t = env["t"]
    b_project = t.project_ids["proj-b"]
    resp = t.request("a-member", "GET", f"/identity/v3/projects/{b_project}")
    assert resp.status_code == 403
    resp = t.compute("a-member", "GET", f"/limits?tenant_id={b_project}")
    forbidden(resp)
