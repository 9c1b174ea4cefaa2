"""A compute process killed in the middle of a resize (RabbitMQ + PostgreSQL,
separate processes, the fake driver slowed down so the kill lands mid-step):
when it starts again, the resize is resolved — the server ends ACTIVE on its
source (or ERROR with a fault when the host lost the guest), exactly one
host holds its resources and the migration is in a final status."""
from __future__ import annotations

import time

import pytest

from tests.functional import harness

pytestmark = pytest.mark.functional

DELAY = 2.0  # seconds each fake driver step takes


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    with harness.running_deployment(str(tmp_path_factory.mktemp("resize-restart")),
                                    "postgresql",
                                    compute_options={"fake": {"delay": DELAY}}) as dep:
        yield dep


@pytest.fixture(scope="module")
def flavors_and_image(deployment):
    conn = deployment.connect()
    image = conn.image.create_image(name="img", data=b"x" * 4096, disk_format="raw",
                                    container_format="bare")
    small = conn.compute.create_flavor(name="r.small", ram=128, vcpus=1, disk=1)
    big = conn.compute.create_flavor(name="r.big", ram=256, vcpus=2, disk=1)
    return image.id, small.id, big.id


def wait_for(what, predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def vcpus_used(conn):
    return {h.name: h.vcpus_used for h in conn.compute.hypervisors(details=True)}


def resize_then_kill(deployment, flavors_and_image, name, victim_role, task):
    """Boot, resize to the bigger flavor, kill the source or destination
    compute process once the server shows ``task``, start it again."""
    conn = deployment.connect()
    image_id, small, big = flavors_and_image
    server = conn.compute.create_server(name=name, image_id=image_id, flavor_id=small,
                                        networks="none")
    server = conn.compute.wait_for_server(server, status="ACTIVE", wait=60, interval=0.2)
    source = server.compute_host
    dest = next(h for h in deployment.compute_hosts if h != source)
    conn.compute.resize_server(server, big)
    wait_for(task, lambda: conn.compute.get_server(server.id).task_state == task)
    assert vcpus_used(conn) == {source: 1, dest: 2}  # both hosts hold it mid-resize
    victim = deployment.processes[source if victim_role == "source" else dest]
    victim.kill()  # SIGKILL: no clean-up of any kind
    victim.start()
    return conn, server.id, source, dest, small


def settled(conn, server_id):
    server = conn.compute.get_server(server_id)
    return server if server.status in ("ACTIVE", "ERROR") and not server.task_state else None


def the_migration(conn, server_id):
    [migration] = list(conn.compute.migrations(instance_uuid=server_id))
    return migration


def test_destination_killed_while_finishing_rolls_back_to_the_source(
        deployment, flavors_and_image):
    conn, server_id, source, dest, _small = resize_then_kill(
        deployment, flavors_and_image, "dest-killed", "destination", "resize_finish")
    server = wait_for("the server to settle", lambda: settled(conn, server_id), 90)
    assert server.status == "ACTIVE", server.fault
    assert server.compute_host == source
    # openstacksdk negotiates 2.75: the flavor is embedded (2.47), by its name.
    assert (server.flavor.original_name, server.flavor.vcpus) == ("r.small", 1)
    assert vcpus_used(conn) == {source: 1, dest: 0}
    assert the_migration(conn, server_id).status == "error"
    conn.compute.delete_server(server_id)
    conn.compute.wait_for_delete(conn.compute.get_server(server_id), wait=60)


def test_source_killed_mid_migration_is_resolved_on_restart(deployment, flavors_and_image):
    """The fake driver keeps its guests in memory: killing the source loses
    the guest and its set-aside disks, so the rollback cannot bring it back."""
    conn, server_id, source, dest, _small = resize_then_kill(
        deployment, flavors_and_image, "source-killed", "source", "resize_migrating")
    server = wait_for("the server to settle", lambda: settled(conn, server_id), 90)
    assert server.status == "ERROR"
    assert server.fault["message"].startswith(
        f"Resize interrupted by a restart of the compute service on {source}")
    assert server.compute_host == source
    assert vcpus_used(conn) == {source: 1, dest: 0}
    assert the_migration(conn, server_id).status == "error"
    conn.compute.delete_server(server_id)
    conn.compute.wait_for_delete(conn.compute.get_server(server_id), wait=60)
