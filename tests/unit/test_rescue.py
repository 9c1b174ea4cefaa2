"""rescue / unrescue server actions (microversion 2.1) on the fake driver."""
from __future__ import annotations


def action(cloud, server_id, body):
    return cloud.compute("POST", f"/servers/{server_id}/action", body)


def test_rescue_and_unrescue(cloud):
    server = cloud.boot("broken")
    driver = cloud.computes["host1"].manager.driver
    resp = action(cloud, server["id"], {"rescue": {"adminPass": "rescue-pw"}})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json() == {"adminPass": "rescue-pw"}
    shown = cloud.wait_for(server["id"], "RESCUE")
    assert shown["OS-EXT-STS:vm_state"] == "rescued"
    assert driver._guests[server["id"]].rescue_image_ref == server["image"]["id"]
    # Only unrescue (and delete) from RESCUE.
    assert action(cloud, server["id"], {"os-stop": None}).status_code == 409
    assert action(cloud, server["id"], {"rescue": None}).status_code == 409
    assert action(cloud, server["id"], {"unrescue": None}).status_code == 202
    cloud.wait_for(server["id"], "ACTIVE")
    assert driver._guests[server["id"]].rescue_image_ref is None
    assert action(cloud, server["id"], {"unrescue": None}).status_code == 409
    actions = cloud.compute("GET", f"/servers/{server['id']}/os-instance-actions").get_json()
    assert {"rescue", "unrescue"} <= {a["action"] for a in actions["instanceActions"]}


def test_rescue_with_another_image_and_a_generated_password(cloud):
    server = cloud.boot("other")
    rescue_image = cloud.create_image("rescue-image", b"rescue" * 10)
    resp = action(cloud, server["id"], {"rescue": {"rescue_image_ref": rescue_image}})
    assert resp.status_code == 200
    assert len(resp.get_json()["adminPass"]) >= 8
    cloud.wait_for(server["id"], "RESCUE")
    driver = cloud.computes["host1"].manager.driver
    assert driver._guests[server["id"]].rescue_image_ref == rescue_image


def test_rescue_errors(cloud):
    server = cloud.boot("picky")
    assert action(cloud, server["id"], {"rescue": {"bogus": 1}}).status_code == 400
    assert action(cloud, server["id"], {"rescue": {"rescue_image_ref": "nope"}}
                  ).status_code == 400
    resp = action(cloud, server["id"], {"rescue": {
        "rescue_image_ref": "3f0c1b7e-8a59-4d6f-9a53-1f0d2b4c6e8a"}})
    assert resp.status_code == 400
    cloud.compute("POST", f"/servers/{server['id']}/action", {"pause": None})
    cloud.wait_for(server["id"], "PAUSED")
    assert action(cloud, server["id"], {"rescue": None}).status_code == 409
