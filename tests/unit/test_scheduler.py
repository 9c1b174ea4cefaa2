"""The scheduler: filters, weighers, claims; on SQLite, PostgreSQL and MariaDB."""
from __future__ import annotations

import threading

import pytest

from stratus import exception
from stratus.context import get_admin_context
from stratus.db import services as db_services
from stratus.scheduler.host_state import resources_of
from stratus.scheduler.manager import SchedulerManager
from stratus.scheduler.request import SchedulingRequest
from stratus.scheduler.weighers import weigh
from stratus.utils import new_uuid

FLAVOR = {"flavorid": "1", "vcpus": 1, "memory_mb": 1024, "root_gb": 10, "ephemeral_gb": 0,
          "swap": 0}


def add_host(db, host, memory_mb=8192, vcpus=4, local_gb=100, zone=None, disabled=False):
    svc = db_services.service_heartbeat(db, host, "stratus-compute", "compute",
                                        availability_zone=zone)
    if disabled:
        db_services.service_update(db, svc["uuid"], disabled=True)
    return db_services.compute_node_update(db, host, host, {
        "vcpus": vcpus, "memory_mb": memory_mb, "local_gb": local_gb,
        "cpu_allocation_ratio": 1.0, "ram_allocation_ratio": 1.0,
        "disk_allocation_ratio": 1.0, "reserved_memory_mb": 0, "reserved_disk_mb": 0})


def spec(**overrides):
    return {"flavor": dict(FLAVOR, **overrides), "availability_zone": None}


def test_resources_of_counts_swap_as_disk():
    assert resources_of({"vcpus": 2, "memory_mb": 512, "root_gb": 1, "ephemeral_gb": 2,
                         "swap": 1500}) == {"vcpus": 2, "memory_mb": 512, "disk_gb": 5}


def test_picks_host_with_most_free_ram_and_claims(database, conf):
    add_host(database, "small", memory_mb=4096)
    big = add_host(database, "big", memory_mb=16384)
    sched = SchedulerManager(conf, database)
    uuid = new_uuid()
    [sel] = sched.select_destinations(get_admin_context(), spec(), [uuid])
    assert sel["host"] == "big" and sel["instance_uuid"] == uuid
    usage = db_services.allocation_usage(database)
    assert usage[big["id"]] == {"vcpus": 1, "memory_mb": 1024, "disk_gb": 10, "instances": 1}
    node = db_services.compute_node_get(database, big["id"])
    assert node["generation"] == big["generation"] + 1


def test_no_valid_host_names_the_filter_and_claims_nothing(database, conf):
    add_host(database, "h1", memory_mb=2048)
    sched = SchedulerManager(conf, database)
    with pytest.raises(exception.NoValidHost) as err:
        sched.select_destinations(get_admin_context(), spec(memory_mb=4096), [new_uuid()])
    assert str(err.value) == "No valid host was found. There are not enough hosts available."
    assert db_services.allocation_usage(database) == {}


def test_multi_instance_request_is_all_or_nothing(database, conf):
    add_host(database, "h1", memory_mb=3072)
    sched = SchedulerManager(conf, database)
    with pytest.raises(exception.NoValidHost):
        sched.select_destinations(get_admin_context(), spec(),
                                  [new_uuid() for _ in range(4)])
    assert db_services.allocation_usage(database) == {}
    sels = sched.select_destinations(get_admin_context(), spec(),
                                     [new_uuid() for _ in range(3)])
    assert [s["host"] for s in sels] == ["h1"] * 3


def test_disabled_down_and_other_zone_hosts_are_filtered(database, conf):
    add_host(database, "disabled", memory_mb=65536, disabled=True)
    add_host(database, "elsewhere", memory_mb=65536, zone="az2")
    add_host(database, "ok", memory_mb=2048)
    sched = SchedulerManager(conf, database)
    [sel] = sched.select_destinations(get_admin_context(), dict(spec(), availability_zone="nova"),
                                      [new_uuid()])
    assert sel["host"] == "ok"
    [sel] = sched.select_destinations(get_admin_context(),
                                      dict(spec(), availability_zone="az2"), [new_uuid()])
    assert sel["host"] == "elsewhere"
    conf.DEFAULT.service_down_time = 1
    conf.scheduler.host_state_max_age = 0  # see the change at once
    svc = db_services.service_get_all(database, host="ok")[0]
    import datetime
    db_services.service_update(database, svc["uuid"],
                               last_seen_up=svc["last_seen_up"] - datetime.timedelta(seconds=5))
    with pytest.raises(exception.NoValidHost) as err:
        sched.select_destinations(get_admin_context(), dict(spec(), availability_zone="nova"),
                                  [new_uuid()])
    assert "not enough hosts" in str(err.value)


def test_weigh_normalises_and_orders_best_first(database, conf):
    add_host(database, "a", memory_mb=1024, vcpus=8)
    add_host(database, "b", memory_mb=8192, vcpus=2)
    sched = SchedulerManager(conf, database)
    sched.cache.refresh()
    ranked = weigh(sched.cache.hosts, sched.weighers, SchedulingRequest(resources={}))
    assert ranked[0][0] >= ranked[1][0]
    assert {h.host for _, h in ranked} == {"a", "b"}


def test_racing_schedulers_never_overcommit(database, conf):
    """Two scheduler 'processes' (separate managers, no shared lock) race for
    a node with room for exactly 6 instances: exactly 6 claims win."""
    add_host(database, "only", memory_mb=6 * 1024, vcpus=64, local_gb=1000)
    schedulers = [SchedulerManager(conf, database), SchedulerManager(conf, database)]
    results: list[str] = []
    lock = threading.Lock()

    def boot(i: int) -> None:
        try:
            schedulers[i % 2].select_destinations(get_admin_context(), spec(), [new_uuid()])
            outcome = "ok"
        except exception.NoValidHost:
            outcome = "novalidhost"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=boot, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 6
    assert results.count("novalidhost") == 4
    usage = list(db_services.allocation_usage(database).values())
    assert usage[0]["memory_mb"] == 6 * 1024


def test_cached_host_states_never_overcommit(database, conf):
    """A scheduler keeps its host states between requests; a claim made by
    another scheduler meanwhile makes its next claim conflict and re-read."""
    add_host(database, "only", memory_mb=3 * 1024, vcpus=64, local_gb=1000)
    conf.scheduler.host_state_max_age = 3600
    first, second = SchedulerManager(conf, database), SchedulerManager(conf, database)
    first.select_destinations(get_admin_context(), spec(), [new_uuid()])   # caches
    second.select_destinations(get_admin_context(), spec(), [new_uuid()])
    second.select_destinations(get_admin_context(), spec(), [new_uuid()])  # node now full
    with pytest.raises(exception.NoValidHost):
        first.select_destinations(get_admin_context(), spec(), [new_uuid()])
    assert db_services.allocation_usage(database)[1]["instances"] == 3


def test_scheduling_the_same_instance_again_replaces_its_claim(database, conf):
    add_host(database, "a", memory_mb=8192)
    add_host(database, "b", memory_mb=8192)
    sched = SchedulerManager(conf, database)
    uuid = new_uuid()
    sched.select_destinations(get_admin_context(), spec(), [uuid])
    sched.select_destinations(get_admin_context(), spec(), [uuid])  # e.g. redelivered
    usage = db_services.allocation_usage(database)
    assert sum(u["instances"] for u in usage.values()) == 1


def race_group_members(database, conf, group_uuid: str, members: list[str]) -> dict[str, str]:
    """Two schedulers with caches that never refresh place the group's
    members all at once, alternating; each member's host, or "none"."""
    conf.scheduler.host_state_max_age = 3600
    schedulers = [SchedulerManager(conf, database), SchedulerManager(conf, database)]
    for sched in schedulers:
        sched.cache.refresh()
    spec_group = dict(spec(), scheduler_hints={"group": group_uuid})
    results: dict[str, str] = {}
    barrier = threading.Barrier(len(members))

    def boot(i: int) -> None:
        barrier.wait()
        try:
            [sel] = schedulers[i % 2].select_destinations(get_admin_context(), spec_group,
                                                          [members[i]])
            results[members[i]] = sel["host"]
        except exception.NoValidHost:
            results[members[i]] = "none"

    threads = [threading.Thread(target=boot, args=(i,)) for i in range(len(members))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_racing_schedulers_keep_anti_affinity(database, conf):
    """Members of one anti-affinity group placed at once by two schedulers
    (stale caches, no shared lock): the claim's group check keeps one per
    host; the members that find no host left fail."""
    from stratus.db import server_groups as db_groups

    for i in range(4):
        add_host(database, f"h{i}", memory_mb=65536)
    group = db_groups.group_create(database, name="g", policy="anti-affinity",
                                   project_id="p", user_id="u")
    members = [new_uuid() for _ in range(6)]
    db_groups.members_add(database, group["uuid"], members)
    results = race_group_members(database, conf, group["uuid"], members)
    placed = [h for h in results.values() if h != "none"]
    assert sorted(placed) == ["h0", "h1", "h2", "h3"]
    assert list(results.values()).count("none") == 2


def test_racing_schedulers_keep_max_server_per_host(database, conf):
    """The claim's group check (the late check) honours an anti-affinity
    group's max_server_per_host rule (2.64) when two schedulers with stale
    caches place its members at once: two per host, the rest fail."""
    from stratus.db import server_groups as db_groups

    for i in range(2):
        add_host(database, f"h{i}", memory_mb=65536)
    group = db_groups.group_create(database, name="g2", policy="anti-affinity",
                                   project_id="p", user_id="u",
                                   rules={"max_server_per_host": 2})
    members = [new_uuid() for _ in range(6)]
    db_groups.members_add(database, group["uuid"], members)
    results = race_group_members(database, conf, group["uuid"], members)
    placed = [h for h in results.values() if h != "none"]
    assert sorted(placed) == ["h0", "h0", "h1", "h1"]
    assert list(results.values()).count("none") == 2
