"""The image service through the unmodified ``openstack`` CLI and openstacksdk,
against the all-in-one, with two member projects (alice shares with bob)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from typing import Any

import pytest

from tests.functional.harness import AllInOne, connect

pytestmark = pytest.mark.functional

OPENSTACK = os.path.join(os.path.dirname(sys.executable), "openstack")
MEMBER_PASSWORD = "member-secret"
CLOUD = """\
  {name}:
    auth:
      auth_url: {url}/identity
      username: {user}
      password: {password}
      project_name: {project}
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
    interface: public
"""


@pytest.fixture(scope="module")
def aio(tmp_path_factory: Any) -> Any:
    if not os.path.exists(OPENSTACK) and not shutil.which("openstack"):
        pytest.fail("python-openstackclient is not installed (pip install -e '.[test]')")
    cloud = AllInOne(str(tmp_path_factory.mktemp("aio")))
    cloud.start()
    from stratus.db.session import Database
    from stratus.identity import backend

    db = Database(f"sqlite:///{os.path.join(cloud.state_dir, 'stratus.sqlite')}")
    cloud.project_ids = {}
    try:
        for name in ("alice", "bob"):
            project = backend.create_project(db, name)
            user = backend.create_user(db, name, MEMBER_PASSWORD)
            backend.grant_role(db, user["id"], project["id"], "member")
            cloud.project_ids[name] = project["id"]
    finally:
        db.dispose()
    clouds = os.path.join(cloud.state_dir, "clouds-members.yaml")
    with open(clouds, "w") as f:
        f.write("clouds:\n" + "".join(
            CLOUD.format(name=n, url=cloud.url, user=u, password=p, project=pr)
            for n, u, p, pr in (("admin", "admin", cloud.password, "admin"),
                                ("alice", "alice", MEMBER_PASSWORD, "alice"),
                                ("bob", "bob", MEMBER_PASSWORD, "bob"))))
    cloud.members_yaml = clouds
    yield cloud
    assert cloud.stop() == 0, cloud.process.log()


def osc(aio: AllInOne, who: str, *args: str, parse: bool = True, ok: bool = True) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(OS_CLIENT_CONFIG_FILE=aio.members_yaml, OS_CLOUD=who)
    cmd = [OPENSTACK, *args] + (["-f", "json"] if parse else [])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    if not ok:
        assert proc.returncode != 0, f"{' '.join(args)} unexpectedly worked:\n{proc.stdout}"
        return proc.stderr
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout) if parse and proc.stdout.strip() else proc.stdout


def names(rows: list[dict[str, Any]]) -> set[str]:
    return {r["Name"] for r in rows}


def test_image_cli_lifecycle_and_sharing(aio: AllInOne, tmp_path: Any) -> None:
    data = os.urandom(300 * 1024 + 5)
    disk = tmp_path / "disk.raw"
    disk.write_bytes(data)
    image = osc(aio, "alice", "image", "create", "--file", str(disk), "--disk-format", "raw",
                "--container-format", "bare", "--property", "os_distro=ubuntu",
                "--tag", "gold", "--private", "alice-img")
    image_id = image["id"]
    assert (image["status"], image["size"]) == ("active", len(data))
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    # A member project may not publicize (Glance's publicize_image is admin-only).
    osc(aio, "alice", "image", "create", "--disk-format", "raw", "--container-format",
        "bare", "--public", "alice-public", ok=False)
    osc(aio, "admin", "image", "create", "--disk-format", "raw", "--container-format",
        "bare", "--public", "admin-public")

    assert names(osc(aio, "alice", "image", "list", "--property", "os_distro=ubuntu")) == \
        {"alice-img"}
    assert names(osc(aio, "alice", "image", "list", "--tag", "gold")) == {"alice-img"}
    assert names(osc(aio, "alice", "image", "list", "--private")) == {"alice-img"}
    assert names(osc(aio, "alice", "image", "list", "--public")) == {"admin-public"}
    assert names(osc(aio, "bob", "image", "list")) == {"admin-public"}

    osc(aio, "alice", "image", "set", "--property", "os_version=24.04", "--tag", "silver",
        "--min-ram", "64", "alice-img", parse=False)
    shown = osc(aio, "alice", "image", "show", "alice-img")
    assert shown["properties"]["os_version"] == "24.04" and shown["min_ram"] == 64
    assert set(shown["tags"]) == {"gold", "silver"}
    osc(aio, "alice", "image", "unset", "--property", "os_version", "--tag", "gold",
        "alice-img", parse=False)
    shown = osc(aio, "alice", "image", "show", "alice-img")
    assert "os_version" not in shown["properties"] and shown["tags"] == ["silver"]
    assert shown["properties"]["os_distro"] == "ubuntu"
    assert shown["properties"]["os_hash_algo"] == "sha512" or \
        shown.get("os_hash_algo") == "sha512"

    # Bob cannot see, change or delete the private image.
    osc(aio, "bob", "image", "show", image_id, ok=False)
    osc(aio, "bob", "image", "delete", image_id, parse=False, ok=False)

    # Share it with bob: pending, then accepted.
    osc(aio, "alice", "image", "set", "--shared", "alice-img", parse=False)
    member = osc(aio, "alice", "image", "add", "project", "alice-img",
                 aio.project_ids["bob"])
    assert member["status"] == "pending"
    assert osc(aio, "bob", "image", "show", image_id)["name"] == "alice-img"
    assert "alice-img" not in names(osc(aio, "bob", "image", "list"))
    osc(aio, "bob", "image", "set", "--accept", image_id, parse=False)
    assert "alice-img" in names(osc(aio, "bob", "image", "list"))
    assert "alice-img" in names(osc(aio, "bob", "image", "list", "--shared"))
    members = osc(aio, "alice", "image", "member", "list", "alice-img")
    assert [(m["Member ID"], m["Status"]) for m in members] == [
        (aio.project_ids["bob"], "accepted")]
    out = tmp_path / "saved.raw"
    osc(aio, "bob", "image", "save", "--file", str(out), image_id, parse=False)
    assert out.read_bytes() == data
    osc(aio, "bob", "image", "set", "--name", "stolen", image_id, parse=False, ok=False)

    osc(aio, "alice", "image", "remove", "project", "alice-img", aio.project_ids["bob"],
        parse=False)
    osc(aio, "bob", "image", "show", image_id, ok=False)

    # Protected images cannot be deleted.
    osc(aio, "alice", "image", "set", "--protected", "alice-img", parse=False)
    osc(aio, "alice", "image", "delete", "alice-img", parse=False, ok=False)
    osc(aio, "alice", "image", "set", "--unprotected", "alice-img", parse=False)
    osc(aio, "alice", "image", "delete", "alice-img", parse=False)
    assert names(osc(aio, "alice", "image", "list")) == {"admin-public"}


def test_sdk_image_members(aio: AllInOne) -> None:
    alice = connect(aio.url, MEMBER_PASSWORD, username="alice", project="alice")
    bob = connect(aio.url, MEMBER_PASSWORD, username="bob", project="bob")
    try:
        image = alice.image.create_image("sdk-shared", data=b"x" * 1000, disk_format="raw",
                                         container_format="bare", visibility="shared")
        bob_id = aio.project_ids["bob"]
        member = alice.image.add_member(image.id, member_id=bob_id)
        assert (member.member_id, member.status) == (bob_id, "pending")
        assert [m.member_id for m in alice.image.members(image.id)] == [bob_id]
        assert bob.image.get_member(bob_id, image.id).status == "pending"
        updated = bob.image.update_member(bob_id, image.id, status="accepted")
        assert updated.status == "accepted"
        assert image.id in [i.id for i in bob.image.images()]
        # Compute's image proxy applies the same rules.
        proxied = {i.id: i for i in bob.compute.images()}
        assert proxied[image.id].status == "ACTIVE" and proxied[image.id].size == 1000
        assert bob.compute.get_image(image.id).name == "sdk-shared"
        alice.compute.set_image_metadata(image.id, os_distro="cirros")
        assert bob.compute.get_image_metadata(image.id).metadata["os_distro"] == "cirros"
        assert bob.image.download_image(image.id).content == b"x" * 1000
        alice.image.remove_member(bob_id, image.id)
        assert image.id not in [i.id for i in bob.image.images(member_status="all")]
        alice.image.delete_image(image.id)
    finally:
        alice.close()
        bob.close()


def test_interrupted_upload_leaves_the_image_queued(aio: AllInOne) -> None:
    """A client that goes away mid-upload leaves a queued image and no data file."""
    import http.client
    import socket
    import time

    sdk = connect(aio.url, MEMBER_PASSWORD, username="alice", project="alice")
    try:
        image = sdk.image.create_image("interrupted", disk_format="raw",
                                       container_format="bare", allow_duplicates=True)
        token = sdk.auth_token
        port = int(aio.url.rsplit(":", 1)[1])
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall((f"PUT /image/v2/images/{image.id}/file HTTP/1.1\r\n"
                      f"Host: 127.0.0.1\r\nX-Auth-Token: {token}\r\n"
                      f"Content-Type: application/octet-stream\r\n"
                      f"Content-Length: {10 * 1024 * 1024}\r\n\r\n").encode())
        sock.sendall(os.urandom(2 * 1024 * 1024))
        sock.close()
        time.sleep(0.5)
        shown = sdk.image.get_image(image.id)
        assert (shown.status, shown.size, shown.checksum) == ("queued", None, None)
        leftovers = [f for f in os.listdir(os.path.join(aio.state_dir, "images"))
                     if image.id in f]
        assert leftovers == []
        # The upload can be done again, completely.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("PUT", f"/image/v2/images/{image.id}/file", body=b"x" * 4096,
                     headers={"X-Auth-Token": token,
                              "Content-Type": "application/octet-stream"})
        assert conn.getresponse().status == 204
        conn.close()
        assert sdk.image.get_image(image.id).status == "active"
        sdk.image.delete_image(image.id)
    finally:
        sdk.close()
