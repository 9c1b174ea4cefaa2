"""Image data throughput: upload and download of a large image through the
all-in-one (``PUT``/``GET /image/v2/images/{id}/file``) against a plain file
copy of the same data on the same disk.

    python bench/image.py [--size-mib 1024]

Figures are printed, not asserted (target: >= 80 % of a plain copy).
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import shutil
import sys
import tempfile
import time
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.tenants import token  # noqa: E402
from tests.functional import harness  # noqa: E402

BLOCK = 1024 * 1024


def make_source(path: str, size: int) -> str:
    md5 = hashlib.md5()
    block = os.urandom(BLOCK)
    with open(path, "wb") as f:
        for i in range(size // BLOCK):
            chunk = block[:8] + i.to_bytes(8, "big") + block[16:]  # not all identical
            f.write(chunk)
            md5.update(chunk)
    return md5.hexdigest()


def plain_copy(src: str, dst: str) -> float:
    started = time.perf_counter()
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout, BLOCK)
        fout.flush()
        os.fsync(fout.fileno())
    return time.perf_counter() - started


def connection(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)


def upload(url: str, tok: str, image_id: str, src: str) -> float:
    size = os.path.getsize(src)
    conn = connection(url)
    started = time.perf_counter()
    conn.putrequest("PUT", f"/image/v2/images/{image_id}/file")
    conn.putheader("X-Auth-Token", tok)
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Content-Length", str(size))
    conn.endheaders()
    with open(src, "rb") as f:
        while True:
            chunk = f.read(BLOCK)
            if not chunk:
                break
            conn.send(chunk)
    resp = conn.getresponse()
    resp.read()
    elapsed = time.perf_counter() - started
    conn.close()
    assert resp.status == 204, resp.status
    return elapsed


def download(url: str, tok: str, image_id: str, dst: str) -> tuple[float, str]:
    conn = connection(url)
    started = time.perf_counter()
    conn.request("GET", f"/image/v2/images/{image_id}/file", headers={"X-Auth-Token": tok})
    resp = conn.getresponse()
    assert resp.status == 200, resp.status
    md5 = resp.getheader("Content-MD5") or ""
    with open(dst, "wb") as f:
        while True:
            chunk = resp.read(BLOCK)
            if not chunk:
                break
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed, md5


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    size = args.size_mib * BLOCK
    mib = size / BLOCK
    with tempfile.TemporaryDirectory(prefix="stratus-bench-image-") as tmp:
        src = os.path.join(tmp, "source.img")
        checksum = make_source(src, size)
        copy_s = plain_copy(src, os.path.join(tmp, "copy.img"))
        os.unlink(os.path.join(tmp, "copy.img"))

        cloud = harness.AllInOne(os.path.join(tmp, "aio"))
        cloud.start()
        try:
            tok = token(cloud.url, "admin", cloud.password, "admin")
            conn = connection(cloud.url)
            conn.request("POST", "/image/v2/images",
                         body=b'{"name": "bench", "disk_format": "raw", '
                              b'"container_format": "bare"}',
                         headers={"X-Auth-Token": tok, "Content-Type": "application/json"})
            resp = conn.getresponse()
            import json
            image_id = json.loads(resp.read())["id"]
            conn.close()
            up_s = upload(cloud.url, tok, image_id, src)
            down_s, md5 = download(cloud.url, tok, image_id, os.path.join(tmp, "down.img"))
            assert md5 == checksum, (md5, checksum)
        finally:
            cloud.stop()
    print(f"image size                 {mib:8.0f} MiB")
    print(f"plain copy (read+write+fsync) {mib / copy_s:8.1f} MiB/s  ({copy_s:.2f} s)")
    print(f"upload   through all-in-one {mib / up_s:8.1f} MiB/s  ({up_s:.2f} s)  "
          f"{100 * copy_s / up_s:5.1f} % of plain copy")
    print(f"download through all-in-one {mib / down_s:8.1f} MiB/s  ({down_s:.2f} s)  "
          f"{100 * copy_s / down_s:5.1f} % of plain copy")


if __name__ == "__main__":
    main()
