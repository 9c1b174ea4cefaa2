"""Boot benchmark: how fast does Stratus turn POST /servers into ACTIVE?

For each deployment (the all-in-one on its embedded defaults; the separate
processes over RabbitMQ and PostgreSQL) it prints:
  * control-plane start time and resident memory,
  * POST-to-ACTIVE p50/p95 booting one server at a time,
  * a burst of N servers: time until all are ACTIVE, throughput, p50/p95,
  * GET /servers/detail latency with N servers.

    python bench/boot.py [--servers 1000] [--sequential 50] [--only aio|rabbit]

The figures are printed, not asserted: this is a benchmark, not a test.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import os
import sys
import tempfile
import time
from typing import Any

import httpx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests import dbs  # noqa: E402
from tests.functional import harness  # noqa: E402


# One simulated host with room for the burst: 1 vCPU per server at Nova's
# initial cpu_allocation_ratio of 4.0 (64 GB of RAM at 1.0 for 64 MB servers).
FAKE_HOST = {"vcpus": 512, "memory_mb": 262144, "local_gb": 4096}
FAKE_HOST_INI = "[fake]\n" + "".join(f"{k} = {v}\n" for k, v in FAKE_HOST.items())


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(p / 100.0 * (len(ordered) - 1)))))
    return ordered[k]


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024.0


class Client:
    def __init__(self, url: str, password: str) -> None:
        self.url = url
        resp = httpx.post(f"{url}/identity/v3/auth/tokens", json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
        resp.raise_for_status()
        self.headers = {"X-Auth-Token": resp.headers["X-Subject-Token"]}
        self.project_id = resp.json()["token"]["project"]["id"]
        self.http = httpx.Client(base_url=f"{url}/compute/v2.1", headers=self.headers,
                                 timeout=120, limits=httpx.Limits(max_connections=64))

    def unlimit(self, project_id: str) -> None:
        """Lift the project's instances/cores/ram quotas (Nova's defaults allow 10)."""
        self.http.put(f"/os-quota-sets/{project_id}", json={"quota_set": {
            "instances": -1, "cores": -1, "ram": -1}}).raise_for_status()

    def setup(self) -> tuple[str, str]:
        self.unlimit(self.project_id)
        flavor = self.http.post("/flavors", json={"flavor": {
            "name": "bench", "ram": 64, "vcpus": 1, "disk": 0}})
        if flavor.status_code == 409:
            flavor_id = next(f["id"] for f in self.http.get("/flavors").json()["flavors"]
                             if f["name"] == "bench")
        else:
            flavor.raise_for_status()
            flavor_id = flavor.json()["flavor"]["id"]
        image = httpx.post(f"{self.url}/image/v2/images", headers=self.headers, json={
            "name": "bench", "disk_format": "raw", "container_format": "bare"})
        image.raise_for_status()
        image_id = image.json()["id"]
        httpx.put(f"{self.url}/image/v2/images/{image_id}/file", content=b"x" * 1024,
                  headers={**self.headers, "Content-Type": "application/octet-stream"}
                  ).raise_for_status()
        return flavor_id, image_id

    def create(self, name: str, flavor_id: str, image_id: str) -> str:
        resp = self.http.post("/servers", json={"server": {
            "name": name, "flavorRef": flavor_id, "imageRef": image_id}})
        resp.raise_for_status()
        return resp.json()["server"]["id"]

    def status(self, server_id: str) -> str:
        return self.http.get(f"/servers/{server_id}").json()["server"]["status"]

    def detail(self, **params: Any) -> list[dict[str, Any]]:
        resp = self.http.get("/servers/detail", params=params)
        resp.raise_for_status()
        return resp.json()["servers"]

    def delete_all(self) -> None:
        for server in self.detail():
            self.http.delete(f"/servers/{server['id']}")


def sequential(client: Client, flavor_id: str, image_id: str, count: int) -> list[float]:
    latencies = []
    for i in range(count):
        start = time.perf_counter()
        server_id = client.create(f"seq-{i}", flavor_id, image_id)
        while True:
            status = client.status(server_id)
            if status in ("ACTIVE", "ERROR"):
                break
            time.sleep(0.002)
        if status == "ERROR":
            raise RuntimeError(f"server {server_id} went to ERROR")
        latencies.append(time.perf_counter() - start)
    return latencies


def burst(client: Client, flavor_id: str, image_id: str, count: int,
          concurrency: int = 16) -> tuple[float, list[float], int]:
    """POST ``count`` servers from ``concurrency`` threads; returns (seconds
    until the last is ACTIVE, POST-to-ACTIVE of each, errors).

    Completion is polled cheaply (the servers still in BUILD, no detail);
    each server's ACTIVE time is then read from its ``OS-SRV-USG:launched_at``
    (microseconds, set by compute when the guest is up), so the measurement
    does not load the cloud it measures."""
    posted: dict[str, float] = {}
    wall = time.time() - time.perf_counter()  # perf_counter -> epoch

    def post(i: int) -> None:
        t0 = time.perf_counter()
        server_id = client.create(f"burst-{i}", flavor_id, image_id)
        posted[server_id] = t0

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        futures = [pool.submit(post, i) for i in range(count)]
        while True:
            time.sleep(0.25)
            pending = client.http.get("/servers", params={"status": "BUILD"}).json()["servers"]
            if all(f.done() for f in futures) and not pending:
                break
            if time.perf_counter() - start > 600:
                raise RuntimeError("burst did not finish within 600 s")
        for f in futures:
            f.result()
    latencies, errors, last = [], 0, start
    for server in client.detail():
        if server["id"] not in posted:
            continue
        if server["status"] != "ACTIVE":
            errors += 1
            continue
        launched = datetime.datetime.fromisoformat(server["OS-SRV-USG:launched_at"]).replace(
            tzinfo=datetime.timezone.utc).timestamp() - wall
        latencies.append(launched - posted[server["id"]])
        last = max(last, launched)
    return last - start, latencies, errors


def detail_latency(client: Client, repeats: int = 20) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        servers = client.detail()
        times.append(time.perf_counter() - t0)
    print(f"    GET /servers/detail returned {len(servers)} servers")
    return times


def run(name: str, url: str, password: str, pids: list[int], started_in: float,
        args: argparse.Namespace) -> None:
    print(f"\n== {name}")
    print(f"  control plane ready in {started_in:.2f} s; RSS {rss_mb(pids):.0f} MB")
    client = Client(url, password)
    flavor_id, image_id = client.setup()
    seq = sequential(client, flavor_id, image_id, args.sequential)
    print(f"  one at a time ({args.sequential}): POST-to-ACTIVE p50 {pct(seq, 50)*1000:.1f} ms, "
          f"p95 {pct(seq, 95)*1000:.1f} ms")
    client.delete_all()
    elapsed, lat, errors = burst(client, flavor_id, image_id, args.servers)
    print(f"  burst of {args.servers}: all ACTIVE in {elapsed:.2f} s "
          f"({args.servers / elapsed:.1f} servers/s), POST-to-ACTIVE p50 "
          f"{pct(lat, 50)*1000:.0f} ms, p95 {pct(lat, 95)*1000:.0f} ms, errors {errors}")
    times = detail_latency(client)
    print(f"  GET /servers/detail with {args.servers} servers: p50 "
          f"{pct(times, 50)*1000:.1f} ms, p95 {pct(times, 95)*1000:.1f} ms")
    print(f"  RSS after the burst: {rss_mb(pids):.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--sequential", type=int, default=50)
    parser.add_argument("--only", choices=("aio", "rabbit"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stratus-bench-") as tmp:
        if args.only in (None, "aio"):
            config = os.path.join(tmp, "aio.conf")
            with open(config, "w") as f:
                f.write(FAKE_HOST_INI)
            aio = harness.AllInOne(os.path.join(tmp, "aio"), ["--config", config])
            t0 = time.perf_counter()
            aio.start()
            started = time.perf_counter() - t0
            try:
                run("all-in-one (memory transport, SQLite)", aio.url, aio.password,
                    [aio.process.proc.pid], started, args)
            finally:
                aio.stop()
        if args.only in (None, "rabbit"):
            with harness.RabbitVhost() as transport_url, \
                    dbs.scratch_database("postgresql", tmp) as db_url:
                dep = harness.Deployment(os.path.join(tmp, "multi"), transport_url, db_url,
                                         compute_hosts=("compute1",),
                                         compute_options={"fake": FAKE_HOST})
                t0 = time.perf_counter()
                dep.start()
                started = time.perf_counter() - t0
                try:
                    run("multi-process (RabbitMQ, PostgreSQL, 1 compute host)", dep.url,
                        harness.PASSWORD, [p.proc.pid for p in dep.processes.values()],
                        started, args)
                finally:
                    dep.stop()


if __name__ == "__main__":
    main()
