"""The libvirt driver's domain XML, config drive and helpers (no libvirtd needed)."""
from __future__ import annotations

import base64
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from stratus.compute.virt.libvirt import config, configdrive

UUID = "3f0c1b7e-8a59-4d6f-9a53-1f0d2b4c6e8a"


def spec(**overrides):
    values = dict(
        name=f"instance-0000000a-{UUID[:8]}", uuid=UUID, virt_type="qemu", memory_mb=128,
        vcpus=1, console_log=f"/srv/instances/{UUID}/console.log",
        disks=[config.Disk(f"/srv/instances/{UUID}/disk", "qcow2", "vda"),
               config.Disk(f"/srv/instances/{UUID}/disk.eph0", "raw", "vdb"),
               config.Disk(f"/srv/instances/{UUID}/disk.config", "raw", "vdc", readonly=True)],
        owner={"instances_path": "/srv/instances", "host": "compute1",
               "display_name": "vm <one> & two", "flavor": "m1.nano"},
        arch="x86_64")
    values.update(overrides)
    return config.GuestSpec(**values)


def parse(s: config.GuestSpec) -> ET.Element:
    return ET.fromstring(config.domain_xml(s))


def test_qemu_tcg_domain_basics():
    dom = parse(spec())
    assert dom.get("type") == "qemu"
    assert dom.findtext("name") == f"instance-0000000a-{UUID[:8]}"
    assert dom.findtext("uuid") == UUID
    assert dom.find("memory").get("unit") == "KiB" and dom.findtext("memory") == str(128 * 1024)
    assert dom.findtext("vcpu") == "1"
    assert dom.find("cpu") is None  # TCG: QEMU's default CPU model, no host-model
    assert dom.find("os/type").text == "hvm" and dom.find("os/type").get("arch") == "x86_64"
    assert dom.find("os/boot").get("dev") == "hd" and dom.find("os/kernel") is None
    assert dom.find("features/acpi") is not None  # ACPI: soft reboot and shutdown
    assert dom.findtext("on_poweroff") == "destroy" and dom.findtext("on_reboot") == "restart"
    entries = {e.get("name"): e.text for e in dom.findall("sysinfo/system/entry")}
    assert entries["serial"] == UUID and entries["product"] == "OpenStack Compute"
    assert dom.find("devices/graphics") is None


def test_kvm_uses_the_host_cpu_model():
    dom = parse(spec(virt_type="kvm"))
    assert dom.get("type") == "kvm" and dom.find("cpu").get("mode") == "host-model"


def test_bad_virt_type_is_refused():
    with pytest.raises(ValueError):
        config.domain_xml(spec(virt_type="xen"))


def test_disks_are_virtio_with_the_config_drive_read_only():
    disks = parse(spec(disk_cache="writeback")).findall("devices/disk")
    assert [(d.find("target").get("dev"), d.find("target").get("bus")) for d in disks] == \
        [("vda", "virtio"), ("vdb", "virtio"), ("vdc", "virtio")]
    assert [d.find("driver").get("type") for d in disks] == ["qcow2", "raw", "raw"]
    assert {d.find("driver").get("cache") for d in disks} == {"writeback"}
    assert [d.find("readonly") is not None for d in disks] == [False, False, True]
    assert disks[0].find("source").get("file") == f"/srv/instances/{UUID}/disk"
    assert config.disk_paths(config.domain_xml(spec()))[2].endswith("disk.config")


def test_serial_console_is_logged_to_a_file_and_appended():
    dom = parse(spec())
    serial = dom.find("devices/serial")
    assert serial.get("type") == "pty"
    log = serial.find("log")
    assert log.get("file") == f"/srv/instances/{UUID}/console.log"
    assert log.get("append") == "on"
    assert dom.find("devices/console/target").get("type") == "serial"


def test_direct_kernel_boot():
    dom = parse(spec(kernel="/k", initrd="/r", cmdline="console=ttyS0 quiet"))
    assert dom.findtext("os/kernel") == "/k" and dom.findtext("os/initrd") == "/r"
    assert dom.findtext("os/cmdline") == "console=ttyS0 quiet"
    assert dom.find("os/boot") is None


def test_bridge_interfaces_from_network_info():
    vifs = config.interfaces_from([
        {"id": "p1", "address": "fa:16:3e:00:00:01", "network": {"bridge": "br100"}},
        {"id": "p2", "address": "fa:16:3e:00:00:02", "network": {}},  # no bridge: skipped
    ])
    dom = parse(spec(interfaces=vifs))
    (iface,) = dom.findall("devices/interface")
    assert iface.get("type") == "bridge" and iface.find("source").get("bridge") == "br100"
    assert iface.find("mac").get("address") == "fa:16:3e:00:00:01"
    assert iface.find("model").get("type") == "virtio"


def test_owner_metadata_round_trips_and_is_escaped():
    xml = config.domain_xml(spec())
    owner = config.read_owner(xml)
    assert owner["instances_path"] == "/srv/instances" and owner["host"] == "compute1"
    assert owner["display_name"] == "vm <one> & two"
    assert config.read_owner("<domain type='qemu'><name>other</name></domain>") == {}
    assert config.read_owner("not xml") == {}


@pytest.mark.parametrize("index, dev", [(0, "vda"), (1, "vdb"), (25, "vdz"), (26, "vdaa"),
                                        (27, "vdab")])
def test_disk_targets(index, dev):
    assert config.disk_target(index) == dev


# -- config drive --------------------------------------------------------------------

INSTANCE = {
    "uuid": UUID, "name": "instance-0000000a", "display_name": "web one",
    "hostname": "web-one", "availability_zone": "nova", "project_id": "p1",
    "launch_index": 0, "key_name": "mykey", "key_data": "ssh-ed25519 AAAAC3 me@host",
    "metadata": {"role": "web"},
    "user_data": base64.b64encode(b"#!/bin/sh\necho hello\n").decode(),
}


def test_config_drive_layout_and_meta_data(tmp_path):
    path = str(tmp_path / "disk.config")
    configdrive.write_iso(path, configdrive.contents(
        INSTANCE, admin_password="s3cret", injected_files=[("/etc/motd", b"welcome\n")]))
    label, files = configdrive.read_iso(path)
    assert label == "config-2"
    md = json.loads(files["openstack/latest/meta_data.json"])
    assert md["uuid"] == UUID and md["name"] == "web one" and md["hostname"] == "web-one"
    assert md["availability_zone"] == "nova" and md["project_id"] == "p1"
    assert md["public_keys"] == {"mykey": "ssh-ed25519 AAAAC3 me@host"}
    assert md["keys"] == [{"name": "mykey", "type": "ssh", "data": "ssh-ed25519 AAAAC3 me@host"}]
    assert md["meta"] == {"role": "web"} and md["admin_pass"] == "s3cret"
    assert md["files"] == [{"path": "/etc/motd", "content_path": "/content/0000"}]
    assert files["openstack/content/0000"] == b"welcome\n"
    assert files["openstack/latest/user_data"] == b"#!/bin/sh\necho hello\n"
    assert json.loads(files["openstack/latest/network_data.json"]) == \
        {"links": [], "networks": [], "services": []}
    assert files["openstack/latest/vendor_data.json"] == b"{}"
    # Every version cloud-init may ask for carries the same metadata.
    assert files["openstack/2012-08-10/meta_data.json"] == files["openstack/latest/meta_data.json"]


def test_config_drive_without_user_data_or_keys(tmp_path):
    path = str(tmp_path / "disk.config")
    instance = {**INSTANCE, "user_data": None, "key_data": None, "key_name": None}
    configdrive.write_iso(path, configdrive.contents(instance))
    _label, files = configdrive.read_iso(path)
    assert "openstack/latest/user_data" not in files
    md = json.loads(files["openstack/latest/meta_data.json"])
    assert md["public_keys"] == {} and "admin_pass" not in md and "files" not in md


def test_config_drive_network_data_lists_vifs():
    nd = configdrive.network_data([{"id": "port-1", "address": "fa:16:3e:00:00:01",
                                    "network": {"id": "net", "subnets": [
                                        {"ips": [{"address": "10.0.0.5"}]}]}}])
    assert nd["links"][0]["ethernet_mac_address"] == "fa:16:3e:00:00:01"
    assert nd["networks"][0]["ip_address"] == "10.0.0.5"


@pytest.mark.skipif(not shutil.which("isoinfo"), reason="isoinfo (genisoimage) not installed")
def test_config_drive_reads_back_with_isoinfo(tmp_path):
    """Another ISO 9660 reader sees the label and the Rock Ridge names."""
    path = str(tmp_path / "disk.config")
    configdrive.write_iso(path, configdrive.contents(INSTANCE))
    pvd = subprocess.run(["isoinfo", "-d", "-i", path], capture_output=True, text=True,
                         check=True).stdout
    assert "Volume id: config-2" in pvd
    listing = subprocess.run(["isoinfo", "-R", "-f", "-i", path], capture_output=True,
                             text=True, check=True).stdout.split()
    assert "/openstack/latest/meta_data.json" in listing
    data = subprocess.run(["isoinfo", "-R", "-i", path, "-x", "/openstack/latest/user_data"],
                          capture_output=True, check=True).stdout
    assert data == b"#!/bin/sh\necho hello\n"


def test_user_data_that_is_not_base64_is_kept_as_is():
    assert configdrive.decode_user_data("not base64!") == b"not base64!"
    assert configdrive.decode_user_data(None) is None
