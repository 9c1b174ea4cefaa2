"""Fake hosts at scale and dead hosts, over RabbitMQ + PostgreSQL: one
``stratus compute --fake-hosts 30`` process beside a real compute host that
is then killed."""
from __future__ import annotations

import collections
import time

import httpx
import pytest

from tests.functional import harness

pytestmark = pytest.mark.functional

FLEET = 30
DOWN_TIME = 5  # the harness' service_down_time


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    with harness.running_deployment(str(tmp_path_factory.mktemp("fleet")),
                                    compute_hosts=("victim",), fake_hosts=FLEET,
                                    control_options=harness.NO_INSTANCE_QUOTAS) as dep:
        yield dep


@pytest.fixture(scope="module")
def api(deployment):
    conn = deployment.connect()
    image = conn.image.create_image(name="img", data=b"x" * 1024, disk_format="raw",
                                    container_format="bare")
    flavor = conn.compute.create_flavor(name="tiny", ram=64, vcpus=1, disk=0)
    http = httpx.Client(base_url=f"{deployment.url}/compute/v2.1",
                        headers={"X-Auth-Token": conn.session.get_token()}, timeout=60)

    def boot(name: str, **extra) -> str:
        hints = extra.pop("hints", None)
        body = {"server": {"name": name, "imageRef": image.id, "flavorRef": flavor.id,
                           **extra}}
        if hints:
            body["os:scheduler_hints"] = hints
        resp = http.post("/servers", json=body)
        assert resp.status_code == 202, resp.text
        return resp.json()["server"]["id"]

    def settle(server_id: str) -> dict:
        deadline = time.monotonic() + 60
        while True:
            server = http.get(f"/servers/{server_id}").json()["server"]
            if server["status"] in ("ACTIVE", "ERROR"):
                return server
            assert time.monotonic() < deadline, server
            time.sleep(0.1)

    return http, boot, settle


def test_every_fake_host_is_up_and_takes_instances(deployment, api):
    http, boot, settle = api
    services = http.get("/os-services", params={"binary": "nova-compute"}).json()["services"]
    fleet = [s for s in services if s["host"].startswith("fleet-")]
    assert len(fleet) == FLEET and all(s["state"] == "up" for s in fleet)
    assert len(http.get("/os-hypervisors").json()["hypervisors"]) == FLEET + 1
    ids = [boot(f"vm{i}") for i in range(40)]
    hosts = collections.Counter(settle(i)["OS-EXT-SRV-ATTR:host"] for i in ids)
    assert sum(hosts.values()) == 40 and len(hosts) >= 15
    for server_id in ids:
        http.delete(f"/servers/{server_id}")


def test_a_host_that_stops_heartbeating_gets_nothing_after_service_down_time(deployment, api):
    http, boot, settle = api
    anchor = settle(boot("anchor", availability_zone="nova:victim"))
    assert anchor["status"] == "ACTIVE" and anchor["OS-EXT-SRV-ATTR:host"] == "victim"
    # same_host leaves the scheduler no host but the victim's.
    follower = settle(boot("follower", hints={"same_host": [anchor["id"]]}))
    assert follower["status"] == "ACTIVE" and follower["OS-EXT-SRV-ATTR:host"] == "victim"

    deployment.processes["victim"].kill()  # no more heartbeats from now on
    killed = time.monotonic()
    time.sleep(max(0.0, killed + DOWN_TIME + 0.2 - time.monotonic()))
    refused = settle(boot("late", hints={"same_host": [anchor["id"]]}))
    assert refused["status"] == "ERROR"
    assert refused["fault"]["message"].startswith("No valid host was found")
    others = [settle(boot(f"after{i}")) for i in range(10)]
    assert all(s["status"] == "ACTIVE" and s["OS-EXT-SRV-ATTR:host"] != "victim"
               for s in others)
