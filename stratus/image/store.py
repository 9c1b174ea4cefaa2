"""Image data on the local filesystem, streamed both ways.

``FileStore.write`` consumes an iterable of chunks into a temporary file in
the store directory, hashing as it goes (md5 for Glance's ``checksum``,
sha512 for ``os_hash_value``, each on a thread of its own), then fsyncs and renames it into place: a
reader never sees a partial image and the data is never held in memory.
"""
from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import hashlib
import os
import re
import tempfile
from typing import BinaryIO, Iterable, Iterator

from stratus import exception

HASH_ALGO = "sha512"
CHUNK_SIZE = 64 * 1024
HEAD_BYTES = 512  # kept from the start of the data, for format inspection
_MAX_PENDING_HASHES = 8  # hash updates queued behind the writer (chunks held in memory)
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


class ImageDataNotFound(exception.NotFound):
    msg_fmt = "Image data for %(image_id)s could not be found."


@dataclasses.dataclass(frozen=True)
class StoredData:
    """What ``write`` learned about the data while storing it."""

    size: int
    checksum: str           # md5 hex digest (Glance's ``checksum``)
    os_hash_algo: str
    os_hash_value: str      # hex digest with ``os_hash_algo``
    head: bytes             # the first HEAD_BYTES bytes


class FileStore:
    """One file per image under ``store_dir``, named by image id."""

    def __init__(self, store_dir: str, chunk_size: int = CHUNK_SIZE) -> None:
        self.store_dir = os.path.abspath(store_dir)
        self.chunk_size = chunk_size
        os.makedirs(self.store_dir, exist_ok=True)

    def path(self, image_id: str) -> str:
        if not _SAFE_ID.fullmatch(image_id):
            raise exception.Invalid(f"Invalid image id {image_id!r}.")
        return os.path.join(self.store_dir, image_id)

    def write(self, image_id: str, chunks: Iterable[bytes]) -> StoredData:
        """Store the data of ``image_id`` (replacing any); nothing is left behind on error."""
        final = self.path(image_id)
        md5 = hashlib.md5(usedforsecurity=False)
        digest = hashlib.new(HASH_ALGO)
        size = 0
        head = bytearray()
        fd, tmp = tempfile.mkstemp(prefix=f".{image_id}.", suffix=".part", dir=self.store_dir)
        # Each hash runs on a thread of its own (hashlib releases the GIL), in
        # chunk order, while this thread writes: hashing does not slow the write.
        pools = [concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="image-hash")
                 for _ in range(2)]
        pending: collections.deque[concurrent.futures.Future] = collections.deque()
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    if not chunk:
                        continue
                    pending.append(pools[0].submit(md5.update, chunk))
                    pending.append(pools[1].submit(digest.update, chunk))
                    f.write(chunk)
                    size += len(chunk)
                    if len(head) < HEAD_BYTES:
                        head += chunk[:HEAD_BYTES - len(head)]
                    while len(pending) > _MAX_PENDING_HASHES:
                        pending.popleft().result()
                while pending:
                    pending.popleft().result()
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        finally:
            for pool in pools:
                pool.shutdown(wait=True)
        return StoredData(size=size, checksum=md5.hexdigest(), os_hash_algo=HASH_ALGO,
                          os_hash_value=digest.hexdigest(), head=bytes(head))

    def exists(self, image_id: str) -> bool:
        return os.path.isfile(self.path(image_id))

    def size(self, image_id: str) -> int:
        try:
            return os.path.getsize(self.path(image_id))
        except FileNotFoundError:
            raise ImageDataNotFound(image_id=image_id)

    def open(self, image_id: str) -> BinaryIO:
        """The stored data, opened for reading (the caller closes it)."""
        try:
            return open(self.path(image_id), "rb")
        except FileNotFoundError:
            raise ImageDataNotFound(image_id=image_id)

    def iter_data(self, image_id: str, start: int = 0,
                  length: int | None = None) -> Iterator[bytes]:
        """The data (or ``length`` bytes from ``start``) in chunks.

        The file is opened at once (so a missing image fails here, not while
        streaming) and closed when the iterator is exhausted or closed.
        """
        return _ChunkReader(self.open(image_id), start, length, self.chunk_size)

    def delete(self, image_id: str) -> bool:
        """Remove the data; False if there was none."""
        try:
            os.unlink(self.path(image_id))
        except FileNotFoundError:
            return False
        return True


class _ChunkReader:
    """Iterates over a file region in chunks; closing it closes the file
    (WSGI servers call ``close`` even when the client goes away early)."""

    def __init__(self, f: BinaryIO, start: int, length: int | None, chunk_size: int) -> None:
        self._f = f
        self._remaining = length
        self._chunk_size = chunk_size
        if start:
            f.seek(start)

    def __iter__(self) -> "_ChunkReader":
        return self

    def __next__(self) -> bytes:
        if self._f.closed:
            raise StopIteration
        size = self._chunk_size
        if self._remaining is not None:
            size = min(size, self._remaining)
        chunk = self._f.read(size) if size > 0 else b""
        if not chunk:
            self.close()
            raise StopIteration
        if self._remaining is not None:
            self._remaining -= len(chunk)
        return chunk

    def close(self) -> None:
        self._f.close()
