"""The compute manager's power state sync (Nova's _sync_power_states), on the fake driver."""
from __future__ import annotations

import threading

from stratus.compute import power_state


def manager_of(cloud):
    return cloud.computes["host1"].manager


def settle(manager, server_id):
    """Wait for the operation that just showed its final status to let go of
    the instance (the sync skips instances being worked on)."""
    with manager._instance_lock(server_id):
        pass


def boot(cloud, name):
    server = cloud.boot(name)
    settle(manager_of(cloud), server["id"])
    return server


def shown(cloud, server_id):
    server = cloud.compute("GET", f"/servers/{server_id}").get_json()["server"]
    return server["status"], server["OS-EXT-STS:power_state"]


def test_a_guest_that_shut_itself_down_becomes_shutoff(cloud):
    server = boot(cloud, "quitter")
    manager = manager_of(cloud)
    manager.driver.set_power_state(server["id"], power_state.SHUTDOWN)
    manager.sync_power_states()
    assert shown(cloud, server["id"]) == ("SHUTOFF", power_state.SHUTDOWN)
    # and it can be started again through the API
    resp = cloud.compute("POST", f"/servers/{server['id']}/action", {"os-start": None})
    assert resp.status_code == 202
    cloud.wait_for(server["id"], "ACTIVE")


def test_a_crashed_guest_becomes_shutoff(cloud):
    server = boot(cloud, "crasher")
    manager_of(cloud).driver.set_power_state(server["id"], power_state.CRASHED)
    manager_of(cloud).sync_power_states()
    assert shown(cloud, server["id"]) == ("SHUTOFF", power_state.CRASHED)


def test_a_stopped_guest_that_runs_is_powered_off(cloud):
    server = boot(cloud, "zombie")
    cloud.compute("POST", f"/servers/{server['id']}/action", {"os-stop": None})
    cloud.wait_for(server["id"], "SHUTOFF")
    manager = manager_of(cloud)
    settle(manager, server["id"])
    manager.driver.set_power_state(server["id"], power_state.RUNNING)
    manager.sync_power_states()
    assert manager.driver.get_info({"uuid": server["id"]}).state == power_state.SHUTDOWN
    assert shown(cloud, server["id"]) == ("SHUTOFF", power_state.SHUTDOWN)


def test_paused_power_state_is_recorded_and_a_missing_guest_is_nostate(cloud):
    paused, missing = boot(cloud, "p"), boot(cloud, "m")
    manager = manager_of(cloud)
    manager.driver.set_power_state(paused["id"], power_state.PAUSED)
    del manager.driver._guests[missing["id"]]
    manager.sync_power_states()
    assert shown(cloud, paused["id"]) == ("ACTIVE", power_state.PAUSED)
    assert shown(cloud, missing["id"]) == ("ACTIVE", power_state.NOSTATE)


def test_instances_being_worked_on_are_left_alone(cloud):
    server = boot(cloud, "busy")
    manager = manager_of(cloud)
    manager.driver.set_power_state(server["id"], power_state.SHUTDOWN)
    with manager._locks_guard:
        lock = manager._locks.setdefault(server["id"], threading.Lock())
    with lock:  # an operation in flight
        manager.sync_power_states()
    assert shown(cloud, server["id"]) == ("ACTIVE", power_state.RUNNING)


def test_sync_is_a_periodic_task(cloud):
    names = [getattr(fn, "__name__", "") for _i, fn in manager_of(cloud).periodic_tasks()]
    assert "sync_power_states" in names


def test_init_host_syncs_or_resumes_guests_found_off(tmp_path):
    from tests.cloud import InProcessCloud

    for resume, expected in ((False, ("SHUTOFF", power_state.SHUTDOWN)),
                             (True, ("ACTIVE", power_state.RUNNING))):
        cloud = InProcessCloud(tmp_path / str(resume), overrides={
            ("compute", "resume_guests_state_on_host_boot"): resume})
        try:
            server = cloud.boot("rebooted-host")
            manager = manager_of(cloud)
            manager.driver.set_power_state(server["id"], power_state.SHUTDOWN)
            manager.init_host()  # the compute service starts again
            assert shown(cloud, server["id"]) == expected
        finally:
            cloud.close()
