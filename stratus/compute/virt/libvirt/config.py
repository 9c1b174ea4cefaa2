"""The libvirt domain XML of a guest, built with :mod:`xml.etree`.

:func:`domain_xml` turns a :class:`GuestSpec` into the XML given to
``virDomainDefineXML``: virtio disks, the serial console logged to a file
(through virtlogd, appended across boots), no graphics, QEMU TCG when
``virt_type`` is ``qemu``, direct kernel boot when the image names a kernel.
Stratus also writes who owns the guest into ``<metadata>`` (the instances
directory of the compute deployment), so deployments sharing one libvirtd
never touch each other's guests: :func:`read_owner` reads it back.
"""
from __future__ import annotations

import dataclasses
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

NAMESPACE = "http://stratus.openstack.example/xmlns/libvirt/instance/1.0"
ET.register_namespace("stratus", NAMESPACE)


@dataclasses.dataclass(frozen=True)
class Disk:
    """One disk file of the guest, attached on the virtio bus."""

    path: str
    format: str              # qcow2 | raw
    target: str              # vda, vdb, ...
    readonly: bool = False
    serial: str | None = None


@dataclasses.dataclass(frozen=True)
class Interface:
    """One VIF on a Linux bridge (Nova's ``bridge`` VIF type)."""

    mac: str
    bridge: str
    model: str = "virtio"


@dataclasses.dataclass(frozen=True)
class GuestSpec:
    name: str                 # libvirt domain name
    uuid: str                 # instance uuid = domain uuid
    virt_type: str            # kvm | qemu
    memory_mb: int
    vcpus: int
    disks: Sequence[Disk]
    console_log: str
    owner: Mapping[str, str]  # instances_path, host, display_name, project, user, flavor
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str | None = None
    interfaces: Sequence[Interface] = ()
    arch: str = dataclasses.field(default_factory=lambda: os.uname().machine)
    disk_cache: str = "none"  # none (O_DIRECT) | writeback


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def domain_xml(spec: GuestSpec) -> str:
    if spec.virt_type not in ("kvm", "qemu"):
        raise ValueError(f"virt_type must be kvm or qemu, not {spec.virt_type!r}")
    dom = ET.Element("domain", {"type": spec.virt_type})
    _sub(dom, "name", spec.name)
    _sub(dom, "uuid", spec.uuid)
    meta = _sub(dom, "metadata")
    owner = ET.SubElement(meta, f"{{{NAMESPACE}}}instance")
    for key, value in sorted(spec.owner.items()):
        if value is not None:
            ET.SubElement(owner, f"{{{NAMESPACE}}}{key}").text = str(value)
    _sub(dom, "memory", str(int(spec.memory_mb) * 1024), unit="KiB")
    _sub(dom, "currentMemory", str(int(spec.memory_mb) * 1024), unit="KiB")
    _sub(dom, "vcpu", str(int(spec.vcpus)), placement="static")

    sysinfo = _sub(dom, "sysinfo", type="smbios")
    system = _sub(sysinfo, "system")
    for name, value in (("manufacturer", "Stratus"), ("product", "OpenStack Compute"),
                        ("serial", spec.uuid), ("uuid", spec.uuid),
                        ("family", "Virtual Machine")):
        _sub(system, "entry", value, name=name)

    os_el = _sub(dom, "os")
    _sub(os_el, "type", "hvm", arch=spec.arch)
    if spec.kernel:
        _sub(os_el, "kernel", spec.kernel)
        if spec.initrd:
            _sub(os_el, "initrd", spec.initrd)
        if spec.cmdline:
            _sub(os_el, "cmdline", spec.cmdline)
    else:
        _sub(os_el, "boot", dev="hd")
    _sub(os_el, "smbios", mode="sysinfo")

    features = _sub(dom, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    if spec.virt_type == "kvm":
        _sub(dom, "cpu", mode="host-model")
    _sub(dom, "clock", offset="utc")
    _sub(dom, "on_poweroff", "destroy")
    _sub(dom, "on_reboot", "restart")
    _sub(dom, "on_crash", "destroy")

    devices = _sub(dom, "devices")
    for disk in spec.disks:
        d = _sub(devices, "disk", type="file", device="disk")
        _sub(d, "driver", name="qemu", type=disk.format, cache=spec.disk_cache)
        _sub(d, "source", file=disk.path)
        _sub(d, "target", dev=disk.target, bus="virtio")
        if disk.readonly:
            _sub(d, "readonly")
        if disk.serial:
            _sub(d, "serial", disk.serial)
    for vif in spec.interfaces:
        i = _sub(devices, "interface", type="bridge")
        _sub(i, "mac", address=vif.mac)
        _sub(i, "source", bridge=vif.bridge)
        _sub(i, "model", type=vif.model)
    # The serial console: a pty (for `virsh console`) whose output virtlogd appends
    # to the console log, which get_console_output reads.
    serial = _sub(devices, "serial", type="pty")
    _sub(serial, "log", file=spec.console_log, append="on")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="pty")
    _sub(console, "target", type="serial", port="0")
    _sub(devices, "memballoon", model="virtio")
    ET.indent(dom)
    return ET.tostring(dom, encoding="unicode")


def read_owner(xml: str) -> dict[str, str]:
    """The ``<metadata>`` Stratus wrote into a domain's XML ({} for a domain
    Stratus did not define)."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return {}
    owner = root.find(f"metadata/{{{NAMESPACE}}}instance")
    if owner is None:
        return {}
    prefix = f"{{{NAMESPACE}}}"
    return {child.tag[len(prefix):]: child.text or "" for child in owner
            if child.tag.startswith(prefix)}


def disk_paths(xml: str) -> list[str]:
    """The source files of a domain's disks."""
    root = ET.fromstring(xml)
    return [src.get("file", "") for src in root.findall("devices/disk/source")
            if src.get("file")]


def interfaces_from(network_info: Sequence[Mapping[str, Any]] | None) -> list[Interface]:
    """Bridge VIFs of Nova's network_info (other VIF types are not wired yet)."""
    vifs = []
    for vif in network_info or []:
        bridge = (vif.get("network") or {}).get("bridge")
        if vif.get("address") and bridge:
            vifs.append(Interface(mac=vif["address"], bridge=bridge))
    return vifs


def disk_target(index: int) -> str:
    """vda, vdb, ... vdz, vdaa: the target device of the index-th virtio disk."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("a") + rem) + letters
    return f"vd{letters}"
