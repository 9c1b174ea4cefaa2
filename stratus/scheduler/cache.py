"""The scheduler's host states, kept in memory and refreshed incrementally.

A decision must not read 10,000 nodes from the database. The cache loads
everything once, then each refresh (every ``[scheduler] host_state_max_age``
seconds, on the service's periodic thread) reads only what moved:

* **nodes** whose ``updated_at`` is past the start of the previous read
  (minus a margin for transactions that committed late, and clock skew) — reports that changed
  something, claims and releases (both bump ``updated_at`` and the
  generation) — and the allocation sums of just those nodes, read after the
  node rows, so a row's generation is never newer than its usage. A row
  whose generation is older than the cached one is skipped: the cache
  already holds this scheduler's own later claims;
* **services** that are disabled, forced down, or whose last heartbeat is
  older than ``service_down_time - lookahead``, with their exact heartbeat,
  plus services created since the last look. Every other service heartbeat
  within that bound, so its last heartbeat is known to be at least the
  *floor* ``refresh time - (service_down_time - lookahead)``: the host counts
  as up until ``refresh time + lookahead``. A host that stops heartbeating
  therefore turns down no later than ``service_down_time`` after its last
  heartbeat, without reading 10,000 service rows each second;
* **aggregates**, only when their signature (count, max id, max updated_at)
  moved.

A full reload runs every ``FULL_RESYNC`` seconds, and whenever the count or
the highest id of the compute nodes or services moved (a host joined or left:
its row may have committed too late for the window above). Staleness can
cost a claim conflict or a re-read; the claim's capacity check in the
database makes it impossible to overcommit.
"""
from __future__ import annotations

import datetime
import logging
import math
import random
import threading
import time
from typing import Any, Iterable, Mapping, Sequence

from sqlalchemy import func, or_, select

from stratus.db import aggregates as db_aggregates
from stratus.db import allocations
from stratus.db.models import ComputeNode, Service
from stratus.db.session import Database
from stratus.scheduler.host_state import AggregateInfo, HostState, ServiceInfo
from stratus.utils import utcnow

LOG = logging.getLogger(__name__)

COMPUTE_BINARY = "stratus-compute"
#: Rows committed up to this long after they set updated_at are still seen.
MARGIN = datetime.timedelta(seconds=2)
#: Seconds between full reloads.
FULL_RESYNC = 60.0
#: Above this many changed nodes, sum every node's allocations in one query.
_USAGE_BY_ID_MAX = 500

_NODE_COLUMNS = (ComputeNode.id, ComputeNode.uuid, ComputeNode.host,
                 ComputeNode.hypervisor_hostname, ComputeNode.hypervisor_type,
                 ComputeNode.hypervisor_version, ComputeNode.host_ip, ComputeNode.cpu_info,
                 ComputeNode.supported_instances, ComputeNode.stats, ComputeNode.vcpus,
                 ComputeNode.memory_mb, ComputeNode.local_gb, ComputeNode.reserved_vcpus,
                 ComputeNode.reserved_memory_mb, ComputeNode.reserved_disk_mb,
                 ComputeNode.cpu_allocation_ratio, ComputeNode.ram_allocation_ratio,
                 ComputeNode.disk_allocation_ratio, ComputeNode.generation,
                 ComputeNode.updated_at)
_SERVICE_COLUMNS = (Service.host, Service.availability_zone, Service.disabled,
                    Service.forced_down, Service.last_seen_up, Service.created_at)


def _membership(s: Any) -> tuple[Any, ...]:
    """Changes when a compute node or compute service is created or deleted."""
    nodes = s.execute(select(func.count(ComputeNode.id), func.max(ComputeNode.id))).one()
    services = s.execute(select(func.count(Service.id), func.max(Service.id))
                         .where(Service.binary == COMPUTE_BINARY)).one()
    return (*nodes, *services)


def epoch(value: datetime.datetime | None) -> float | None:
    """Naive UTC datetime -> epoch seconds."""
    if value is None:
        return None
    return value.replace(tzinfo=datetime.timezone.utc).timestamp()


class HostStateCache:
    def __init__(self, db: Database, conf: Any) -> None:
        self.db = db
        self.conf = conf
        #: Held while states are read for a decision or changed by a refresh.
        self.lock = threading.RLock()
        self._ticket_lock = threading.Lock()
        self._ticket = self._applied = 0
        self._states: dict[int, HostState] = {}
        self._by_host: dict[str, list[HostState]] = {}
        #: What the random source walks; replaced (never mutated) on changes.
        self.hosts: list[HostState] = []
        self._services: dict[str, ServiceInfo] = {}
        self._special: set[str] = set()
        self._host_aggregates: dict[str, tuple[AggregateInfo, ...]] = {}
        self._aggregates_signature: tuple[Any, ...] | None = None
        self._membership: tuple[Any, ...] | None = None
        self._classes: dict[tuple[Any, ...], int] = {}
        #: When the last applied read started (our clock, naive UTC): later
        #: refreshes read rows changed since, minus MARGIN.
        self._mark: datetime.datetime | None = None
        #: Every host not known to be old heartbeats at least this recently.
        self.floor = 0.0
        self.refreshed_at = -math.inf   # time.monotonic() of the last refresh
        self._full_at = -math.inf
        self._rng = random.Random()

    # -- timing --------------------------------------------------------------------
    @property
    def interval(self) -> float:
        return float(self.conf.scheduler.host_state_max_age)

    @property
    def down_time(self) -> float:
        return float(self.conf.DEFAULT.service_down_time)

    @property
    def lookahead(self) -> float:
        """How long past a refresh non-special hosts count as up (< down time)."""
        return min(self.down_time / 2, max(2.0, 3 * self.interval))

    def age(self) -> float:
        return time.monotonic() - self.refreshed_at

    def needs_refresh(self) -> bool:
        """True when a request must refresh before deciding: never loaded,
        refreshing on every request (interval 0), or the periodic refresh is late."""
        return self.interval == 0 or self.age() > max(self.interval, self.lookahead / 2)

    def __len__(self) -> int:
        return len(self.hosts)

    # -- refreshing ------------------------------------------------------------------
    def refresh(self, full: bool = False) -> None:
        """Read what changed (everything when ``full`` or due) and apply it.

        Reads run without the lock (decisions go on meanwhile); a refresh whose
        read started before the last applied one is dropped, so concurrent
        refreshes (the periodic one and a request's) never apply older data.
        """
        with self._ticket_lock:
            self._ticket += 1
            ticket = self._ticket
        started = time.monotonic()
        full = full or self._mark is None or started - self._full_at > FULL_RESYNC
        read_at = utcnow()
        cutoff = read_at - datetime.timedelta(seconds=self.down_time - self.lookahead)
        with self.db.read() as s:
            membership = _membership(s)
            # A node or service row committed long after it was stamped (a slow
            # transaction) would escape the updated_at window: any change in
            # who is there reloads everything.
            full = full or membership != self._membership
            nodes = self._read_nodes(s, full)
            ids = [row["id"] for row in nodes]
            if full or len(ids) > _USAGE_BY_ID_MAX:
                usage = allocations.usage(s)
            else:
                usage = allocations.usage(s, ids) if ids else {}
            services = self._read_services(s, full, cutoff)
            signature = db_aggregates.signature(s)
            aggregates = (db_aggregates.by_host(s)
                          if full or signature != self._aggregates_signature else None)
        with self.lock:
            if ticket < self._applied:
                return
            self._applied = ticket
            self._apply_services(services, full, cutoff)
            if aggregates is not None:
                self._apply_aggregates(*aggregates)
                self._aggregates_signature = signature
            self._apply_nodes(nodes, usage, full)
            self.floor = epoch(cutoff) or 0.0
            self._mark = read_at
            self._membership = membership
            self.refreshed_at = started
            if full:
                self._full_at = started
        LOG.debug("Host states refreshed (%s): %d nodes read, %d hosts, %.1f ms",
                  "full" if full else "incremental", len(nodes), len(self.hosts),
                  (time.monotonic() - started) * 1000)

    def refresh_nodes(self, node_ids: Iterable[int], force: bool = False) -> None:
        """Re-read some nodes now (after a claim on them was refused); ``force``
        takes the rows even when the cache's generation is newer (it counted a
        claim that did not happen)."""
        ids = sorted(set(node_ids))
        if not ids:
            return
        with self.db.read() as s:
            rows = s.execute(select(*_NODE_COLUMNS).where(ComputeNode.id.in_(ids))).mappings().all()
            usage = allocations.usage(s, ids)
        with self.lock:
            self._apply_nodes(rows, usage, full=False, force=force)
            gone = set(ids) - {row["id"] for row in rows}
            if gone:
                self._remove(gone)

    def _read_nodes(self, s: Any, full: bool) -> Sequence[Mapping[str, Any]]:
        q = select(*_NODE_COLUMNS)
        if not full and self._mark is not None:
            q = q.where(ComputeNode.updated_at >= self._mark - MARGIN)
        return s.execute(q).mappings().all()

    def _read_services(self, s: Any, full: bool,
                       cutoff: datetime.datetime) -> Sequence[Mapping[str, Any]]:
        q = select(*_SERVICE_COLUMNS).where(Service.binary == COMPUTE_BINARY)
        if not full:
            conditions = [Service.disabled.is_(True), Service.forced_down.is_(True),
                          Service.last_seen_up.is_(None), Service.last_seen_up < cutoff]
            if self._mark is not None:
                conditions.append(Service.created_at >= self._mark - MARGIN)
            q = q.where(or_(*conditions))
        return s.execute(q).mappings().all()

    # -- applying (under self.lock) -----------------------------------------------------
    def _apply_services(self, rows: Sequence[Mapping[str, Any]], full: bool,
                        cutoff: datetime.datetime) -> None:
        special: set[str] = set()
        if full:
            self._services = {}
        for row in rows:
            host = row["host"]
            info = self._services.get(host)
            if info is None:
                info = self._services[host] = ServiceInfo()
                for state in self._by_host.get(host, ()):
                    state.service = info
            zone_changed = info.availability_zone != row["availability_zone"]
            info.availability_zone = row["availability_zone"]
            info.disabled = bool(row["disabled"])
            info.forced_down = bool(row["forced_down"])
            seen = row["last_seen_up"]
            is_special = info.disabled or info.forced_down or seen is None or seen < cutoff
            info.last_seen = (epoch(seen) or 0.0) if is_special else None
            if is_special:
                special.add(host)
            if zone_changed:
                for state in self._by_host.get(host, ()):
                    state.refresh_zone()
                    self._classify(state)
        for host in self._special - special:
            info = self._services.get(host)
            if info is not None:
                info.disabled = info.forced_down = False
                info.last_seen = None
        self._special = special
        if full:  # services deleted since: their hosts lose them
            for host, states in self._by_host.items():
                for state in states:
                    state.service = self._services.get(host)

    def _apply_aggregates(self, aggregates: dict[int, tuple[str, dict[str, str]]],
                          hosts: dict[str, list[int]]) -> None:
        infos = {agg_id: AggregateInfo(agg_id, name, metadata)
                 for agg_id, (name, metadata) in aggregates.items()}
        self._host_aggregates = {host: tuple(infos[i] for i in ids) for host, ids in hosts.items()}
        for state in self._states.values():
            state.set_aggregates(self._host_aggregates.get(state.host, ()))
            self._classify(state)

    def _apply_nodes(self, rows: Sequence[Mapping[str, Any]],
                     usage: Mapping[int, Mapping[str, int]], full: bool,
                     force: bool = False) -> None:
        added: list[HostState] = []
        for row in rows:
            node_usage = usage.get(row["id"], {})
            state = self._states.get(row["id"])
            if state is not None and state.node_uuid != row["uuid"]:  # id reused (SQLite)
                self._remove({state.node_id})
                state = None
            if state is None:
                state = HostState.from_node(row, node_usage)
                self._states[state.node_id] = state
                self._by_host.setdefault(state.host, []).append(state)
                state.service = self._services.get(state.host)
                state.set_aggregates(self._host_aggregates.get(state.host, ()))
                self._classify(state)
                added.append(state)
            elif force or row["generation"] > state.generation or (
                    row["generation"] == state.generation
                    and row["updated_at"] != state.updated_at):
                if state.apply_node(row, node_usage):
                    self._classify(state)
        if full:
            gone = set(self._states) - {row["id"] for row in rows}
            if gone:
                self._remove(gone)
        if added:
            hosts = list(self.hosts)
            for state in added:  # keep the walk order random
                hosts.insert(self._rng.randrange(len(hosts) + 1), state)
            self.hosts = hosts

    def _remove(self, node_ids: set[int]) -> None:
        for node_id in node_ids:
            state = self._states.pop(node_id, None)
            if state is not None:
                siblings = [s for s in self._by_host.get(state.host, ()) if s is not state]
                if siblings:
                    self._by_host[state.host] = siblings
                else:
                    self._by_host.pop(state.host, None)
        self.hosts = [h for h in self.hosts if h.node_id not in node_ids]

    def _classify(self, state: HostState) -> None:
        key = state.static_key()
        class_id = self._classes.get(key)
        if class_id is None:
            class_id = self._classes[key] = len(self._classes) + 1
        state.class_id = class_id

    # -- reading ------------------------------------------------------------------------
    def get(self, node_id: int) -> HostState | None:
        return self._states.get(node_id)

    def states_of(self, host: str) -> Sequence[HostState]:
        """The nodes of a host (usually one)."""
        return self._by_host.get(host, ())

    @property
    def class_count(self) -> int:
        return len({s.class_id for s in self._states.values()})
