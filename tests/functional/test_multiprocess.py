"""Separate OS processes over RabbitMQ and PostgreSQL (and MariaDB):
api, conductor, scheduler and two compute hosts, driven with openstacksdk."""
from __future__ import annotations

import time

import httpx
import pytest

from tests.functional import harness

pytestmark = pytest.mark.functional


@pytest.fixture(scope="module", params=["postgresql", "mysql"])
def deployment(request, tmp_path_factory):
    with harness.running_deployment(str(tmp_path_factory.mktemp(f"multi-{request.param}")),
                                    request.param) as dep:
        yield dep


@pytest.fixture(scope="module")
def image_and_flavor(deployment):
    conn = deployment.connect()
    image = conn.image.create_image(name="img", data=b"x" * 4096, disk_format="raw",
                                    container_format="bare")
    flavor = conn.compute.create_flavor(name="small", ram=128, vcpus=1, disk=1)
    return image.id, flavor.id


def boot(conn, image_flavor, name, wait=True):
    image_id, flavor_id = image_flavor
    server = conn.compute.create_server(name=name, image_id=image_id, flavor_id=flavor_id,
                                        networks="none")
    if wait:
        server = conn.compute.wait_for_server(server, status="ACTIVE", wait=60, interval=0.2)
    return server


def wait_task_done(conn, server_id, status, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server = conn.compute.get_server(server_id)
        if server.status == status and not server.task_state:
            return server
        time.sleep(0.1)
    raise AssertionError(f"{server_id} not {status}: {server.status}/{server.task_state}")


def test_boot_spreads_over_both_hosts_and_every_action_works(deployment, image_and_flavor):
    conn = deployment.connect()
    servers = [boot(conn, image_and_flavor, f"vm{i}", wait=False) for i in range(4)]
    try:
        servers = [conn.compute.wait_for_server(s, status="ACTIVE", wait=60, interval=0.2)
                   for s in servers]
        hosts = {conn.compute.get_server(s.id).compute_host for s in servers}
        assert hosts == {"compute1", "compute2"}, [
            (s.host, s.state, s.status, s.updated_at) for s in conn.compute.services()]
    except BaseException:
        for s in servers:  # leave nothing for the next tests
            conn.compute.delete_server(s, ignore_missing=True)
        raise
    sid = servers[0].id
    for action, status in ((conn.compute.stop_server, "SHUTOFF"),
                           (conn.compute.start_server, "ACTIVE"),
                           (lambda s: conn.compute.reboot_server(s, "SOFT"), "ACTIVE"),
                           (lambda s: conn.compute.reboot_server(s, "HARD"), "ACTIVE"),
                           (conn.compute.pause_server, "PAUSED"),
                           (conn.compute.unpause_server, "ACTIVE"),
                           (conn.compute.suspend_server, "SUSPENDED"),
                           (conn.compute.resume_server, "ACTIVE")):
        action(sid)
        wait_task_done(conn, sid, status)
    conn.compute.lock_server(sid)   # "locked" shows in the body from 2.9 (sdk negotiates 2.19)
    assert conn.compute.get_server(sid).is_locked is True
    conn.compute.unlock_server(sid)
    assert conn.compute.get_server(sid).is_locked is False
    events = {a.action for a in conn.compute.server_actions(sid)}
    assert events >= {"create", "stop", "start", "reboot", "pause", "unpause", "suspend",
                      "resume", "lock", "unlock"}
    for s in servers:
        conn.compute.delete_server(s)
    for s in servers:
        conn.compute.wait_for_delete(s, wait=60, interval=0.2)
    hypervisors = list(conn.compute.hypervisors(details=True))
    assert sum(h.running_vms or 0 for h in hypervisors) >= 0


def test_request_id_reaches_every_service_log(deployment, image_and_flavor):
    conn = deployment.connect()
    token = conn.session.get_token()
    image_id, flavor_id = image_and_flavor
    resp = httpx.post(f"{deployment.url}/compute/v2.1/servers",
                      headers={"X-Auth-Token": token},
                      json={"server": {"name": "traced", "imageRef": image_id,
                                       "flavorRef": flavor_id}})
    assert resp.status_code == 202, resp.text
    request_id = resp.headers["x-openstack-request-id"]
    assert request_id.startswith("req-")
    server_id = resp.json()["server"]["id"]
    server = conn.compute.wait_for_server(conn.compute.get_server(server_id), status="ACTIVE",
                                          wait=60, interval=0.2)
    touched = {"api", "conductor", "scheduler", server.compute_host}
    harness.wait_until(lambda: all(request_id in deployment.processes[name].log()
                                   for name in touched), 10, what="request id in logs")
    conn.compute.delete_server(server_id)
    conn.compute.wait_for_delete(server, wait=60, interval=0.2)


def test_bad_requests_change_nothing(deployment, image_and_flavor):
    conn = deployment.connect()
    token = conn.session.get_token()
    image_id, flavor_id = image_and_flavor
    url = f"{deployment.url}/compute/v2.1/servers"
    headers = {"X-Auth-Token": token, "Content-Type": "application/json"}
    bad = [b"{not json", b'{"server": {"name": 5, "imageRef": "%s", "flavorRef": "%s"}}'
           % (image_id.encode(), flavor_id.encode()),
           b'{"server": {"name": "%s", "imageRef": "%s", "flavorRef": "%s"}}'
           % (b"x" * 300, image_id.encode(), flavor_id.encode()),
           b'{"server": {"name": "n", "imageRef": "%s", "flavorRef": "nope"}}'
           % image_id.encode(),
           b'{"server": {"name": "n", "imageRef": "%s", "flavorRef": "%s"}}'
           % (b"0" * 8 + b"-0000-0000-0000-" + b"0" * 12, flavor_id.encode()),
           b'{"server": {"name": "n", "imageRef": "%s", "flavorRef": "%s", "min_count": -1}}'
           % (image_id.encode(), flavor_id.encode())]
    for body in bad:
        resp = httpx.post(url, headers=headers, content=body)
        assert resp.status_code == 400, (body, resp.text)
        assert resp.json()["badRequest"]["code"] == 400
    assert list(conn.compute.servers()) == []


def test_killed_compute_shows_down_then_up(deployment):
    conn = deployment.connect()
    deployment.processes["compute2"].kill()
    try:
        harness.wait_until(lambda: any(s.host == "compute2" and s.state == "down"
                                       for s in conn.compute.services()), 20,
                           interval=0.5, what="compute2 down")
    finally:
        deployment.processes["compute2"].start()
    harness.wait_until(lambda: any(s.host == "compute2" and s.state == "up"
                                   for s in conn.compute.services()), 20,
                       interval=0.5, what="compute2 up again")


def test_sigterm_stops_a_service_cleanly(deployment):
    proc = deployment.processes["scheduler"]
    assert proc.stop() == 0, proc.log()[-2000:]
    proc.start()
    conn = deployment.connect()
    harness.wait_until(lambda: any(s.binary == "stratus-scheduler" and s.state == "up"
                                   for s in conn.compute.services()), 20,
                       interval=0.5, what="scheduler back")
