"""The whole control plane in one process: builds, actions, deletes, faults,
notifications and instance actions, through the real API, conductor,
scheduler and compute code on the in-process transport."""
from __future__ import annotations

import threading
import time

import pytest

from stratus import rpc
from tests.cloud import InProcessCloud


def test_notifications_follow_the_lifecycle(cloud):
    seen: list[dict] = []
    lock = threading.Lock()

    def collect(note: dict) -> None:
        with lock:
            seen.append(note)

    listener = rpc.NotificationListener(cloud.transport, collect, pool="test")
    listener.start()
    try:
        server = cloud.boot("noisy")
        assert cloud.compute("DELETE", f"/servers/{server['id']}").status_code == 204
        cloud.wait_for(server["id"], "DELETED")

        def events() -> list[str]:
            with lock:
                return [n["event_type"] for n in seen
                        if n["payload"].get("stratus_object.data", {}).get("uuid") == server["id"]]

        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "instance.delete.end" not in events():
            time.sleep(0.02)
        assert events() == ["instance.create.start", "instance.create.end",
                            "instance.delete.start", "instance.delete.end"]
        end = next(n for n in seen if n["event_type"] == "instance.create.end")
        assert end["publisher_id"] == "compute.host1" and end["priority"].lower() == "info"
        assert end["payload"]["stratus_object.version"] == "1.0"
        data = end["payload"]["stratus_object.data"]
        assert data["state"] == "active" and data["display_name"] == "noisy"
        assert data["flavor"]["flavorid"] == "1"
    finally:
        listener.stop()


def test_failed_spawn_ends_in_error_with_fault_and_frees_capacity(tmp_path):
    import re

    cloud = InProcessCloud(tmp_path)
    try:
        cloud.computes["host1"].manager.driver.fail_spawn_pattern = re.compile("doomed")
        server = cloud.boot("doomed", wait="ERROR")
        assert server["fault"]["code"] == 500
        assert "doomed" in server["fault"]["message"]
        from stratus.db import services as db_services
        assert db_services.allocation_usage(cloud.db) == {}
        resp = cloud.compute("GET", f"/servers/{server['id']}/os-instance-actions")
        [action] = resp.get_json()["instanceActions"]
        assert action["action"] == "create" and action["message"] == "Error"
    finally:
        cloud.close()


def test_no_valid_host_puts_the_server_in_error(cloud):
    resp = cloud.compute("POST", "/flavors", {"flavor": {
        "name": "huge", "ram": 10 ** 7, "vcpus": 1, "disk": 0}})
    assert resp.status_code == 200
    flavor_id = resp.get_json()["flavor"]["id"]
    # The flavor is past the default ram quota too: lift it, so the scheduler decides.
    resp = cloud.compute("PUT", f"/os-quota-sets/{cloud.project_id()}",
                         {"quota_set": {"ram": -1}})
    assert resp.status_code == 200
    server = cloud.boot("too-big", flavor=flavor_id, wait="ERROR")
    assert server["fault"]["message"].startswith("No valid host was found.")
    assert "OS-EXT-SRV-ATTR:host" in server and server["OS-EXT-SRV-ATTR:host"] is None


def test_delete_during_build_leaves_nothing_behind(tmp_path):
    cloud = InProcessCloud(tmp_path, fake_delay=0.3)
    try:
        server = cloud.boot("short-lived", wait=None)
        time.sleep(0.1)
        assert cloud.compute("DELETE", f"/servers/{server['id']}").status_code == 204
        cloud.wait_for(server["id"], "DELETED", timeout=10)
        from stratus.db import services as db_services
        deadline = time.monotonic() + 5
        while db_services.allocation_usage(cloud.db) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert db_services.allocation_usage(cloud.db) == {}
        driver = cloud.computes["host1"].manager.driver
        deadline = time.monotonic() + 5
        while driver.list_instances() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert driver.list_instances() == []
    finally:
        cloud.close()


def test_wrong_state_actions_conflict_and_change_nothing(cloud):
    server = cloud.boot("stateful")
    sid = server["id"]
    resp = cloud.compute("POST", f"/servers/{sid}/action", {"os-start": None})
    assert resp.status_code == 409
    assert "conflictingRequest" in resp.get_json()
    resp = cloud.compute("POST", f"/servers/{sid}/action", {"unpause": None})
    assert resp.status_code == 409
    shown = cloud.compute("GET", f"/servers/{sid}").get_json()["server"]
    assert shown["status"] == "ACTIVE" and shown["OS-EXT-STS:task_state"] is None


@pytest.mark.parametrize("count", [3])
def test_min_max_count_boots_several(cloud, count):
    image = cloud.create_image()
    resp = cloud.compute("POST", "/servers", {"server": {
        "name": "many", "flavorRef": "1", "imageRef": image, "min_count": count,
        "max_count": count, "return_reservation_id": True}})
    assert resp.status_code == 202
    reservation = resp.get_json()["reservation_id"]
    listed = cloud.compute("GET", f"/servers/detail?reservation_id={reservation}").get_json()
    names = sorted(s["name"] for s in listed["servers"])
    assert names == [f"many-{i}" for i in range(1, count + 1)]
    for s in listed["servers"]:
        cloud.wait_for(s["id"], "ACTIVE")


def test_failed_build_is_rescheduled_to_another_host(tmp_path):
    import re

    cloud = InProcessCloud(tmp_path, hosts=("host1", "host2"))
    try:
        for host in cloud.computes:
            cloud.computes[host].manager.driver.fail_spawn_pattern = \
                re.compile("picky") if host == "host1" else None
        image = cloud.create_image()
        servers = [cloud.boot(f"picky-{i}", image=image) for i in range(4)]
        assert {s["OS-EXT-SRV-ATTR:host"] for s in servers} == {"host2"}
        for server in servers:
            events = cloud.compute("GET", f"/servers/{server['id']}/os-instance-actions/"
                                          + cloud.compute("GET", f"/servers/{server['id']}/"
                                                          "os-instance-actions").get_json()
                                          ["instanceActions"][0]["request_id"]).get_json()
            results = [e["result"] for e in events["instanceAction"]["events"]]
            assert results[-1] == "Success"
            assert set(results) <= {"Success", "Error"}
    finally:
        cloud.close()


def test_build_failing_everywhere_ends_in_error_naming_the_failure(tmp_path):
    import re

    cloud = InProcessCloud(tmp_path, hosts=("host1", "host2"))
    try:
        for compute in cloud.computes.values():
            compute.manager.driver.fail_spawn_pattern = re.compile("hopeless")
        server = cloud.boot("hopeless", wait="ERROR")
        message = server["fault"]["message"]
        assert message.startswith("No valid host was found. Exceeded maximum number of retries")
        assert "hopeless" in message
        from stratus.db import services as db_services
        assert db_services.allocation_usage(cloud.db) == {}
    finally:
        cloud.close()


def test_delete_while_host_is_down_then_host_cleans_up_the_guest(tmp_path):
    cloud = InProcessCloud(tmp_path, overrides={("DEFAULT", "service_down_time"): 1.0,
                                                ("DEFAULT", "report_interval"): 0.2})
    try:
        server = cloud.boot("orphan")
        compute = cloud.computes["host1"]
        driver = compute.manager.driver
        assert driver.list_instances() == [server["id"]]
        compute.stop(timeout=5)
        time.sleep(1.3)  # its heartbeat is now older than service_down_time
        assert cloud.compute("DELETE", f"/servers/{server['id']}").status_code == 204
        cloud.wait_for(server["id"], "DELETED")   # deleted locally by the API
        assert driver.list_instances() == [server["id"]]
        compute.manager.init_host()               # the host comes back
        assert driver.list_instances() == []
    finally:
        cloud.close()


def test_a_delete_wins_over_a_task_that_moved_on_under_it(cloud, monkeypatch):
    """The delete read the server while a build or action was at one step and
    the task moved on before the delete wrote: it re-reads and still deletes
    (Nova's delete wins), instead of a 409 that leaves the server running."""
    from stratus.compute.api import ComputeAPI

    server = cloud.boot("raced")
    original = ComputeAPI.get
    reads = []

    def stale_first(self, ctx, instance_id, *args, **kwargs):
        inst = original(self, ctx, instance_id, *args, **kwargs)
        reads.append(instance_id)
        if len(reads) == 2:  # the delete's first read: a step the task has left
            inst = {**inst, "task_state": "spawning"}
        return inst

    monkeypatch.setattr(ComputeAPI, "get", stale_first)
    assert cloud.compute("DELETE", f"/servers/{server['id']}").status_code == 204
    assert len(reads) >= 3  # re-read after the refused swap
    cloud.wait_for(server["id"], "DELETED")
    actions = cloud.compute("GET", f"/servers/{server['id']}/os-instance-actions",
                            headers={"OpenStack-API-Version": "compute 2.21"}).get_json()
    assert sorted(a["action"] for a in actions["instanceActions"]) == ["create", "delete"]
