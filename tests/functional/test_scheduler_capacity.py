"""Capacity you can trust, across processes: two schedulers, 200 concurrent
boots onto a cloud with room for 150 (RabbitMQ + PostgreSQL)."""
from __future__ import annotations

import concurrent.futures
import time

import httpx
import pytest

from tests.functional import harness

pytestmark = pytest.mark.functional

HOSTS = ("compute1", "compute2", "compute3")
PER_HOST = 50
FLAVOR_RAM = 128
RESERVED = 512  # [compute] reserved_host_memory_mb, Nova's default


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    # Room for exactly PER_HOST servers per host: (total - reserved) * 1.0 RAM.
    memory = RESERVED + PER_HOST * FLAVOR_RAM
    with harness.running_deployment(str(tmp_path_factory.mktemp("capacity")),
                                    compute_hosts=HOSTS, schedulers=2,
                                    compute_options={"fake": {"memory_mb": memory}},
                                    control_options=harness.NO_INSTANCE_QUOTAS) as dep:
        yield dep


def test_200_concurrent_boots_onto_room_for_150(deployment):
    conn = deployment.connect()
    image = conn.image.create_image(name="img", data=b"x" * 1024, disk_format="raw",
                                    container_format="bare")
    flavor = conn.compute.create_flavor(name="tiny", ram=FLAVOR_RAM, vcpus=1, disk=0)
    token = conn.session.get_token()
    http = httpx.Client(base_url=f"{deployment.url}/compute/v2.1",
                        headers={"X-Auth-Token": token}, timeout=60,
                        limits=httpx.Limits(max_connections=32))

    def post(i: int) -> str:
        resp = http.post("/servers", json={"server": {
            "name": f"vm{i}", "imageRef": image.id, "flavorRef": flavor.id}})
        assert resp.status_code == 202, resp.text
        return resp.json()["server"]["id"]

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        ids = set(pool.map(post, range(200)))
    assert len(ids) == 200

    deadline = time.monotonic() + 120
    while http.get("/servers", params={"status": "BUILD"}).json()["servers"]:
        assert time.monotonic() < deadline, "builds did not finish"
        time.sleep(0.5)
    servers = [s for s in http.get("/servers/detail").json()["servers"] if s["id"] in ids]
    by_status: dict[str, list[dict]] = {}
    for server in servers:
        by_status.setdefault(server["status"], []).append(server)
    assert {k: len(v) for k, v in by_status.items()} == {"ACTIVE": 150, "ERROR": 50}
    for server in by_status["ERROR"]:
        assert server["fault"]["message"].startswith("No valid host was found"), server["fault"]
        assert server["fault"]["code"] == 500

    # No host over capacity: each holds exactly its room, usage counts the reserve.
    per_host: dict[str, int] = {}
    for server in by_status["ACTIVE"]:
        per_host[server["OS-EXT-SRV-ATTR:host"]] = per_host.get(
            server["OS-EXT-SRV-ATTR:host"], 0) + 1
    assert per_host == {host: PER_HOST for host in HOSTS}
    for hyp in http.get("/os-hypervisors/detail").json()["hypervisors"]:
        assert hyp["memory_mb_used"] == RESERVED + PER_HOST * FLAVOR_RAM == hyp["memory_mb"]
        assert hyp["running_vms"] == PER_HOST
    # Both schedulers took part.
    for name in ("scheduler", "scheduler2"):
        assert "Scheduled " in deployment.processes[name].log(), name
