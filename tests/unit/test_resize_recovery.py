"""A compute service restarting in the middle of a resize or cold migrate
resolves it at start-up (``init_host``), and VERIFY_RESIZE is confirmed
automatically after ``[DEFAULT] resize_confirm_window``: two fake hosts in
process.

A restart is simulated on the running service: the step where the process
"dies" raises :class:`ProcessDied` (a BaseException, so no handler of the
manager runs, as when the process is killed), then ``init_host`` runs again
with the same driver (its guests and set-aside disks are what the host keeps
across a restart, like libvirt's domains and instance directories).
"""
from __future__ import annotations

import datetime
import threading
from typing import Any

import pytest
from sqlalchemy import select, update

from stratus.compute import power_state
from stratus.db import resizes as db_resizes
from stratus.db.models import InstanceFault, Migration
from stratus.utils import utcnow
from tests.cloud import InProcessCloud
from tests.unit.test_resize import HOSTS, act, host_of, node_hosts


class ProcessDied(BaseException):
    """The compute process stops here: nothing after this line runs."""


def die(monkeypatch, obj: Any, name: str, after: bool = False) -> threading.Event:
    """Make ``obj.name`` kill its caller (before or ``after`` doing its work);
    the event is set once it did."""
    died = threading.Event()
    original = getattr(obj, name)

    def dying(*args: Any, **kwargs: Any) -> Any:
        if after:
            original(*args, **kwargs)
        died.set()
        raise ProcessDied(name)

    monkeypatch.setattr(obj, name, dying)
    return died


def manager(cloud, host):
    return cloud.computes[host].manager


def other(host):
    return next(h for h in HOSTS if h != host)


def migration_of(cloud, server_id):
    [migration] = db_resizes.migrations_for_instance(cloud.db, server_id)
    return migration


def faults(cloud, server_id):
    with cloud.db.read() as s:
        return [f.message for f in s.scalars(select(InstanceFault).where(
            InstanceFault.instance_uuid == server_id).order_by(InstanceFault.id))]


def task_of(cloud, server_id):
    return cloud.compute("GET", f"/servers/{server_id}").get_json()["server"][
        "OS-EXT-STS:task_state"]


@pytest.mark.parametrize("old_state,crash", [
    ("ACTIVE", "before"),        # resize_prep: the source never started
    ("ACTIVE", "aside"),         # resize_migrating: powered off, disks set aside
    ("SHUTOFF", "aside"),
])
def test_source_restart_rolls_the_resize_back(cloud, monkeypatch, old_state, crash):
    server = cloud.boot("src", flavor="1")
    source = host_of(server)
    if old_state == "SHUTOFF":
        assert act(cloud, server["id"], {"os-stop": None}).status_code == 202
        cloud.wait_for(server["id"], "SHUTOFF")
    src = manager(cloud, source)
    if crash == "before":
        died = die(monkeypatch, src, "resize_instance")
        expected_task = "resize_prep"
    else:
        died = die(monkeypatch, src.driver, "migrate_disk_and_power_off", after=True)
        expected_task = "resize_migrating"
    assert act(cloud, server["id"], {"resize": {"flavorRef": "3"}}).status_code == 202
    assert died.wait(10)
    assert task_of(cloud, server["id"]) == expected_task
    assert node_hosts(cloud) == {source: 1, other(source): 2}  # both held, mid-resize
    monkeypatch.undo()

    src.init_host()  # the source's compute service starts again

    shown = cloud.wait_for(server["id"], old_state)
    assert host_of(shown) == source and shown["flavor"]["id"] == "1"
    assert node_hosts(cloud) == {source: 1}
    assert migration_of(cloud, server["id"])["status"] == "error"
    assert "interrupted by a restart of the compute service on " + source in \
        faults(cloud, server["id"])[-1]
    assert server["id"] in src.driver.list_instances()
    running = src.driver.get_info({"uuid": server["id"]}).state == power_state.RUNNING
    assert running == (old_state == "ACTIVE")
    assert server["id"] not in manager(cloud, other(source)).driver.list_instances()


def test_source_restart_with_the_guest_lost_is_error_with_a_fault(cloud, monkeypatch):
    server = cloud.boot("lost", flavor="1")
    source = host_of(server)
    src = manager(cloud, source)
    died = die(monkeypatch, src.driver, "migrate_disk_and_power_off", after=True)
    assert act(cloud, server["id"], {"resize": {"flavorRef": "3"}}).status_code == 202
    assert died.wait(10)
    monkeypatch.undo()
    src.driver._resize_sources.clear()  # the host lost the disks set aside

    src.init_host()

    shown = cloud.wait_for(server["id"], "ERROR")
    assert shown["fault"]["message"].startswith(
        f"Resize interrupted by a restart of the compute service on {source}; "
        "rolling it back failed")
    assert host_of(shown) == source
    assert node_hosts(cloud) == {source: 1}
    assert migration_of(cloud, server["id"])["status"] == "error"


@pytest.mark.parametrize("crash", ["before", "guest made"])
def test_destination_restart_before_finishing_rolls_back_onto_the_source(
        cloud, monkeypatch, crash):
    server = cloud.boot("dst", flavor="1")
    source = host_of(server)
    dest = manager(cloud, other(source))
    if crash == "before":  # resize_migrated: finish_resize never ran
        died = die(monkeypatch, dest, "finish_resize")
        expected_task = "resize_migrated"
    else:                  # resize_finish: the new guest exists, nothing recorded
        died = die(monkeypatch, dest.driver, "finish_migration", after=True)
        expected_task = "resize_finish"
    assert act(cloud, server["id"], {"resize": {"flavorRef": "3"}}).status_code == 202
    assert died.wait(10)
    assert task_of(cloud, server["id"]) == expected_task
    monkeypatch.undo()

    dest.init_host()  # the destination's compute service starts again

    shown = cloud.wait_for(server["id"], "ACTIVE")
    assert host_of(shown) == source and shown["flavor"]["id"] == "1"
    assert node_hosts(cloud) == {source: 1}
    assert migration_of(cloud, server["id"])["status"] == "error"
    assert "interrupted by a restart of the compute service on " + dest.host in \
        faults(cloud, server["id"])[-1]
    assert server["id"] not in dest.driver.list_instances()
    src_driver = manager(cloud, source).driver
    assert src_driver.get_info({"uuid": server["id"]}).state == power_state.RUNNING


def test_source_restart_while_the_destination_finishes_leaves_it_alone(cloud, monkeypatch):
    """resize_finish: the destination's step, under way; not the source's."""
    server = cloud.boot("alone", flavor="1")
    source = host_of(server)
    dest = manager(cloud, other(source))
    hold, started = threading.Event(), threading.Event()
    original = dest.driver.finish_migration

    def slow_finish(*args, **kwargs):
        started.set()
        hold.wait(10)
        return original(*args, **kwargs)

    monkeypatch.setattr(dest.driver, "finish_migration", slow_finish)
    assert act(cloud, server["id"], {"resize": {"flavorRef": "3"}}).status_code == 202
    assert started.wait(10)
    manager(cloud, source).init_host()
    assert task_of(cloud, server["id"]) == "resize_finish"
    hold.set()
    shown = cloud.wait_for(server["id"], "VERIFY_RESIZE")
    assert host_of(shown) == dest.host
    assert migration_of(cloud, server["id"])["status"] == "finished"


def test_source_dying_before_its_cast_has_the_destination_abandon(cloud, monkeypatch):
    """resize_migrated recorded, the cast of finish_resize died with the
    source: at its restart the destination rolls the resize back."""
    server = cloud.boot("uncast", flavor="1")
    source = host_of(server)
    src = manager(cloud, source)
    rpc = src.compute_rpc
    original = rpc.instance_action
    died = threading.Event()

    def dying_cast(ctxt, host, uuid, action, **kwargs):
        if action == "finish_resize":
            died.set()
            raise ProcessDied(action)
        return original(ctxt, host, uuid, action, **kwargs)

    monkeypatch.setattr(rpc, "instance_action", dying_cast)
    assert act(cloud, server["id"], {"resize": {"flavorRef": "3"}}).status_code == 202
    assert died.wait(10)
    monkeypatch.undo()
    assert task_of(cloud, server["id"]) == "resize_migrated"

    src.init_host()

    shown = cloud.wait_for(server["id"], "ACTIVE")
    assert host_of(shown) == source and shown["flavor"]["id"] == "1"
    assert node_hosts(cloud) == {source: 1}
    assert migration_of(cloud, server["id"])["status"] == "error"
    assert f"compute service on {source}: rolled back" in faults(cloud, server["id"])[-1]
    assert src.driver.get_info({"uuid": server["id"]}).state == power_state.RUNNING


@pytest.mark.parametrize("side", ["destination", "source"])
def test_restart_mid_revert_completes_the_revert(cloud, monkeypatch, side):
    server = cloud.boot("back", flavor="1")
    source = host_of(server)
    assert act(cloud, server["id"], {"resize": {"flavorRef": "3"}}).status_code == 202
    dest_host = host_of(cloud.wait_for(server["id"], "VERIFY_RESIZE"))
    restarted = manager(cloud, dest_host if side == "destination" else source)
    # The destination dies before destroying its guest; the source after
    # receiving finish_revert_resize, before restoring anything.
    died = die(monkeypatch, restarted,
               "revert_resize" if side == "destination" else "finish_revert_resize")
    assert act(cloud, server["id"], {"revertResize": None}).status_code == 202
    assert died.wait(10)
    monkeypatch.undo()

    restarted.init_host()

    shown = cloud.wait_for(server["id"], "ACTIVE")
    assert host_of(shown) == source and shown["flavor"]["id"] == "1"
    assert node_hosts(cloud) == {source: 1}
    assert migration_of(cloud, server["id"])["status"] == "reverted"
    assert server["id"] in manager(cloud, source).driver.list_instances()
    assert server["id"] not in manager(cloud, dest_host).driver.list_instances()


def test_source_restart_mid_confirm_completes_the_confirm(cloud, monkeypatch):
    server = cloud.boot("sure", flavor="1")
    source = host_of(server)
    assert act(cloud, server["id"], {"resize": {"flavorRef": "3"}}).status_code == 202
    dest_host = host_of(cloud.wait_for(server["id"], "VERIFY_RESIZE"))
    src = manager(cloud, source)
    died = die(monkeypatch, src.driver, "confirm_migration")
    assert act(cloud, server["id"], {"confirmResize": None}).status_code == 204
    assert died.wait(10)
    monkeypatch.undo()
    # The destination restarting meanwhile leaves the confirm to the source.
    manager(cloud, dest_host).init_host()
    assert task_of(cloud, server["id"]) == "resize_confirming"

    src.init_host()

    shown = cloud.wait_for(server["id"], "ACTIVE")
    assert host_of(shown) == dest_host and shown["flavor"]["id"] == "3"
    assert node_hosts(cloud) == {dest_host: 2}
    assert migration_of(cloud, server["id"])["status"] == "confirmed"
    assert server["id"] not in src.driver._resize_sources


# -- resize_confirm_window ----------------------------------------------------------------

def test_unconfirmed_resize_is_confirmed_after_the_window(tmp_path):
    cloud = InProcessCloud(tmp_path, hosts=HOSTS, overrides={
        ("scheduler", "host_state_max_age"): 0.0,
        ("DEFAULT", "resize_confirm_window"): 3600.0})
    try:
        server = cloud.boot("auto", flavor="1")
        source = host_of(server)
        assert act(cloud, server["id"], {"resize": {"flavorRef": "3"}}).status_code == 202
        dest_host = host_of(cloud.wait_for(server["id"], "VERIFY_RESIZE"))
        dest = manager(cloud, dest_host)
        assert "poll_unconfirmed_resizes" in [
            getattr(fn, "__name__", "") for _i, fn in dest.periodic_tasks()]
        dest.poll_unconfirmed_resizes()  # younger than the window: left alone
        manager(cloud, source).poll_unconfirmed_resizes()  # not its destination
        assert cloud.wait_for(server["id"], "VERIFY_RESIZE")
        assert migration_of(cloud, server["id"])["status"] == "finished"
        with cloud.db.write() as s:
            s.execute(update(Migration).values(
                updated_at=utcnow() - datetime.timedelta(seconds=3601)))
        dest.poll_unconfirmed_resizes()
        shown = cloud.wait_for(server["id"], "ACTIVE")
        assert host_of(shown) == dest_host
        assert node_hosts(cloud) == {dest_host: 2}
        assert migration_of(cloud, server["id"])["status"] == "confirmed"
        actions = cloud.compute("GET", f"/servers/{server['id']}/os-instance-actions")
        assert [a["action"] for a in actions.get_json()["instanceActions"]][0] == \
            "confirmResize"
    finally:
        cloud.close()


def test_confirm_window_zero_is_off(cloud):
    dest = manager(cloud, HOSTS[0])
    assert cloud.conf.DEFAULT.resize_confirm_window == 0
    assert "poll_unconfirmed_resizes" not in [
        getattr(fn, "__name__", "") for _i, fn in dest.periodic_tasks()]


def test_same_host_resize_interrupted_while_finishing_rolls_back(tmp_path, monkeypatch):
    """Source and destination are one host: it restores its kept guest."""
    cloud = InProcessCloud(tmp_path, hosts=("host1",), overrides={
        ("scheduler", "host_state_max_age"): 0.0,
        ("DEFAULT", "allow_resize_to_same_host"): True})
    try:
        server = cloud.boot("here", flavor="1")
        host = manager(cloud, "host1")
        died = die(monkeypatch, host.driver, "finish_migration", after=True)
        assert act(cloud, server["id"], {"resize": {"flavorRef": "3"}}).status_code == 202
        assert died.wait(10)
        monkeypatch.undo()
        assert node_hosts(cloud) == {"host1": 3}

        host.init_host()

        shown = cloud.wait_for(server["id"], "ACTIVE")
        assert host_of(shown) == "host1" and shown["flavor"]["id"] == "1"
        assert node_hosts(cloud) == {"host1": 1}
        assert migration_of(cloud, server["id"])["status"] == "error"
        assert host.driver.get_info({"uuid": server["id"]}).state == power_state.RUNNING
        assert not host.driver._resize_sources
    finally:
        cloud.close()
