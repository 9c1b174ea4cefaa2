"""Real-guest benchmark: the libvirt driver under QEMU TCG, one guest at a time.

Boots the test image of ``scripts/build-test-image`` (Debian kernel + busybox
initramfs, 128 MB, 1 vCPU, config drive) through the all-in-one with
``[compute] driver = libvirt`` and ``virt_type = qemu``, and prints for each
guest:

  * POST -> ACTIVE,
  * POST -> first console line (os-getConsoleOutput polled every 50 ms),
  * POST -> the instance uuid read from the config drive on the console,
  * DELETE -> gone (GET 404, the domain and its directory removed).

The first guest fetches the images into the compute's cache (cold); the
others find them there (warm). Targets under TCG: first console line
<= 8 s, delete <= 2 s.

    python bench/guest.py [--guests 3] [--kernel vmlinux|vmlinuz] [--cmdline "console=ttyS0"]

Needs scripts/libvirt-setup and scripts/build-test-image (run by `make libvirt`).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tests.functional import harness  # noqa: E402

IMAGE_DIR = os.path.join(ROOT, "build", "test-image")
POLL = 0.05


class Cloud:
    def __init__(self, url: str, password: str) -> None:
        self.url = url
        resp = httpx.post(f"{url}/identity/v3/auth/tokens", json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
        resp.raise_for_status()
        self.headers = {"X-Auth-Token": resp.headers["X-Subject-Token"]}
        self.http = httpx.Client(base_url=f"{url}/compute/v2.1", headers=self.headers,
                                 timeout=60)

    def upload(self, name: str, path: str, disk_format: str, container_format: str,
               **props: str) -> str:
        resp = httpx.post(f"{self.url}/image/v2/images", headers=self.headers, json={
            "name": name, "disk_format": disk_format, "container_format": container_format,
            **props})
        resp.raise_for_status()
        image_id = resp.json()["id"]
        with open(path, "rb") as f:
            httpx.put(f"{self.url}/image/v2/images/{image_id}/file", content=f,
                      headers={**self.headers, "Content-Type": "application/octet-stream"},
                      timeout=300).raise_for_status()
        return image_id

    def console(self, server_id: str) -> str:
        resp = self.http.post(f"/servers/{server_id}/action",
                              json={"os-getConsoleOutput": {}})
        if resp.status_code != 200:
            return ""
        return resp.json()["output"]

    def status(self, server_id: str) -> str:
        resp = self.http.get(f"/servers/{server_id}")
        if resp.status_code == 404:
            return "DELETED"
        return resp.json()["server"]["status"]


def boot_one(cloud: Cloud, image_id: str, index: int,
             timeout: float = 300) -> tuple[dict[str, float], str]:
    started = time.perf_counter()
    resp = cloud.http.post("/servers", json={"server": {
        "name": f"bench-guest-{index}", "flavorRef": "42", "imageRef": image_id,
        "config_drive": True, "networks": "none"}})
    resp.raise_for_status()
    server_id = resp.json()["server"]["id"]
    marks: dict[str, float] = {}
    uuid_line = f"instance uuid {server_id}"
    deadline = started + timeout
    while time.perf_counter() < deadline and len(marks) < 3:
        if "active" not in marks:
            status = cloud.status(server_id)
            if status == "ERROR":
                raise RuntimeError(f"server {server_id} went to ERROR")
            if status == "ACTIVE":
                marks["active"] = time.perf_counter() - started
        if "active" in marks or "first_line" not in marks:
            output = cloud.console(server_id)
            if output.strip() and "first_line" not in marks:
                marks["first_line"] = time.perf_counter() - started
            if uuid_line in output:
                marks["uuid"] = time.perf_counter() - started
        time.sleep(POLL)
    if len(marks) < 3:
        raise RuntimeError(f"guest {server_id} incomplete after {timeout} s: {marks}")
    return marks, server_id


def delete_one(cloud: Cloud, server_id: str) -> float:
    started = time.perf_counter()
    cloud.http.delete(f"/servers/{server_id}").raise_for_status()
    while cloud.status(server_id) != "DELETED":
        time.sleep(POLL / 2)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--guests", type=int, default=3)
    parser.add_argument("--kernel", default="vmlinux", choices=("vmlinux", "vmlinuz"),
                        help="the uncompressed PVH kernel (default) or the bzImage")
    parser.add_argument("--cmdline", default="console=ttyS0",
                        help="kernel command line (os_command_line image property)")
    args = parser.parse_args()
    for name in ("vmlinux", "initramfs.img", "disk.qcow2"):
        if not os.path.exists(os.path.join(IMAGE_DIR, name)):
            sys.exit(f"{IMAGE_DIR}/{name} is missing: run scripts/build-test-image")
    tmp = tempfile.mkdtemp(prefix="stratus-bench-guest-", dir="/var/tmp")  # QEMU reaches it
    os.chmod(tmp, 0o755)
    config = os.path.join(tmp, "stratus.conf")
    with open(config, "w") as f:
        f.write("[compute]\ndriver = libvirt\n[libvirt]\nvirt_type = qemu\n")
    aio = harness.AllInOne(os.path.join(tmp, "aio"), ["--config", config],
                           hypervisor="libvirt")
    try:
        aio.start(timeout=120)
        os.chmod(aio.state_dir, 0o755)
        cloud = Cloud(aio.url, aio.password)
        kernel = cloud.upload("kernel", os.path.join(IMAGE_DIR, args.kernel), "aki", "aki")
        ramdisk = cloud.upload("ramdisk", os.path.join(IMAGE_DIR, "initramfs.img"),
                               "ari", "ari")
        image = cloud.upload("test-image", os.path.join(IMAGE_DIR, "disk.qcow2"), "qcow2",
                             "bare", kernel_id=kernel, ramdisk_id=ramdisk,
                             os_command_line=args.cmdline)
        print(f"Real guests (libvirt, QEMU TCG, 128 MB, 1 vCPU, config drive; "
              f"{args.kernel}, cmdline {args.cmdline!r}), one at a time:")
        firsts, uuids, actives, deletes = [], [], [], []
        for i in range(args.guests):
            marks, server_id = boot_one(cloud, image, i)
            gone = delete_one(cloud, server_id)
            leftover = subprocess.run(["virsh", "-c", "qemu:///system", "domstate", server_id],
                                      capture_output=True).returncode == 0
            label = "cold cache" if i == 0 else "warm cache"
            print(f"  guest {i + 1} ({label}): ACTIVE {marks['active']:.2f} s, first console "
                  f"line {marks['first_line']:.2f} s, uuid from the config drive "
                  f"{marks['uuid']:.2f} s; delete -> gone {gone:.2f} s"
                  f"{' (DOMAIN LEFT BEHIND)' if leftover else ''}")
            if i > 0 or args.guests == 1:
                actives.append(marks["active"])
                firsts.append(marks["first_line"])
                uuids.append(marks["uuid"])
            deletes.append(gone)
        print(f"  median (warm): POST -> ACTIVE {statistics.median(actives):.2f} s, "
              f"POST -> first console line {statistics.median(firsts):.2f} s (target <= 8 s), "
              f"POST -> uuid on console {statistics.median(uuids):.2f} s, "
              f"delete -> gone {statistics.median(deletes):.2f} s (target <= 2 s)")
    finally:
        aio.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
