"""createBackup with unmodified clients: openstacksdk's ``backup_server`` and
OSC's ``openstack server backup create --wait``, against the in-process cloud
served over HTTP. The compute hosts upload and rotate through the real
image client (:class:`stratus.image.client.ImageClient`) over that HTTP."""
from __future__ import annotations

from typing import Any

import pytest

from stratus.image.client import ImageClient
from tests.cloud import ADMIN_PASSWORD, InProcessCloud
from tests.functional.clients import osc_in_process


@pytest.fixture(scope="module")
def server(served: tuple[InProcessCloud, str], conn: Any) -> Any:
    cloud, url = served
    for compute in cloud.computes.values():
        compute.manager.image_api = ImageClient(
            f"{url}/identity", "admin", ADMIN_PASSWORD, "admin",
            image_endpoint=f"{url}/image", timeout=30)
    created = conn.compute.create_server(name="backed-up", image_id=cloud.create_image("cirros"),
                                         flavor_id="1", networks="none")
    return conn.compute.wait_for_server(created, interval=0.1)


def _backup_names(cloud: InProcessCloud, server_id: str, backup_type: str) -> list[str]:
    resp = cloud.request("GET", f"/image/v2/images?instance_uuid={server_id}&image_type=backup"
                                f"&backup_type={backup_type}&sort_key=created_at&sort_dir=desc")
    return [i["name"] for i in resp.get_json()["images"]]


def _idle(conn: Any, server: Any) -> None:
    import time

    deadline = time.monotonic() + 10
    while conn.compute.get_server(server.id).task_state is not None:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_sdk_backup_server_rotates(served: tuple[InProcessCloud, str], conn: Any,
                                   server: Any) -> None:
    for i in range(3):
        image = conn.compute.backup_server(server, f"sdk-daily-{i}", "daily", 2)
        _idle(conn, server)  # (the SDK's own wait polls every 2 s)
        image = conn.image.get_image(image.id)
        assert image.status == "active"
        assert image.properties["image_type"] == "backup"
        assert image.properties["backup_type"] == "daily"
        assert image.instance_uuid == server.id
    assert _backup_names(served[0], server.id, "daily") == ["sdk-daily-2", "sdk-daily-1"]


def test_osc_server_backup_create(served: tuple[InProcessCloud, str], conn: Any,
                                  server: Any, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import functools

    from osc_lib import utils

    # OSC's --wait polls every 5 s; the same loop, faster.
    monkeypatch.setattr(utils, "wait_for_status",
                        functools.partial(utils.wait_for_status, sleep_time=0.1))
    cloud, url = served
    for i in range(2):
        shown = osc_in_process(url, capsys, "server", "backup", "create", "--name",
                               f"osc-weekly-{i}", "--type", "weekly", "--rotate", "1",
                               "--wait", server.id, "-f", "json")
        assert shown["name"] == f"osc-weekly-{i}"  # (as found before the wait)
        image = cloud.request("GET", f"/image/v2/images/{shown['id']}").get_json()
        assert image["status"] == "active" and image["backup_type"] == "weekly"
        _idle(conn, server)
    assert _backup_names(cloud, server.id, "weekly") == ["osc-weekly-1"]
    assert _backup_names(cloud, server.id, "daily") == ["sdk-daily-2", "sdk-daily-1"]
