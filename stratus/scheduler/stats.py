"""How long decisions take, measured inside the scheduler.

For every instance placed: the *decision* (any refresh the request had to
wait for, plus the placement chain) and the *claim* (the compare-and-swap
transaction). ``select_destinations`` adds one sample per instance; the
``scheduler_stats`` RPC returns percentiles of the most recent samples.
"""
from __future__ import annotations

import collections
import threading
from typing import Any

SAMPLES = 20000


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(p / 100.0 * (len(ordered) - 1)))))
    return ordered[k]


class DecisionStats:
    def __init__(self, samples: int = SAMPLES) -> None:
        self._lock = threading.Lock()
        self._decisions: collections.deque[float] = collections.deque(maxlen=samples)
        self._claims: collections.deque[float] = collections.deque(maxlen=samples)
        self.counters: collections.Counter[str] = collections.Counter()

    def record(self, decision_s: float, claim_s: float) -> None:
        with self._lock:
            self._decisions.append(decision_s)
            self._claims.append(claim_s)
            self.counters["placed"] += 1

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def reset(self) -> None:
        with self._lock:
            self._decisions.clear()
            self._claims.clear()
            self.counters.clear()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            decisions, claims = list(self._decisions), list(self._claims)
            counters = dict(self.counters)

        def summary(values: list[float]) -> dict[str, float]:
            return {f"p{p}_ms": round(percentile(values, p) * 1000, 3) for p in (50, 95, 99)} | {
                "max_ms": round(max(values, default=0.0) * 1000, 3)}

        return {"samples": len(decisions), "decision": summary(decisions),
                "claim": summary(claims), "counters": counters}
