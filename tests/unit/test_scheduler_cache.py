"""The scheduler's host-state cache: incremental refresh, liveness, aggregates."""
from __future__ import annotations

import datetime
import time

from sqlalchemy import update

from stratus.context import get_admin_context
from stratus.db import services as db_services
from stratus.db.models import (Aggregate, AggregateHost, AggregateMetadata, ComputeNode,
                               Service)
from stratus.scheduler import claims
from stratus.scheduler.cache import HostStateCache
from stratus.scheduler.filters.compute import ComputeFilter
from stratus.scheduler.manager import SchedulerManager
from stratus.scheduler.request import SchedulingRequest
from stratus.utils import new_uuid, utcnow

ONE = {"vcpus": 1, "memory_mb": 1024, "disk_gb": 0}


def add_host(db, host, memory_mb=8192):
    db_services.service_heartbeat(db, host, "stratus-compute", "compute")
    return db_services.compute_node_update(db, host, host, {
        "vcpus": 8, "memory_mb": memory_mb, "local_gb": 100, "cpu_allocation_ratio": 1.0,
        "ram_allocation_ratio": 1.0, "disk_allocation_ratio": 1.0,
        "reserved_memory_mb": 0, "reserved_disk_mb": 0})


def age_everything(db, seconds=30):
    """Move every timestamp into the past (older than the refresh margin)."""
    past = utcnow() - datetime.timedelta(seconds=seconds)
    with db.write() as s:
        s.execute(update(ComputeNode).values(updated_at=past))
        s.execute(update(Service).values(created_at=past))


def reads(cache):
    """Record how many node rows each refresh reads."""
    counts: list[int] = []
    original = cache._read_nodes

    def wrapped(s, full):
        rows = original(s, full)
        counts.append(len(rows))
        return rows

    cache._read_nodes = wrapped
    return counts


def is_up(cache, host, now=None):
    state = next(h for h in cache.hosts if h.host == host)
    req = SchedulingRequest(resources=ONE, now=now or time.time(),
                            liveness_floor=cache.floor, down_time=cache.down_time)
    return ComputeFilter().passes(state, req)


def test_incremental_refresh_reads_only_changed_nodes(database, conf):
    nodes = [add_host(database, f"h{i}") for i in range(20)]
    age_everything(database)
    cache = HostStateCache(database, conf)
    counts = reads(cache)
    cache.refresh()
    assert len(cache) == 20 and counts == [20]
    cache.refresh()
    assert counts[-1] == 0
    claims.claim(database, nodes[3]["id"], 0, new_uuid(), ONE)
    cache.refresh()
    assert counts[-1] == 1
    assert cache.get(nodes[3]["id"]).used_memory_mb == 1024
    assert cache.get(nodes[3]["id"]).generation == 1


def test_own_newer_claims_survive_an_older_read(database, conf):
    node = add_host(database, "h1")
    cache = HostStateCache(database, conf)
    cache.refresh()
    state = cache.get(node["id"])
    stale_row = {**db_services.compute_node_get(database, node["id"]),
                 "hypervisor_hostname": "h1"}
    state.consume(ONE)  # our claim: generation 1, the row read before it says 0
    with cache.lock:
        cache._apply_nodes([stale_row], {}, full=False)
    assert state.used_memory_mb == 1024 and state.generation == 1


def test_full_resync_drops_deleted_nodes_and_new_ones_join(database, conf):
    add_host(database, "h1")
    gone = add_host(database, "h2")
    cache = HostStateCache(database, conf)
    cache.refresh()
    with database.write() as s:
        s.execute(ComputeNode.__table__.delete().where(ComputeNode.id == gone["id"]))
    add_host(database, "h3")
    cache.refresh()
    assert "h3" in {h.host for h in cache.hosts}  # h2 may linger until a full reload
    cache.refresh(full=True)
    assert sorted(h.host for h in cache.hosts) == ["h1", "h3"]


def test_a_host_whose_rows_committed_late_still_joins(database, conf):
    """A service and node stamped long before they committed (a slow
    transaction) are older than the incremental window: the change in
    membership still brings them in, with their service."""
    add_host(database, "h1")
    cache = HostStateCache(database, conf)
    cache.refresh()
    add_host(database, "late")
    age_everything(database)
    counts = reads(cache)
    cache.refresh()
    assert counts == [2]  # a full reload
    assert is_up(cache, "late")
    cache.refresh()
    assert counts == [2, 0]  # and back to incremental


def test_a_silent_host_is_down_exactly_at_service_down_time(database, conf):
    conf.DEFAULT.service_down_time = 10
    add_host(database, "quiet")
    add_host(database, "chatty")
    cache = HostStateCache(database, conf)
    cache.refresh()
    assert is_up(cache, "quiet") and is_up(cache, "chatty")
    # quiet's last heartbeat was 8 s ago: within the lookahead of down time.
    last = utcnow() - datetime.timedelta(seconds=8)
    with database.write() as s:
        s.execute(update(Service).where(Service.host == "quiet").values(last_seen_up=last))
    before = time.time()
    cache.refresh()
    now = time.time()
    assert is_up(cache, "quiet", now) and not is_up(cache, "quiet", now + 2.5)
    # chatty is not read, but is known to be up until refresh + lookahead (the
    # refresh happened between ``before`` and ``now``: a loaded machine may be slow).
    assert is_up(cache, "chatty", before + cache.lookahead - 0.5)
    assert not is_up(cache, "chatty", now + cache.lookahead + 0.5)


def test_disable_and_enable_reach_the_cache(database, conf):
    add_host(database, "h1")
    cache = HostStateCache(database, conf)
    cache.refresh()
    svc = db_services.service_get_all(database, host="h1")[0]
    db_services.service_update(database, svc["id"], disabled=True)
    cache.refresh()
    assert not is_up(cache, "h1")
    db_services.service_update(database, svc["id"], disabled=False)
    cache.refresh()
    assert is_up(cache, "h1")
    db_services.service_update(database, svc["id"], forced_down=True)
    cache.refresh()
    assert not is_up(cache, "h1")


def test_aggregates_set_zone_metadata_and_classes(database, conf):
    for i in range(4):
        add_host(database, f"h{i}")
    cache = HostStateCache(database, conf)
    cache.refresh()
    assert cache.class_count == 1
    with database.write() as s:
        agg = Aggregate(uuid=new_uuid(), name="fast", updated_at=utcnow())
        s.add(agg)
        s.flush()
        s.add_all([AggregateHost(aggregate_id=agg.id, host="h0"),
                   AggregateHost(aggregate_id=agg.id, host="h1"),
                   AggregateMetadata(aggregate_id=agg.id, key="availability_zone", value="az1"),
                   AggregateMetadata(aggregate_id=agg.id, key="ssd", value="true,fast")])
    cache.refresh()
    by_host = {h.host: h for h in cache.hosts}
    assert by_host["h0"].availability_zone == "az1" and by_host["h2"].availability_zone == "nova"
    assert by_host["h1"].aggregate_metadata["ssd"] == {"true", "fast"}
    assert by_host["h0"].class_id == by_host["h1"].class_id != by_host["h2"].class_id
    assert cache.class_count == 2


def test_scheduler_sees_capacity_freed_elsewhere_without_waiting(database, conf):
    """A cached scheduler that believes the cloud is full re-reads before
    answering "No valid host" (capacity freed by a delete elsewhere)."""
    from stratus.db import instances as db_instances

    add_host(database, "only", memory_mb=2048)
    conf.scheduler.host_state_max_age = 3600
    sched = SchedulerManager(conf, database)
    spec = {"flavor": {"vcpus": 1, "memory_mb": 1024, "root_gb": 0}}
    first = new_uuid()
    sched.select_destinations(get_admin_context(), spec, [first])
    sched.select_destinations(get_admin_context(), spec, [new_uuid()])
    db_instances.allocations_delete(database, first)
    [sel] = sched.select_destinations(get_admin_context(), spec, [new_uuid()])
    assert sel["host"] == "only"


def test_stats_count_decisions(database, conf):
    add_host(database, "h1")
    sched = SchedulerManager(conf, database)
    spec = {"flavor": {"vcpus": 1, "memory_mb": 64, "root_gb": 0}}
    for _ in range(3):
        sched.select_destinations(get_admin_context(), spec, [new_uuid()])
    stats = sched.scheduler_stats(get_admin_context(), reset=True)
    assert stats["samples"] == 3 and stats["hosts"] == 1 and stats["counters"]["placed"] == 3
    assert stats["decision"]["p50_ms"] > 0 and stats["claim"]["p50_ms"] > 0
    assert sched.scheduler_stats(get_admin_context())["samples"] == 0
