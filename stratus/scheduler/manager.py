"""The scheduler's RPC endpoint: ``select_destinations``.

For each instance: the placement chain (:mod:`stratus.scheduler.iterators`)
picks a host from the cached host states (:mod:`stratus.scheduler.cache`),
then the claim (:mod:`stratus.scheduler.claims`) writes the allocation with a
compare-and-swap on the node's generation and a capacity check. A refused
claim (someone else claimed there, or the node is full) re-reads that node
and decides again. When no host is feasible the states are refreshed once
before giving up when they were read before the request came, so a stale
view never turns into a false "No valid host".
A multi-instance request is all or nothing.

Decisions in one process are serialised (the cache lock), claims are not:
a decision consumes its pick in the cache and the claim's transaction runs
after the lock is released. Several scheduler processes work side by side;
their claims never overcommit.
"""
from __future__ import annotations

import logging
import random
import time
from typing import Any

from stratus import exception
from stratus.context import RequestContext
from stratus.db import allocations
from stratus.db import instances as db_instances
from stratus.db import server_groups as db_groups
from stratus.db.session import Database
from stratus.scheduler import claims
from stratus.scheduler import filters as filters_mod
from stratus.scheduler import weighers as weighers_mod
from stratus.scheduler.cache import HostStateCache
from stratus.scheduler.filters import BaseFilter
from stratus.scheduler.host_state import HostState
from stratus.scheduler.iterators import Chain
from stratus.scheduler.request import GroupInfo, SchedulingRequest
from stratus.scheduler.stats import DecisionStats
from stratus.scheduler.weighers import Weigher

LOG = logging.getLogger(__name__)

MAX_CLAIM_ATTEMPTS = 20
NO_HOSTS = "There are not enough hosts available."


class SchedulerManager:
    def __init__(self, conf: Any, db: Database, filters: list[BaseFilter] | None = None,
                 weighers: list[Weigher] | None = None,
                 rng: random.Random | None = None) -> None:
        self.conf = conf
        self.db = db
        options = conf.filter_scheduler
        self.filters = filters if filters is not None else filters_mod.build(
            options.enabled_filters)
        self.weighers = weighers if weighers is not None else weighers_mod.build(options)
        self.cache = HostStateCache(db, conf)
        self.stats = DecisionStats()
        self.rng = rng or random.Random()

    # -- start-up, periodic and stats --------------------------------------------------
    def init_host(self) -> None:
        """Load the host states before taking requests (the first decision
        would otherwise pay for it); a failure is left to the first request."""
        try:
            self.cache.refresh(full=True)
        except Exception:  # noqa: BLE001 - the database may come up later
            LOG.exception("Loading the host states failed; the first request retries")

    def periodic_tasks(self) -> list[tuple[float, Any]]:
        interval = self.conf.scheduler.host_state_max_age
        return [(interval, self.refresh_host_states)] if interval > 0 else []

    def refresh_host_states(self) -> None:
        self.cache.refresh()

    def scheduler_stats(self, ctxt: RequestContext, reset: bool = False) -> dict[str, Any]:
        """Decision and claim percentiles (ms) since the last reset, and the cache size."""
        snapshot = self.stats.snapshot()
        with self.cache.lock:
            snapshot.update(hosts=len(self.cache), classes=self.cache.class_count)
        if reset:
            self.stats.reset()
        return snapshot

    # -- placement ----------------------------------------------------------------------
    def _chain(self, req: SchedulingRequest) -> Chain:
        return Chain(self.filters, self.weighers, req,
                     limit=self.conf.scheduler.candidate_limit,
                     subset=self.conf.filter_scheduler.host_subset_size, rng=self.rng)

    def _decide(self, chain: Chain) -> HostState | None:
        """The chain's pick on fresh-enough states (caller holds the cache lock)."""
        if self.cache.needs_refresh():
            self.cache.refresh()
        req = chain.req
        req.now, req.liveness_floor = time.time(), self.cache.floor
        req.down_time = self.cache.down_time
        host = chain.select(self.cache.hosts, self.cache.states_of)
        if host is None and self.cache.refreshed_at < chain.created_at:
            # The states were read before this request came: what it needs may
            # have appeared since (a new host, freed capacity). Read again once.
            self.cache.refresh()
            req.now, req.liveness_floor = time.time(), self.cache.floor
            host = chain.select(self.cache.hosts, self.cache.states_of)
        return host

    def _place(self, chain: Chain, uuid: str) -> HostState:
        """Decide under the lock, claim outside it.

        The pick is consumed in the cache at once (the next decision sees it)
        and the claim runs with the lock released, so one scheduler keeps
        several claims in flight; claims queued on one node follow each other
        (each expects the generation the previous one leaves). A refused
        claim re-reads the node, which also undoes the local consumption.
        """
        req = chain.req
        decision = claiming = 0.0
        for _ in range(MAX_CLAIM_ATTEMPTS):
            with self.cache.lock:
                started = time.perf_counter()
                host = self._decide(chain)
                decision += time.perf_counter() - started
                if host is None:
                    self.stats.count("no_valid_host")
                    LOG.info("No valid host for instance %s: %s", uuid,
                             chain.rejections.summary())
                    raise exception.NoValidHost(reason=NO_HOSTS)
                generation = host.generation
                host.consume(req.resources)
                req.placed(host)
            started = time.perf_counter()
            try:
                claims.claim(self.db, host.node_id, generation, uuid, req.resources,
                             group=req.group)
            except exception.Conflict as exc:  # generation moved, node full, group policy
                claiming += time.perf_counter() - started
                LOG.debug("Claim on %s refused (%s); re-reading it", host.nodename, exc)
                with self.cache.lock:
                    req.unplaced(host)
                    self.cache.refresh_nodes([host.node_id], force=True)
                    if isinstance(exc, claims.GroupPolicyViolation):
                        self.stats.count("group_conflicts")
                        self._load_context(req, group_only=True)
                    else:
                        self.stats.count("claim_conflicts")
                continue
            claiming += time.perf_counter() - started
            self.stats.record(decision, claiming)
            return host
        raise exception.NoValidHost(reason="Too many concurrent claims.")

    def _load_context(self, req: SchedulingRequest, spec: dict[str, Any] | None = None,
                      group_only: bool = False) -> None:
        """Where the request's server group members and hinted instances are."""
        group_uuid = req.group.uuid if req.group else (
            SchedulingRequest.group_uuid(spec) if spec else None)
        same, different = ((), ()) if group_only or spec is None else \
            SchedulingRequest.hinted_instances(spec)
        if not (group_uuid or same or different):
            return
        with self.db.read() as s:
            if group_uuid:
                info = db_groups.for_scheduling(s, group_uuid)
                req.group = None if info is None else GroupInfo(
                    uuid=info["uuid"], policy=info["policy"], max_per_host=info["max_per_host"],
                    hosts=allocations.hosts_of(s, info["members"]))
            if same:
                req.same_host = frozenset(allocations.hosts_of(s, same))
            if different:
                req.different_host = frozenset(allocations.hosts_of(s, different))

    def select_destinations(self, ctxt: RequestContext, request_spec: dict[str, Any],
                            instance_uuids: list[str]) -> list[dict[str, Any]]:
        req = SchedulingRequest.from_spec(request_spec)
        self._load_context(req, request_spec)
        chain = self._chain(req)
        selections: list[dict[str, Any]] = []
        placed: list[HostState] = []
        try:
            for uuid in instance_uuids:
                host = self._place(chain, uuid)
                placed.append(host)
                selections.append({"instance_uuid": uuid, "host": host.host,
                                   "nodename": host.nodename,
                                   "compute_node_uuid": host.node_uuid})
        except exception.NoValidHost:
            for sel in selections:  # all or nothing
                db_instances.allocations_delete(self.db, sel["instance_uuid"])
            with self.cache.lock:
                self.cache.refresh_nodes((h.node_id for h in placed), force=True)
            raise
        LOG.info("Scheduled %s", ", ".join(f"{s['instance_uuid']} on {s['host']}"
                                           for s in selections))
        return selections
