"""Capacity you can trust: inventories, allocation ratios, reservations and
claims that never pass ``(total - reserved) * ratio``; on every backend."""
from __future__ import annotations

import json
import threading

import pytest

from stratus import exception
from stratus.compute.resources import node_report, supported_instances
from stratus.compute.virt.driver import HostResources
from stratus.db import instances as db_instances
from stratus.db import services as db_services
from stratus.scheduler import claims
from stratus.scheduler.capacity import capacity, fits, reserved_disk_gb
from stratus.utils import new_uuid

ONE = {"vcpus": 1, "memory_mb": 1024, "disk_gb": 10}


def node_row(**overrides):
    row = {"vcpus": 8, "memory_mb": 16384, "local_gb": 100, "reserved_vcpus": 0,
           "reserved_memory_mb": 0, "reserved_disk_mb": 0, "cpu_allocation_ratio": 1.0,
           "ram_allocation_ratio": 1.0, "disk_allocation_ratio": 1.0}
    row.update(overrides)
    return row


def test_capacity_is_total_minus_reserved_times_ratio():
    cap = capacity(node_row(reserved_vcpus=2, cpu_allocation_ratio=4.0,
                            reserved_memory_mb=512, ram_allocation_ratio=1.5,
                            reserved_disk_mb=1500, disk_allocation_ratio=2.0))
    assert cap == {"vcpus": (8 - 2) * 4.0, "memory_mb": (16384 - 512) * 1.5,
                   "disk_gb": (100 - 2) * 2.0}


def test_reserved_disk_rounds_up_to_whole_gb():
    assert [reserved_disk_gb(mb) for mb in (None, 0, 1, 1024, 1025)] == [0, 0, 1, 1, 2]


def test_fits_names_the_first_short_resource():
    cap = capacity(node_row(vcpus=2, memory_mb=2048))
    assert fits(cap, {"vcpus": 1, "memory_mb": 1024}, ONE) is None
    assert fits(cap, {"vcpus": 1, "memory_mb": 1025}, ONE) == "memory_mb"
    assert fits(cap, {"vcpus": 2}, {"vcpus": 1, "memory_mb": 0, "disk_gb": 0}) == "vcpus"
    assert fits(cap, {"vcpus": 2}, {"vcpus": 0, "memory_mb": 0, "disk_gb": 0}) is None


class Compute:
    """The [compute] options, as loaded."""

    cpu_allocation_ratio = None
    ram_allocation_ratio = None
    disk_allocation_ratio = None
    initial_cpu_allocation_ratio = 4.0
    initial_ram_allocation_ratio = 1.0
    initial_disk_allocation_ratio = 1.0
    reserved_host_cpus = 1
    reserved_host_memory_mb = 512
    reserved_host_disk_mb = 0


RES = HostResources(vcpus=4, memory_mb=8192, local_gb=100, vcpus_used=0, memory_mb_used=0,
                    local_gb_used=0, hypervisor_type="fake", hypervisor_version=1000,
                    hypervisor_hostname="h1", cpu_info=json.dumps({"arch": "x86_64"}))


def test_node_report_carries_options_and_supported_instances():
    report = node_report(RES, Compute(), io_workload=3)
    assert report["cpu_allocation_ratio"] is None
    assert report["initial_cpu_allocation_ratio"] == 4.0
    assert (report["reserved_vcpus"], report["reserved_memory_mb"]) == (1, 512)
    assert report["supported_instances"] == [["x86_64", "fake", "hvm"]]
    assert report["stats"] == {"io_workload": 3}
    assert supported_instances(HostResources(**{**RES.to_dict(), "cpu_info": "{}"})) == []


def test_conf_defaults_are_novas():
    from stratus import conf as conf_mod

    compute = conf_mod.load(None).compute
    assert (compute.cpu_allocation_ratio, compute.ram_allocation_ratio,
            compute.disk_allocation_ratio) == (None, None, None)
    assert (compute.initial_cpu_allocation_ratio, compute.initial_ram_allocation_ratio,
            compute.initial_disk_allocation_ratio) == (4.0, 1.0, 1.0)
    assert (compute.reserved_host_memory_mb, compute.reserved_host_cpus,
            compute.reserved_host_disk_mb) == (512, 0, 0)


def test_initial_ratios_apply_to_new_nodes_and_unset_ratios_keep_the_nodes(database):
    report = node_report(RES, Compute())
    node = db_services.compute_node_update(database, "h1", "h1", report)
    assert (node["cpu_allocation_ratio"], node["ram_allocation_ratio"],
            node["disk_allocation_ratio"]) == (4.0, 1.0, 1.0)
    assert node["reserved_vcpus"] == 1 and node["supported_instances"] == [
        ["x86_64", "fake", "hvm"]]
    # An operator changed the ratio on the node; unset options keep it.
    with database.write() as s:
        from sqlalchemy import update

        from stratus.db.models import ComputeNode
        s.execute(update(ComputeNode).values(cpu_allocation_ratio=8.0))
    changed = dict(report, initial_cpu_allocation_ratio=2.0)
    assert db_services.compute_node_update(database, "h1", "h1",
                                           changed)["cpu_allocation_ratio"] == 8.0
    # A ratio set in the options wins.
    node = db_services.compute_node_update(database, "h1", "h1",
                                           dict(report, cpu_allocation_ratio=16.0))
    assert node["cpu_allocation_ratio"] == 16.0


def test_inventory_changes_bump_the_generation_and_unchanged_reports_write_nothing(database):
    report = node_report(RES, Compute())
    first = db_services.compute_node_update(database, "h1", "h1", report)
    again = db_services.compute_node_update(database, "h1", "h1", report)
    assert (again["generation"], again["updated_at"]) == (first["generation"],
                                                          first["updated_at"])
    used = db_services.compute_node_update(database, "h1", "h1",
                                           dict(report, memory_mb_used=2048))
    assert used["generation"] == first["generation"]  # usage is not inventory
    assert used["updated_at"] > first["updated_at"]
    bigger = db_services.compute_node_update(database, "h1", "h1",
                                             dict(report, memory_mb=16384))
    assert bigger["generation"] == first["generation"] + 1


def test_batched_reports_create_and_update_nodes(database):
    report = node_report(RES, Compute())
    reports = [{"host": f"h{i}", "nodename": f"h{i}", "resources": report} for i in range(5)]
    assert db_services.compute_nodes_update(database, reports, batch=2) == 5
    reports[3] = dict(reports[3], resources=dict(report, vcpus=8))
    db_services.compute_nodes_update(database, reports, batch=2)
    nodes = {n["host"]: n for n in db_services.compute_node_get_all(database)}
    assert len(nodes) == 5 and nodes["h3"]["vcpus"] == 8 and nodes["h3"]["generation"] == 1
    assert nodes["h2"]["generation"] == 0


def _node(database, memory_mb=2048, vcpus=64, local_gb=1000):
    return db_services.compute_node_update(database, "h", "h", {
        "vcpus": vcpus, "memory_mb": memory_mb, "local_gb": local_gb,
        "cpu_allocation_ratio": 1.0, "ram_allocation_ratio": 1.0,
        "disk_allocation_ratio": 1.0, "reserved_memory_mb": 0, "reserved_disk_mb": 0})


def _generation(database, node_id):
    return db_services.compute_node_get(database, node_id)["generation"]


def test_claim_checks_capacity_in_its_transaction(database):
    """Even with the right generation (a scheduler with every filter off),
    a claim past capacity is refused and changes nothing."""
    node = _node(database, memory_mb=2048)
    for _ in range(2):
        claims.claim(database, node["id"], _generation(database, node["id"]), new_uuid(), ONE)
    generation = _generation(database, node["id"])
    with pytest.raises(claims.InsufficientCapacity) as err:
        claims.claim(database, node["id"], generation, new_uuid(), ONE)
    assert "memory_mb" in str(err.value)
    assert _generation(database, node["id"]) == generation
    assert db_services.allocation_usage(database)[node["id"]]["instances"] == 2


def test_claim_again_replaces_and_release_bumps_the_generation(database):
    node = _node(database, memory_mb=2048)
    uuid = new_uuid()
    claims.claim(database, node["id"], 0, uuid, ONE)
    claims.claim(database, node["id"], 1, uuid, ONE)  # a redelivered request
    assert _generation(database, node["id"]) == 2
    assert db_services.allocation_usage(database)[node["id"]]["instances"] == 1
    before = db_services.compute_node_get(database, node["id"])
    db_instances.allocations_delete(database, uuid)
    after = db_services.compute_node_get(database, node["id"])
    assert after["generation"] == 3 and after["updated_at"] > before["updated_at"]
    assert db_services.allocation_usage(database) == {}


def test_a_stale_generation_still_claims_within_capacity(database):
    """Claims decided on an older view of the node are serialised by its row
    lock and checked against the capacity, not refused for the generation."""
    node = _node(database, memory_mb=2 * 1024)
    claims.claim(database, node["id"], 0, new_uuid(), ONE)
    claims.claim(database, node["id"], 0, new_uuid(), ONE)
    with pytest.raises(claims.InsufficientCapacity):
        claims.claim(database, node["id"], 0, new_uuid(), ONE)
    assert _generation(database, node["id"]) == 2


def test_concurrent_claims_never_pass_capacity(database):
    """Threads claiming with a freshly read generation each (retrying on
    conflicts) fill the node exactly: 5 fit, 15 are refused."""
    node = _node(database, memory_mb=5 * 1024)
    results: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        outcome = "conflicts"
        for _ in range(200):
            try:
                claims.claim(database, node["id"], _generation(database, node["id"]),
                             new_uuid(), ONE)
                outcome = "ok"
                break
            except claims.InsufficientCapacity:
                outcome = "full"
                break
            except exception.ResourceProviderGenerationConflict:
                continue
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 5 and results.count("full") == 15
    assert db_services.allocation_usage(database)[node["id"]]["memory_mb"] == 5 * 1024


def test_a_deadlock_between_claims_is_a_conflict(monkeypatch):
    from sqlalchemy.exc import OperationalError

    class PgDeadlock(Exception):
        sqlstate = "40P01"

    class MyDeadlock(Exception):
        pass

    for orig in (PgDeadlock("deadlock detected"), MyDeadlock(1213, "Deadlock found")):
        def boom(*_a, orig=orig, **_k):
            raise OperationalError("UPDATE ...", {}, orig)

        monkeypatch.setattr(claims, "_claim", boom)
        with pytest.raises(exception.ResourceProviderGenerationConflict):
            claims.claim(None, 1, 0, new_uuid(), ONE)

    def other(*_a, **_k):
        raise OperationalError("UPDATE ...", {}, MyDeadlock(2006, "gone away"))

    monkeypatch.setattr(claims, "_claim", other)
    with pytest.raises(OperationalError):
        claims.claim(None, 1, 0, new_uuid(), ONE)


