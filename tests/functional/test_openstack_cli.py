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
