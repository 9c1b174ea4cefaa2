"""The libvirt driver's image cache and disk helpers (qemu-img, no libvirtd)."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time

import pytest

from stratus import exception
from stratus.compute.virt.libvirt import disk, imagecache

needs_qemu_img = pytest.mark.skipif(not shutil.which("qemu-img"),
                                    reason="qemu-img not installed (scripts/libvirt-setup)")


class FakeImages:
    """An image service: records and data, counting downloads."""

    def __init__(self) -> None:
        self.records: dict[str, dict] = {}
        self.data: dict[str, bytes] = {}
        self.downloads = 0

    def add(self, image_id: str, data: bytes, disk_format: str = "raw", **overrides) -> None:
        self.records[image_id] = {
            "id": image_id, "status": "active", "disk_format": disk_format,
            "size": len(data), "checksum": hashlib.md5(data).hexdigest(),
            "os_hash_algo": "sha512", "os_hash_value": hashlib.sha512(data).hexdigest(),
            **overrides}
        self.data[image_id] = data

    def get(self, image_id: str) -> dict:
        return self.records[image_id]

    def download(self, image_id: str):
        self.downloads += 1
        data = self.data[image_id]
        for i in range(0, len(data), 1000):
            yield data[i:i + 1000]


@pytest.fixture
def images():
    return FakeImages()


@pytest.fixture
def cache(tmp_path, images):
    return imagecache.ImageCache(str(tmp_path / "_base"), images.get, images.download)


def leftovers(cache) -> list[str]:
    return sorted(os.listdir(cache.base_dir))


def test_kernel_is_cached_by_checksum_and_downloaded_once(cache, images):
    data = os.urandom(5000)
    images.add("k1", data, "aki")
    images.add("k2", data, "aki")  # another record, same data: same file
    first = cache.fetch("k1")
    assert first.format == "kernel"
    assert os.path.basename(first.path) == hashlib.md5(data).hexdigest()
    with open(first.path, "rb") as f:
        assert f.read() == data
    assert cache.fetch("k1").path == first.path
    assert cache.fetch("k2").path == first.path
    assert images.downloads == 1
    assert leftovers(cache) == [os.path.basename(first.path)]


@pytest.mark.parametrize("field, value, message", [
    ("checksum", "0" * 32, "md5"),
    ("os_hash_value", "0" * 128, "sha512"),
    ("size", 1, "bytes"),
])
def test_a_corrupt_download_is_refused_and_leaves_nothing(cache, images, field, value, message):
    images.add("bad", os.urandom(3000), "ari", **{field: value})
    with pytest.raises(exception.VirtDriverError, match=message):
        cache.fetch("bad")
    assert leftovers(cache) == []


def test_a_download_that_breaks_leaves_nothing(cache, images):
    images.add("img", os.urandom(3000), "aki")

    def broken(_image_id):
        yield b"partial"
        raise OSError("connection reset")

    cache._download = broken
    with pytest.raises(OSError):
        cache.fetch("img")
    assert leftovers(cache) == []


def test_images_that_cannot_boot_are_refused(cache, images):
    images.add("queued", b"x", "raw", status="queued")
    with pytest.raises(exception.VirtDriverError, match="queued"):
        cache.fetch("queued")
    images.add("iso", b"x", "iso")
    with pytest.raises(exception.VirtDriverError, match="disk_format iso"):
        cache.fetch("iso")
    images.add("nodata", b"", "raw", checksum=None)
    with pytest.raises(exception.VirtDriverError, match="no checksum"):
        cache.fetch("nodata")


@needs_qemu_img
def test_raw_and_qcow2_bases_are_checked_with_qemu_img(cache, images, tmp_path):
    qcow = tmp_path / "src.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(qcow), "64M"], check=True)
    images.add("q", qcow.read_bytes(), "qcow2")
    assert cache.fetch("q").format == "qcow2"
    images.add("r", b"\0" * 65536, "raw")
    assert cache.fetch("r").format == "raw"
    # A qcow2 uploaded as raw would let the guest see a backing file: refused.
    qcow2 = tmp_path / "other.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(qcow2), "32M"], check=True)
    images.add("liar", qcow2.read_bytes(), "raw")
    with pytest.raises(exception.VirtDriverError, match="qemu-img sees qcow2"):
        cache.fetch("liar")


@needs_qemu_img
def test_qcow2_with_a_backing_file_is_refused(cache, images, tmp_path):
    base = tmp_path / "base.raw"
    base.write_bytes(b"\0" * 65536)
    evil = tmp_path / "evil.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(base),
                    str(evil)], check=True)
    images.add("evil", evil.read_bytes(), "qcow2")
    with pytest.raises(exception.VirtDriverError, match="backing file"):
        cache.fetch("evil")


def test_unused_bases_are_removed_after_the_max_age(cache, images):
    for name in ("old-unused", "old-used", "young-unused"):
        images.add(name, os.urandom(100) + name.encode(), "aki")
    paths = {name: cache.fetch(name).path for name in images.records}
    now = time.time()
    for name in ("old-unused", "old-used"):
        os.utime(paths[name], (now - 7200, now - 7200))
    with open(os.path.join(cache.base_dir, ".tmp-stale"), "wb"):
        pass
    os.utime(os.path.join(cache.base_dir, ".tmp-stale"), (now - 7200, now - 7200))

    removed = cache.remove_unused([paths["old-used"]], max_age=3600, now=now)
    assert removed == [paths["old-unused"]]
    assert sorted(leftovers(cache)) == sorted(os.path.basename(paths[n])
                                              for n in ("old-used", "young-unused"))
    # A base in use counts as just used: its age restarts.
    assert os.stat(paths["old-used"]).st_mtime > now - 60
    # Fetched again, a removed base is downloaded again.
    downloads = images.downloads
    cache.fetch("old-unused")
    assert images.downloads == downloads + 1


@needs_qemu_img
def test_overlay_is_grown_to_the_flavor_and_backed_by_the_base(tmp_path):
    base = tmp_path / "base.raw"
    base.write_bytes(b"\0" * (1024 * 1024))
    overlay = str(tmp_path / "disk")
    disk.create_overlay(str(base), "raw", overlay, 1 * disk.GiB)
    info = disk.info(overlay)
    assert info["format"] == "qcow2" and info["virtual-size"] == disk.GiB
    assert info["backing-filename"] == str(base)
    assert info.get("backing-filename-format") == "raw"
    disk.resize(overlay, 2 * disk.GiB)
    assert disk.info(overlay)["virtual-size"] == 2 * disk.GiB
    # Without a size, the overlay is the base's size.
    same = str(tmp_path / "same")
    disk.create_overlay(str(base), "raw", same, None)
    assert disk.info(same)["virtual-size"] == 1024 * 1024


def test_ephemeral_and_swap_are_sparse(tmp_path):
    eph = str(tmp_path / "disk.eph0")
    disk.create_ephemeral(eph, 1)
    assert os.path.getsize(eph) == disk.GiB
    assert os.stat(eph).st_blocks * 512 < 64 * disk.MiB
    swap = str(tmp_path / "disk.swap")
    disk.create_swap(swap, 16)
    assert os.path.getsize(swap) == 16 * disk.MiB
    if shutil.which("mkswap") or os.path.exists("/sbin/mkswap"):
        with open(swap, "rb") as f:
            assert b"SWAPSPACE2" in f.read(4096)
