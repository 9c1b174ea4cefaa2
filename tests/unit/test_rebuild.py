"""The rebuild server action (microversion 2.1) on the fake driver."""
from __future__ import annotations

from stratus.compute import power_state


def rebuild(cloud, server_id, body):
    return cloud.compute("POST", f"/servers/{server_id}/action", {"rebuild": body})


def test_rebuild_respawns_from_the_new_image(cloud):
    server = cloud.boot("phoenix")
    driver = cloud.computes["host1"].manager.driver
    first_id = driver.get_info({"uuid": server["id"]}).internal_id
    new_image = cloud.create_image("new-image", b"new" * 100)
    resp = rebuild(cloud, server["id"], {"imageRef": new_image, "name": "phoenix-2",
                                         "metadata": {"gen": "2"}, "adminPass": "pw-2"})
    assert resp.status_code == 202, resp.get_data(as_text=True)
    body = resp.get_json()["server"]
    assert body["adminPass"] == "pw-2" and body["status"] == "REBUILD"
    assert body["image"]["id"] == new_image and body["name"] == "phoenix-2"
    assert body["metadata"] == {"gen": "2"}
    shown = cloud.wait_for(server["id"], "ACTIVE")
    assert shown["image"]["id"] == new_image
    assert shown["OS-EXT-STS:power_state"] == power_state.RUNNING
    guest = driver._guests[server["id"]]
    assert guest.image_ref == new_image and guest.internal_id != first_id
    actions = cloud.compute("GET", f"/servers/{server['id']}/os-instance-actions").get_json()
    assert "rebuild" in [a["action"] for a in actions["instanceActions"]]


def test_rebuild_generates_a_password_and_keeps_a_stopped_server_stopped(cloud):
    server = cloud.boot("sleeper")
    cloud.compute("POST", f"/servers/{server['id']}/action", {"os-stop": None})
    cloud.wait_for(server["id"], "SHUTOFF")
    resp = rebuild(cloud, server["id"], {"imageRef": server["image"]["id"]})
    assert resp.status_code == 202
    assert len(resp.get_json()["server"]["adminPass"]) >= 8
    shown = cloud.wait_for(server["id"], "SHUTOFF")
    assert shown["OS-EXT-STS:power_state"] == power_state.SHUTDOWN


def test_rebuild_errors(cloud):
    server = cloud.boot("strict")
    assert rebuild(cloud, server["id"], {}).status_code == 400
    assert rebuild(cloud, server["id"], {"imageRef": server["image"]["id"],
                                         "bogus": 1}).status_code == 400
    resp = rebuild(cloud, server["id"], {"imageRef": "3f0c1b7e-8a59-4d6f-9a53-1f0d2b4c6e8a"})
    assert resp.status_code == 400
    cloud.compute("POST", f"/servers/{server['id']}/action", {"pause": None})
    cloud.wait_for(server["id"], "PAUSED")
    assert rebuild(cloud, server["id"], {"imageRef": server["image"]["id"]}).status_code == 409


def test_a_failed_rebuild_is_an_error_with_a_fault(cloud):
    import re

    server = cloud.boot("fragile")
    cloud.computes["host1"].manager.driver.fail_spawn_pattern = re.compile("fragile")
    assert rebuild(cloud, server["id"], {"imageRef": server["image"]["id"]}).status_code == 202
    shown = cloud.wait_for(server["id"], "ERROR")
    assert "simulated spawn failure" in shown["fault"]["message"]
    # and an ERROR server can be rebuilt
    cloud.computes["host1"].manager.driver.fail_spawn_pattern = None
    assert rebuild(cloud, server["id"], {"imageRef": server["image"]["id"]}).status_code == 202
    cloud.wait_for(server["id"], "ACTIVE")
