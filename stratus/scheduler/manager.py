"""The scheduler's RPC endpoint: ``select_destinations``.

Hosts go through a chain: fresh host states from the database (nodes read
before their allocations, so a claim's compare-and-swap catches any change
in between), the feasibility filters, the weighers, a random pick among the
best ``host_subset_size``, then the claim. The claim is the only write: a
conflict means someone else claimed on that node meanwhile, so the states
are re-read and the pick is made again.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any

from stratus import exception
from stratus.context import RequestContext
from stratus.db import instances as db_instances
from stratus.db import services as db_services
from stratus.db.session import Database
from stratus.scheduler import claims
from stratus.scheduler.filters import DEFAULT_FILTERS, Filter
from stratus.scheduler.host_state import HostState, resources_of
from stratus.scheduler.weighers import weigh

LOG = logging.getLogger(__name__)

COMPUTE_BINARY = "stratus-compute"
DEFAULT_AZ = "nova"
MAX_CLAIM_CONFLICTS = 20


class SchedulerManager:
    def __init__(self, conf: Any, db: Database, filters: list[Filter] | None = None) -> None:
        self.conf = conf
        self.db = db
        self.filters = filters or DEFAULT_FILTERS
        # One pick at a time in this process: concurrent requests would only
        # collide on the same best host and retry.
        self._lock = threading.Lock()
        self._cached: list[HostState] = []
        self._cached_at = -1e9

    def _hosts(self, refresh: bool = False) -> list[HostState]:
        """Host states, re-read at most every ``host_state_max_age`` seconds.

        Between reads this process's own claims are applied to the cached
        states (:meth:`HostState.consume`); a claim by anyone else bumps the
        node's generation, so our next claim there conflicts and forces a
        re-read. Staleness can cost a retry, never an overcommit.
        """
        now = time.monotonic()
        if refresh or now - self._cached_at > self.conf.scheduler.host_state_max_age:
            self._cached = self.host_states()
            self._cached_at = now
        return self._cached

    def host_states(self) -> list[HostState]:
        nodes = db_services.compute_node_get_all(self.db)   # generations first
        usage = db_services.allocation_usage(self.db)
        services = {s["host"]: s for s in
                    db_services.service_get_all(self.db, binary=COMPUTE_BINARY)}
        down_time = self.conf.DEFAULT.service_down_time
        states = []
        for node in nodes:
            svc = services.get(node["host"])
            states.append(HostState.from_node(
                node, usage.get(node["id"], {}),
                service_up=svc is not None and db_services.service_is_up(svc, down_time),
                service_disabled=bool(svc and svc["disabled"]),
                availability_zone=(svc or {}).get("availability_zone") or DEFAULT_AZ))
        return states

    def _feasible(self, hosts: list[HostState], spec: dict[str, Any]) -> tuple[list[HostState], str]:
        remaining = hosts
        for flt in self.filters:
            passed = [h for h in remaining if flt(h, spec)]
            if not passed:
                return [], f"There are not enough hosts available. ({flt.name} removed all hosts)"
            remaining = passed
        return remaining, ""

    def select_destinations(self, ctxt: RequestContext, request_spec: dict[str, Any],
                            instance_uuids: list[str]) -> list[dict[str, Any]]:
        resources = resources_of(request_spec["flavor"])
        spec = dict(request_spec, resources=resources)
        subset = max(1, int(self.conf.scheduler.host_subset_size))
        selections: list[dict[str, Any]] = []
        with self._lock:
            try:
                hosts = self._hosts()
                for uuid in instance_uuids:
                    for _ in range(MAX_CLAIM_CONFLICTS):
                        candidates, reason = self._feasible(hosts, spec)
                        if not candidates:
                            raise exception.NoValidHost(reason=reason)
                        ranked = weigh(candidates)
                        _, chosen = random.choice(ranked[:subset])
                        try:
                            claims.claim(self.db, chosen.node_id, chosen.generation, uuid,
                                         resources)
                        except exception.Conflict as exc:  # generation moved, or full
                            LOG.debug("Claim on %s refused (%s); re-reading hosts",
                                      chosen.nodename, exc)
                            hosts = self._hosts(refresh=True)
                            continue
                        chosen.consume(resources)
                        selections.append({"instance_uuid": uuid, "host": chosen.host,
                                           "nodename": chosen.nodename,
                                           "compute_node_uuid": chosen.node_uuid})
                        break
                    else:
                        raise exception.NoValidHost(reason="Too many concurrent claims.")
            except exception.NoValidHost:
                for sel in selections:  # all or nothing
                    db_instances.allocations_delete(self.db, sel["instance_uuid"])
                self._cached_at = -1e9  # our cached usage counted those claims
                raise
        LOG.info("Scheduled %s", ", ".join(f"{s['instance_uuid']} on {s['host']}"
                                           for s in selections))
        return selections
