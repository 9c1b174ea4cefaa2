"""Real guests: the all-in-one with ``[compute] driver = libvirt`` (QEMU TCG).

Boots the test image of ``scripts/build-test-image`` (a Debian kernel and a
busybox initramfs that prints the instance uuid and user_data from the config
drive on its serial console) through openstacksdk, then takes the guest
through stop/start, hard and soft reboot, pause, suspend, a snapshot (and a
second guest booted from it), rescue/unrescue, shelve/unshelve, a rebuild, a
shutdown from inside and delete, checking
the console log, the power states, ``virsh list --all`` and the instances
directory. At most two guests at a time, 128 MB each. Skipped, saying why, only when
libvirtd cannot be set up on this machine (``scripts/libvirt-setup``).
"""
from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
import time
from typing import Any, Iterator

import httpx
import pytest

from tests.functional import harness
from tests.functional.harness import AllInOne, wait_until

pytestmark = [pytest.mark.functional, pytest.mark.libvirt]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE_DIR = os.path.join(ROOT, "build", "test-image")
URI = "qemu:///system"
USER_DATA = b"stratus-functional-user-data 42"
BOOT_TIMEOUT = 180.0  # TCG on a busy 2-core machine


def _not_ready() -> str | None:
    """Why libvirt guests cannot run here, or None."""
    try:
        import libvirt
    except ImportError:
        return "libvirt-python is not installed (scripts/libvirt-setup --python .venv/bin/python)"
    try:
        libvirt.open(URI).close()
    except libvirt.libvirtError as exc:
        return f"libvirtd is not reachable at {URI}: {exc.get_error_message()}"
    for name in ("vmlinux", "initramfs.img", "disk.qcow2"):
        if not os.path.exists(os.path.join(IMAGE_DIR, name)):
            return f"{IMAGE_DIR}/{name} is missing (scripts/build-test-image)"
    return None


def _set_up() -> None:
    """Try what `make libvirt` does, for a run that skipped it."""
    if os.geteuid() != 0:
        return
    for script in (["scripts/libvirt-setup"], ["scripts/build-test-image"]):
        subprocess.run(script, cwd=ROOT, capture_output=True, timeout=900, check=False)


@pytest.fixture(scope="module")
def libvirt_ready() -> None:
    if _not_ready() is not None:
        _set_up()
    reason = _not_ready()
    if reason is not None:
        pytest.skip(f"libvirt cannot be set up on this machine: {reason}")


def virsh(*args: str) -> str:
    return subprocess.run(["virsh", "-c", URI, *args], capture_output=True, text=True,
                          timeout=60, check=True).stdout


@pytest.fixture(scope="module")
def cloud(libvirt_ready: None):
    # Not under pytest's 0700 tmp dirs: QEMU runs as libvirt-qemu and must reach the disks.
    state = tempfile.mkdtemp(prefix="stratus-libvirt-", dir="/var/tmp")
    os.chmod(state, 0o755)
    config = os.path.join(state, "stratus.conf")
    with open(config, "w") as f:
        f.write("[compute]\ndriver = libvirt\nresource_update_interval = 5\n"
                "sync_power_state_interval = 1\n"
                "[libvirt]\nvirt_type = qemu\nwait_soft_reboot_seconds = 60\n")
    aio = AllInOne(os.path.join(state, "aio"), ["--config", config], hypervisor="libvirt")
    os.chmod(aio.state_dir, 0o755)
    aio.start(timeout=120)
    try:
        yield aio
    finally:
        code = aio.stop()
        log = aio.process.log()
        leftovers = remove_guests_under(state)
        shutil.rmtree(state, ignore_errors=True)
        assert code == 0, log
        assert not leftovers, f"guests left behind: {leftovers}"


def remove_guests_under(state: str) -> list[str]:
    """Destroy the domains whose instances directory is under ``state`` (those a
    failed test left running), so no guest outlives the test run."""
    import libvirt

    from stratus.compute.virt.libvirt import config

    conn = libvirt.open(URI)
    removed = []
    try:
        for dom in conn.listAllDomains(0):
            owner = config.read_owner(dom.XMLDesc(0))
            if not owner.get("instances_path", "").startswith(state + os.sep):
                continue
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
            removed.append(dom.UUIDString())
    finally:
        conn.close()
    return removed


@pytest.fixture(scope="module")
def conn(cloud: AllInOne) -> Any:
    return cloud.connect()


def upload(cloud: Any, conn: Any, name: str, path: str, disk_format: str,
           container_format: str, **properties: str) -> str:
    """An image through the Image v2 API (create, then PUT the data)."""
    token = conn.session.get_token()
    headers = {"X-Auth-Token": token}
    body = {"name": name, "disk_format": disk_format,
            "container_format": container_format, **properties}
    resp = httpx.post(f"{cloud.url}/image/v2/images", json=body, headers=headers, timeout=30)
    assert resp.status_code == 201, resp.text
    image_id = resp.json()["id"]
    with open(path, "rb") as f:
        resp = httpx.put(f"{cloud.url}/image/v2/images/{image_id}/file", content=f,
                         headers={**headers, "Content-Type": "application/octet-stream"},
                         timeout=120)
    assert resp.status_code == 204, resp.text
    return image_id


def upload_test_image(cloud: Any, conn: Any) -> tuple[str, str, str]:
    """The test image (a disk booting the kernel and ramdisk images with a serial
    console): its id, the kernel's and the ramdisk's."""
    kernel = upload(cloud, conn, "test-kernel", os.path.join(IMAGE_DIR, "vmlinux"), "aki", "aki")
    ramdisk = upload(cloud, conn, "test-ramdisk", os.path.join(IMAGE_DIR, "initramfs.img"),
                     "ari", "ari")
    image_id = upload(cloud, conn, "test-image", os.path.join(IMAGE_DIR, "disk.qcow2"),
                      "qcow2", "bare", kernel_id=kernel, ramdisk_id=ramdisk,
                      os_command_line="console=ttyS0")
    return image_id, kernel, ramdisk


@pytest.fixture(scope="module")
def test_image(cloud: AllInOne, conn: Any) -> str:
    image_id, kernel, ramdisk = upload_test_image(cloud, conn)
    # The SDK sees the properties a user set with `openstack image create --property`.
    image = conn.image.get_image(image_id)
    assert (image.kernel_id, image.ramdisk_id) == (kernel, ramdisk)
    return image_id


def instances_dir(cloud: AllInOne) -> str:
    return os.path.join(cloud.state_dir, "instances")


def console(conn: Any, server_id: str, length: int | None = None) -> str:
    return conn.compute.get_server_console_output(server_id, length=length)["output"]


def wait_console(conn: Any, server_id: str, text: str, count: int = 1) -> str:
    """Wait for ``text`` in os-getConsoleOutput (first boots: under its 100 KB cap)."""
    try:
        return wait_until(lambda: (out := console(conn, server_id)).count(text) >= count
                          and out, BOOT_TIMEOUT, 0.5, f"{text!r} x{count} on the console")
    except TimeoutError as exc:
        tail = console(conn, server_id, length=30)
        raise AssertionError(f"{exc}; the console ends with:\n{tail}") from None


def log_mark(inst_dir: str) -> int:
    """The console log's size: what a later boot appends comes after it (the API's
    console output is capped at 100 KB, less than a few boots' worth)."""
    try:
        return os.path.getsize(os.path.join(inst_dir, "console.log"))
    except FileNotFoundError:
        return 0


def wait_log(inst_dir: str, mark: int, *texts: str) -> str:
    """Wait until every text appears in the console log after ``mark``."""
    def appended() -> str | bool:
        try:
            with open(os.path.join(inst_dir, "console.log"), "rb") as f:
                f.seek(mark)
                out = f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return False
        return all(t in out for t in texts) and out
    try:
        return wait_until(appended, BOOT_TIMEOUT, 0.5, f"{texts} on the console")
    except TimeoutError as exc:
        with open(os.path.join(inst_dir, "console.log"), "rb") as f:
            f.seek(mark)
            tail = f.read().decode("utf-8", "replace")[-3000:]
        raise AssertionError(f"{exc}; the console since the mark:\n{tail}") from None


def wait_state(conn: Any, server_id: str, status: str, power: int) -> Any:
    def done() -> Any:
        server = conn.compute.get_server(server_id)
        assert server.status != "ERROR", server.fault
        return (server.status == status and server.task_state is None
                and server.power_state == power and server)
    return wait_until(done, BOOT_TIMEOUT, 0.25, f"{status}/power state {power}")


def domain_state(server_id: str) -> str:
    return virsh("domstate", server_id).strip()


@pytest.mark.timeout(900)  # TCG guests on a loaded 2-core machine: ~70 s when idle
def test_real_guest_lifecycle(cloud: AllInOne, conn: Any, test_image: str) -> None:
    flavor = conn.compute.find_flavor("m1.nano")  # 128 MB, 1 vCPU, 1 GB
    started = time.monotonic()
    server = conn.compute.create_server(
        name="real-vm", image_id=test_image, flavor_id=flavor.id, config_drive=True,
        user_data=base64.b64encode(USER_DATA).decode(), networks="none")
    server = conn.compute.wait_for_server(server, status="ACTIVE", wait=BOOT_TIMEOUT)
    assert server.power_state == 1
    uuid_line = f"stratus-test-image: instance uuid {server.id}"

    # The config drive reached the guest: uuid and user_data on the serial console.
    wait_console(conn, server.id, uuid_line)
    boot_s = time.monotonic() - started
    output = wait_console(conn, server.id, "stratus-test-image: ready")
    assert f"user_data begin\n{USER_DATA.decode()}\n" in output
    assert "stratus-test-image: config drive /dev/vd" in output
    assert domain_state(server.id) == "running"
    inst_dir = os.path.join(instances_dir(cloud), server.id)
    assert sorted(os.listdir(inst_dir)) == ["bases.json", "console.log", "disk",
                                            "disk.config", "kernel", "ramdisk"]
    assert len(os.listdir(os.path.join(instances_dir(cloud), "_base"))) == 3

    # os-getConsoleOutput's length: the last N lines.
    tail = console(conn, server.id, length=2)
    assert tail.split("\n")[0] == "stratus-test-image: ready" and len(tail.split("\n")) == 2

    ready = "stratus-test-image: ready"

    # stop / start: a cold boot, the console log appended.
    conn.compute.stop_server(server)
    wait_state(conn, server.id, "SHUTOFF", 4)
    assert domain_state(server.id) == "shut off"
    mark = log_mark(inst_dir)
    conn.compute.start_server(server)
    wait_state(conn, server.id, "ACTIVE", 1)
    wait_log(inst_dir, mark, uuid_line, ready)

    # Hard reboot.
    mark = log_mark(inst_dir)
    conn.compute.reboot_server(server, "HARD")
    wait_state(conn, server.id, "ACTIVE", 1)
    wait_log(inst_dir, mark, uuid_line, ready)

    # Soft reboot: ACPI power button, the guest powers off, then starts again.
    mark = log_mark(inst_dir)
    conn.compute.reboot_server(server, "SOFT")
    wait_state(conn, server.id, "ACTIVE", 1)
    wait_log(inst_dir, mark, "ACPI power button: powering off", uuid_line, ready)

    # pause / unpause, suspend (managed save) / resume.
    conn.compute.pause_server(server)
    wait_state(conn, server.id, "PAUSED", 3)
    assert domain_state(server.id) == "paused"
    conn.compute.unpause_server(server)
    wait_state(conn, server.id, "ACTIVE", 1)
    conn.compute.suspend_server(server)
    wait_state(conn, server.id, "SUSPENDED", 7)
    assert domain_state(server.id) == "shut off"
    assert "Managed save:   yes" in virsh("dominfo", server.id)
    conn.compute.resume_server(server)
    wait_state(conn, server.id, "ACTIVE", 1)
    assert domain_state(server.id) == "running"

    # Snapshot (createImage): a running guest is saved, its disk flattened, restored.
    mark = log_mark(inst_dir)
    image = conn.compute.create_server_image(server, "real-snap", wait=True, timeout=120)
    assert image.status == "active" and image.disk_format == "qcow2"
    assert (image.kernel_id, image.properties["image_type"]) == (
        conn.image.get_image(test_image).kernel_id, "snapshot")
    wait_state(conn, server.id, "ACTIVE", 1)
    assert log_mark(inst_dir) == mark  # restored from memory, not rebooted

    # A second guest boots from the snapshot (it inherits kernel_id and ramdisk_id).
    second = conn.compute.create_server(name="from-snap", image_id=image.id,
                                        flavor_id=flavor.id, config_drive=True,
                                        networks="none")
    second = conn.compute.wait_for_server(second, status="ACTIVE", wait=BOOT_TIMEOUT)
    wait_console(conn, second.id, f"stratus-test-image: instance uuid {second.id}")
    conn.compute.delete_server(second)
    conn.compute.wait_for_delete(second, wait=60)

    # Rescue: boots a rescue disk (here the snapshot) with the guest's disk second.
    mark = log_mark(inst_dir)
    conn.compute.rescue_server(server, admin_pass="rescue-pw", image=image.id)
    wait_state(conn, server.id, "RESCUE", 1)
    wait_log(inst_dir, mark, uuid_line, ready)
    assert "disk.rescue" in virsh("dumpxml", server.id)
    mark = log_mark(inst_dir)
    conn.compute.unrescue_server(server)
    wait_state(conn, server.id, "ACTIVE", 1)
    wait_log(inst_dir, mark, uuid_line, ready)
    assert "disk.rescue" not in virsh("dumpxml", server.id)
    assert not os.path.exists(os.path.join(inst_dir, "disk.rescue"))

    # Shelve (offloaded at once): snapshot, domain and directory gone; unshelve boots
    # it again from the shelved image, which is then deleted.
    conn.compute.shelve_server(server)
    wait_state(conn, server.id, "SHELVED_OFFLOADED", 4)
    assert server.id not in virsh("list", "--all", "--uuid")
    assert not os.path.exists(inst_dir)
    shelved = [i for i in conn.image.images() if i.name == "real-vm-shelved"]
    assert len(shelved) == 1 and shelved[0].status == "active"
    conn.compute.unshelve_server(server)
    wait_state(conn, server.id, "ACTIVE", 1)
    wait_log(inst_dir, 0, uuid_line, ready)
    wait_until(lambda: not [i for i in conn.image.images() if i.name == "real-vm-shelved"],
               30, 0.5, "the shelved image deleted")

    # Rebuild from the snapshot: new disks, new config drive, new console log.
    conn.compute.rebuild_server(server, image=image.id, admin_password="rebuilt-pw")
    wait_state(conn, server.id, "ACTIVE", 1)
    assert conn.compute.get_server(server.id).image.id == image.id
    output = wait_log(inst_dir, 0, uuid_line, ready)
    assert output.count(uuid_line) == 1

    # The guest powers itself off (ACPI from outside): the power state sync sees it.
    virsh("shutdown", server.id)
    wait_state(conn, server.id, "SHUTOFF", 4)

    # Delete: domain, disks, config drive and console log all gone.
    started = time.monotonic()
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=60)
    delete_s = time.monotonic() - started
    assert server.id not in virsh("list", "--all", "--uuid")
    assert not os.path.exists(inst_dir)
    assert set(os.listdir(instances_dir(cloud))) <= {"_base", "_snapshots"}
    assert not os.listdir(os.path.join(instances_dir(cloud), "_snapshots"))
    print(f"\nreal guest: POST to uuid on the console {boot_s:.1f} s, delete {delete_s:.1f} s")


@pytest.mark.timeout(600)
def test_failed_spawn_leaves_nothing(cloud: AllInOne, conn: Any, tmp_path: Any) -> None:
    """A 2 GiB image on a 1 GB flavor: the spawn fails after downloading; ERROR with
    a fault, no domain, no instance directory."""
    big = tmp_path / "big.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(big), "2G"], check=True)
    image_id = upload(cloud, conn, "too-big", str(big), "qcow2", "bare")
    flavor = conn.compute.find_flavor("m1.nano")
    server = conn.compute.create_server(name="too-big", image_id=image_id,
                                        flavor_id=flavor.id, networks="none")
    server = conn.compute.wait_for_server(server, status="ERROR", failures=[],
                                          wait=BOOT_TIMEOUT)
    assert "too small" in server.fault["message"]
    assert server.id not in virsh("list", "--all", "--uuid")
    assert not os.path.exists(os.path.join(instances_dir(cloud), server.id))
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=60)


@pytest.fixture
def var_tmp(libvirt_ready: None) -> Iterator[str]:
    """A directory for a multi-process deployment, where QEMU (libvirt-qemu) can
    reach the disks; afterwards, the guests a failed test left under it are
    destroyed."""
    state = tempfile.mkdtemp(prefix="stratus-libvirt-deploy-", dir="/var/tmp")
    os.chmod(state, 0o755)
    yield state
    leftovers = remove_guests_under(state)
    shutil.rmtree(state, ignore_errors=True)
    assert not leftovers, f"guests left behind: {leftovers}"


def libvirt_deployment(state: str, **options: Any) -> Any:
    """``harness.running_deployment`` of libvirt compute hosts in ``state``
    (skipped without RabbitMQ or PostgreSQL)."""
    return harness.running_deployment(state, skip_unavailable=True, hypervisor="libvirt",
                                      **options)


@pytest.mark.timeout(600)
def test_a_separate_compute_process_fetches_images_over_http(var_tmp: str) -> None:
    """The multi-process topology: api/conductor/scheduler on PostgreSQL and RabbitMQ,
    and a `stratus compute` with no database credentials that fetches the images over
    HTTP as its [service_user] and boots a real guest."""
    with libvirt_deployment(var_tmp, compute_hosts=("compute1",)) as dep:
        with open(dep.compute_confs["compute1"]) as f:
            assert "[database]" not in f.read()
        conn = dep.connect()
        assert [h.hypervisor_type for h in conn.compute.hypervisors(details=True)] \
            == ["QEMU"]
        image_id, _, _ = upload_test_image(dep, conn)
        flavor = conn.compute.find_flavor("m1.nano")
        server = conn.compute.create_server(
            name="multi-vm", image_id=image_id, flavor_id=flavor.id,
            config_drive=True, networks="none")
        server = conn.compute.wait_for_server(server, status="ACTIVE",
                                              wait=BOOT_TIMEOUT)
        wait_console(conn, server.id, f"stratus-test-image: instance uuid {server.id}")
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=60)
        assert server.id not in virsh("list", "--all", "--uuid")
        assert not os.path.exists(os.path.join(dep.workdir, "instances", server.id))


def test_resize_and_cold_migrate_between_two_compute_processes(var_tmp: str) -> None:
    """Two `stratus compute` processes on this machine (each its own instances
    path): resize a real guest to the other host and confirm, then cold-migrate
    it back and confirm; the guest boots again each time."""
    hosts = ("compute1", "compute2")
    workdir = os.path.join(var_tmp, "deploy")  # running_deployment's
    own_paths = {host: {"libvirt": {"instances_path": os.path.join(workdir, f"instances-{host}")}}
                 for host in hosts}
    with libvirt_deployment(var_tmp, compute_hosts=hosts, host_options=own_paths) as dep:
        conn = dep.connect()
        image_id, _, _ = upload_test_image(dep, conn)
        server = conn.compute.create_server(
            name="resize-vm", image_id=image_id,
            flavor_id=conn.compute.find_flavor("m1.nano").id, config_drive=True,
            networks="none")
        server = conn.compute.wait_for_server(server, status="ACTIVE",
                                              wait=BOOT_TIMEOUT)
        source = conn.compute.get_server(server.id).compute_host
        marker = f"stratus-test-image: instance uuid {server.id}"
        wait_console(conn, server.id, marker)

        conn.compute.resize_server(server, conn.compute.find_flavor("m1.micro").id)
        server = conn.compute.wait_for_server(server, status="VERIFY_RESIZE",
                                              wait=BOOT_TIMEOUT)
        dest = conn.compute.get_server(server.id).compute_host
        assert dest != source
        assert os.path.exists(os.path.join(dep.workdir, f"instances-{dest}",
                                           server.id, "disk"))
        conn.compute.confirm_server_resize(server)
        server = conn.compute.wait_for_server(server, status="ACTIVE", wait=60)
        assert not os.path.exists(os.path.join(dep.workdir, f"instances-{source}",
                                               server.id + "_resize"))
        wait_console(conn, server.id, marker)
        assert "running" in virsh("domstate", server.id)

        conn.compute.migrate_server(server)
        server = conn.compute.wait_for_server(server, status="VERIFY_RESIZE",
                                              wait=BOOT_TIMEOUT)
        assert conn.compute.get_server(server.id).compute_host == source
        conn.compute.revert_server_resize(server)
        server = conn.compute.wait_for_server(server, status="ACTIVE", wait=120)
        assert conn.compute.get_server(server.id).compute_host == dest
        assert "running" in virsh("domstate", server.id)
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=60)
        assert server.id not in virsh("list", "--all", "--uuid")
