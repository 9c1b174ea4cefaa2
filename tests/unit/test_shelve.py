"""shelve / unshelve (offloaded at once) on the fake driver."""
from __future__ import annotations

import pytest

from stratus.compute import power_state
from stratus.db import services as db_services
from tests.unit.test_snapshot import InProcessImageAPI, wait_image


@pytest.fixture
def images(cloud):
    api = InProcessImageAPI(cloud)
    for compute in cloud.computes.values():
        compute.manager.image_api = api
    return api


def action(cloud, server_id, name):
    return cloud.compute("POST", f"/servers/{server_id}/action", {name: None})


def shelved_image_of(cloud, server_id):
    from stratus.db import instances as db_instances

    return (db_instances.instance_get(cloud.db, server_id).get("request_spec") or {}).get(
        "shelved_image_id")


def test_shelve_offloads_and_unshelve_boots_from_the_shelved_image(cloud, images):
    server = cloud.boot("hibernator")
    driver = cloud.computes["host1"].manager.driver
    assert action(cloud, server["id"], "shelve").status_code == 202
    shown = cloud.wait_for(server["id"], "SHELVED_OFFLOADED")
    assert shown["OS-EXT-SRV-ATTR:host"] is None
    assert shown["OS-EXT-STS:power_state"] == power_state.SHUTDOWN
    assert server["id"] not in driver.list_instances()
    assert db_services.allocation_usage(cloud.db) == {}  # the host's resources are free
    image_id = shelved_image_of(cloud, server["id"])
    image = wait_image(cloud, image_id, "active")
    assert image["name"] == "hibernator-shelved" and image["instance_uuid"] == server["id"]
    # Only unshelve (or delete) from here.
    assert action(cloud, server["id"], "os-start").status_code == 409

    assert action(cloud, server["id"], "unshelve").status_code == 202
    shown = cloud.wait_for(server["id"], "ACTIVE")
    assert shown["OS-EXT-SRV-ATTR:host"] == "host1"
    assert driver._guests[server["id"]].image_ref == image_id
    assert shown["image"]["id"] == server["image"]["id"]  # the instance keeps its image
    wait_image(cloud, image_id, "deleted")
    assert shelved_image_of(cloud, server["id"]) is None
    assert db_services.allocation_usage(cloud.db) != {}
    actions = cloud.compute("GET", f"/servers/{server['id']}/os-instance-actions").get_json()
    assert {"shelve", "unshelve"} <= {a["action"] for a in actions["instanceActions"]}


def test_deleting_a_shelved_server_deletes_its_image(cloud, images):
    server = cloud.boot("goner")
    action(cloud, server["id"], "shelve")
    cloud.wait_for(server["id"], "SHELVED_OFFLOADED")
    image_id = shelved_image_of(cloud, server["id"])
    assert cloud.compute("DELETE", f"/servers/{server['id']}").status_code == 204
    cloud.wait_for(server["id"], "DELETED")
    wait_image(cloud, image_id, "deleted")


def test_a_failed_shelve_keeps_the_server_and_drops_the_image(cloud, images):
    server = cloud.boot("clingy")
    images.fail_upload = True
    action(cloud, server["id"], "shelve")
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        shown = cloud.compute("GET", f"/servers/{server['id']}").get_json()["server"]
        if shown["OS-EXT-STS:task_state"] is None:
            break
        time.sleep(0.01)
    assert shown["status"] == "ACTIVE" and shown["OS-EXT-SRV-ATTR:host"] == "host1"
    image_id = shelved_image_of(cloud, server["id"])
    wait_image(cloud, image_id, "deleted")


def test_unshelve_without_a_host_stays_shelved_with_a_fault(cloud, images):
    import time

    server = cloud.boot("homeless")
    action(cloud, server["id"], "shelve")
    cloud.wait_for(server["id"], "SHELVED_OFFLOADED")
    manager = cloud.computes["host1"].manager
    manager.driver.memory_mb = 1  # the host shrank: nothing fits any more
    manager.update_available_resource()
    time.sleep(cloud.conf.scheduler.host_state_max_age + 0.1)  # the scheduler re-reads
    assert action(cloud, server["id"], "unshelve").status_code == 202
    from sqlalchemy import select

    from stratus.db.models import InstanceFault

    def faults() -> list[str]:
        with cloud.db.read() as s:
            return list(s.scalars(select(InstanceFault.message).where(
                InstanceFault.instance_uuid == server["id"])))

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not faults():
        time.sleep(0.02)
    shown = cloud.compute("GET", f"/servers/{server['id']}").get_json()["server"]
    assert shown["status"] == "SHELVED_OFFLOADED" and shown["OS-EXT-STS:task_state"] is None
    assert "not enough hosts" in faults()[0]
    assert shelved_image_of(cloud, server["id"])  # kept for the next try
