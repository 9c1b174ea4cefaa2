"""The guests' disk files, made with ``qemu-img`` (and mkfs/mkswap).

* the root disk is a qcow2 overlay whose backing file is the cached base image
  (``qemu-img create -f qcow2 -F FMT -b BASE``), grown to the flavor's root_gb;
* ephemeral and swap disks are sparse raw files, formatted ext4 (label
  ``ephemeral0``) and as swap, as Nova formats them.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

from stratus import exception

GiB = 1024 ** 3
MiB = 1024 ** 2


def _run(*args: str, timeout: float = 300) -> str:
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise exception.VirtDriverError(
            reason=f"{args[0]} is not installed (scripts/libvirt-setup installs it)") from None
    except subprocess.TimeoutExpired:
        raise exception.VirtDriverError(
            reason=f"{' '.join(args[:3])} took more than {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise exception.VirtDriverError(
            reason=f"{' '.join(args)} failed: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def info(path: str, fmt: str | None = None) -> dict[str, Any]:
    """``qemu-img info`` of a file: ``format``, ``virtual-size``, ``backing-filename``..."""
    args = ["qemu-img", "info", "--output=json"]
    if fmt:
        args += ["-f", fmt]
    return json.loads(_run(*args, path))


def check_image(path: str, disk_format: str) -> dict[str, Any]:
    """Check that a downloaded image is what the image service said it is.

    qemu-img probes the format; a qcow2 that claims to be raw (or the
    reverse), or a qcow2 with a backing file of its own (which would let a
    guest read any file of the host), is refused.
    """
    details = info(path)
    probed = details.get("format")
    if disk_format in ("raw", "ami") and probed != "raw":
        raise exception.VirtDriverError(
            reason=f"image claims to be {disk_format} but qemu-img sees {probed}")
    if disk_format == "qcow2" and probed != "qcow2":
        raise exception.VirtDriverError(
            reason=f"image claims to be qcow2 but qemu-img sees {probed}")
    if details.get("backing-filename"):
        raise exception.VirtDriverError(reason="image has a backing file: refused")
    return details


def convert_to_raw(src: str, src_format: str, dest: str) -> None:
    convert(src, src_format, dest, "raw")


def convert(src: str, src_format: str, dest: str, dest_format: str) -> None:
    """Copy ``src`` (with its backing chain, flattened) to ``dest``."""
    _run("qemu-img", "convert", "-f", src_format, "-O", dest_format, src, dest)


def create_overlay(base: str, base_format: str, path: str, size_bytes: int | None) -> None:
    """A qcow2 file backed by ``base``, ``size_bytes`` big (the base's size when None)."""
    args = ["qemu-img", "create", "-q", "-f", "qcow2", "-F", base_format, "-b", base, path]
    if size_bytes:
        args.append(str(size_bytes))
    _run(*args)


def resize(path: str, size_bytes: int, fmt: str = "qcow2") -> None:
    _run("qemu-img", "resize", "-q", "-f", fmt, path, str(size_bytes))


def create_ephemeral(path: str, size_gb: int, label: str = "ephemeral0") -> None:
    """A sparse raw disk of ``size_gb`` GiB with an ext4 file system on it."""
    with open(path, "wb") as f:
        f.truncate(size_gb * GiB)
    mkfs = shutil.which("mkfs.ext4") or "/sbin/mkfs.ext4"
    if os.path.exists(mkfs):
        _run(mkfs, "-q", "-F", "-L", label, "-E", "nodiscard", path)


def create_swap(path: str, size_mb: int) -> None:
    """A sparse raw disk of ``size_mb`` MiB formatted as swap."""
    with open(path, "wb") as f:
        f.truncate(size_mb * MiB)
    mkswap = shutil.which("mkswap") or "/sbin/mkswap"
    if os.path.exists(mkswap):
        _run(mkswap, "-L", "swap0", path)


def supports_direct_io(directory: str) -> bool:
    """Whether files in ``directory`` can be opened with O_DIRECT (cache='none'
    needs it; tmpfs and some overlay file systems refuse it)."""
    probe = os.path.join(directory, f".directio.{os.getpid()}")
    try:
        fd = os.open(probe, os.O_CREAT | os.O_WRONLY | getattr(os, "O_DIRECT", 0), 0o600)
        os.close(fd)
        return hasattr(os, "O_DIRECT")
    except OSError:
        return False
    finally:
        try:
            os.unlink(probe)
        except OSError:
            pass
