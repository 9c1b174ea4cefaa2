"""The OpenStack config drive: an ISO 9660 volume labelled ``config-2``.

The layout is Nova's (what cloud-init's ConfigDrive data source reads)::

    openstack/<version>/meta_data.json    uuid, name, hostname, public_keys, keys,
                                          availability_zone, launch_index, meta,
                                          project_id, devices, files, admin_pass
    openstack/<version>/user_data         the instance's user_data, decoded (if any)
    openstack/<version>/vendor_data.json  {}
    openstack/<version>/vendor_data2.json {}
    openstack/<version>/network_data.json links/networks/services from network_info
    openstack/content/0000 ...            injected files (meta_data.json "files")

for ``<version>`` in :data:`VERSIONS`. Written with pycdlib (pure Python,
Rock Ridge + Joliet names, so long lower-case names survive).
"""
from __future__ import annotations

import base64
import binascii
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

VOLUME_LABEL = "config-2"
#: Metadata versions written (Nova writes every one it knows; cloud-init reads
#: the newest it understands, falling back to latest).
VERSIONS = ("2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30",
            "2016-10-06", "2017-02-22", "2018-08-27", "2020-10-14", "latest")


def decode_user_data(user_data: str | bytes | None) -> bytes | None:
    if user_data is None or user_data == "":
        return None
    try:
        return base64.b64decode(user_data)
    except (binascii.Error, ValueError):
        return user_data.encode() if isinstance(user_data, str) else bytes(user_data)


def meta_data(instance: Mapping[str, Any], admin_password: str | None = None,
              injected_files: Sequence[tuple[str, bytes]] = ()) -> dict[str, Any]:
    """meta_data.json, as Nova's InstanceMetadata.metadata_for_config_drive."""
    md: dict[str, Any] = {
        "uuid": instance["uuid"],
        "name": instance.get("display_name") or instance.get("name"),
        "hostname": instance.get("hostname") or instance.get("display_name")
        or instance.get("name"),
        "launch_index": int(instance.get("launch_index") or 0),
        "availability_zone": instance.get("availability_zone") or "nova",
        "project_id": instance.get("project_id"),
        "meta": dict(instance.get("metadata") or {}),
        "devices": [],
        "random_seed": base64.b64encode(os.urandom(512)).decode(),
    }
    key_name, key_data = instance.get("key_name"), instance.get("key_data")
    if key_data:
        name = key_name or "key"
        md["public_keys"] = {name: key_data}
        md["keys"] = [{"name": name, "type": "ssh", "data": key_data}]
    else:
        md["public_keys"] = {}
        md["keys"] = []
    if admin_password:
        md["admin_pass"] = admin_password
    if injected_files:
        md["files"] = [{"path": path, "content_path": f"/content/{index:04d}"}
                       for index, (path, _data) in enumerate(injected_files)]
    return md


def network_data(network_info: Iterable[Mapping[str, Any]] | None) -> dict[str, Any]:
    """network_data.json: one link per VIF and its fixed IPs (static)."""
    links, networks = [], []
    for index, vif in enumerate(network_info or []):
        link_id = f"tap{str(vif.get('id', index))[:11]}"
        links.append({"id": link_id, "vif_id": vif.get("id"), "type": "bridge",
                      "ethernet_mac_address": vif.get("address"), "mtu": None})
        for subnet in (vif.get("network") or {}).get("subnets") or []:
            for ip in subnet.get("ips") or []:
                networks.append({"id": f"network{len(networks)}", "link": link_id,
                                 "type": "ipv4", "ip_address": ip.get("address"),
                                 "network_id": (vif.get("network") or {}).get("id"),
                                 "routes": []})
    return {"links": links, "networks": networks, "services": []}


def contents(instance: Mapping[str, Any], admin_password: str | None = None,
             injected_files: Sequence[tuple[str, bytes]] = (),
             network_info: Iterable[Mapping[str, Any]] | None = None) -> dict[str, bytes]:
    """Every file of the drive: {path inside the drive: bytes}."""
    md = json.dumps(meta_data(instance, admin_password, injected_files)).encode()
    nd = json.dumps(network_data(network_info)).encode()
    user_data = decode_user_data(instance.get("user_data"))
    files: dict[str, bytes] = {}
    for version in VERSIONS:
        base = f"openstack/{version}"
        files[f"{base}/meta_data.json"] = md
        files[f"{base}/vendor_data.json"] = b"{}"
        files[f"{base}/vendor_data2.json"] = b"{}"
        files[f"{base}/network_data.json"] = nd
        if user_data is not None:
            files[f"{base}/user_data"] = user_data
    for index, (_path, data) in enumerate(injected_files):
        files[f"openstack/content/{index:04d}"] = data
    return files


def write_iso(path: str, files: Mapping[str, bytes], label: str = VOLUME_LABEL) -> None:
    """An ISO 9660 image at ``path`` holding ``files`` (Rock Ridge and Joliet names)."""
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=label,
            sys_ident="LINUX", app_ident_str="stratus config drive")
    iso_names: dict[str, str] = {"": ""}   # drive path -> ISO 9660 path
    counter = 0

    def iso_dir(directory: str) -> str:
        nonlocal counter
        if directory in iso_names:
            return iso_names[directory]
        parent, _, name = directory.rpartition("/")
        parent_iso = iso_dir(parent)
        counter += 1
        path_iso = f"{parent_iso}/D{counter:07d}"
        iso.add_directory(path_iso, rr_name=name, joliet_path=f"/{directory}")
        iso_names[directory] = path_iso
        return path_iso

    for name in sorted(files):
        data = files[name]
        directory, _, base = name.rpartition("/")
        parent_iso = iso_dir(directory)
        counter += 1
        iso.add_fp(io.BytesIO(data), len(data), f"{parent_iso}/F{counter:07d}.;1",
                   rr_name=base, joliet_path=f"/{name}")
    tmp = f"{path}.tmp"
    try:
        iso.write(tmp)
        os.replace(tmp, path)
    finally:
        iso.close()
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_iso(path: str) -> tuple[str, dict[str, bytes]]:
    """(volume label, {path: bytes}) of a drive written by :func:`write_iso`
    (Rock Ridge names), for tests and diagnostics."""
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.open(path)
    try:
        label = iso.pvd.volume_identifier.decode().strip()
        out: dict[str, bytes] = {}
        for dirname, _dirs, filenames in iso.walk(rr_path="/"):
            for filename in filenames:
                full = f"{dirname.rstrip('/')}/{filename}"
                buf = io.BytesIO()
                iso.get_file_from_iso_fp(buf, rr_path=full)
                out[full.lstrip("/")] = buf.getvalue()
        return label, out
    finally:
        iso.close()
