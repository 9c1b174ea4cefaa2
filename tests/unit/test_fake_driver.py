"""The fake virt driver: state machine, resources, delay, failures, loading."""
from __future__ import annotations

import inspect
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from stratus import exception
from stratus.compute import power_state
from stratus.compute.virt import driver, fake, load_driver
from stratus.context import get_admin_context

CTX = get_admin_context()
HOST = "compute-1"


def make_instance(n: int = 1, **overrides: Any) -> dict[str, Any]:
    instance = {
        "uuid": f"00000000-0000-4000-8000-{n:012d}",
        "name": f"instance-{n:08x}",
        "display_name": f"vm-{n}",
        "vcpus": 2,
        "memory_mb": 2048,
        "root_gb": 20,
        "ephemeral_gb": 0,
        "swap": 0,
        "flavor": {"name": "m1.small", "vcpus": 2, "memory_mb": 2048, "root_gb": 20,
                   "ephemeral_gb": 0, "swap": 0},
        "image_ref": "11111111-2222-3333-4444-555555555555",
        "user_data": None,
        "key_data": None,
        "metadata": {},
    }
    instance.update(overrides)
    return instance


IMAGE_META = {"id": "11111111-2222-3333-4444-555555555555", "name": "cirros",
              "disk_format": "qcow2", "container_format": "bare", "properties": {}}
NETWORK_INFO = [{"id": "vif-1", "address": "fa:16:3e:aa:bb:cc", "type": "bridge",
                 "network": {"id": "net-1", "label": "private",
                             "subnets": [{"cidr": "10.0.0.0/24",
                                          "ips": [{"address": "10.0.0.5"}]}]}}]


@pytest.fixture
def drv() -> fake.FakeDriver:
    d = fake.FakeDriver(HOST, {})
    d.init_host(HOST)
    return d


def spawn(d: fake.FakeDriver, instance: dict[str, Any], **kwargs: Any) -> None:
    d.spawn(CTX, instance, IMAGE_META, [], None, **kwargs)


def state(d: fake.FakeDriver, instance: dict[str, Any]) -> int:
    return d.get_info(instance).state


# -- interface ---------------------------------------------------------------


def test_power_states_are_novas() -> None:
    assert (power_state.NOSTATE, power_state.RUNNING, power_state.PAUSED,
            power_state.SHUTDOWN, power_state.CRASHED, power_state.SUSPENDED) == (0, 1, 3, 4, 6, 7)
    assert power_state.STATE_MAP[power_state.SUSPENDED] == "SUSPENDED"
    assert sorted(power_state.STATE_MAP.values()) == sorted(
        ["NOSTATE", "RUNNING", "PAUSED", "SHUTDOWN", "CRASHED", "SUSPENDED"])


def test_compute_driver_is_abstract() -> None:
    with pytest.raises(TypeError):
        driver.ComputeDriver(HOST, {})  # type: ignore[abstract]


def test_fake_implements_every_operation_with_the_base_signature() -> None:
    operations = [name for name, member in vars(driver.ComputeDriver).items()
                  if inspect.isfunction(member) and not name.startswith("_")]
    assert "snapshot" in operations and "attach_volume" in operations
    for name in operations:
        if name == "instance_exists":
            continue
        assert name in vars(fake.FakeDriver), f"FakeDriver does not implement {name}"
        base = inspect.signature(getattr(driver.ComputeDriver, name))
        impl = inspect.signature(getattr(fake.FakeDriver, name))
        assert list(base.parameters) == list(impl.parameters), name
        for param in base.parameters:
            assert base.parameters[param].default == impl.parameters[param].default, name


def test_capabilities(drv: fake.FakeDriver) -> None:
    assert set(drv.capabilities) == set(driver.ComputeDriver.capabilities)
    assert drv.capabilities["supports_migrate_to_same_host"] is True


def test_init_host_checks_host() -> None:
    d = fake.FakeDriver(HOST, {})
    with pytest.raises(exception.ConfigError):
        d.init_host("other-host")
    d.init_host(HOST)
    assert d.initialized
    d.cleanup_host(HOST)
    assert not d.initialized


# -- spawn and inventory -----------------------------------------------------


def test_spawn_runs_the_guest(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    assert not drv.instance_exists(inst)
    spawn(drv, inst, network_info=NETWORK_INFO)
    info = drv.get_info(inst)
    assert info.state == power_state.RUNNING
    assert info.internal_id
    assert drv.list_instances() == [inst["uuid"]]
    assert drv.instance_exists(inst)


def test_spawn_twice_fails(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    spawn(drv, inst)
    with pytest.raises(exception.VirtDriverError):
        spawn(drv, inst)
    assert drv.list_instances() == [inst["uuid"]]


def test_unknown_instance_raises_not_found(drv: fake.FakeDriver) -> None:
    ghost = make_instance(99)
    for call in (lambda: drv.get_info(ghost), lambda: drv.pause(ghost),
                 lambda: drv.power_off(ghost), lambda: drv.power_on(CTX, ghost, None),
                 lambda: drv.reboot(CTX, ghost, None, "HARD"),
                 lambda: drv.get_console_output(CTX, ghost),
                 lambda: drv.snapshot(CTX, ghost, "img", lambda **kw: None)):
        with pytest.raises(driver.InstanceNotFoundInDriver) as err:
            call()
        assert err.value.code == 404
        assert ghost["uuid"] in str(err.value)


def test_instance_ids_are_distinct(drv: fake.FakeDriver) -> None:
    a, b = make_instance(1), make_instance(2)
    spawn(drv, a)
    spawn(drv, b)
    assert drv.get_info(a).internal_id != drv.get_info(b).internal_id
    assert sorted(drv.list_instances()) == sorted([a["uuid"], b["uuid"]])


# -- state machine -----------------------------------------------------------


def test_power_off_and_on(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    spawn(drv, inst)
    drv.power_off(inst)
    assert state(drv, inst) == power_state.SHUTDOWN
    drv.power_off(inst)  # already off: no-op
    assert state(drv, inst) == power_state.SHUTDOWN
    drv.power_on(CTX, inst, None)
    assert state(drv, inst) == power_state.RUNNING
    drv.power_on(CTX, inst, None)  # already on: no-op
    assert state(drv, inst) == power_state.RUNNING


def test_power_off_from_paused_and_suspended(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    spawn(drv, inst)
    drv.pause(inst)
    drv.power_off(inst)
    assert state(drv, inst) == power_state.SHUTDOWN
    drv.power_on(CTX, inst, None)
    drv.suspend(CTX, inst)
    drv.power_off(inst, timeout=60, retry_interval=10)
    assert state(drv, inst) == power_state.SHUTDOWN


def test_power_on_refuses_paused_or_suspended(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    spawn(drv, inst)
    drv.pause(inst)
    with pytest.raises(exception.VirtDriverError):
        drv.power_on(CTX, inst, None)
    drv.suspend(CTX, inst)
    with pytest.raises(exception.VirtDriverError):
        drv.power_on(CTX, inst, None)
    assert state(drv, inst) == power_state.SUSPENDED


def test_power_on_recovers_crashed_guest(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    spawn(drv, inst)
    drv.set_power_state(inst["uuid"], power_state.CRASHED)
    assert state(drv, inst) == power_state.CRASHED
    drv.power_on(CTX, inst, None)
    assert state(drv, inst) == power_state.RUNNING


def test_set_power_state_rejects_unknown_state(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    spawn(drv, inst)
    with pytest.raises(ValueError):
        drv.set_power_state(inst["uuid"], 5)


def test_pause_unpause(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    spawn(drv, inst)
    drv.pause(inst)
    assert state(drv, inst) == power_state.PAUSED
    with pytest.raises(exception.VirtDriverError, match="PAUSED"):
        drv.pause(inst)
    drv.unpause(inst)
    assert state(drv, inst) == power_state.RUNNING
    with pytest.raises(exception.VirtDriverError, match="RUNNING"):
        drv.unpause(inst)


def test_trigger_crash_dump(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    spawn(drv, inst)
    drv.trigger_crash_dump(inst)
    drv.pause(inst)
    drv.trigger_crash_dump(inst)  # a paused guest takes the NMI too
    assert drv._guests[inst["uuid"]].crash_dumps == 2
    assert state(drv, inst) == power_state.PAUSED  # the state is left alone
    assert "NMI received" in drv.get_console_output(CTX, inst)
    drv.power_off(inst)
    with pytest.raises(exception.VirtDriverError, match="cannot trigger a crash dump"):
        drv.trigger_crash_dump(inst)


def test_pause_only_from_running(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    spawn(drv, inst)
    drv.power_off(inst)
    with pytest.raises(exception.VirtDriverError, match="cannot pause"):
        drv.pause(inst)
    assert state(drv, inst) == power_state.SHUTDOWN


def test_suspend_resume(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    spawn(drv, inst)
    drv.suspend(CTX, inst)
    assert state(drv, inst) == power_state.SUSPENDED
    with pytest.raises(exception.VirtDriverError):
        drv.suspend(CTX, inst)
    with pytest.raises(exception.VirtDriverError):
        drv.unpause(inst)
    drv.resume(CTX, inst, None)
    assert state(drv, inst) == power_state.RUNNING
    with pytest.raises(exception.VirtDriverError):
        drv.resume(CTX, inst, None)


def test_suspend_paused_guest(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    spawn(drv, inst)
    drv.pause(inst)
    drv.suspend(CTX, inst)
    assert state(drv, inst) == power_state.SUSPENDED


def test_suspend_refuses_shutdown_guest(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    spawn(drv, inst)
    drv.power_off(inst)
    with pytest.raises(exception.VirtDriverError):
        drv.suspend(CTX, inst)


@pytest.mark.parametrize("reboot_type", ["SOFT", "HARD"])
def test_reboot_keeps_running(drv: fake.FakeDriver, reboot_type: str) -> None:
    inst = make_instance()
    spawn(drv, inst)
    drv.reboot(CTX, inst, None, reboot_type)
    assert state(drv, inst) == power_state.RUNNING


@pytest.mark.parametrize("reboot_type", ["SOFT", "HARD"])
def test_reboot_starts_a_guest_that_is_not_running(drv: fake.FakeDriver,
                                                    reboot_type: str) -> None:
    inst = make_instance()
    spawn(drv, inst)
    drv.pause(inst)
    drv.reboot(CTX, inst, None, reboot_type)
    assert state(drv, inst) == power_state.RUNNING
    drv.power_off(inst)
    drv.reboot(CTX, inst, None, reboot_type)
    assert state(drv, inst) == power_state.RUNNING


def test_reboot_rejects_unknown_type(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    spawn(drv, inst)
    with pytest.raises(ValueError):
        drv.reboot(CTX, inst, None, "MEDIUM")


# -- destroy -----------------------------------------------------------------


def test_destroy_removes_guest(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    spawn(drv, inst)
    drv.destroy(CTX, inst)
    assert drv.list_instances() == []
    assert not drv.instance_exists(inst)
    with pytest.raises(driver.InstanceNotFoundInDriver):
        drv.get_info(inst)


def test_destroy_is_idempotent(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    drv.destroy(CTX, inst)  # never spawned
    spawn(drv, inst)
    drv.destroy(CTX, inst)
    drv.destroy(CTX, inst, destroy_disks=False)
    assert drv.list_instances() == []


def test_destroy_in_any_state(drv: fake.FakeDriver) -> None:
    preparations: list[Callable[[dict[str, Any]], None]] = [
        drv.pause, drv.power_off, lambda i: drv.suspend(CTX, i)]
    for n, prepare in enumerate(preparations, start=1):
        inst = make_instance(n)
        spawn(drv, inst)
        prepare(inst)
        drv.destroy(CTX, inst)
    assert drv.list_instances() == []


def test_respawn_after_destroy(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    spawn(drv, inst)
    drv.destroy(CTX, inst)
    spawn(drv, inst)
    assert state(drv, inst) == power_state.RUNNING


# -- resources ---------------------------------------------------------------


def test_default_resources(drv: fake.FakeDriver) -> None:
    assert drv.get_available_nodes() == [HOST]
    res = drv.get_available_resource(HOST)
    assert (res.vcpus, res.memory_mb, res.local_gb) == (64, 131072, 2048)
    assert (res.vcpus_used, res.memory_mb_used, res.local_gb_used, res.running_vms) == (0, 0, 0, 0)
    assert res.hypervisor_type == "fake"
    assert res.hypervisor_hostname == HOST
    assert isinstance(res.hypervisor_version, int)
    assert json.loads(res.cpu_info)["topology"]["cores"] == 64
    assert res.to_dict()["vcpus"] == 64


def test_configured_resources() -> None:
    d = fake.FakeDriver(HOST, {"vcpus": 8, "memory_mb": 16384, "local_gb": 100,
                               "hypervisor_hostname": "node-a", "host_ip": "192.0.2.10"})
    assert d.get_available_nodes() == ["node-a"]
    res = d.get_available_resource("node-a")
    assert (res.vcpus, res.memory_mb, res.local_gb) == (8, 16384, 100)
    assert res.hypervisor_hostname == "node-a"
    assert res.host_ip == "192.0.2.10"


def test_unknown_node(drv: fake.FakeDriver) -> None:
    with pytest.raises(exception.VirtDriverError):
        drv.get_available_resource("elsewhere")


def test_usage_follows_guests(drv: fake.FakeDriver) -> None:
    small = make_instance(1)
    big = make_instance(2, vcpus=8, memory_mb=16384, root_gb=80, ephemeral_gb=10, swap=1536)
    spawn(drv, small)
    spawn(drv, big)
    res = drv.get_available_resource(HOST)
    assert res.vcpus_used == 10
    assert res.memory_mb_used == 18432
    assert res.local_gb_used == 20 + 80 + 10 + 2  # swap 1536 MB rounds up to 2 GB
    assert res.running_vms == 2
    drv.power_off(big)  # a stopped guest still holds its resources
    assert drv.get_available_resource(HOST).vcpus_used == 10
    drv.destroy(CTX, big)
    res = drv.get_available_resource(HOST)
    assert (res.vcpus_used, res.memory_mb_used, res.local_gb_used, res.running_vms) == (
        2, 2048, 20, 1)


@pytest.mark.parametrize("options", [
    {"vcpus": 0}, {"memory_mb": -1}, {"local_gb": "lots"}, {"vcpus": True},
    {"delay": -0.5}, {"delay": "slow"}, {"fail_spawn_pattern": "("}, {"no_such_option": 1},
])
def test_bad_options(options: dict[str, Any]) -> None:
    with pytest.raises(exception.ConfigError):
        fake.FakeDriver(HOST, options)


# -- delay and concurrency ---------------------------------------------------


def test_delay_applies_to_operations() -> None:
    d = fake.FakeDriver(HOST, {"delay": 0.05})
    inst = make_instance()
    operations: list[Callable[[], None]] = [
        lambda: spawn(d, inst),
        lambda: d.pause(inst),
        lambda: d.unpause(inst),
        lambda: d.reboot(CTX, inst, None, "SOFT"),
        lambda: d.power_off(inst),
        lambda: d.power_on(CTX, inst, None),
        lambda: d.destroy(CTX, inst),
    ]
    for operation in operations:
        started = time.monotonic()
        operation()
        assert time.monotonic() - started >= 0.05


def test_delay_does_not_serialise_guests() -> None:
    d = fake.FakeDriver(HOST, {"delay": 0.3})
    instances = [make_instance(n) for n in range(1, 11)]
    errors: list[BaseException] = []

    def build(inst: dict[str, Any]) -> None:
        try:
            spawn(d, inst)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=build, args=(inst,)) for inst in instances]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert not errors
    assert elapsed < 0.3 * len(instances) / 2
    assert sorted(d.list_instances()) == sorted(i["uuid"] for i in instances)
    assert len({d.get_info(i).internal_id for i in instances}) == len(instances)


def test_concurrent_spawns_of_one_uuid_create_one_guest() -> None:
    d = fake.FakeDriver(HOST, {"delay": 0.05})
    inst = make_instance()
    outcomes: list[str] = []
    lock = threading.Lock()

    def build() -> None:
        try:
            spawn(d, inst)
            result = "ok"
        except exception.VirtDriverError:
            result = "exists"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=build) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["exists"] * 7 + ["ok"]
    assert d.get_available_resource(HOST).vcpus_used == 2


# -- failure hook ------------------------------------------------------------


def test_fail_spawn_pattern() -> None:
    d = fake.FakeDriver(HOST, {"fail_spawn_pattern": "^fail-"})
    doomed = make_instance(1, display_name="fail-me")
    healthy = make_instance(2, display_name="ok-fail-not-at-start")
    with pytest.raises(exception.VirtDriverError, match="simulated spawn failure"):
        spawn(d, doomed)
    assert not d.instance_exists(doomed)
    assert d.get_available_resource(HOST).vcpus_used == 0
    spawn(d, healthy)
    assert state(d, healthy) == power_state.RUNNING
    d.destroy(CTX, doomed)  # cleanup after a failed spawn is harmless


def test_fail_spawn_pattern_via_load_driver() -> None:
    d = load_driver("fake", HOST, {"fail_spawn_pattern": "boom"})
    with pytest.raises(exception.VirtDriverError):
        spawn(d, make_instance(display_name="big-boom-box"))  # type: ignore[arg-type]


# -- console -----------------------------------------------------------------


def test_console_output(drv: fake.FakeDriver) -> None:
    inst = make_instance(display_name="web-frontend", key_data="ssh-ed25519 AAAA",
                         user_data="I2Nsb3VkLWNvbmZpZwo=")
    drv.spawn(CTX, inst, IMAGE_META, [("/etc/motd", b"hello")], "secret",
              network_info=NETWORK_INFO)
    log = drv.get_console_output(CTX, inst)
    assert "Linux version" in log
    assert "Set hostname to <web-frontend>" in log
    assert "web-frontend login:" in log
    assert "fa:16:3e:aa:bb:cc 10.0.0.5" in log
    assert "/etc/motd" in log
    assert "secret" not in log
    assert log.count("Linux version") == 1


def test_console_records_reboots_and_survives_power_off(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    spawn(drv, inst)
    drv.reboot(CTX, inst, None, "SOFT")
    drv.power_off(inst, timeout=30)
    log = drv.get_console_output(CTX, inst)
    assert log.count("Linux version") == 2
    assert "Restarting system" in log
    assert log.rstrip().endswith("reboot: Power down")
    drv.power_on(CTX, inst, None)
    assert drv.get_console_output(CTX, inst).count("Linux version") == 3


def test_console_is_capped(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    spawn(drv, inst)
    for _ in range(100):
        drv.reboot(CTX, inst, None, "HARD")
    lines = drv.get_console_output(CTX, inst).splitlines()
    assert len(lines) == fake.CONSOLE_MAX_LINES
    assert lines[-1].endswith("login: ")


# -- snapshot ----------------------------------------------------------------


def test_snapshot_updates_task_state_and_returns_image(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    spawn(drv, inst)
    calls: list[dict[str, Any]] = []
    image = drv.snapshot(CTX, inst, "snap-1", lambda **kwargs: calls.append(kwargs))
    assert calls == [
        {"task_state": "image_pending_upload"},
        {"task_state": "image_uploading", "expected_state": "image_pending_upload"},
    ]
    assert (image.disk_format, image.container_format) == ("raw", "bare")
    data = b"".join(image.chunks)
    assert image.size == len(data)
    assert data.startswith(fake.SNAPSHOT_MAGIC)
    description = json.loads(data[len(fake.SNAPSHOT_MAGIC):])
    assert description == {"instance_uuid": inst["uuid"], "image_id": "snap-1",
                           "base_image_ref": IMAGE_META["id"], "root_gb": 20}
    assert state(drv, inst) == power_state.RUNNING


def test_snapshot_of_stopped_guest(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    spawn(drv, inst)
    drv.power_off(inst)
    drv.snapshot(CTX, inst, "snap-2", lambda **kwargs: None)
    assert state(drv, inst) == power_state.SHUTDOWN


def test_snapshot_aborts_when_task_state_update_fails(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    spawn(drv, inst)

    def update(**kwargs: Any) -> None:
        raise exception.UnexpectedTaskStateError(instance_uuid=inst["uuid"],
                                                 expected="image_snapshot", actual="deleting")

    with pytest.raises(exception.UnexpectedTaskStateError):
        drv.snapshot(CTX, inst, "snap-3", update)
    assert state(drv, inst) == power_state.RUNNING


# -- resize / cold migration ---------------------------------------------------


BIG_FLAVOR = {"name": "m1.large", "vcpus": 4, "memory_mb": 8192, "root_gb": 40,
              "ephemeral_gb": 0, "swap": 0}


def resized(instance: dict[str, Any], flavor: dict[str, Any]) -> dict[str, Any]:
    return {**instance, "flavor": flavor, "vcpus": flavor["vcpus"],
            "memory_mb": flavor["memory_mb"], "root_gb": flavor["root_gb"]}


MIGRATION = {"uuid": "mig-1", "source_compute": "compute-1", "dest_compute": "compute-2",
             "migration_type": "resize", "status": "migrating"}


def test_resize_to_another_host_and_confirm() -> None:
    source = load_driver("fake", "compute-1", {})
    dest = load_driver("fake", "compute-2", {})
    inst = make_instance()
    spawn(source, inst)  # type: ignore[arg-type]
    disk_info = source.migrate_disk_and_power_off(CTX, inst, "compute-2", BIG_FLAVOR, None)
    assert json.loads(disk_info)
    assert not source.instance_exists(inst)
    assert source.get_available_resource("compute-1").local_gb_used == 20  # disks kept
    new = resized(inst, BIG_FLAVOR)
    dest.finish_migration(CTX, MIGRATION, new, disk_info, None, IMAGE_META, True)
    assert dest.get_info(new).state == power_state.RUNNING
    res = dest.get_available_resource("compute-2")
    assert (res.vcpus_used, res.memory_mb_used, res.local_gb_used) == (4, 8192, 40)
    source.confirm_migration(CTX, MIGRATION, inst, None)
    source.confirm_migration(CTX, MIGRATION, inst, None)  # idempotent
    assert source.get_available_resource("compute-1").local_gb_used == 0


def test_resize_on_same_host_and_revert(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    spawn(drv, inst)
    disk_info = drv.migrate_disk_and_power_off(CTX, inst, HOST, BIG_FLAVOR, None)
    new = resized(inst, BIG_FLAVOR)
    drv.finish_migration(CTX, MIGRATION, new, disk_info, None, IMAGE_META, True,
                         power_on=False)
    assert state(drv, new) == power_state.SHUTDOWN
    assert drv.get_available_resource(HOST).local_gb_used == 40 + 20
    # revert: the destination copy is destroyed keeping shared disks, the source restored
    drv.destroy(CTX, new, destroy_disks=False)
    drv.finish_revert_migration(CTX, inst, None, MIGRATION)
    assert state(drv, inst) == power_state.RUNNING
    res = drv.get_available_resource(HOST)
    assert (res.vcpus_used, res.memory_mb_used, res.local_gb_used) == (2, 2048, 20)


def test_revert_without_kept_disks_fails(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    spawn(drv, inst)
    with pytest.raises(driver.InstanceNotFoundInDriver):
        drv.finish_revert_migration(CTX, inst, None, MIGRATION)


def test_resize_down_disk_refused(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    spawn(drv, inst)
    tiny = {**BIG_FLAVOR, "name": "m1.tiny", "root_gb": 1}
    with pytest.raises(exception.VirtDriverError, match="resize disk down"):
        drv.migrate_disk_and_power_off(CTX, inst, HOST, tiny, None)
    assert state(drv, inst) == power_state.RUNNING


def test_finish_migration_requires_disk_info(drv: fake.FakeDriver) -> None:
    with pytest.raises(exception.VirtDriverError):
        drv.finish_migration(CTX, MIGRATION, make_instance(), "[]", None, IMAGE_META, False)


def test_destroy_during_resize_drops_kept_disks(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    spawn(drv, inst)
    drv.migrate_disk_and_power_off(CTX, inst, "compute-2", BIG_FLAVOR, None)
    drv.destroy(CTX, inst)
    assert drv.get_available_resource(HOST).local_gb_used == 0
    with pytest.raises(driver.InstanceNotFoundInDriver):
        drv.finish_revert_migration(CTX, inst, None, MIGRATION)


# -- volumes -----------------------------------------------------------------

CONNECTION = {"driver_volume_type": "iscsi", "serial": "vol-1", "data": {"volume_id": "vol-1"}}


def test_attach_and_detach_volume(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    spawn(drv, inst)
    drv.attach_volume(CTX, CONNECTION, inst, "/dev/vdb")
    with pytest.raises(exception.VirtDriverError):
        drv.attach_volume(CTX, {**CONNECTION, "serial": "vol-2"}, inst, "/dev/vdb")
    drv.attach_volume(CTX, {**CONNECTION, "serial": "vol-2"}, inst, "/dev/vdc")
    drv.detach_volume(CTX, CONNECTION, inst, "/dev/vdb")
    with pytest.raises(driver.DeviceNotFoundInDriver) as err:
        drv.detach_volume(CTX, CONNECTION, inst, "/dev/vdb")
    assert err.value.code == 404


def test_volumes_from_block_device_info_can_be_detached(drv: fake.FakeDriver) -> None:
    inst = make_instance()
    bdi = {"root_device_name": "/dev/vda", "ephemerals": [], "swap": None,
           "block_device_mapping": [{"connection_info": CONNECTION, "mount_device": "/dev/vdb",
                                     "delete_on_termination": False}]}
    spawn(drv, inst, block_device_info=bdi)
    with pytest.raises(exception.VirtDriverError):
        drv.attach_volume(CTX, CONNECTION, inst, "/dev/vdb")
    drv.detach_volume(CTX, CONNECTION, inst, "/dev/vdb")


def test_attach_to_unknown_instance(drv: fake.FakeDriver) -> None:
    with pytest.raises(driver.InstanceNotFoundInDriver):
        drv.attach_volume(CTX, CONNECTION, make_instance(5), "/dev/vdb")


# -- load_driver -------------------------------------------------------------


def test_load_driver_by_short_name() -> None:
    d = load_driver("fake", HOST, {"vcpus": 4})
    assert isinstance(d, fake.FakeDriver)
    assert d.host == HOST
    assert d.get_available_resource(HOST).vcpus == 4


def test_load_driver_by_class_path() -> None:
    d = load_driver("stratus.compute.virt.fake:FakeDriver", HOST, {})
    assert isinstance(d, fake.FakeDriver)


@pytest.mark.parametrize("name", [
    "vmware",                                      # unknown short name
    "stratus.compute.virt.fake",                   # no class
    "stratus.compute.virt.nonexistent:Driver",     # module missing
    "stratus.compute.virt.fake:NoSuchDriver",      # class missing
    "stratus.compute.virt.driver:InstanceInfo",    # not a ComputeDriver
])
def test_load_driver_rejects_bad_names(name: str) -> None:
    with pytest.raises(exception.ConfigError):
        load_driver(name, HOST, {})


def test_load_driver_validates_options() -> None:
    with pytest.raises(exception.ConfigError):
        load_driver("fake", HOST, {"vcpus": -4})
