"""This host's cache of images fetched from the image service.

Files are named by the image's checksum (Glance's md5 ``checksum``), so two
image records with the same data share one file, and a cached file is never
stale: an image's data cannot change once uploaded. A download is written to
a temporary file while md5 and the image's ``os_hash_algo`` (sha512) are
computed; it is renamed into place only when both match what the image
service recorded, so a truncated or corrupted download never enters the
cache. Images in formats QEMU should not use as a backing file directly
(vmdk, vdi, vhd...) are converted to raw once, beside the original.

Using a file sets its mtime; :meth:`ImageCache.remove_unused` deletes files
no guest uses whose mtime is older than the configured age (Nova's
``remove_unused_original_minimum_age_seconds``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from stratus import exception
from stratus.compute.virt.libvirt import disk

LOG = logging.getLogger(__name__)

#: disk_format -> format of the cached file QEMU uses.
DIRECT_FORMATS = {"raw": "raw", "ami": "raw", "qcow2": "qcow2", "aki": "kernel",
                  "ari": "ramdisk"}
CONVERTIBLE_FORMATS = {"vmdk", "vdi", "vhd", "vhdx"}
_TMP_PREFIX = ".tmp-"


@dataclasses.dataclass(frozen=True)
class CachedImage:
    path: str
    format: str                   # raw | qcow2 | kernel | ramdisk
    image: Mapping[str, Any]      # the image record


class ImageCache:
    def __init__(self, base_dir: str, get_image: Callable[[str], Mapping[str, Any]],
                 download: Callable[[str], Iterable[bytes]]) -> None:
        self.base_dir = base_dir
        self._get_image = get_image
        self._download = download
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        os.makedirs(base_dir, exist_ok=True)

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def fetch(self, image_id: str) -> CachedImage:
        """The cached file of image ``image_id``, downloaded (and checked) if needed."""
        image = self._get_image(image_id)
        if image.get("status") != "active":
            raise exception.VirtDriverError(
                reason=f"image {image_id} is {image.get('status')}, not active")
        checksum = image.get("checksum")
        if not checksum:
            raise exception.VirtDriverError(reason=f"image {image_id} has no checksum")
        disk_format = image.get("disk_format") or "raw"
        if disk_format not in DIRECT_FORMATS and disk_format not in CONVERTIBLE_FORMATS:
            raise exception.VirtDriverError(
                reason=f"image {image_id} has disk_format {disk_format}, which this "
                       f"driver cannot boot")
        path = os.path.join(self.base_dir, checksum)
        with self._lock(checksum):
            if not os.path.exists(path):
                self._fetch_verified(image_id, image, path)
            fmt = DIRECT_FORMATS.get(disk_format, "raw")
            if disk_format in CONVERTIBLE_FORMATS:
                converted = f"{path}.raw"
                if not os.path.exists(converted):
                    tmp = self._tmp_path()
                    try:
                        disk.convert_to_raw(path, disk_format, tmp)
                        os.replace(tmp, converted)
                    finally:
                        _unlink(tmp)
                path = converted
            elif fmt in ("raw", "qcow2"):
                disk.check_image(path, fmt)
            _touch(path)
        return CachedImage(path=path, format=fmt, image=image)

    def _tmp_path(self) -> str:
        return os.path.join(self.base_dir, f"{_TMP_PREFIX}{uuid.uuid4().hex}")

    def _fetch_verified(self, image_id: str, image: Mapping[str, Any], path: str) -> None:
        started = time.monotonic()
        tmp = self._tmp_path()
        md5 = hashlib.md5(usedforsecurity=False)
        algo = image.get("os_hash_algo")
        expected_hash = image.get("os_hash_value")
        multihash = hashlib.new(algo) if algo and expected_hash else None
        size = 0
        try:
            with open(tmp, "wb") as f:
                for chunk in _chunks(self._download(image_id)):
                    f.write(chunk)
                    md5.update(chunk)
                    if multihash is not None:
                        multihash.update(chunk)
                    size += len(chunk)
                f.flush()
                os.fsync(f.fileno())
            if md5.hexdigest() != image["checksum"]:
                raise exception.VirtDriverError(
                    reason=f"image {image_id} download is corrupt: md5 {md5.hexdigest()} "
                           f"!= checksum {image['checksum']}")
            if multihash is not None and multihash.hexdigest() != expected_hash:
                raise exception.VirtDriverError(
                    reason=f"image {image_id} download is corrupt: {algo} does not match "
                           f"os_hash_value")
            if image.get("size") is not None and size != int(image["size"]):
                raise exception.VirtDriverError(
                    reason=f"image {image_id} download is {size} bytes, not {image['size']}")
            os.replace(tmp, path)
        finally:
            _unlink(tmp)
        LOG.info("Cached image %s (%d bytes) as %s in %.2f s", image_id, size, path,
                 time.monotonic() - started)

    def cached_files(self) -> list[str]:
        try:
            names = os.listdir(self.base_dir)
        except FileNotFoundError:
            return []
        return [os.path.join(self.base_dir, n) for n in names
                if not n.startswith(_TMP_PREFIX) and not n.startswith(".")]

    def remove_unused(self, in_use: Iterable[str], max_age: float,
                      now: float | None = None) -> list[str]:
        """Delete cached files that no guest uses and that were last used more
        than ``max_age`` seconds ago; leftovers of interrupted downloads go too.
        Files in use have their mtime refreshed. Returns the paths removed."""
        now = time.time() if now is None else now
        used = {os.path.realpath(p) for p in in_use}
        removed = []
        for path in self.cached_files():
            real = os.path.realpath(path)
            if real in used:
                _touch(path)
                continue
            try:
                age = now - os.stat(path).st_mtime
            except FileNotFoundError:
                continue
            if age < max_age:
                continue
            key = os.path.basename(path).split(".", 1)[0]
            with self._lock(key):
                _unlink(path)
            removed.append(path)
            LOG.info("Removed unused base image %s (unused for %.0f s)", path, age)
        for name in os.listdir(self.base_dir) if os.path.isdir(self.base_dir) else []:
            tmp = os.path.join(self.base_dir, name)
            if name.startswith(_TMP_PREFIX) and now - _mtime(tmp) > 3600:
                _unlink(tmp)
        return removed


def _chunks(data: Iterable[bytes]) -> Iterator[bytes]:
    for chunk in data:
        if chunk:
            yield chunk


def _touch(path: str) -> None:
    try:
        os.utime(path)
    except OSError:
        pass


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return time.time()


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
