"""LibvirtDriver against libvirt's in-process test hypervisor (``test:///default``):
the lifecycle, power states, cleanup after a failed spawn, the console log and the
image cache pass, without QEMU guests (the functional test boots real ones)."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid

import pytest

libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed")
if not shutil.which("qemu-img"):
    pytest.skip("qemu-img not installed (scripts/libvirt-setup)", allow_module_level=True)

from stratus import exception  # noqa: E402
from stratus.compute import power_state  # noqa: E402
from stratus.compute.virt.driver import InstanceNotFoundInDriver  # noqa: E402
from stratus.compute.virt.libvirt import config, configdrive, driver as lv  # noqa: E402

URI = "test:///default"


class Images:
    def __init__(self, tmp_path) -> None:
        qcow = tmp_path / "src.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(qcow), "64M"],
                       check=True)
        big = tmp_path / "big.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(big), "2G"],
                       check=True)
        self.data = {"kernel": b"KERNEL" * 100, "ramdisk": b"RAMDISK" * 100,
                     "disk": qcow.read_bytes(), "big": big.read_bytes(),
                     "plain": qcow.read_bytes()}
        self.formats = {"kernel": "aki", "ramdisk": "ari", "disk": "qcow2", "big": "qcow2",
                        "plain": "qcow2"}

    def get(self, image_id):
        data = self.data[image_id]
        record = {"id": image_id, "status": "active", "disk_format": self.formats[image_id],
                  "checksum": hashlib.md5(data).hexdigest(), "size": len(data)}
        if image_id == "disk":
            record.update(kernel_id="kernel", ramdisk_id="ramdisk",
                          os_command_line="console=ttyS0 quiet")
        return record

    def download(self, image_id):
        yield self.data[image_id]


def running_driver(tmp_path, host, instances):
    """A driver on ``test:///default`` with its own instances path; afterwards
    its guests are destroyed."""
    d = lv.LibvirtDriver(host, {
        "virt_type": "qemu", "connection_uri": URI,
        "instances_path": str(tmp_path / instances), "image_client": Images(tmp_path),
        "wait_soft_reboot_seconds": 5})
    d.init_host(host)
    yield d
    for uuid_ in d.list_instances():
        d.destroy(None, {"uuid": uuid_})
    d.cleanup_host(host)


@pytest.fixture
def drv(tmp_path):
    yield from running_driver(tmp_path, "host1", "instances")


def instance(**overrides):
    values = {"uuid": str(uuid.uuid4()), "name": "instance-0000000a", "display_name": "vm",
              "hostname": "vm", "vcpus": 1, "memory_mb": 128, "root_gb": 1, "ephemeral_gb": 0,
              "swap": 0, "flavor": {"name": "m1.nano"}, "config_drive": "True",
              "user_data": base64.b64encode(b"hello").decode(), "image_ref": "disk"}
    values.update(overrides)
    return values


def state(drv, inst):
    return drv.get_info(inst).state


def test_spawn_makes_the_guest_and_its_files(drv):
    inst = instance()
    drv.spawn(None, inst, {"id": "disk"}, [], "pw")
    assert state(drv, inst) == power_state.RUNNING
    assert drv.list_instances() == [inst["uuid"]]  # the test driver's own "test" is not ours
    inst_dir = os.path.join(drv.instances_path, inst["uuid"])
    assert sorted(os.listdir(inst_dir)) == ["bases.json", "disk", "disk.config", "kernel",
                                            "ramdisk"]
    _label, files = configdrive.read_iso(os.path.join(inst_dir, "disk.config"))
    assert json.loads(files["openstack/latest/meta_data.json"])["uuid"] == inst["uuid"]
    assert files["openstack/latest/user_data"] == b"hello"
    dom = drv._lookup(inst["uuid"])
    assert dom.name() == f"instance-0000000a-{inst['uuid'][:8]}"
    xml = dom.XMLDesc(0)
    assert config.read_owner(xml)["instances_path"] == drv.instances_path
    assert "<cmdline>console=ttyS0 quiet</cmdline>" in xml
    assert len(json.load(open(os.path.join(inst_dir, "bases.json")))) == 3


def test_ephemeral_swap_and_no_config_drive(drv):
    inst = instance(ephemeral_gb=1, swap=32, config_drive="", image_ref="plain")
    drv.spawn(None, inst, {"id": "plain"}, [], None)
    files = sorted(os.listdir(os.path.join(drv.instances_path, inst["uuid"])))
    assert files == ["bases.json", "disk", "disk.eph0", "disk.swap"]
    targets = [d for d in config.disk_paths(drv._lookup(inst["uuid"]).XMLDesc(0))]
    assert [os.path.basename(p) for p in targets] == ["disk", "disk.eph0", "disk.swap"]


def test_force_config_drive(drv):
    drv.force_config_drive = True
    inst = instance(config_drive="", image_ref="plain")
    drv.spawn(None, inst, {"id": "plain"}, [], None)
    assert "disk.config" in os.listdir(os.path.join(drv.instances_path, inst["uuid"]))


def test_spawning_twice_is_refused(drv):
    inst = instance()
    drv.spawn(None, inst, {"id": "disk"}, [], None)
    with pytest.raises(exception.VirtDriverError, match="already exists"):
        drv.spawn(None, inst, {"id": "disk"}, [], None)
    assert state(drv, inst) == power_state.RUNNING


def test_image_larger_than_the_flavor_fails_and_leaves_nothing(drv):
    inst = instance(image_ref="big")
    with pytest.raises(exception.Invalid, match="too small"):
        drv.spawn(None, inst, {"id": "big"}, [], None)
    assert not drv.instance_exists(inst)
    assert not os.path.exists(os.path.join(drv.instances_path, inst["uuid"]))


def test_a_kernel_is_not_a_bootable_disk(drv):
    with pytest.raises(exception.Invalid, match="kernel"):
        drv.spawn(None, instance(), {"id": "kernel"}, [], None)


def test_a_start_failure_removes_the_domain_and_the_files(drv, monkeypatch):
    inst = instance()
    conn = drv._connection()
    real_define = conn.defineXML

    def define(xml):
        dom = real_define(xml)

        class Failing:
            def __getattr__(self, name):
                return getattr(dom, name)

            def create(self):
                raise libvirt.libvirtError("simulated start failure")
        return Failing()

    monkeypatch.setattr(conn, "defineXML", define)
    with pytest.raises(exception.VirtDriverError, match="starting the guest"):
        drv.spawn(None, inst, {"id": "disk"}, [], None)
    monkeypatch.undo()
    assert not drv.instance_exists(inst)
    assert not os.path.exists(os.path.join(drv.instances_path, inst["uuid"]))


def test_power_transitions(drv):
    inst = instance()
    drv.spawn(None, inst, {"id": "disk"}, [], None)
    drv.pause(inst)
    assert state(drv, inst) == power_state.PAUSED
    with pytest.raises(exception.VirtDriverError, match="cannot pause"):
        drv.pause(inst)
    drv.unpause(inst)
    drv.suspend(None, inst)
    assert state(drv, inst) == power_state.SUSPENDED
    with pytest.raises(exception.VirtDriverError, match="cannot power on"):
        drv.power_on(None, inst, None)
    drv.resume(None, inst, None)
    assert state(drv, inst) == power_state.RUNNING
    drv.power_off(inst)
    assert state(drv, inst) == power_state.SHUTDOWN
    drv.power_off(inst)  # no-op
    drv.power_on(None, inst, None)
    assert state(drv, inst) == power_state.RUNNING
    drv.power_on(None, inst, None)  # no-op
    drv.power_off(inst, timeout=5)  # clean: ACPI first
    assert state(drv, inst) == power_state.SHUTDOWN


def test_reboots(drv):
    inst = instance()
    drv.spawn(None, inst, {"id": "disk"}, [], None)
    first_id = drv.get_info(inst).internal_id
    drv.reboot(None, inst, None, "HARD")
    assert state(drv, inst) == power_state.RUNNING
    assert drv.get_info(inst).internal_id != first_id  # a new QEMU process
    drv.reboot(None, inst, None, "SOFT")
    assert state(drv, inst) == power_state.RUNNING
    drv.pause(inst)
    drv.reboot(None, inst, None, "SOFT")  # not running: falls back to hard
    assert state(drv, inst) == power_state.RUNNING
    with pytest.raises(ValueError):
        drv.reboot(None, inst, None, "WARM")


def test_soft_reboot_falls_back_to_hard_when_the_guest_ignores_acpi(drv, monkeypatch):
    inst = instance()
    drv.spawn(None, inst, {"id": "disk"}, [], None)
    drv.soft_reboot_wait = 0.3
    monkeypatch.setattr(libvirt.virDomain, "shutdown", lambda self: 0)  # ignored
    started = time.monotonic()
    drv.reboot(None, inst, None, "SOFT")
    assert 0.3 <= time.monotonic() - started < 5
    assert state(drv, inst) == power_state.RUNNING


def test_destroy_removes_everything_and_is_idempotent(drv):
    inst = instance()
    drv.spawn(None, inst, {"id": "disk"}, [], None)
    drv.suspend(None, inst)  # a managed save image too
    drv.destroy(None, inst)
    assert not drv.instance_exists(inst)
    assert not os.path.exists(os.path.join(drv.instances_path, inst["uuid"]))
    drv.destroy(None, inst)
    with pytest.raises(InstanceNotFoundInDriver):
        drv.get_info(inst)


def test_destroy_can_keep_the_disks(drv):
    inst = instance()
    drv.spawn(None, inst, {"id": "disk"}, [], None)
    drv.destroy(None, inst, destroy_disks=False)
    assert not drv.instance_exists(inst)
    assert os.path.exists(os.path.join(drv.instances_path, inst["uuid"], "disk"))


def test_console_output_is_the_log_tail(drv):
    inst = instance()
    drv.spawn(None, inst, {"id": "disk"}, [], None)
    assert drv.get_console_output(None, inst) == ""  # nothing written yet
    log = os.path.join(drv.instances_path, inst["uuid"], "console.log")
    with open(log, "wb") as f:
        f.write(b"early line\r\n" + b"x" * lv.MAX_CONSOLE_BYTES + b"\r\nlast line\r\n")
    output = drv.get_console_output(None, inst)
    assert output.endswith("last line\n") and "early line" not in output
    assert len(output) <= lv.MAX_CONSOLE_BYTES
    with pytest.raises(InstanceNotFoundInDriver):
        drv.get_console_output(None, instance())


def test_available_resource_counts_our_guests(drv):
    inst = instance()
    drv.spawn(None, inst, {"id": "disk"}, [], None)
    res = drv.get_available_resource("host1")
    assert res.hypervisor_type == "QEMU" and res.hypervisor_hostname == "host1"
    assert res.running_vms == 1 and res.vcpus_used == 1 and res.memory_mb_used == 128
    assert res.vcpus > 0 and res.memory_mb > 0 and res.local_gb > 0
    assert drv.get_available_nodes() == ["host1"]
    with pytest.raises(exception.VirtDriverError):
        drv.get_available_resource("other")


def test_image_cache_pass_keeps_what_guests_use(drv):
    used, gone = instance(), instance(image_ref="plain", config_drive="")
    drv.spawn(None, used, {"id": "disk"}, [], None)
    drv.spawn(None, gone, {"id": "plain"}, [], None)
    drv.destroy(None, gone)
    drv.image_cache_max_age = 0
    before = set(os.listdir(drv.images_path))
    drv.manage_image_cache(None, [used])
    after = set(os.listdir(drv.images_path))
    # "plain" has the same data as "disk" (one file, in use): nothing to remove.
    assert after == before and len(after) == 3
    drv.destroy(None, used)
    drv.manage_image_cache(None, [])
    assert os.listdir(drv.images_path) == []


def test_bad_options_are_config_errors(tmp_path):
    with pytest.raises(exception.ConfigError, match="virt_type"):
        lv.LibvirtDriver("h", {"virt_type": "xen", "instances_path": str(tmp_path)})
    with pytest.raises(exception.ConfigError, match="unknown"):
        lv.LibvirtDriver("h", {"instances_path": str(tmp_path), "colour": "blue"})
    with pytest.raises(exception.ConfigError, match="instances_path"):
        lv.LibvirtDriver("h", {})
    d = lv.LibvirtDriver("h", {"connection_uri": "qemu+unix:///system?socket=/nonexistent",
                               "virt_type": "qemu", "instances_path": str(tmp_path)})
    with pytest.raises(exception.VirtDriverError, match="cannot connect"):
        d.init_host("h")


@pytest.mark.parametrize("start_state", ["running", "paused", "stopped"])
def test_snapshot_flattens_the_root_disk_and_restores_the_guest(drv, start_state):
    from stratus.compute.virt.libvirt import disk

    inst = instance()
    drv.spawn(None, inst, {"id": "disk"}, [], None)
    if start_state == "paused":
        drv.pause(inst)
    elif start_state == "stopped":
        drv.power_off(inst)
    before = state(drv, inst)
    moves = []

    def update_task_state(*, task_state, expected_state=None):
        moves.append((task_state, expected_state))

    snap = drv.snapshot(None, inst, "img-1", update_task_state)
    assert moves == [("image_pending_upload", None), ("image_uploading", "image_pending_upload")]
    assert (snap.disk_format, snap.container_format) == ("qcow2", "bare")
    assert state(drv, inst) == before
    path = os.path.join(drv.instances_path, "_snapshots", "img-1.qcow2")
    info = disk.info(path)
    assert info["format"] == "qcow2" and "backing-filename" not in info  # flattened
    assert info["virtual-size"] == disk.GiB
    data = b"".join(snap.chunks)
    assert len(data) == snap.size and not os.path.exists(path)  # removed once read


def test_rescue_boots_the_rescue_disk_with_the_root_disk_second(drv):
    inst = instance()
    drv.spawn(None, inst, {"id": "disk"}, [], None)
    before = drv._lookup(inst["uuid"]).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    drv.rescue(None, inst, None, {"id": "disk"}, "rescue-pw")
    assert state(drv, inst) == power_state.RUNNING
    inst_dir = os.path.join(drv.instances_path, inst["uuid"])
    paths = config.disk_paths(drv._lookup(inst["uuid"]).XMLDesc(0))
    assert [os.path.basename(p) for p in paths] == ["disk.rescue", "disk",
                                                    "disk.config.rescue"]
    _label, files = configdrive.read_iso(os.path.join(inst_dir, "disk.config.rescue"))
    assert json.loads(files["openstack/latest/meta_data.json"])["admin_pass"] == "rescue-pw"
    with pytest.raises(exception.VirtDriverError, match="already rescued"):
        drv.rescue(None, inst, None, {"id": "disk"}, None)
    drv.unrescue(None, inst)
    assert state(drv, inst) == power_state.RUNNING
    assert drv._lookup(inst["uuid"]).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) == before
    assert sorted(os.listdir(inst_dir)) == ["bases.json", "disk", "disk.config", "kernel",
                                            "ramdisk"]
    with pytest.raises(exception.VirtDriverError, match="not rescued"):
        drv.unrescue(None, inst)


def test_a_failed_rescue_leaves_the_guest_as_it_was(drv):
    inst = instance()
    drv.spawn(None, inst, {"id": "disk"}, [], None)
    before = drv._lookup(inst["uuid"]).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    with pytest.raises(exception.Invalid):
        drv.rescue(None, inst, None, {"id": "kernel"}, None)
    assert drv._lookup(inst["uuid"]).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) == before
    assert "unrescue.xml" not in os.listdir(os.path.join(drv.instances_path, inst["uuid"]))
    assert state(drv, inst) == power_state.RUNNING


def test_init_host_removes_instance_dirs_without_a_guest(drv):
    inst = instance()
    drv.spawn(None, inst, {"id": "disk"}, [], None)
    stale = os.path.join(drv.instances_path, str(uuid.uuid4()))
    os.makedirs(stale)
    open(os.path.join(stale, "disk"), "w").close()
    drv.init_host("host1")
    assert not os.path.exists(stale)
    assert os.path.exists(os.path.join(drv.instances_path, inst["uuid"], "disk"))
    assert os.path.isdir(drv.images_path)


def test_hard_reboot_redefines_the_guest_with_current_settings(drv):
    inst = instance(ephemeral_gb=1)
    drv.spawn(None, inst, {"id": "disk"}, [], None)
    before = drv._lookup(inst["uuid"]).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    drv.disk_cache = "writeback"
    drv.reboot(None, {**inst, "memory_mb": 256}, None, "HARD")
    xml = drv._lookup(inst["uuid"]).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert xml != before and "cache='writeback'" in xml
    assert "<memory unit='KiB'>262144</memory>" in xml
    assert [os.path.basename(p) for p in config.disk_paths(xml)] == ["disk", "disk.eph0",
                                                                      "disk.config"]
    assert "<cmdline>console=ttyS0 quiet</cmdline>" in xml and "kernel</kernel>" in xml
    assert config.read_owner(xml)["instances_path"] == drv.instances_path
    assert state(drv, inst) == power_state.RUNNING
    # power_on from SHUTDOWN also redefines; a bare {"uuid"} leaves the XML alone
    drv.power_off(inst)
    drv.power_on(None, {"uuid": inst["uuid"]}, None)
    assert drv._lookup(inst["uuid"]).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) == xml


# -- resize and cold migration between two drivers on one machine ------------------------

@pytest.fixture
def drv2(tmp_path):
    yield from running_driver(tmp_path, "host2", "instances2")


def _resized(inst, root_gb=2, vcpus=2):
    return dict(inst, root_gb=root_gb, vcpus=vcpus, memory_mb=256,
                flavor={"name": "m1.bigger"})


def test_resize_to_another_host_then_confirm(drv, drv2):
    inst = instance()
    drv.spawn(None, inst, {"id": "disk"}, [], None)
    flavor = {"name": "m1.bigger", "root_gb": 2, "vcpus": 2, "memory_mb": 256}
    disk_info = drv.migrate_disk_and_power_off(None, inst, "host2", flavor, None)
    assert drv.list_instances() == []
    new = _resized(inst)
    drv2.finish_migration(None, {}, new, disk_info, None, {}, True)
    assert drv2.list_instances() == [inst["uuid"]]
    assert state(drv2, new) == power_state.RUNNING
    dest_dir = os.path.join(drv2.instances_path, inst["uuid"])
    assert sorted(os.listdir(dest_dir)) == ["bases.json", "disk", "disk.config", "kernel",
                                            "ramdisk"]
    root = lv.disk.info(os.path.join(dest_dir, "disk"), "qcow2")
    assert root["virtual-size"] == 2 * lv.disk.GiB
    assert "backing-filename" not in root  # flattened: no base needed on the destination
    assert config.read_owner(drv2._lookup(inst["uuid"]).XMLDesc(0))["instances_path"] == \
        drv2.instances_path
    drv.confirm_migration(None, {}, inst, None)
    assert not os.path.exists(os.path.join(drv.instances_path, inst["uuid"] + "_resize"))


def test_resize_revert_restores_the_source_guest(drv, drv2):
    inst = instance()
    drv.spawn(None, inst, {"id": "disk"}, [], None)
    flavor = {"name": "m1.bigger", "root_gb": 2}
    disk_info = drv.migrate_disk_and_power_off(None, inst, "host2", flavor, None)
    drv2.finish_migration(None, {}, _resized(inst), disk_info, None, {}, True)
    drv2.destroy(None, inst)
    drv.finish_revert_migration(None, inst, None, {})
    assert drv.list_instances() == [inst["uuid"]]
    assert state(drv, inst) == power_state.RUNNING
    assert drv2.list_instances() == []
    assert not os.path.exists(os.path.join(drv.instances_path, inst["uuid"] + "_resize"))


def test_resize_down_is_refused_and_the_guest_untouched(drv):
    inst = instance(root_gb=2)
    drv.spawn(None, inst, {"id": "disk"}, [], None)
    with pytest.raises(exception.VirtDriverError, match="resize disk down"):
        drv.migrate_disk_and_power_off(None, inst, "host2", {"root_gb": 1}, None)
    assert state(drv, inst) == power_state.RUNNING


def test_trigger_crash_dump_injects_an_nmi(drv, monkeypatch):
    inst = instance()
    drv.spawn(None, inst, {"id": "disk"}, [], None)
    injected = []
    monkeypatch.setattr(libvirt.virDomain, "injectNMI",
                        lambda dom, flags=0: injected.append((dom.UUIDString(), flags)) or 0)
    drv.trigger_crash_dump(inst)
    assert injected == [(inst["uuid"], 0)]
    assert state(drv, inst) == power_state.RUNNING  # the guest decides what happens

    def refuse(dom, flags=0):
        raise libvirt.libvirtError("this function is not supported")
    monkeypatch.setattr(libvirt.virDomain, "injectNMI", refuse)
    with pytest.raises(exception.VirtDriverError, match="injecting an NMI"):
        drv.trigger_crash_dump(inst)
    monkeypatch.undo()
    drv.power_off(inst)
    with pytest.raises(exception.VirtDriverError, match="cannot trigger a crash dump"):
        drv.trigger_crash_dump(inst)
