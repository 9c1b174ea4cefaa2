"""Microversions 2.2 to 2.19: each change checked at the version before it and
at the version itself, on the in-process cloud (real services, fake driver),
with the bodies validated against tempest's schema of each version
(tests/compute_schemas.py).

2.4 (os-fixed-ips), 2.6 and 2.8 (remote consoles), 2.12 (virtual
interfaces) and 2.14 (evacuate) change APIs Stratus does not have; 2.7
(flavor access to a public flavor) and 2.11 (services force-down) are in
tests/unit/test_api_compute_misc.py.
"""
from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from sqlalchemy import update as sql_update

from stratus.db.models import Service
from tests import compute_schemas as S
from tests.cloud import InProcessCloud


def v(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Any:
    c = InProcessCloud(tmp_path_factory.mktemp("mv"), hosts=("host1",))
    yield c
    c.close()


@pytest.fixture(scope="module")
def image(cloud: InProcessCloud) -> str:
    return cloud.create_image()


@pytest.fixture(scope="module")
def member(cloud: InProcessCloud) -> dict[str, str]:
    """A plain member of the admin project: its token and user id."""
    ident = "/identity/v3"
    user = cloud.request("POST", f"{ident}/users", {"user": {
        "name": "mv-member", "password": "pw", "domain_id": "default"}}).get_json()["user"]
    role = cloud.request("GET", f"{ident}/roles?name=member").get_json()["roles"][0]
    project = cloud.project_id("admin")
    assert cloud.request("PUT", f"{ident}/projects/{project}/users/{user['id']}/roles/"
                                f"{role['id']}").status_code == 204
    return {"token": cloud.token("mv-member", "pw", "admin"), "id": user["id"]}


@pytest.fixture(scope="module")
def server(cloud: InProcessCloud, image: str) -> dict[str, Any]:
    return cloud.boot("mv-server", image=image,
                      user_data=base64.b64encode(b"#!/bin/sh\necho hi\n").decode())


def get(cloud: InProcessCloud, path: str, version: str, status: int = 200,
        token: str | None = None) -> Any:
    resp = cloud.compute("GET", path, headers=v(version), token=token)
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.headers["OpenStack-API-Version"] == f"compute {version}"
    return resp.get_json()


def fault(resp: Any, status: int) -> str:
    assert resp.status_code == status, resp.get_data(as_text=True)
    return next(iter(resp.get_json().values()))["message"]


# -- 2.2 and 2.10: key pairs -------------------------------------------------------------

def test_2_2_keypair_type_and_status_codes(cloud: InProcessCloud) -> None:
    # 2.1: no type, 200 / 202; a type in the body is refused.
    resp = cloud.compute("POST", "/os-keypairs", {"keypair": {"name": "k21"}}, headers=v("2.1"))
    assert resp.status_code == 200
    S.validate(S.CREATE_KEYPAIR, resp.get_json())
    assert "type" not in resp.get_json()["keypair"]
    fault(cloud.compute("POST", "/os-keypairs", {"keypair": {"name": "kx", "type": "ssh"}},
                        headers=v("2.1")), 400)
    # 2.2: type (ssh by default), 201 / 204.
    resp = cloud.compute("POST", "/os-keypairs", {"keypair": {"name": "k22"}}, headers=v("2.2"))
    assert resp.status_code == 201
    S.validate(S.CREATE_KEYPAIR_V22, resp.get_json())
    assert resp.get_json()["keypair"]["type"] == "ssh"
    fault(cloud.compute("POST", "/os-keypairs", {"keypair": {"name": "kx", "type": "rsa"}},
                        headers=v("2.2")), 400)
    listed = get(cloud, "/os-keypairs", "2.2")
    S.validate(S.LIST_KEYPAIRS_V22, listed)
    assert {k["keypair"]["type"] for k in listed["keypairs"]} == {"ssh"}
    S.validate(S.LIST_KEYPAIRS, get(cloud, "/os-keypairs", "2.1"))
    S.validate(S.GET_KEYPAIR_V22, get(cloud, "/os-keypairs/k21", "2.2"))
    shown = get(cloud, "/os-keypairs/k21", "2.1")
    S.validate(S.GET_KEYPAIR, shown)
    assert "type" not in shown["keypair"]
    assert cloud.compute("DELETE", "/os-keypairs/k21", headers=v("2.1")).status_code == 202
    assert cloud.compute("DELETE", "/os-keypairs/k22", headers=v("2.2")).status_code == 204


def test_2_2_x509_keypairs(cloud: InProcessCloud) -> None:
    resp = cloud.compute("POST", "/os-keypairs", {"keypair": {"name": "cert", "type": "x509"}},
                         headers=v("2.2"))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    made = resp.get_json()["keypair"]
    assert made["type"] == "x509" and "BEGIN CERTIFICATE" in made["public_key"]
    assert "PRIVATE KEY" in made["private_key"] and len(made["fingerprint"]) == 59  # SHA-1
    # Importing the certificate gives the same fingerprint.
    resp = cloud.compute("POST", "/os-keypairs", {"keypair": {
        "name": "cert2", "type": "x509", "public_key": made["public_key"]}}, headers=v("2.2"))
    assert resp.status_code == 201
    assert resp.get_json()["keypair"]["fingerprint"] == made["fingerprint"]
    assert "failed to generate X509 fingerprint" in fault(cloud.compute(
        "POST", "/os-keypairs", {"keypair": {"name": "bad", "type": "x509",
                                              "public_key": "not a certificate"}},
        headers=v("2.2")), 400)
    for name in ("cert", "cert2"):
        assert cloud.compute("DELETE", f"/os-keypairs/{name}", headers=v("2.2")).status_code \
            == 204


def test_2_10_keypairs_of_another_user(cloud: InProcessCloud, member: dict[str, str]) -> None:
    body = {"keypair": {"name": "theirs", "user_id": member["id"]}}
    # 2.9: user_id is not a create attribute; the query parameter is ignored.
    fault(cloud.compute("POST", "/os-keypairs", body, headers=v("2.9")), 400)
    resp = cloud.compute("POST", "/os-keypairs", body, headers=v("2.10"))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.get_json()["keypair"]["user_id"] == member["id"]
    assert get(cloud, f"/os-keypairs?user_id={member['id']}", "2.9") == {"keypairs": []}
    fault(cloud.compute("GET", f"/os-keypairs/theirs?user_id={member['id']}",
                        headers=v("2.9")), 404)
    listed = get(cloud, f"/os-keypairs?user_id={member['id']}", "2.10")
    assert [k["keypair"]["name"] for k in listed["keypairs"]] == ["theirs"]
    shown = get(cloud, f"/os-keypairs/theirs?user_id={member['id']}", "2.10")["keypair"]
    assert shown["user_id"] == member["id"]
    # The member sees it as its own; it may not name the admin.
    mine = get(cloud, "/os-keypairs", "2.10", token=member["token"])
    assert [k["keypair"]["name"] for k in mine["keypairs"]] == ["theirs"]
    admin_id = get(cloud, "/os-keypairs/theirs?user_id=" + member["id"], "2.10")
    assert admin_id
    resp = cloud.compute("POST", "/os-keypairs", {"keypair": {"name": "x", "user_id": "someone"}},
                         headers=v("2.10"), token=member["token"])
    fault(resp, 403)
    assert cloud.compute("DELETE", f"/os-keypairs/theirs?user_id={member['id']}",
                         headers=v("2.10")).status_code == 204
    assert get(cloud, "/os-keypairs", "2.10", token=member["token"]) == {"keypairs": []}


# -- 2.3, 2.9, 2.16, 2.19: the server views ----------------------------------------------

V23_ATTRIBUTES = {"OS-EXT-SRV-ATTR:reservation_id", "OS-EXT-SRV-ATTR:launch_index",
                  "OS-EXT-SRV-ATTR:hostname", "OS-EXT-SRV-ATTR:kernel_id",
                  "OS-EXT-SRV-ATTR:ramdisk_id", "OS-EXT-SRV-ATTR:root_device_name",
                  "OS-EXT-SRV-ATTR:user_data"}


def test_2_3_extended_attributes(cloud: InProcessCloud, server: dict[str, Any],
                                 member: dict[str, str]) -> None:
    path = f"/servers/{server['id']}"
    before = get(cloud, path, "2.2")
    S.validate(S.GET_SERVER, before)
    assert not V23_ATTRIBUTES & set(before["server"])
    shown = get(cloud, path, "2.3")
    S.validate(S.GET_SERVER_V23, shown)
    attrs = shown["server"]
    assert attrs["OS-EXT-SRV-ATTR:reservation_id"].startswith("r-")
    assert attrs["OS-EXT-SRV-ATTR:launch_index"] == 0
    assert attrs["OS-EXT-SRV-ATTR:hostname"] == "mv-server"
    assert (attrs["OS-EXT-SRV-ATTR:kernel_id"], attrs["OS-EXT-SRV-ATTR:ramdisk_id"]) == ("", "")
    assert attrs["OS-EXT-SRV-ATTR:root_device_name"] == "/dev/vda"
    assert base64.b64decode(attrs["OS-EXT-SRV-ATTR:user_data"]) == b"#!/bin/sh\necho hi\n"
    S.validate(S.LIST_SERVERS_DETAIL_V23, get(cloud, "/servers/detail", "2.3"))
    # Only for those who see the extended attributes (admins by default).
    as_member = get(cloud, path, "2.3", token=member["token"])["server"]
    assert not V23_ATTRIBUTES & set(as_member)
    assert "OS-EXT-SRV-ATTR:host" not in as_member


def test_kernel_and_ramdisk_come_from_the_image(cloud: InProcessCloud) -> None:
    kernel, ramdisk = cloud.create_image("kernel"), cloud.create_image("ramdisk")
    image = cloud.create_image("ami")
    resp = cloud.request("PATCH", f"/image/v2/images/{image}", raw=(
        '[{"op": "add", "path": "/kernel_id", "value": "%s"},'
        ' {"op": "add", "path": "/ramdisk_id", "value": "%s"}]' % (kernel, ramdisk)).encode(),
        headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    booted = cloud.boot("ami-server", image=image)
    attrs = get(cloud, f"/servers/{booted['id']}", "2.3")["server"]
    assert attrs["OS-EXT-SRV-ATTR:kernel_id"] == kernel
    assert attrs["OS-EXT-SRV-ATTR:ramdisk_id"] == ramdisk
    cloud.compute("DELETE", f"/servers/{booted['id']}")
    cloud.wait_for(booted["id"], "DELETED")


def test_boot_attributes_sort_servers(cloud: InProcessCloud, server: dict[str, Any]) -> None:
    for key in ("kernel_id", "ramdisk_id", "root_device_name"):
        listed = get(cloud, f"/servers?sort_key={key}&sort_dir=asc", "2.3")["servers"]
        assert server["id"] in [s["id"] for s in listed]


def test_2_5_ip6_filter_for_non_admins(cloud: InProcessCloud, server: dict[str, Any],
                                       member: dict[str, str]) -> None:
    # Before 2.5 a non-admin's ip6 filter is dropped (every server is listed);
    # from 2.5 it filters (no server has that address).
    before = get(cloud, "/servers?ip6=2001:db8::99", "2.4", token=member["token"])
    assert server["id"] in [s["id"] for s in before["servers"]]
    after = get(cloud, "/servers?ip6=2001:db8::99", "2.5", token=member["token"])
    assert after == {"servers": []}


def test_2_9_locked(cloud: InProcessCloud, server: dict[str, Any]) -> None:
    path = f"/servers/{server['id']}"
    assert "locked" not in get(cloud, path, "2.8")["server"]
    shown = get(cloud, path, "2.9")
    S.validate(S.GET_SERVER_V29, shown)
    assert shown["server"]["locked"] is False
    assert cloud.compute("POST", f"{path}/action", {"lock": None}).status_code == 202
    try:
        assert get(cloud, path, "2.9")["server"]["locked"] is True
        detail = get(cloud, "/servers/detail", "2.9")
        S.validate(S.LIST_SERVERS_DETAIL_V29, detail)
        assert {s["id"]: s["locked"] for s in detail["servers"]}[server["id"]] is True
        resp = cloud.compute("PUT", path, {"server": {"name": "mv-server"}}, headers=v("2.9"))
        S.validate(S.UPDATE_SERVER_V29, resp.get_json())
        assert resp.get_json()["server"]["locked"] is True
        resp = cloud.compute("PUT", path, {"server": {"name": "mv-server"}}, headers=v("2.8"))
        S.validate(S.UPDATE_SERVER, resp.get_json())
    finally:
        assert cloud.compute("POST", f"{path}/action", {"unlock": None}).status_code == 202


def _set_service(cloud: InProcessCloud, **values: Any) -> None:
    with cloud.db.write() as s:
        s.execute(sql_update(Service).where(Service.host == "host1",
                                            Service.binary == "stratus-compute").values(**values))


def test_2_16_host_status(cloud: InProcessCloud, server: dict[str, Any],
                          member: dict[str, str]) -> None:
    path = f"/servers/{server['id']}"
    assert "host_status" not in get(cloud, path, "2.15")["server"]
    shown = get(cloud, path, "2.16")
    S.validate(S.GET_SERVER_V216, shown)
    assert shown["server"]["host_status"] == "UP"
    detail = get(cloud, "/servers/detail", "2.16")
    S.validate(S.LIST_SERVERS_DETAIL_V216, detail)
    assert {s["host_status"] for s in detail["servers"]} == {"UP"}
    # Admins only (os_compute_api:servers:show:host_status).
    assert "host_status" not in get(cloud, path, "2.16", token=member["token"])["server"]
    try:
        _set_service(cloud, disabled=True)
        assert get(cloud, path, "2.16")["server"]["host_status"] == "MAINTENANCE"
        _set_service(cloud, forced_down=True)
        assert get(cloud, path, "2.16")["server"]["host_status"] == "DOWN"
    finally:
        _set_service(cloud, disabled=False, forced_down=False)
    # The update answer has no host_status.
    resp = cloud.compute("PUT", path, {"server": {"name": "mv-server"}}, headers=v("2.16"))
    assert "host_status" not in resp.get_json()["server"]


def test_2_19_description(cloud: InProcessCloud, image: str) -> None:
    body = {"server": {"name": "described", "flavorRef": "1", "imageRef": image,
                       "description": "a server"}}
    # 2.18: no such attribute.
    fault(cloud.compute("POST", "/servers", body, headers=v("2.18")), 400)
    resp = cloud.compute("POST", "/servers", body, headers=v("2.19"))
    assert resp.status_code == 202, resp.get_data(as_text=True)
    server_id = resp.get_json()["server"]["id"]
    cloud.wait_for(server_id, "ACTIVE")
    path = f"/servers/{server_id}"
    assert "description" not in get(cloud, path, "2.18")["server"]
    shown = get(cloud, path, "2.19")
    S.validate(S.GET_SERVER_V219, shown)
    assert shown["server"]["description"] == "a server"
    S.validate(S.LIST_SERVERS_DETAIL_V219, get(cloud, "/servers/detail", "2.19"))
    # Update: refused before 2.19; set, then cleared with null.
    fault(cloud.compute("PUT", path, {"server": {"description": "x"}}, headers=v("2.18")), 400)
    resp = cloud.compute("PUT", path, {"server": {"description": "new words"}},
                         headers=v("2.19"))
    S.validate(S.UPDATE_SERVER_V219, resp.get_json())
    assert resp.get_json()["server"]["description"] == "new words"
    resp = cloud.compute("PUT", path, {"server": {"description": None}}, headers=v("2.19"))
    assert resp.get_json()["server"]["description"] is None
    fault(cloud.compute("PUT", path, {"server": {"description": "x" * 256}},
                        headers=v("2.19")), 400)
    fault(cloud.compute("PUT", path, {"server": {"description": "bell\x07"}},
                        headers=v("2.19")), 400)
    # Rebuild: refused before 2.19; the answer carries it (and locked, no host_status).
    rebuild = {"rebuild": {"imageRef": image, "description": "rebuilt"}}
    fault(cloud.compute("POST", f"{path}/action", rebuild, headers=v("2.18")), 400)
    resp = cloud.compute("POST", f"{path}/action", rebuild, headers=v("2.19"))
    assert resp.status_code == 202, resp.get_data(as_text=True)
    rebuilt = resp.get_json()
    S.validate(S.REBUILD_SERVER_V219, rebuilt)
    assert rebuilt["server"]["description"] == "rebuilt"
    assert rebuilt["server"]["locked"] is False and "host_status" not in rebuilt["server"]
    cloud.wait_for(server_id, "ACTIVE")
    # Before 2.19 a new server's description is its name (shown from 2.19).
    old = cloud.compute("POST", "/servers", {"server": {
        "name": "old-style", "flavorRef": "1", "imageRef": image}}, headers=v("2.18"))
    old_id = old.get_json()["server"]["id"]
    assert get(cloud, f"/servers/{old_id}", "2.19")["server"]["description"] == "old-style"
    new = cloud.compute("POST", "/servers", {"server": {
        "name": "no-description", "flavorRef": "1", "imageRef": image}}, headers=v("2.19"))
    new_id = new.get_json()["server"]["id"]
    assert get(cloud, f"/servers/{new_id}", "2.19")["server"]["description"] is None
    for ident in (server_id, old_id, new_id):
        cloud.compute("DELETE", f"/servers/{ident}")
    for ident in (server_id, old_id, new_id):
        cloud.wait_for(ident, "DELETED")


# -- 2.13, 2.15: server groups ---------------------------------------------------------

def test_2_13_server_group_owner(cloud: InProcessCloud) -> None:
    body = {"server_group": {"name": "owned", "policies": ["affinity"]}}
    resp = cloud.compute("POST", "/os-server-groups", body, headers=v("2.12"))
    assert resp.status_code == 200
    group = resp.get_json()["server_group"]
    assert "project_id" not in group and "user_id" not in group
    shown = get(cloud, f"/os-server-groups/{group['id']}", "2.13")
    S.validate(S.GET_SERVER_GROUP_V213, shown)
    assert shown["server_group"]["project_id"] == cloud.project_id("admin")
    assert shown["server_group"]["user_id"]
    listed = get(cloud, "/os-server-groups", "2.13")
    S.validate(S.LIST_SERVER_GROUPS_V213, listed)
    S.validate(S.LIST_SERVER_GROUPS, get(cloud, "/os-server-groups", "2.12"))
    assert cloud.compute("DELETE", f"/os-server-groups/{group['id']}").status_code == 204


@pytest.mark.parametrize("policy", ["soft-affinity", "soft-anti-affinity"])
def test_2_15_soft_policies(cloud: InProcessCloud, policy: str) -> None:
    body = {"server_group": {"name": "soft", "policies": [policy]}}
    fault(cloud.compute("POST", "/os-server-groups", body, headers=v("2.14")), 400)
    resp = cloud.compute("POST", "/os-server-groups", body, headers=v("2.15"))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    S.validate(S.CREATE_SERVER_GROUP_V213, resp.get_json())
    group = resp.get_json()["server_group"]
    assert group["policies"] == [policy]
    assert cloud.compute("DELETE", f"/os-server-groups/{group['id']}").status_code == 204


# -- 2.17: trigger_crash_dump ----------------------------------------------------------

def test_2_17_trigger_crash_dump(cloud: InProcessCloud, image: str,
                                 member: dict[str, str]) -> None:
    booted = cloud.boot("dumped", image=image)
    path = f"/servers/{booted['id']}/action"
    body = {"trigger_crash_dump": None}
    # 2.16: the action does not exist yet.
    fault(cloud.compute("POST", path, body, headers=v("2.16")), 404)
    fault(cloud.compute("POST", path, {"trigger_crash_dump": {}}, headers=v("2.17")), 400)
    resp = cloud.compute("POST", path, body, headers=v("2.17"))
    assert resp.status_code == 202 and resp.get_data() == b""
    driver = cloud.computes["host1"].manager.driver
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        actions = get(cloud, f"/servers/{booted['id']}/os-instance-actions", "2.17")
        dump = [a for a in actions["instanceActions"] if a["action"] == "trigger_crash_dump"]
        if dump:
            detail = get(cloud, f"/servers/{booted['id']}/os-instance-actions/"
                                f"{dump[0]['request_id']}", "2.17")["instanceAction"]
            if detail["events"] and detail["events"][0].get("result") == "Success":
                break
        time.sleep(0.02)
    else:
        raise AssertionError("no successful compute_trigger_crash_dump event")
    assert detail["events"][0]["event"] == "compute_trigger_crash_dump"
    assert driver._guests[booted["id"]].crash_dumps == 1
    # The state is left alone.
    shown = get(cloud, f"/servers/{booted['id']}", "2.17")["server"]
    assert (shown["status"], shown["OS-EXT-STS:power_state"]) == ("ACTIVE", 1)
    # A locked server: 409 for its (non-admin) owner's project members.
    assert cloud.compute("POST", path, {"lock": None}).status_code == 202
    msg = fault(cloud.compute("POST", path, body, headers=v("2.17"), token=member["token"]),
                409)
    assert "locked" in msg
    assert cloud.compute("POST", path, {"unlock": None}).status_code == 202
    # Not from STOPPED (409, Nova's wording).
    assert cloud.compute("POST", path, {"os-stop": None}).status_code == 202
    cloud.wait_for(booted["id"], "SHUTOFF")
    msg = fault(cloud.compute("POST", path, body, headers=v("2.17")), 409)
    assert msg == (f"Cannot 'trigger_crash_dump' instance {booted['id']} while it is in "
                   f"vm_state stopped")
    fault(cloud.compute("POST", "/servers/00000000-0000-0000-0000-000000000000/action", body,
                        headers=v("2.17")), 404)
    cloud.compute("DELETE", f"/servers/{booted['id']}")
    cloud.wait_for(booted["id"], "DELETED")


# -- 2.18: the project id in URLs ------------------------------------------------------

@pytest.mark.parametrize("version", ["2.1", "2.17", "2.18", "2.19"])
def test_2_18_project_id_in_urls(cloud: InProcessCloud, server: dict[str, Any],
                                 version: str) -> None:
    project = cloud.project_id("admin")
    for path in (f"/{project}/servers/{server['id']}", f"/servers/{server['id']}"):
        assert get(cloud, path, version)["server"]["id"] == server["id"]
    assert get(cloud, f"/{project}/flavors", version)["flavors"]
    # Links name the project when the URL did (Nova's _get_project_id), not otherwise.
    root = cloud.conf.api.public_url + "/compute"
    for prefix, versioned, bookmark in (
            (f"/{project}", f"{root}/v2.1/{project}", f"{root}/{project}"),
            ("", f"{root}/v2.1", root)):
        shown = get(cloud, f"{prefix}/servers/{server['id']}", version)["server"]
        assert [link["href"] for link in shown["links"]] == [
            f"{versioned}/servers/{server['id']}", f"{bookmark}/servers/{server['id']}"]
        assert shown["flavor"]["links"][0]["href"].startswith(f"{bookmark}/flavors/")
        flavors = get(cloud, f"{prefix}/flavors?limit=1", version)
        assert flavors["flavors"][0]["links"][0]["href"].startswith(f"{versioned}/flavors/")
        assert flavors["flavors_links"][0]["href"].startswith(f"{versioned}/flavors?")
    other = "0123456789abcdef0123456789abcdef"
    msg = fault(cloud.compute("GET", f"/{other}/servers", headers=v(version)), 400)
    assert msg == (f"Malformed request URL: URL's project_id '{other}' doesn't match "
                   f"Context's project_id '{project}'")
