"""Multi-tenant benchmark: token issue rate, and authenticated
``GET /servers/detail`` with 1,000 servers across 10 projects, as an admin
listing every project (``all_tenants=1``) and as a member seeing its 100.

    python bench/tenants.py [--projects 10] [--per-project 100]

Figures are printed, not asserted.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import tempfile
import time

import httpx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.boot import Client, pct  # noqa: E402
from tests.functional import harness  # noqa: E402

MEMBER_PASSWORD = "bench-member-pw"


def token(url: str, user: str, password: str, project: str) -> str:
    resp = httpx.post(f"{url}/identity/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}})
    resp.raise_for_status()
    return resp.headers["X-Subject-Token"]


def token_rate(url: str, password: str, seconds: float = 5.0, threads: int = 4) -> float:
    deadline = time.perf_counter() + seconds
    counts = [0] * threads

    def worker(i: int) -> None:
        while time.perf_counter() < deadline:
            token(url, "admin", password, "admin")
            counts[i] += 1

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    return sum(counts) / seconds


def make_tenants(state_dir: str, projects: int) -> list[tuple[str, str, str]]:
    """(project name, member user name, project id), created in the cloud's database."""
    from stratus.db.session import Database
    from stratus.identity import backend

    db = Database(f"sqlite:///{os.path.join(state_dir, 'stratus.sqlite')}")
    tenants = []
    try:
        for i in range(projects):
            project = backend.create_project(db, f"bench-p{i}")
            user = backend.create_user(db, f"bench-u{i}", MEMBER_PASSWORD)
            backend.grant_role(db, user["id"], project["id"], "member")
            tenants.append((f"bench-p{i}", f"bench-u{i}", project["id"]))
    finally:
        db.dispose()
    return tenants


def detail_times(url: str, tok: str, params: dict, repeats: int = 20) -> tuple[list[float], int]:
    http = httpx.Client(base_url=f"{url}/compute/v2.1", headers={"X-Auth-Token": tok},
                        timeout=60)
    times, count = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        resp = http.get("/servers/detail", params=params)
        times.append(time.perf_counter() - t0)
        resp.raise_for_status()
        count = len(resp.json()["servers"])
    return times, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--projects", type=int, default=10)
    parser.add_argument("--per-project", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stratus-bench-") as tmp:
        aio = harness.AllInOne(os.path.join(tmp, "aio"))
        aio.start()
        try:
            url, password = aio.url, aio.password
            print("\n== all-in-one, multi-tenant")
            print(f"  token issue (password, project-scoped, 4 threads): "
                  f"{token_rate(url, password):.1f} tokens/s")
            admin = Client(url, password)
            flavor_id, image_id = admin.setup()
            httpx.patch(f"{url}/image/v2/images/{image_id}", headers={
                **admin.headers, "Content-Type": "application/openstack-images-v2.1-json-patch"},
                json=[{"op": "replace", "path": "/visibility", "value": "public"}]
            ).raise_for_status()
            tenants = make_tenants(aio.state_dir, args.projects)
            member_tokens = {}
            for project, user, project_id in tenants:
                member_tokens[project] = token(url, user, MEMBER_PASSWORD, project)
                admin.unlimit(project_id)

            def boot(job: tuple[str, int]) -> None:
                project, i = job
                resp = httpx.post(f"{url}/compute/v2.1/servers",
                                  headers={"X-Auth-Token": member_tokens[project]},
                                  json={"server": {"name": f"{project}-{i}",
                                                   "flavorRef": flavor_id,
                                                   "imageRef": image_id}}, timeout=60)
                resp.raise_for_status()

            jobs = [(p, i) for p, _, _ in tenants for i in range(args.per_project)]
            t0 = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                list(pool.map(boot, jobs))
            while admin.http.get("/servers", params={"status": "BUILD", "all_tenants": 1}
                                 ).json()["servers"]:
                time.sleep(0.25)
            total = len(jobs)
            print(f"  {total} servers in {args.projects} projects ACTIVE in "
                  f"{time.perf_counter() - t0:.1f} s")
            times, count = detail_times(url, admin.headers["X-Auth-Token"], {"all_tenants": 1})
            print(f"  admin GET /servers/detail?all_tenants=1 ({count} servers): "
                  f"p50 {pct(times, 50)*1000:.1f} ms, p95 {pct(times, 95)*1000:.1f} ms")
            first = tenants[0][0]
            times, count = detail_times(url, member_tokens[first], {})
            print(f"  member GET /servers/detail ({count} servers of its project): "
                  f"p50 {pct(times, 50)*1000:.1f} ms, p95 {pct(times, 95)*1000:.1f} ms")
        finally:
            aio.stop()


if __name__ == "__main__":
    main()
