"""Spool segment files: what is known about each one, and the file operations on them.

Allocation, mapping, trimming, adoption of a dead process's segment (under ``flock``), deletion,
``fsync`` and reading frames back. :class:`~flask_difylogstore.pipeline.spool.Spool` decides when.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import mmap
import os
import time
from collections.abc import Callable
from pathlib import Path

from flask_difylogstore.pipeline.frames import HEADER, decode_frames

logger = logging.getLogger(__name__)
_PAGE = mmap.PAGESIZE


class Segment:
    """One segment file and what is known about its records."""

    __slots__ = (
        "acked",
        "adopted",
        "appended",
        "capacity",
        "created",
        "deleted",
        "dirty",
        "fd",
        "map",
        "path",
        "read_offset",
        "sealed",
        "seq",
        "size",
    )

    def __init__(
        self,
        path: Path,
        fd: int,
        *,
        size: int = 0,
        adopted: bool = False,
        capacity: int = 0,
        mapped: mmap.mmap | None = None,
    ) -> None:
        self.path = path
        self.fd = fd
        self.size = size
        self.capacity = capacity
        self.map = mapped
        self.appended = 0
        self.acked = 0
        self.sealed = False
        self.adopted = adopted
        self.read_offset = 0
        self.seq = 0
        self.created = time.time()
        self.dirty = False
        self.deleted = False

    @property
    def unacked(self) -> int:
        return self.appended - self.acked

    @property
    def done(self) -> bool:
        """Sealed (or adopted and read to the end) with every record acknowledged."""
        return self.sealed and self.acked >= self.appended


def _allocate(fd: int, size: int, *, prefault: bool) -> tuple[int, mmap.mmap | None]:
    """Reserve ``size`` bytes (rounded to pages) on disk and map them; ``(capacity, None)`` when unmappable.

    ``OSError`` (a full disk) propagates: the append fails cleanly instead of a later copy into an
    unbacked page killing the process. With ``prefault`` the pages are written once with zeros
    (``os.pwrite``, which releases the GIL), so a copy into the mapping later finds each page in
    the page cache instead of allocating it (a quarter of the cost of an append to a fresh page).
    """
    capacity = -(-size // _PAGE) * _PAGE
    fs = os.fstatvfs(fd)
    if fs.f_bavail * fs.f_frsize < 2 * capacity:
        raise OSError(errno.ENOSPC, f"less than {2 * capacity} bytes free for a spool segment")
    try:
        os.posix_fallocate(fd, 0, capacity)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            raise
        return 0, None
    if prefault:
        zeros = memoryview(bytes(capacity))  # one call: each return to Python costs a GIL hand-over
        offset = 0
        while offset < capacity:
            offset += os.pwrite(fd, zeros[offset:], offset)
    try:
        return capacity, mmap.mmap(fd, capacity, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    except (OSError, ValueError):
        os.ftruncate(fd, 0)
        return 0, None


def _unmap(seg: Segment) -> None:
    if seg.map is not None:
        with contextlib.suppress(BufferError, OSError, ValueError):
            seg.map.close()
        seg.map = None


def _trim(seg: Segment) -> None:
    """Unmap a sealed segment and give back its allocated tail."""
    if seg.map is not None:
        _unmap(seg)
        if not seg.deleted and seg.fd >= 0:
            with contextlib.suppress(OSError):
                os.ftruncate(seg.fd, seg.size)
        seg.capacity = seg.size


def _try_adopt(path: Path) -> Segment | None:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        stat = os.fstat(fd)
        if stat.st_nlink == 0 or os.stat(path).st_ino != stat.st_ino:
            raise OSError("segment was deleted while locking it")
    except OSError:
        os.close(fd)
        return None
    return Segment(path, fd, size=stat.st_size, adopted=True)


def _close_fd(seg: Segment) -> None:
    _unmap(seg)
    if seg.fd >= 0:
        with contextlib.suppress(OSError):
            os.close(seg.fd)
        seg.fd = -1


def trim(segments: list[Segment]) -> None:
    """Unmap sealed segments and cut the allocated tails off (see :meth:`Spool.take_sealed`)."""
    for seg in segments:
        _trim(seg)


def delete(segments: list[Segment]) -> None:
    """Unlink finished segments, then close them (which releases their lock)."""
    for seg in segments:
        try:
            seg.path.unlink(missing_ok=True)
        except OSError as exc:
            logger.warning("flask-difylogstore: could not delete spool segment %s: %s", seg.path, exc)
        _close_fd(seg)


def sync(segments: list[Segment], directory: Path | None, on_error: Callable[[str], None]) -> None:
    """fsync segment files (and the directory, for new files); errors are reported, not raised."""
    for seg in segments:
        fd = seg.fd
        if fd < 0 or seg.deleted:
            continue
        try:
            os.fsync(fd)
        except OSError as exc:
            if not seg.deleted:
                on_error(f"fsync {seg.path.name}: {exc}")
    if directory is not None:
        try:
            dfd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as exc:
            on_error(f"fsync {directory}: {exc}")


def read_segment(seg: Segment, end: int, max_bytes: int = 4 * 1024 * 1024) -> tuple[list[bytes], int]:
    """Frames of ``seg`` from its read offset up to ``end``; advances the offset, returns bytes skipped.

    Reads at least one whole frame however large. An adopted segment's end is its end of file, so
    an incomplete frame there is a torn tail and skipped.
    """
    offset = seg.read_offset
    if offset >= end or seg.fd < 0:
        return [], 0
    want = min(end - offset, max_bytes)
    data = os.pread(seg.fd, want, offset)
    at_eof = offset + len(data) >= end
    payloads, consumed, skipped = decode_frames(data, at_eof=at_eof and seg.adopted)
    if not payloads and consumed == 0 and not at_eof and len(data) >= HEADER.size:
        _, length, _ = HEADER.unpack_from(data, 0)
        data = os.pread(seg.fd, min(end - offset, HEADER.size + length), offset)
        at_eof = offset + len(data) >= end
        payloads, consumed, skipped = decode_frames(data, at_eof=at_eof and seg.adopted)
    seg.read_offset = offset + consumed
    return payloads, skipped
