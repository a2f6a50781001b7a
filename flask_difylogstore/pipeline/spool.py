"""Durable local spool: append-only segment files of checksummed frames.

A frame is ``magic | length | crc32 | payload``, so a reader can tell a torn tail (the process
died mid-append) or a damaged region from data, skip it and resynchronise on the next frame.
Each process appends to its own segments and holds an exclusive ``flock`` on each of them while
it lives; a segment nobody holds a lock on belongs to a dead process and is adopted (replayed)
by whichever process locks it first. A segment is deleted only after every record in it was
acknowledged by the backend (or moved to the dead-letter file).

A segment is allocated up front (``posix_fallocate``) and mapped into memory, so an append is
a copy into the page cache under the pipeline's lock: no system call. A write under the lock would
release the GIL while holding it, and the other saving threads would queue behind each hand-over
(a lock convoy: milliseconds per save). What is copied survives the process being killed: the
pages belong to the file, not to the process. Allocating first also means a full disk is an
``OSError`` when a segment is created, never a ``SIGBUS`` on a copy (copy-on-write file systems
allocate again on every write, so a segment is only created with twice its size free). The next
segment is prepared in the background with its pages written once, so appends to it find them in
the page cache; where a file cannot be mapped the spool falls back to ``os.pwrite``. A separate
thread ``fsync``s at most ``fsync_interval_ms`` later (group commit), which bounds what a power
loss can take. A segment is cut back to its used size when sealed; the zero-filled tail of the
live segment of a killed process is padding, not damage.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import logging
import mmap
import os
import struct
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

MAGIC = b"\xd1\xf7"
HEADER = struct.Struct(">2sII")
MAX_FRAME = 256 * 1024 * 1024
SEGMENT_BYTES = 8 * 1024 * 1024
SEGMENT_AGE_S = 5.0
_PAGE = mmap.PAGESIZE
_CRC_PIECE = 4096


class SpoolFullError(Exception):
    """The spool reached its size cap."""


def encode_frame(payload: bytes) -> bytes:
    """One frame: magic, payload length, CRC-32 of the payload, payload."""
    return frame_header(payload) + payload


def frame_header(payload: bytes) -> bytes:
    """The header of ``payload``'s frame (appended with the payload after it, no copy joins them)."""
    return HEADER.pack(MAGIC, len(payload), crc32(payload))


def crc32(data: bytes) -> int:
    """CRC-32 of ``data``, computed in pieces that keep the GIL.

    ``zlib.crc32`` releases the GIL for inputs over 5 KiB; a saving thread then has to win the
    GIL back from whichever thread took it, which with a busy writer thread costs up to the
    interpreter's switch interval (5 ms) per save. Releasing saves nothing for a few kilobytes.
    """
    if len(data) <= _CRC_PIECE:
        return zlib.crc32(data)
    view = memoryview(data)
    crc = 0
    for start in range(0, len(view), _CRC_PIECE):
        crc = zlib.crc32(view[start : start + _CRC_PIECE], crc)
    return crc


def decode_frames(data: bytes, *, at_eof: bool) -> tuple[list[bytes], int, int]:
    """Complete, valid frames in ``data``; returns ``(payloads, bytes consumed, bytes skipped)``.

    Damaged bytes are skipped up to the next frame that checks out. An incomplete frame at the end
    is left unconsumed unless ``at_eof`` (then it is a torn tail and counted as skipped).
    """
    payloads: list[bytes] = []
    pos = skipped = 0
    end = len(data)
    while pos < end:
        if end - pos < HEADER.size:
            break
        magic, length, crc = HEADER.unpack_from(data, pos)
        if magic != MAGIC or length > MAX_FRAME:
            nxt = data.find(MAGIC, pos + 1)
            nxt = end if nxt < 0 else nxt
            skipped += _damaged(data, pos, nxt)
            pos = nxt
            continue
        stop = pos + HEADER.size + length
        if stop > end:
            break
        payload = data[pos + HEADER.size : stop]
        if crc32(payload) != crc:
            nxt = data.find(MAGIC, pos + 1)
            nxt = end if nxt < 0 else nxt
            skipped += _damaged(data, pos, nxt)
            pos = nxt
            continue
        payloads.append(payload)
        pos = stop
    if at_eof and pos < end:
        skipped += _damaged(data, pos, end)
        pos = end
    return payloads, pos, skipped


def _damaged(data: bytes, start: int, stop: int) -> int:
    """Bytes of ``data[start:stop]`` that are not zero padding (the allocated, unwritten tail)."""
    region = data[start:stop]
    return len(region.rstrip(b"\0"))


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


class Spool:
    """The segment files of one process in one directory. Not thread-safe: the caller locks.

    ``append``, ``ack``, ``adopt`` and the spare's installation run under the pipeline's lock;
    ``prepare_spare``, ``scan``, ``sync`` (fsync) and the reads run without it, on file
    descriptors that stay open until the segment is deleted.
    """

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        segment_bytes: int = SEGMENT_BYTES,
        segment_age_s: float = SEGMENT_AGE_S,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.segment_age_s = segment_age_s
        self.prefix = f"seg-{os.getpid()}-{time.time_ns()}-"
        self.active: Segment | None = None
        self.spare: Segment | None = None
        self.segments: list[Segment] = []
        self.adopted: list[Segment] = []
        self.untrimmed: list[Segment] = []
        self.own_bytes = 0
        self.others_bytes = 0
        self._names = itertools.count(1)  # next() is atomic: the spare is named outside the lock
        self._activations = itertools.count(1)
        self._dir_dirty = False

    # -- appending ---------------------------------------------------------------------------

    @property
    def total_bytes(self) -> int:
        return self.own_bytes + self.others_bytes

    def append(self, frames: bytes | Sequence[bytes], count: int) -> tuple[Segment, int]:
        """Append ``count`` encoded frames at the end of the active segment; return it and the start offset.

        ``frames`` is the bytes of the frames, or pieces of them in order (headers and payloads).
        A mapped segment takes memory copies (no system call); an unmapped one ``os.pwrite``.
        The offset only advances once the bytes are there, so a failed write leaves nothing behind
        that a reader would take for data.
        """
        parts = (frames,) if isinstance(frames, bytes) else frames
        size = sum(len(part) for part in parts)
        if self.own_bytes + self.others_bytes + size > self.max_bytes:
            raise SpoolFullError(f"spool {self.directory} holds {self.total_bytes} of {self.max_bytes} bytes")
        seg = self.active
        if seg is None or self._worn(seg) or (seg.map is not None and seg.size + size > seg.capacity):
            seg = self._rotate(size)
        start = at = seg.size
        mapped = seg.map
        for part in parts:
            if mapped is not None:
                mapped[at : at + len(part)] = part
            else:
                view, done = memoryview(part), 0
                while done < len(part):
                    done += os.pwrite(seg.fd, view[done:], at + done)
            at += len(part)
        seg.size = start + size
        seg.appended += count
        seg.dirty = True
        self.own_bytes += size
        return seg, start

    def _rotate(self, needed: int = 0) -> Segment:
        if self.active is not None:
            self._seal(self.active)
            self.active = None
        seg, self.spare = self.spare, None
        if seg is None or seg.capacity < needed:
            if seg is not None:
                delete([seg])
            seg = self._create(needed, prefault=False)
        seg.created = time.time()
        seg.seq = next(self._activations)
        self.segments.append(seg)
        self.active = seg
        return seg

    def _create(self, needed: int, *, prefault: bool) -> Segment:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{self.prefix}{next(self._names):06d}.log"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            capacity, mapped = _allocate(fd, max(self.segment_bytes, needed), prefault=prefault)
        except OSError:
            with contextlib.suppress(OSError):
                path.unlink()
            os.close(fd)
            raise
        self._dir_dirty = True
        return Segment(path, fd, capacity=capacity, mapped=mapped)

    def wants_spare(self) -> bool:
        """Whether a spare segment should be prepared (none ready, and the spool is in use)."""
        return self.spare is None and self.active is not None

    def prepare_spare(self) -> Segment:
        """A new segment, allocated, mapped and with its pages touched: appends to it never fault.

        Runs without the lock (in the fsync thread): writing the zeros releases the GIL, so this
        costs the saving threads nothing. Install it with :meth:`install_spare`.
        """
        return self._create(self.segment_bytes, prefault=True)

    def install_spare(self, seg: Segment) -> bool:
        """Keep ``seg`` as the next segment; ``False`` (caller deletes it) when one is already there."""
        if self.spare is not None:
            return False
        self.spare = seg
        return True

    def _worn(self, seg: Segment) -> bool:
        """Full, or old with everything in it acknowledged (so it can go at once).

        Rotating by age only when acknowledged keeps what a crash re-sends small without turning
        a long outage into thousands of small files.
        """
        if seg.size >= self.segment_bytes:
            return True
        return seg.size > 0 and seg.acked >= seg.appended and time.time() - seg.created >= self.segment_age_s

    def seal_idle(self) -> None:
        """Seal the active segment when worn, so acknowledged data does not linger on disk."""
        seg = self.active
        if seg is not None and self._worn(seg):
            self._seal(seg)
            self.active = None

    def _seal(self, seg: Segment) -> None:
        """No more appends to ``seg``; unmapping it and cutting its tail wait for :meth:`take_sealed`.

        Those are system calls (a millisecond together), which ``submit`` must not make under the lock.
        """
        seg.sealed = True
        if seg.map is not None:
            self.untrimmed.append(seg)

    def take_sealed(self) -> list[Segment]:
        """Sealed segments still mapped: the caller passes them to :func:`trim` outside the lock."""
        todo, self.untrimmed = self.untrimmed, []
        return todo

    # -- acknowledging -----------------------------------------------------------------------

    def ack(self, seg: Segment, count: int = 1) -> list[Segment]:
        """Count acknowledged records; return the segments that may now be deleted."""
        seg.acked += count
        return self.collect_done()

    def collect_done(self) -> list[Segment]:
        """Remove finished segments from the books; the caller deletes them with :func:`delete`."""
        done = [s for s in self.segments if s.done and s is not self.active]
        done += [s for s in self.adopted if s.done]
        if done:
            gone = {id(s) for s in done}
            self.segments = [s for s in self.segments if id(s) not in gone]
            self.adopted = [s for s in self.adopted if id(s) not in gone]
            for seg in done:
                seg.deleted = True
                self.own_bytes -= seg.size
        return done

    # -- durability --------------------------------------------------------------------------

    def dirty_segments(self) -> tuple[list[Segment], bool]:
        """Segments with unsynced appends (flags cleared) and whether the directory needs a sync."""
        dirty = [s for s in self.segments if s.dirty]
        for seg in dirty:
            seg.dirty = False
        dir_dirty, self._dir_dirty = self._dir_dirty, False
        return dirty, dir_dirty

    # -- adopting the segments of dead processes ---------------------------------------------

    def scan(self, limit: int = 64) -> tuple[list[Segment], int]:
        """Lock (up to ``limit`` open at once) segments whose owner is gone; also the size of everyone else's.

        Runs without the pipeline's lock; :meth:`adopt` then takes the found segments into the books.
        """
        if not self.directory.is_dir():
            return [], 0
        known = {s.path.name for s in list(self.segments) + list(self.adopted)}
        room = limit - len(self.adopted)
        found: list[Segment] = []
        others = 0
        for path in sorted(self.directory.glob("seg-*.log")):
            if path.name in known or path.name.startswith(self.prefix):
                continue
            seg = _try_adopt(path) if len(found) < room else None
            if seg is None:
                with contextlib.suppress(OSError):
                    others += path.stat().st_size
                continue
            found.append(seg)
        return found, others

    def adopt(self, found: list[Segment], others_bytes: int) -> None:
        self.adopted.extend(found)
        self.own_bytes += sum(s.size for s in found)
        self.others_bytes = others_bytes

    def close(self) -> list[Segment]:
        """Seal everything; return finished segments (and the spare) to delete. Unfinished ones are left for replay."""
        if self.active is not None:
            self._seal(self.active)
            self.active = None
        trim(self.take_sealed())
        done = self.collect_done()
        if self.spare is not None:
            done.append(self.spare)
            self.spare = None
        for seg in self.segments + self.adopted:
            _close_fd(seg)
        self.segments, self.adopted = [], []
        self.own_bytes = 0
        return done

    def forget(self) -> None:
        """In a forked child: drop the parent's segments without unlocking them (the parent owns them)."""
        for seg in self.segments + self.adopted + ([self.spare] if self.spare else []):
            _close_fd(seg)
        self.segments, self.adopted, self.active, self.spare = [], [], None, None
        self.untrimmed = []
        self.own_bytes = 0
        self.prefix = f"seg-{os.getpid()}-{time.time_ns()}-"
        self._names = itertools.count(1)


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
