"""The placement chain: small iterator stages, Nomad-style.

::

    random_source -> by_class (static filters, memoised per computed class)
                  -> per_host (liveness, hints, then resource fit)
                  -> limit(K) -> rank (weighers) -> pick one of the top host_subset_size

Facts taken from Nomad's scheduler: visiting hosts in random order and
stopping after ``K = max(2, ceil(log2 N))`` feasible candidates gives
placements nearly as good as ranking every host (the "power of K choices")
at a cost that grows with log N, not N; and hosts sharing static attributes
(a computed class) share the answer of every filter that reads only those,
so a filter such as ImagePropertiesFilter runs once per class, not per host.
Stages are plain generators over :class:`HostState`, each testable alone.
"""
from __future__ import annotations

import collections
import itertools
import math
import random
import time
from typing import Callable, Iterable, Iterator, Sequence

from stratus.scheduler.filters import BaseFilter
from stratus.scheduler.host_state import HostState
from stratus.scheduler.request import SchedulingRequest
from stratus.scheduler.weighers import Weigher, weigh

#: memo value of a class that passed every static filter
PASSED = ""


def coprime_stride(n: int, rng: random.Random) -> int:
    """A random step in [1, n) sharing no factor with ``n`` (1 when n <= 2)."""
    if n <= 2:
        return 1
    while True:
        stride = rng.randrange(1, n)
        if math.gcd(stride, n) == 1:
            return stride


def random_source(hosts: Sequence[HostState], rng: random.Random) -> Iterator[HostState]:
    """Every host once, in a random order, lazily: a random start and a random
    stride coprime with N walk a permutation of the hosts in O(1) set-up (a
    full shuffle of 10,000 hosts would cost more than the whole decision)."""
    n = len(hosts)
    if not n:
        return
    index, stride = rng.randrange(n), coprime_stride(n, rng)
    for _ in range(n):
        yield hosts[index]
        index += stride
        if index >= n:
            index -= n


class Rejections:
    """Per filter, how many hosts it removed (for the "No valid host" log)."""

    def __init__(self) -> None:
        self.by_filter: collections.Counter[str] = collections.Counter()
        self.visited = 0

    def summary(self) -> str:
        removed = ", ".join(f"{name}: {count}" for name, count in self.by_filter.most_common())
        return f"{self.visited} hosts visited; removed by {removed or 'none'}"


def by_class(hosts: Iterable[HostState], filters: Sequence[BaseFilter],
             req: SchedulingRequest, memo: dict[int, str],
             rejections: Rejections) -> Iterator[HostState]:
    """Hosts whose class passes the static ``filters``; each class is decided
    once (``memo``: class id -> "" when it passed, else the failing filter)."""
    for host in hosts:
        rejections.visited += 1
        if not filters:
            yield host
            continue
        verdict = memo.get(host.class_id)
        if verdict is None:
            verdict = next((f.name for f in filters if not f.passes(host, req)), PASSED)
            memo[host.class_id] = verdict
        if verdict == PASSED:
            yield host
        else:
            rejections.by_filter[verdict] += 1


def per_host(hosts: Iterable[HostState], filters: Sequence[BaseFilter],
             req: SchedulingRequest, rejections: Rejections) -> Iterator[HostState]:
    """Hosts passing every one of ``filters``, checked in order."""
    for host in hosts:
        for flt in filters:
            if not flt.passes(host, req):
                rejections.by_filter[flt.name] += 1
                break
        else:
            yield host


def candidate_limit(n_hosts: int, configured: int) -> int:
    """How many feasible candidates to rank: ``configured`` if set, else
    Nomad's max(2, ceil(log2 N))."""
    if configured > 0:
        return configured
    return max(2, math.ceil(math.log2(n_hosts))) if n_hosts > 1 else 2


def limit(hosts: Iterable[HostState], k: int) -> list[HostState]:
    """The first ``k`` hosts (the source being random, a random sample of the
    feasible hosts)."""
    return list(itertools.islice(hosts, k))


def pick(ranked: Sequence[tuple[float, HostState]], subset: int,
         rng: random.Random) -> HostState:
    """One of the ``subset`` best (Nova's host_subset_size)."""
    return rng.choice(ranked[:max(1, subset)])[1]


class Chain:
    """The stages for one request; static answers are kept across the
    instances of a multi-instance request."""

    def __init__(self, filters: Sequence[BaseFilter], weighers: Sequence[Weigher],
                 req: SchedulingRequest, *, limit: int = 0, subset: int = 1,
                 rng: random.Random | None = None) -> None:
        active = [f for f in filters if f.applies(req)]
        self.static = [f for f in active if f.is_static(req)]
        self.dynamic = sorted((f for f in active if not f.is_static(req)),
                              key=lambda f: f.cost)  # stable: configured order within a cost
        self.weighers = list(weighers)
        self.req = req
        self.limit = limit
        self.subset = subset
        self.rng = rng or random.Random()
        self.memo: dict[int, str] = {}
        self.rejections = Rejections()
        self.created_at = time.monotonic()

    def _restricted(self, hosts: Sequence[HostState],
                    by_host: Callable[[str], Sequence[HostState]] | None
                    ) -> Sequence[HostState]:
        """The hosts to walk: only the requested destination (its host and/or
        node) and those some filter names, when there are such."""
        named: frozenset[str] | None = None
        if self.req.requested_host is not None:
            named = frozenset((self.req.requested_host,))
        for flt in self.dynamic:
            only = flt.candidates(self.req)
            if only is not None:
                named = only if named is None else named & only
        pool: Sequence[HostState]
        if named is None:
            pool = hosts
        elif by_host is None:
            pool = [h for h in hosts if h.host in named]
        else:
            pool = [state for name in sorted(named) for state in by_host(name)]
        node = self.req.requested_node
        if node is not None:
            pool = [h for h in pool if h.nodename == node]
        return pool

    def select(self, hosts: Sequence[HostState],
               by_host: Callable[[str], Sequence[HostState]] | None = None
               ) -> HostState | None:
        """The host for the next instance, or None when no host is feasible.
        ``by_host`` finds the states of a host name (the cache's index)."""
        req = self.req
        if req.forced:  # Nova: forced hosts bypass the filters (the claim still
            # checks capacity)
            pool: Sequence[HostState] = hosts
            if req.force_hosts and by_host is not None:
                pool = [state for name in req.force_hosts for state in by_host(name)]
            candidates = [h for h in pool if (not req.force_hosts or h.host in req.force_hosts)
                          and (not req.force_nodes or h.nodename in req.force_nodes)
                          and h.host not in req.ignore_hosts]
        else:
            k = candidate_limit(len(hosts), self.limit)
            stream = random_source(self._restricted(hosts, by_host), self.rng)
            candidates = limit(per_host(by_class(stream, self.static, req, self.memo,
                                                 self.rejections),
                                        self.dynamic, req, self.rejections), k)
        if not candidates:
            return None
        return pick(weigh(candidates, self.weighers, req), self.subset, self.rng)
