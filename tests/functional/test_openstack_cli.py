"""The unmodified ``openstack`` command-line client against the all-in-one."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.functional.harness import AllInOne

pytestmark = pytest.mark.functional

OPENSTACK = os.path.join(os.path.dirname(sys.executable), "openstack")


@pytest.fixture(scope="module")
def aio(tmp_path_factory):
    if not os.path.exists(OPENSTACK) and not shutil.which("openstack"):
        pytest.fail("python-openstackclient is not installed (pip install -e '.[test]')")
    cloud = AllInOne(str(tmp_path_factory.mktemp("aio")))
    cloud.start()
    yield cloud
    assert cloud.stop() == 0, cloud.process.log()


def osc(aio: AllInOne, *args: str, parse: bool = True, cwd: str | None = None):
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=aio.clouds_yaml, OS_CLOUD="stratus")
    for key in [k for k in env if k.startswith("OS_") and k not in ("OS_CLIENT_CONFIG_FILE",
                                                                    "OS_CLOUD")]:
        env.pop(key)
    cmd = [OPENSTACK, *args] + (["-f", "json"] if parse else [])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=cwd)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout) if parse and proc.stdout.strip() else proc.stdout


def test_cli_server_lifecycle(aio, tmp_path):
    disk = tmp_path / "disk.raw"
    disk.write_bytes(os.urandom(256 * 1024))
    image = osc(aio, "image", "create", "--file", str(disk), "--disk-format", "raw",
                "--container-format", "bare", "cli-image")
    assert image["status"] == "active" and image["size"] == 256 * 1024

    flavor = osc(aio, "flavor", "create", "--ram", "128", "--vcpus", "1", "--disk", "1",
                 "cli-flavor")
    assert (flavor["ram"], flavor["vcpus"], flavor["disk"]) == (128, 1, 1)

    key = osc(aio, "keypair", "create", "cli-key", parse=False)
    assert "PRIVATE KEY" in key
    keypairs = osc(aio, "keypair", "list")
    assert [k["Name"] for k in keypairs] == ["cli-key"]

    server = osc(aio, "server", "create", "--image", "cli-image", "--flavor", "cli-flavor",
                 "--key-name", "cli-key", "--wait", "cli-vm")
    assert server["status"] == "ACTIVE"
    assert server["name"] == "cli-vm" and server["key_name"] == "cli-key"
    server_id = server["id"]

    listed = osc(aio, "server", "list")
    assert [(s["ID"], s["Name"], s["Status"]) for s in listed] == \
        [(server_id, "cli-vm", "ACTIVE")]

    osc(aio, "server", "stop", server_id, parse=False)
    _wait_status(aio, server_id, "SHUTOFF")
    osc(aio, "server", "start", server_id, parse=False)
    _wait_status(aio, server_id, "ACTIVE")
    osc(aio, "server", "reboot", "--wait", server_id, parse=False)
    shown = osc(aio, "server", "show", server_id)
    assert shown["status"] == "ACTIVE" and shown["OS-EXT-STS:power_state"] in ("Running", 1)
    actions = osc(aio, "server", "event", "list", server_id)
    assert {a["Action"] for a in actions} >= {"create", "stop", "start", "reboot"}

    osc(aio, "server", "delete", "--wait", server_id, parse=False)
    assert osc(aio, "server", "list") == []


def _wait_status(aio: AllInOne, server_id: str, status: str, timeout: float = 30) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = osc(aio, "server", "show", server_id)
        if shown["status"] == status and not shown.get("OS-EXT-STS:task_state"):
            return
        time.sleep(0.2)
    raise AssertionError(f"{server_id} not {status}: {shown}")


def test_cli_quota_show_set_list_and_enforcement(aio, tmp_path):
    """openstack quota show / set / list --compute / delete, limits show, and a
    server create refused by the quota, on the all-in-one."""
    def limits_of(rows):
        return {row["Resource"]: row["Limit"] for row in rows}

    shown = limits_of(osc(aio, "quota", "show"))
    assert (shown["instances"], shown["cores"], shown["ram"], shown["key-pairs"]) == \
        (10, 20, 51200, 100)
    project = osc(aio, "project", "show", "admin")["id"]
    assert osc(aio, "quota", "list", "--compute") == []

    osc(aio, "quota", "set", "--instances", "0", "--cores", "11", "admin", parse=False)
    shown = limits_of(osc(aio, "quota", "show", "admin"))
    assert (shown["instances"], shown["cores"]) == (0, 11)
    assert limits_of(osc(aio, "quota", "show", "--default", "admin"))["instances"] == 10
    listed = osc(aio, "quota", "list", "--compute")
    assert [(row["Project ID"], row["Instances"], row["Cores"]) for row in listed] == \
        [(project, 0, 11)]
    usage = {row["Resource"]: row for row in osc(aio, "quota", "show", "--usage", "admin")}
    assert (usage["instances"]["Limit"], usage["instances"]["In Use"]) == (0, 0)
    absolute = {row["Name"]: row["Value"] for row in osc(aio, "limits", "show", "--absolute")}
    assert (absolute["maxTotalInstances"] if "maxTotalInstances" in absolute
            else absolute["max_total_instances"]) == 0

    disk = tmp_path / "quota.raw"
    disk.write_bytes(os.urandom(64 * 1024))
    osc(aio, "image", "create", "--file", str(disk), "--disk-format", "raw",
        "--container-format", "bare", "quota-image")
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=aio.clouds_yaml, OS_CLOUD="stratus")
    proc = subprocess.run([OPENSTACK, "server", "create", "--image", "quota-image",
                           "--flavor", "m1.nano", "over-quota"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert ("Quota exceeded for instances: Requested 1, but already used 0 of 0 instances"
            in proc.stderr), proc.stderr
    assert "ForbiddenException: 403" in proc.stderr
    assert osc(aio, "server", "list") == []

    osc(aio, "quota", "set", "--instances", "2", "admin", parse=False)
    server = osc(aio, "server", "create", "--image", "quota-image", "--flavor", "m1.nano",
                 "--wait", "in-quota")
    assert server["status"] == "ACTIVE"
    proc = subprocess.run([OPENSTACK, "quota", "set", "--instances", "0", "admin"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and ("Quota limit 0 for instances must be greater than or "
                                     "equal to already used and reserved 1.") in proc.stderr
    osc(aio, "quota", "set", "--force", "--instances", "0", "admin", parse=False)
    assert limits_of(osc(aio, "quota", "show", "admin"))["instances"] == 0

    osc(aio, "server", "delete", "--wait", server["id"], parse=False)
    osc(aio, "image", "delete", "quota-image", parse=False)
    osc(aio, "quota", "delete", "--compute", "admin", parse=False)
    assert limits_of(osc(aio, "quota", "show", "admin"))["instances"] == 10
    assert osc(aio, "quota", "list", "--compute") == []
