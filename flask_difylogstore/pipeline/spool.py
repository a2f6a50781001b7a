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
import time
from collections.abc import Sequence
from pathlib import Path

from flask_difylogstore.pipeline.frames import (
    HEADER,
    MAGIC,
    MAX_FRAME,
    crc32,
    decode_frames,
    encode_frame,
    frame_header,
)
from flask_difylogstore.pipeline.segments import (
    Segment,
    _allocate,
    _close_fd,
    _try_adopt,
    delete,
    read_segment,
    sync,
    trim,
)

#: Re-exported: the pipeline and its tests address the spool's parts through this module.
__all__ = [
    "HEADER",
    "MAGIC",
    "MAX_FRAME",
    "SEGMENT_AGE_S",
    "SEGMENT_BYTES",
    "Segment",
    "Spool",
    "SpoolFullError",
    "crc32",
    "decode_frames",
    "delete",
    "encode_frame",
    "frame_header",
    "read_segment",
    "sync",
    "trim",
]

logger = logging.getLogger(__name__)

SEGMENT_BYTES = 8 * 1024 * 1024
SEGMENT_AGE_S = 5.0
#: Smallest segment tried when the disk has no room for a full-size one.
MIN_SEGMENT_BYTES = 64 * 1024
_PAGE = mmap.PAGESIZE


class SpoolFullError(Exception):
    """The spool reached its size cap."""


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
        """A new segment of ``segment_bytes`` (or ``needed``), smaller ones when the disk is short of room.

        A nearly full file system still takes records, in segments down to ``MIN_SEGMENT_BYTES``
        (or the size of the append), instead of refusing every save.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{self.prefix}{next(self._names):06d}.log"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        size = max(self.segment_bytes, needed)
        smallest = max(needed, min(MIN_SEGMENT_BYTES, self.segment_bytes))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            while True:
                try:
                    capacity, mapped = _allocate(fd, size, prefault=prefault)
                    break
                except OSError as exc:
                    if exc.errno != errno.ENOSPC or size <= smallest:
                        raise
                    size = max(smallest, size // 4)
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
