"""Faults: a compute host killed mid-build, RabbitMQ restarted mid-burst.

Every instance must end ACTIVE or ERROR (with a fault), never stuck in BUILD.
"""
from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests import dbs
from tests.functional import harness

pytestmark = pytest.mark.functional
FINAL = ("ACTIVE", "ERROR")


@pytest.fixture(scope="module")
def slow_deployment(tmp_path_factory):
    """One compute host whose fake hypervisor takes 2 s per operation."""
    if not (dbs.port_open(5672) and dbs.available("postgresql")):
        pytest.fail("RabbitMQ and PostgreSQL must be running (scripts/test-services)")
    tmp = str(tmp_path_factory.mktemp("faults"))
    with harness.RabbitVhost() as transport_url, \
            dbs.scratch_database("postgresql", tmp) as db_url:
        dep = harness.Deployment(os.path.join(tmp, "deploy"), transport_url, db_url,
                                 compute_hosts=("compute1",), fake_delay=2.0,
                                 defaults="instance_build_timeout = 60\n")
        try:
            dep.start()
            conn = dep.connect()
            # The burst test creates 13 servers: past Nova's default of 10 instances.
            conn.compute.update_quota_set(conn.current_project_id, instances=-1, cores=-1,
                                          ram=-1)
            image = conn.image.create_image(name="img", data=b"x" * 1024, disk_format="raw",
                                            container_format="bare")
            flavor = conn.compute.create_flavor(name="f", ram=64, vcpus=1, disk=0)
            dep.image_id, dep.flavor_id = image.id, flavor.id
            yield dep
        finally:
            dep.stop()


def create(conn, dep, name):
    return conn.compute.create_server(name=name, image_id=dep.image_id,
                                      flavor_id=dep.flavor_id, networks="none")


def wait_final(conn, ids, timeout):
    deadline = time.monotonic() + timeout
    states = {}
    while time.monotonic() < deadline:
        states = {i: conn.compute.get_server(i).status for i in ids}
        if all(s in FINAL for s in states.values()):
            return states
        time.sleep(0.5)
    raise AssertionError(f"not all final after {timeout}s: {states}")


def test_compute_killed_mid_build_never_leaves_build(slow_deployment):
    dep = slow_deployment
    conn = dep.connect()
    server = create(conn, dep, "interrupted")
    harness.wait_until(lambda: conn.compute.get_server(server.id).task_state == "spawning",
                       30, what="spawning")
    dep.processes["compute1"].kill()
    dep.processes["compute1"].start()
    states = wait_final(conn, [server.id], 90)
    shown = conn.compute.get_server(server.id)
    if states[server.id] == "ERROR":
        assert shown.fault and shown.fault["message"], shown
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=60, interval=0.5)


def test_rabbitmq_restart_during_burst_loses_no_request(slow_deployment):
    dep = slow_deployment
    conn = dep.connect()
    ids = [create(conn, dep, f"burst{i}").id for i in range(10)]
    try:
        subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, capture_output=True,
                       timeout=120)
        time.sleep(1)
    finally:
        subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, capture_output=True,
                       timeout=120)
    harness.wait_until(lambda: dbs.port_open(5672), 60, what="RabbitMQ back")
    conn = dep.connect()
    ids += [create(conn, dep, f"after{i}").id for i in range(3)]
    states = wait_final(conn, ids, 150)
    assert len(states) == 13
    # Nothing was lost: the requests all reached the end of a build.
    for server_id, status in states.items():
        if status == "ERROR":
            assert conn.compute.get_server(server_id).fault


def test_sigterm_compute_mid_build_lets_the_build_finish(slow_deployment):
    """A graceful stop waits for the requests in flight: the build completes."""
    dep = slow_deployment
    conn = dep.connect()
    server = create(conn, dep, "graceful")
    harness.wait_until(lambda: conn.compute.get_server(server.id).task_state == "spawning",
                       30, what="spawning")
    proc = dep.processes["compute1"]
    assert proc.stop(timeout=30) == 0, proc.log()[-3000:]
    assert conn.compute.get_server(server.id).status == "ACTIVE"
    proc.start()
    harness.wait_until(lambda: any(s.host == "compute1" and s.state == "up"
                                   for s in conn.compute.services()), 30, interval=0.5,
                       what="compute1 back")
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=60, interval=0.5)
