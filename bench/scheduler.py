"""Scheduler benchmark: decision cost and boot throughput against the number of hosts.

For each N in ``--hosts`` (default 100, 1000, 10000) it starts the separate
services over RabbitMQ and PostgreSQL — api, conductor, one scheduler and
one ``stratus compute --fake-hosts N`` — with Nova's default intervals
(heartbeat every 10 s, down after 60 s, resources every 60 s), boots
``--servers`` servers from 16 concurrent POSTers, and prints:

* start-up: seconds until all N hosts are up and reported;
* boot throughput: seconds until every server is ACTIVE, servers/s, POST-to-ACTIVE;
* decision cost measured inside the scheduler (``scheduler_stats`` RPC): the
  decision (any refresh it waited for + the placement chain) and the claim
  (the compare-and-swap transaction), p50/p95 per instance;
* RSS of each service after the burst;

then the curve of decision cost against N, and the same curve for the
placement chain alone, in this process, on synthetic host states.

    python bench/scheduler.py [--hosts 100,1000,10000] [--servers 1000]
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.boot import Client, burst, pct, rss_mb  # noqa: E402
from stratus import conf as conf_mod  # noqa: E402
from stratus import rpc  # noqa: E402
from stratus.context import get_admin_context  # noqa: E402
from stratus.scheduler import filters as filters_mod  # noqa: E402
from stratus.scheduler import weighers as weighers_mod  # noqa: E402
from stratus.scheduler.host_state import HostState, ServiceInfo  # noqa: E402
from stratus.scheduler.iterators import Chain  # noqa: E402
from stratus.scheduler.request import SchedulingRequest  # noqa: E402
from stratus.scheduler.rpcapi import SchedulerAPI  # noqa: E402
from tests import dbs  # noqa: E402
from tests.functional import harness  # noqa: E402

SERVICES = ("api", "conductor", "scheduler", "fleet")
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def run(n_hosts: int, servers: int, tmp: str) -> dict[str, Any]:
    print(f"\n== {n_hosts} fake hosts (RabbitMQ, PostgreSQL)", flush=True)
    with harness.RabbitVhost() as transport_url, \
            dbs.scratch_database("postgresql", tmp) as db_url:
        dep = harness.Deployment(
            os.path.join(tmp, f"hosts{n_hosts}"), transport_url, db_url, compute_hosts=(),
            fake_hosts=n_hosts, report_interval=10, service_down_time=60,
            compute_options={"compute": {"resource_update_interval": 60}})
        started = time.perf_counter()
        dep.start()
        ready = time.perf_counter() - started
        transport = rpc.get_transport(transport_url)
        try:
            print(f"  {n_hosts} hosts up and reported in {ready:.1f} s; RSS "
                  + ", ".join(f"{name} {rss_mb([dep.processes[name].proc.pid]):.0f} MB"
                              for name in SERVICES), flush=True)
            scheduler = SchedulerAPI(transport, timeout=30)
            client = Client(dep.url, harness.PASSWORD)
            flavor_id, image_id = client.setup()
            scheduler.scheduler_stats(get_admin_context(), server="controller", reset=True)
            pids = {name: dep.processes[name].proc.pid for name in SERVICES}
            cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            elapsed, latencies, errors = burst(client, flavor_id, image_id, servers)
            stats = scheduler.scheduler_stats(get_admin_context(), server="controller")
            cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
            rss = {name: rss_mb([pid]) for name, pid in pids.items()}
        finally:
            transport.cleanup()
            dep.stop()
    result = {"hosts": n_hosts, "ready_s": ready, "elapsed_s": elapsed, "servers": servers,
              "errors": errors, "post_to_active_p50_ms": pct(latencies, 50) * 1000,
              "post_to_active_p95_ms": pct(latencies, 95) * 1000, "stats": stats, "rss": rss,
              "cpu": cpu}
    d, c = stats["decision"], stats["claim"]
    print(f"  burst of {servers}: all ACTIVE in {elapsed:.2f} s ({servers / elapsed:.1f}/s), "
          f"POST-to-ACTIVE p50 {result['post_to_active_p50_ms']:.0f} ms, p95 "
          f"{result['post_to_active_p95_ms']:.0f} ms, errors {errors}")
    print(f"  scheduler ({stats['samples']} decisions, {stats['hosts']} hosts, "
          f"{stats['classes']} classes): decision p50 {d['p50_ms']:.3f} ms, p95 "
          f"{d['p95_ms']:.3f} ms, max {d['max_ms']:.1f} ms; claim p50 {c['p50_ms']:.2f} ms, "
          f"p95 {c['p95_ms']:.2f} ms; counters {stats['counters']}")
    print("  RSS after the burst: " + ", ".join(f"{k} {v:.0f} MB" for k, v in rss.items()))
    print("  CPU seconds during the burst: " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items()),
          flush=True)
    return result


def chain_curve(sizes: list[int], decisions: int = 3000) -> list[tuple[int, float, float]]:
    """The placement chain alone on synthetic hosts: (N, p50 µs, p95 µs)."""
    conf = conf_mod.load(None)
    filters = filters_mod.build(conf.filter_scheduler.enabled_filters)
    weighers = weighers_mod.build(conf.filter_scheduler)
    rng = random.Random(1)
    curve = []
    for n in sizes:
        hosts = []
        for i in range(n):
            host = HostState(host=f"h{i}", nodename=f"h{i}", node_id=i, node_uuid=str(i),
                             generation=0, updated_at=None, class_id=1 + i % 4,
                             total_vcpus=256, total_memory_mb=130560, total_disk_gb=2048)
            host.service = ServiceInfo()
            hosts.append(host)
        now = time.time()
        times = []
        for _ in range(decisions):
            req = SchedulingRequest(resources={"vcpus": 1, "memory_mb": 64, "disk_gb": 0},
                                    now=now, liveness_floor=now, down_time=60)
            t0 = time.perf_counter()
            chosen = Chain(filters, weighers, req, rng=rng).select(hosts)
            times.append(time.perf_counter() - t0)
            assert chosen is not None
            chosen.consume(req.resources)
        curve.append((n, pct(times, 50) * 1e6, pct(times, 95) * 1e6))
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", default="100,1000,10000",
                        help="comma-separated numbers of fake hosts")
    parser.add_argument("--servers", type=int, default=1000)
    args = parser.parse_args()
    sizes = [int(x) for x in args.hosts.split(",") if x]
    results = []
    with tempfile.TemporaryDirectory(prefix="stratus-bench-sched-") as tmp:
        for n in sizes:
            results.append(run(n, args.servers, tmp))
    print("\n== decision cost vs hosts (inside the scheduler, per instance)")
    print("  hosts | decision p50 | decision p95 | claim p50 | boots/s | all ACTIVE")
    for r in results:
        d, c = r["stats"]["decision"], r["stats"]["claim"]
        print(f"  {r['hosts']:>5} | {d['p50_ms']:>9.3f} ms | {d['p95_ms']:>9.3f} ms | "
              f"{c['p50_ms']:>6.2f} ms | {r['servers'] / r['elapsed_s']:>7.1f} | "
              f"{r['elapsed_s']:.1f} s")
    print("\n== the placement chain alone (this process, synthetic hosts)")
    print("  hosts | p50 µs | p95 µs")
    for n, p50, p95 in chain_curve([100, 300, 1000, 3000, 10000, 30000]):
        print(f"  {n:>5} | {p50:>6.1f} | {p95:>6.1f}")


if __name__ == "__main__":
    main()
