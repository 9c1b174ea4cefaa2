"""The placement chain's stages, each alone, on hand-made host states."""
from __future__ import annotations

import collections
import random

import pytest

from stratus.scheduler import iterators
from stratus.scheduler.filters import BaseFilter
from stratus.scheduler.filters.compute import ComputeFilter
from stratus.scheduler.filters.resources import RamFilter
from stratus.scheduler.host_state import HostState, ServiceInfo
from stratus.scheduler.request import SchedulingRequest
from stratus.scheduler.weighers import HostAttributeWeigher

REQ = {"vcpus": 1, "memory_mb": 512, "disk_gb": 0}


def host(i: int, class_id: int = 1, free_mb: int = 4096, up: bool = True) -> HostState:
    state = HostState(host=f"h{i}", nodename=f"h{i}", node_id=i, node_uuid=f"u{i}",
                      generation=0, updated_at=None, class_id=class_id,
                      total_vcpus=16, total_memory_mb=free_mb, total_disk_gb=100)
    state.service = ServiceInfo(last_seen=100.0 if up else 0.0)
    return state


def request(**kw) -> SchedulingRequest:
    return SchedulingRequest(resources=dict(REQ), now=100.0, down_time=60.0, **kw)


class Counting(BaseFilter):
    """A static filter that records the hosts it was asked about."""

    name = "Counting"
    static = True

    def __init__(self, fail_classes=()) -> None:
        self.asked: list[str] = []
        self.fail_classes = set(fail_classes)

    def passes(self, host, req) -> bool:
        self.asked.append(host.host)
        return host.class_id not in self.fail_classes


@pytest.mark.parametrize("n", [1, 2, 3, 10, 64, 97, 1000])
def test_random_source_walks_a_permutation(n):
    hosts = [host(i) for i in range(n)]
    for seed in range(5):
        walked = [h.host for h in iterators.random_source(hosts, random.Random(seed))]
        assert sorted(walked) == sorted(h.host for h in hosts)


def test_random_source_varies_the_order_and_is_lazy():
    hosts = [host(i) for i in range(100)]
    firsts = {next(iter(iterators.random_source(hosts, random.Random(seed)))).host
              for seed in range(50)}
    assert len(firsts) > 20
    assert list(iterators.random_source([], random.Random())) == []


def test_coprime_stride():
    rng = random.Random(1)
    for n in (3, 4, 12, 97, 1024, 10000):
        for _ in range(20):
            stride = iterators.coprime_stride(n, rng)
            assert 1 <= stride < n
            assert all(stride % p or n % p for p in range(2, stride + 1))


def test_by_class_asks_each_class_once_and_remembers_rejections():
    hosts = [host(i, class_id=1 + i % 3) for i in range(30)]
    flt = Counting(fail_classes={2})
    memo: dict[int, str] = {}
    rejections = iterators.Rejections()
    passed = list(iterators.by_class(hosts, [flt], request(), memo, rejections))
    assert len(flt.asked) == 3
    assert {h.class_id for h in passed} == {1, 3} and len(passed) == 20
    assert memo == {1: "", 2: "Counting", 3: ""}
    assert rejections.by_filter == {"Counting": 10} and rejections.visited == 30
    list(iterators.by_class(hosts, [flt], request(), memo, rejections))
    assert len(flt.asked) == 3  # the memo carries over (next instance of the request)


def test_per_host_runs_filters_in_order_and_counts_the_first_failure():
    hosts = [host(0, up=False), host(1, free_mb=100), host(2)]
    rejections = iterators.Rejections()
    passed = list(iterators.per_host(hosts, [ComputeFilter(), RamFilter()], request(),
                                     rejections))
    assert [h.host for h in passed] == ["h2"]
    assert rejections.by_filter == {"ComputeFilter": 1, "RamFilter": 1}


@pytest.mark.parametrize("n,configured,expected", [
    (0, 0, 2), (1, 0, 2), (2, 0, 2), (4, 0, 2), (5, 0, 3), (100, 0, 7), (1000, 0, 10),
    (10000, 0, 14), (10000, 3, 3)])
def test_candidate_limit_is_log2_n(n, configured, expected):
    assert iterators.candidate_limit(n, configured) == expected


def test_limit_stops_pulling_after_k():
    pulled = []

    def source():
        for i in range(100):
            pulled.append(i)
            yield host(i)

    assert [h.host for h in iterators.limit(source(), 3)] == ["h0", "h1", "h2"]
    assert pulled == [0, 1, 2]


def test_pick_chooses_among_the_top_subset():
    ranked = [(3.0, host(0)), (2.0, host(1)), (1.0, host(2))]
    rng = random.Random(0)
    assert {iterators.pick(ranked, 1, rng).host for _ in range(20)} == {"h0"}
    assert {iterators.pick(ranked, 2, rng).host for _ in range(50)} == {"h0", "h1"}


def test_chain_visits_about_k_hosts_and_ranks_them():
    hosts = [host(i, free_mb=1000 + i) for i in range(1024)]
    chain = iterators.Chain([ComputeFilter(), RamFilter()],
                            [HostAttributeWeigher("RAMWeigher", 1.0)], request(),
                            rng=random.Random(3))
    chosen = chain.select(hosts)
    assert chain.rejections.visited == 10  # log2(1024) candidates, all feasible
    assert chosen is not None


def test_chain_spreads_placements_over_many_hosts():
    hosts = [host(i) for i in range(256)]
    chain = iterators.Chain([ComputeFilter(), RamFilter()],
                            [HostAttributeWeigher("RAMWeigher", 1.0)], request(),
                            rng=random.Random(5))
    counts = collections.Counter()
    for _ in range(512):
        chosen = chain.select(hosts)
        chosen.consume(REQ)
        counts[chosen.host] += 1
    assert len(counts) > 200 and max(counts.values()) <= 4


def test_chain_returns_none_when_nothing_fits():
    hosts = [host(i, free_mb=100) for i in range(10)]
    chain = iterators.Chain([RamFilter()], [], request(), rng=random.Random())
    assert chain.select(hosts) is None
    assert chain.rejections.by_filter == {"RamFilter": 10}


def test_forced_host_bypasses_filters():
    hosts = [host(0, up=False), host(1)]
    chain = iterators.Chain([ComputeFilter()], [], request(force_hosts=("h0",)))
    assert chain.select(hosts).host == "h0"
    chain = iterators.Chain([ComputeFilter()], [], request(force_hosts=("nope",)))
    assert chain.select(hosts) is None


def test_requested_host_is_the_only_candidate_and_still_filtered():
    """A move's requested destination (2.56): only that host is considered,
    and only if it passes the filters (unlike a forced host)."""
    hosts = [host(0, up=False), host(1), host(2)]
    for _ in range(5):
        chain = iterators.Chain([ComputeFilter()], [], request(requested_host="h2"))
        assert chain.select(hosts).host == "h2"
    chain = iterators.Chain([ComputeFilter()], [], request(requested_host="h0"))
    assert chain.select(hosts) is None
    assert chain.rejections.by_filter == {"ComputeFilter": 1}
    by_host = {h.host: [h] for h in hosts}
    chain = iterators.Chain([ComputeFilter()], [], request(requested_host="h1"))
    assert chain.select(hosts, lambda name: by_host.get(name, [])).host == "h1"
    chain = iterators.Chain([ComputeFilter()], [], request(requested_host="nope"))
    assert chain.select(hosts, lambda name: by_host.get(name, [])) is None


def test_requested_node_is_the_only_candidate_and_still_filtered():
    """A create's requested destination (2.74): a node, alone or with its
    host; through the filters."""
    hosts = [host(0, up=False), host(1), host(2)]
    hosts.append(HostState(host="h2", nodename="h2b", node_id=3, node_uuid="u3",
                           generation=0, updated_at=None, class_id=1, total_vcpus=16,
                           total_memory_mb=4096, total_disk_gb=100))
    hosts[-1].service = ServiceInfo(last_seen=100.0)
    by_host = collections.defaultdict(list)
    for state in hosts:
        by_host[state.host].append(state)
    for _ in range(5):
        for lookup in (None, lambda name: by_host.get(name, [])):
            chain = iterators.Chain([ComputeFilter()], [], request(requested_node="h2b"))
            assert chain.select(hosts, lookup).nodename == "h2b"
            chain = iterators.Chain([ComputeFilter()], [],
                                    request(requested_host="h2", requested_node="h2"))
            assert chain.select(hosts, lookup).nodename == "h2"
    chain = iterators.Chain([ComputeFilter()], [], request(requested_node="h0"))
    assert chain.select(hosts) is None
    chain = iterators.Chain([ComputeFilter()], [],
                            request(requested_host="h1", requested_node="h2"))
    assert chain.select(hosts, lambda name: by_host.get(name, [])) is None
    spec = {"flavor": {"memory_mb": 64, "vcpus": 1, "root_gb": 1, "ephemeral_gb": 0},
            "requested_destination": {"host": None, "node": "h2b"}}
    req = SchedulingRequest.from_spec(spec)
    assert (req.requested_host, req.requested_node) == (None, "h2b")
