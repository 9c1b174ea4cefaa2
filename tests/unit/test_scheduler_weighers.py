"""Weighers: normalisation, multipliers (options and aggregate metadata), each weigher."""
from __future__ import annotations

import collections

import pytest

from stratus import conf as conf_mod
from stratus.scheduler import weighers as w
from stratus.scheduler.host_state import AggregateInfo, HostState
from stratus.scheduler.request import GroupInfo, SchedulingRequest

REQ = SchedulingRequest(resources={"vcpus": 1, "memory_mb": 1, "disk_gb": 0})


def host(name: str, free_mb: float = 1024, free_vcpus: float = 8, free_gb: float = 100,
         instances: int = 0, io_ops: int = 0, aggregates=()) -> HostState:
    state = HostState(host=name, nodename=name, node_id=0, node_uuid=name, generation=0,
                      updated_at=None, total_memory_mb=free_mb, total_vcpus=free_vcpus,
                      total_disk_gb=free_gb, num_instances=instances, num_io_ops=io_ops)
    state.set_aggregates(tuple(AggregateInfo(i, "a", md) for i, md in enumerate(aggregates)))
    return state


def names(ranked):
    return [h.host for _, h in ranked]


def test_normalize_is_min_max_and_zero_when_equal():
    assert w.normalize([]) == []
    assert w.normalize([5, 5, 5]) == [0.0, 0.0, 0.0]
    assert w.normalize([0, 5, 10]) == [0.0, 0.5, 1.0]
    assert w.normalize([-2, 2]) == [0.0, 1.0]


def test_build_reads_every_multiplier_with_novas_defaults():
    built = {x.name: x.multiplier for x in w.build(conf_mod.load(None).filter_scheduler)}
    assert built == {"RAMWeigher": 1.0, "CPUWeigher": 1.0, "DiskWeigher": 1.0,
                     "IoOpsWeigher": -1.0, "NumInstancesWeigher": 0.0,
                     "ServerGroupSoftAffinityWeigher": 1.0,
                     "ServerGroupSoftAntiAffinityWeigher": 1.0}


def test_ram_weigher_spreads_and_negative_multiplier_stacks():
    hosts = [host("small", free_mb=512), host("big", free_mb=4096), host("mid", free_mb=2048)]
    spread = w.HostAttributeWeigher("RAMWeigher", 1.0)
    stack = w.HostAttributeWeigher("RAMWeigher", -1.0)
    assert names(w.weigh(hosts, [spread], REQ)) == ["big", "mid", "small"]
    assert names(w.weigh(hosts, [stack], REQ)) == ["small", "mid", "big"]


def test_weights_add_up_normalised_times_multiplier():
    a = host("a", free_mb=1000, free_vcpus=1)
    b = host("b", free_mb=2000, free_vcpus=2)
    c = host("c", free_mb=1500, free_vcpus=4)
    ranked = dict((h.host, weight) for weight, h in
                  w.weigh([a, b, c], [w.HostAttributeWeigher("RAMWeigher", 1.0),
                                      w.HostAttributeWeigher("CPUWeigher", 2.0)], REQ))
    assert ranked == {"a": pytest.approx(0.0), "b": pytest.approx(1.0 + 2 * (1 / 3)),
                      "c": pytest.approx(0.5 + 2.0)}


def test_zero_multipliers_and_equal_values_change_nothing():
    hosts = [host("a"), host("b", free_mb=9999)]
    ranked = w.weigh(hosts, [w.HostAttributeWeigher("RAMWeigher", 0.0),
                             w.HostAttributeWeigher("CPUWeigher", 1.0)], REQ)
    assert names(ranked) == ["a", "b"] and [x for x, _ in ranked] == [0.0, 0.0]


def test_disk_io_ops_and_num_instances_weighers():
    hosts = [host("busy", io_ops=5, instances=9, free_gb=10),
             host("idle", io_ops=0, instances=1, free_gb=50)]
    disk = w.HostAttributeWeigher("DiskWeigher", 1.0)
    io_ops = w.HostAttributeWeigher("IoOpsWeigher", -1.0)
    spread = w.HostAttributeWeigher("NumInstancesWeigher", 1.0)
    stack = w.HostAttributeWeigher("NumInstancesWeigher", -1.0)
    assert names(w.weigh(hosts, [disk], REQ)) == ["idle", "busy"]
    assert names(w.weigh(hosts, [io_ops], REQ)) == ["idle", "busy"]
    assert names(w.weigh(hosts, [spread], REQ)) == ["busy", "idle"]
    assert names(w.weigh(hosts, [stack], REQ)) == ["idle", "busy"]


def test_aggregate_metadata_overrides_the_multiplier():
    weigher = w.HostAttributeWeigher("RAMWeigher", 1.0)
    stacked = host("stacked", aggregates=[{"ram_weight_multiplier": "-2.0"},
                                          {"ram_weight_multiplier": "3"}])
    assert weigher.multiplier_for(stacked) == -2.0  # the smallest, as Nova
    assert weigher.multiplier_for(host("plain")) == 1.0
    assert weigher.multiplier_for(host("bad", aggregates=[
        {"ram_weight_multiplier": "x"}])) == 1.0


def test_soft_affinity_weighers_only_for_their_policy():
    hosts = [host("h1"), host("h2"), host("h3")]
    counts = collections.Counter({"h2": 3, "h3": 1})
    soft = SchedulingRequest(resources={}, group=GroupInfo("g", "soft-affinity", hosts=counts))
    anti = SchedulingRequest(resources={},
                             group=GroupInfo("g", "soft-anti-affinity", hosts=counts))
    both = [w.ServerGroupSoftAffinityWeigher(1.0), w.ServerGroupSoftAntiAffinityWeigher(1.0)]
    assert names(w.weigh(hosts, both, soft)) == ["h2", "h3", "h1"]
    assert names(w.weigh(hosts, both, anti)) == ["h1", "h3", "h2"]
    assert not both[0].applies(REQ) and not both[1].applies(REQ)
