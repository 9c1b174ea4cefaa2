"""Many fake compute hosts in one process: each its own service and node,
staggered batched heartbeats and reports, one queue for every host."""
from __future__ import annotations

import collections
import time

import pytest

from stratus.compute import fleet
from stratus.db import services as db_services
from tests.cloud import InProcessCloud


def test_host_names_and_slots():
    assert fleet.host_names("fake", 3) == ["fake-00001", "fake-00002", "fake-00003"]
    assert fleet.host_names("f", 123456)[-1] == "f-123456"
    hosts = [f"h{i}" for i in range(10)]
    assert fleet.slots(hosts, 1.0) == [hosts[0:3], hosts[3:6], hosts[6:9], hosts[9:]]
    assert fleet.slots(hosts[:2], 10.0) == [["h0"], ["h1"]]
    assert fleet.slots(hosts, 0.1) == [hosts]
    assert fleet.slots([], 1.0) == []


def test_staggered_sends_one_slot_per_call_round_robin():
    sent = []
    stagger = fleet.Staggered([["a"], ["b"], ["c"]], 3.0, sent.append)
    assert stagger.period == 1.0
    for _ in range(4):
        stagger()
    assert sent == [["a"], ["b"], ["c"], ["a"]]


@pytest.fixture
def fleet_cloud(tmp_path):
    c = InProcessCloud(tmp_path, hosts=("fake",), fake_hosts=12, overrides={
        ("scheduler", "host_state_max_age"): 0.0, ("compute", "resource_update_interval"): 1.0,
        # 24 servers: past Nova's default quota of 10 instances and 20 cores.
        ("quota", "instances"): -1, ("quota", "cores"): -1})
    yield c
    c.close()


def test_every_fake_host_is_a_service_and_a_node_and_takes_builds(fleet_cloud):
    c = fleet_cloud
    services = db_services.service_get_all(c.db, binary="stratus-compute")
    assert sorted(s["host"] for s in services) == fleet.host_names("fake", 12)
    assert len(db_services.compute_node_get_all(c.db)) == 12
    image = c.create_image()
    servers = [c.boot(name=f"vm{i}", image=image, wait=None) for i in range(24)]
    hosts = collections.Counter(c.wait_for(s["id"], "ACTIVE")["OS-EXT-SRV-ATTR:host"]
                                for s in servers)
    assert len(hosts) >= 8  # spread over the fleet
    victim = next(iter(hosts))
    server = next(s for s in servers if c.wait_for(s["id"], "ACTIVE")[
        "OS-EXT-SRV-ATTR:host"] == victim)
    resp = c.compute("POST", f"/servers/{server['id']}/action", {"os-stop": None})
    assert resp.status_code == 202
    c.wait_for(server["id"], "SHUTOFF")
    resp = c.compute("DELETE", f"/servers/{server['id']}")
    assert resp.status_code == 204
    c.wait_for(server["id"], "DELETED")


def test_heartbeats_keep_every_host_up_and_reports_carry_usage(fleet_cloud):
    c = fleet_cloud
    first = {s["host"]: s["report_count"] for s in
             db_services.service_get_all(c.db, binary="stratus-compute")}
    time.sleep(2.5)  # report_interval 1 s: every host heartbeats twice or so
    later = {s["host"]: s for s in db_services.service_get_all(c.db, binary="stratus-compute")}
    assert all(later[h]["report_count"] > first[h] for h in first)
    assert all(db_services.service_is_up(s, 5) for s in later.values())
    image = c.create_image()
    server = c.boot(image=image)
    host = server["OS-EXT-SRV-ATTR:host"]

    def node_of() -> dict:
        return next(n for n in db_services.compute_node_get_all(c.db) if n["host"] == host)

    deadline = time.monotonic() + 5
    while node_of()["running_vms"] != 1:
        assert time.monotonic() < deadline, "the fleet did not report the guest"
        time.sleep(0.1)


def test_a_restarted_fleet_rolls_back_a_resize_its_source_died_in(tmp_path, monkeypatch):
    """The fleet's start-up does what each compute's init_host does, resize
    recovery included: the source "dies" after setting the disks aside, the
    fleet starts again (``init_hosts``), the server is back ACTIVE on its
    source with the old flavor and only the source holds it."""
    from stratus.db import resizes as db_resizes
    from tests.unit.test_resize_recovery import die

    c = InProcessCloud(tmp_path, hosts=("fake",), fake_hosts=2,
                       overrides={("scheduler", "host_state_max_age"): 0.0})
    try:
        the_fleet = c.computes["fake"]
        server = c.boot("moving", image=c.create_image(), flavor="1")
        source = server["OS-EXT-SRV-ATTR:host"]
        died = die(monkeypatch, the_fleet.managers[source].driver,
                   "migrate_disk_and_power_off", after=True)
        resp = c.compute("POST", f"/servers/{server['id']}/action",
                         {"resize": {"flavorRef": "3"}})
        assert resp.status_code == 202, resp.get_data(as_text=True)
        assert died.wait(10)
        shown = c.compute("GET", f"/servers/{server['id']}").get_json()["server"]
        assert shown["OS-EXT-STS:task_state"] == "resize_migrating"
        monkeypatch.undo()

        the_fleet.init_hosts()  # the fleet's process starts again

        shown = c.wait_for(server["id"], "ACTIVE")
        assert shown["OS-EXT-SRV-ATTR:host"] == source and shown["flavor"]["id"] == "1"
        [migration] = db_resizes.migrations_for_instance(c.db, server["id"])
        assert migration["status"] == "error"
        used = {n["host"]: n["vcpus_used"] for n in db_services.compute_node_get_all(c.db)}
        assert used[source] == 1 and sum(used.values()) == 1
    finally:
        c.close()
