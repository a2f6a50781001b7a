"""The spooling pipeline: ``save()`` appends to a local spool and returns; a writer thread delivers.

``submit`` serialises the records, copies them into the spool's mapped segment, indexes them for
read-your-writes and wakes the writer: no network I/O on the caller's thread, ever, and normally
no system call either (its lock is held for microseconds, never across a GIL release). Records wait
in memory for their batch up to a memory cap; beyond it they are read back from the spool when
the writer catches up (so an outage of any length costs disk, not memory). At start, segments left
by dead processes are adopted and replayed; a live process also adopts those of a sibling that
died while it runs. A backend whose acknowledged writes become searchable only after a delay
(``visibility_delay_s``, Elasticsearch's refresh) has its records served from the pending index
for that long after the acknowledgement, so a read right after ``save()`` never misses them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import typing as t
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import orjson

from flask_difylogstore.backends.base import LogBackend
from flask_difylogstore.errors import RecordRejectedError
from flask_difylogstore.payloads import TruncationLimits
from flask_difylogstore.pipeline import lifecycle, spool
from flask_difylogstore.pipeline.base import record_max_bytes
from flask_difylogstore.pipeline.breaker import CircuitBreaker
from flask_difylogstore.pipeline.feed import Entry, WriterSide
from flask_difylogstore.pipeline.group_commit import GroupCommit, fsync_quietly
from flask_difylogstore.pipeline.metrics import PipelineMetrics
from flask_difylogstore.pipeline.overflow import Overflow, RateLimitedLog, disk_problem
from flask_difylogstore.pipeline.pending import PendingIndex
from flask_difylogstore.pipeline.spool import Segment, Spool, SpoolFullError
from flask_difylogstore.pipeline.writer import WRITERS, DeadLetters, Gate, Writer
from flask_difylogstore.record_bounds import bound_record
from flask_difylogstore.records import LogRecord, RecordKind
from flask_difylogstore.schemas import RecordSchema
from flask_difylogstore.schemas import schema as default_schema
from flask_difylogstore.settings import PipelineSettings

logger = logging.getLogger(__name__)

#: Shutdown stops waiting for delivery once it has been impossible (backend failing, not
#: provisioned, only undeliverable records left) for this long: the records stay in the spool.
CLOSE_STALL_GRACE_S = 0.5
#: Longest wait for the pipeline's threads at shutdown once delivery is over or given up.
CLOSE_JOIN_S = 0.5


def _default(value: t.Any) -> t.Any:
    return str(value)


class SpoolingPipeline(WriterSide, GroupCommit, Overflow):
    """A :class:`~flask_difylogstore.pipeline.base.RecordSink` with a durable spool and a writer thread."""

    def __init__(
        self,
        backend: LogBackend,
        settings: PipelineSettings,
        directory: Path,
        *,
        gate: Gate | None = None,
        schema_for: Callable[[RecordKind], RecordSchema] = default_schema,
        count: Callable[[str, int], None] | None = None,
        limits: TruncationLimits | None = None,
        segment_bytes: int = spool.SEGMENT_BYTES,
        segment_age_s: float = spool.SEGMENT_AGE_S,
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.directory = Path(directory)
        self.gate = gate
        self.shutdown_timeout_s = settings.shutdown_timeout_s
        self._schema_for = schema_for
        self._count = count
        self._segment_bytes = segment_bytes
        self._segment_age_s = segment_age_s
        self.memory_max_bytes = settings.memory_max_bytes
        self.limits = limits or TruncationLimits()
        self.record_max_bytes = record_max_bytes(backend)
        self.visibility_delay_s = max(0.0, float(getattr(backend, "visibility_delay_s", 0.0) or 0.0))
        self.closed = False
        self._reset()
        lifecycle.register(self)

    def _reset(self) -> None:
        """Fresh state for this process (at construction and in a forked child)."""
        self._lock = lifecycle.native_lock()
        self._feed_lock = lifecycle.native_lock()
        self.metrics = PipelineMetrics()
        self.breaker = CircuitBreaker(max_open_s=self.settings.max_retry_delay_s)
        self._wake = lifecycle.Wakeup()
        self._fsync_wake = lifecycle.Wakeup()
        self._fsync_idle = True
        self._spare_requested = False
        self.spool = Spool(
            self.directory,
            max_bytes=self.settings.spool_max_bytes,
            segment_bytes=self._segment_bytes,
            segment_age_s=self._segment_age_s,
        )
        self.dead_letters = DeadLetters(self.directory / "dead")
        self.index = PendingIndex(self.memory_max_bytes)
        self._queue: deque[Entry] = deque()
        self._queue_bytes = 0
        self._staged: deque[Entry] = deque()
        self._staged_bytes = 0
        self._linger: deque[tuple[float, list[LogRecord]]] = deque()
        self._memory_bytes = 0
        self._unacked = 0
        self._spill: Segment | None = None
        self._flush_until = 0.0
        self._flushes = 0
        self._last_maintenance = 0.0
        self._last_scan = 0.0
        self._log_limited = RateLimitedLog()
        self._pid = os.getpid()
        self.stopping = False
        self._threads: list[lifecycle.NativeThread] = []
        self.writer = Writer(
            self.backend,
            self,
            self.metrics,
            self.dead_letters,
            batch_max_records=self.settings.batch_max_records,
            batch_max_bytes=self.settings.batch_max_bytes,
            max_retry_delay_s=self.settings.max_retry_delay_s,
            gate=self.gate,
            breaker=self.breaker,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Adopt segments left by dead processes and start the writer and fsync threads (idempotent)."""
        with self._lock:
            if self._threads or self.closed:
                return
            self._threads = [
                *(lifecycle.NativeThread(self._write_loop, f"difylogstore-writer-{n}") for n in range(WRITERS)),
                lifecycle.NativeThread(self._fsync_loop, "difylogstore-fsync"),
            ]
        self._scan()
        for thread in self._threads:
            thread.start()

    def after_fork_in_child(self) -> None:
        """Drop the parent's writer, queue and files; this process starts its own on first use."""
        self.spool.forget()
        self.dead_letters.forget()
        self._reset()

    def _write_loop(self) -> None:
        self.writer.run()

    # -- the save path -----------------------------------------------------------------------

    def submit(self, records: Sequence[LogRecord]) -> None:
        """Append ``records`` to the spool and queue them; never touches the network."""
        if not records:
            return
        if os.getpid() != self._pid:  # forked without the at-fork hook (e.g. os.fork from C)
            self.after_fork_in_child()
        if not self._threads and not self.closed:
            self.start()
        limits, largest = self.limits, self.record_max_bytes
        records = [bound_record(r, limits, largest) for r in records]
        try:
            payloads = [orjson.dumps([r.kind.value, r.data, r.log_version], default=_default) for r in records]
        except (TypeError, orjson.JSONEncodeError) as exc:
            self.metrics.add(rejected=len(records))
            raise RecordRejectedError(f"record cannot be serialised: {exc}") from exc
        frames = [piece for p in payloads for piece in (spool.frame_header(p), p)]
        now = time.monotonic()
        entries = [Entry(r, t.cast(Segment, None), len(p), now) for r, p in zip(records, payloads, strict=True)]
        deadline = now + self.settings.overflow_block_timeout_s
        while True:
            try:
                segment = self._append(entries, frames)
                break
            except (SpoolFullError, OSError) as exc:
                if disk_problem(exc):
                    self._spool_error(f"append: {exc}")
                    if self._keep_in_memory(entries):
                        return  # the backend delivers; the disk could not take a copy
                if self._may_wait_for_room(exc, deadline):
                    self._wake.set()
                    time.sleep(0.01)
                    continue
                self._overflow(records, exc)
                return
        if self.settings.fsync_interval_ms == 0:
            fd = segment.fd
            lifecycle.offload(lambda: fsync_quietly(fd))
        else:
            self._wake_fsync()

    def _append(self, entries: list[Entry], frames: list[bytes]) -> Segment:
        """Copy ``frames`` into the spool and queue ``entries`` (or leave them on disk when memory is full)."""
        total = sum(e.size for e in entries)
        count = len(entries)
        lifecycle.acquire(self._lock)
        try:
            segment, start = self.spool.append(frames, count)
            self._unacked += count
            index = self.index
            for entry in entries:
                index.add(entry.record, entry.size)
            if self._spill is None and self._memory_bytes + total <= self.memory_max_bytes:
                for entry in entries:
                    entry.segment = segment
                queue = self._queue
                queue.extend(entries)
                self._queue_bytes += total
                self._memory_bytes += total
                waiting = len(queue) + len(self._staged)
                wake = count == waiting or waiting >= self.writer.max_records
                wake = wake or self._queue_bytes + self._staged_bytes >= self.writer.max_bytes
                spilled = 0
            else:
                if self._spill is None:
                    self._spill = segment
                    segment.read_offset = start
                wake = False
                spilled = count
            spare = self.spool.spare is not None
            # Only ever changed under this lock (not the metrics' own: a second lock per save is a second convoy).
            self.metrics.accepted += count
            self.metrics.spilled += spilled
        finally:
            self._lock.release()
        if wake:
            self._wake.set()
        if not spare and not self._spare_requested:
            self._spare_requested = True
            self._fsync_idle = False
            self._fsync_wake.set()
        return segment

    def _counter(self, name: str, amount: int) -> None:
        if self._count is not None:
            with contextlib.suppress(Exception):
                self._count(name, amount)

    def pending(self, kind: RecordKind) -> Iterable[LogRecord]:
        lifecycle.acquire(self._lock)
        try:
            return self.index.records(kind)
        finally:
            self._lock.release()

    # -- flushing and closing ----------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Send partial batches now and wait until everything accepted (and replayed) is acknowledged."""
        return self._flush(timeout)

    def _stalled(self) -> bool:
        """Whether delivery cannot make progress now: not provisioned, failing, or only undeliverable left."""
        writer = self.writer
        if not writer.is_provisioned() or self.breaker.state != "closed" or writer.consecutive_failures:
            return True
        stuck = writer.undeliverable()
        return stuck > 0 and stuck >= self._unacked

    def _flush(self, timeout: float | None, give_up_after_stall: float | None = None) -> bool:
        if self._idle():
            return True
        if not self._threads and not self.closed:
            self.start()
        until = float("inf") if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._flushes += 1
            self._flush_until = max(self._flush_until, until)
        self._wake.set()
        stalled_since: list[float] = []

        def finished() -> bool:
            if self._idle():
                return True
            if give_up_after_stall is None:
                return False
            if not self._stalled():
                stalled_since.clear()
                return False
            if not stalled_since:
                stalled_since.append(time.monotonic())
            return time.monotonic() - stalled_since[0] >= give_up_after_stall

        try:
            lifecycle.wait_until(finished, timeout)
            return self._idle()
        finally:
            with self._lock:
                self._flushes -= 1
                if self._flushes == 0:
                    # Back to filling batches: a finished flush must not leave the writer sending
                    # every record on its own until the flush's timeout has passed.
                    self._flush_until = 0.0

    def close(self, timeout: float | None = None) -> None:
        """Flush within ``timeout``, stop the threads; what is left stays in the spool for the next start."""
        if self.closed:
            return
        timeout = self.shutdown_timeout_s if timeout is None else timeout
        deadline = time.monotonic() + timeout
        delivered = self._flush(timeout, CLOSE_STALL_GRACE_S) if self._threads else self._idle()
        self.closed = True
        self.stopping = True
        # A writer blocked in a request to an unresponsive backend is not waited for: what it holds
        # is still in the spool, and the threads are daemons.
        until = min(deadline, time.monotonic() + CLOSE_JOIN_S) + 0.05
        while any(not th.finished for th in self._threads) and time.monotonic() < until:
            self._wake.set()  # one wake-up per sleeping thread: set again until all have seen it
            self._fsync_wake.set()
            time.sleep(0.005)
        self._sync_now()
        with self._lock:
            done = self.spool.close()
        spool.delete(done)
        self.dead_letters.close()
        lifecycle.unregister(self)
        lost = self._memory_only() if not delivered else 0
        if lost:
            logger.error(
                "flask-difylogstore: %d records kept only in memory (the spool's disk could not take them) were "
                "not delivered before shutdown and are lost",
                lost,
            )
        if not delivered:
            logger.warning(
                "flask-difylogstore: %d records not delivered before shutdown; they stay in %s and "
                "are sent by the next process",
                self._unacked,
                self.directory,
            )

    # -- health ------------------------------------------------------------------------------

    def stats(self) -> dict[str, t.Any]:
        with self._lock:
            segments = self.spool.segments + self.spool.adopted
            unacked = [s for s in segments if s.unacked or (s.adopted and not s.sealed)]
            oldest = min((s.created for s in unacked), default=None)
            figures: dict[str, t.Any] = {
                "mode": "spooling",
                "backend": self.backend.name,
                "queue_depth": len(self._queue) + len(self._staged),
                "queue_bytes": self._queue_bytes + self._staged_bytes,
                "memory_bytes": self._memory_bytes,
                "unacknowledged": self._unacked,
                "spilling": self._spill is not None,
                "pending_index": len(self.index),
                "pending_index_overflow": self.index.overflow,
                "spool_dir": str(self.directory),
                "spool_bytes": self.spool.total_bytes,
                "spool_segments": len(segments),
                "replaying_segments": len(self.spool.adopted),
                "oldest_pending_age_s": None if oldest is None else max(0.0, time.time() - oldest),
                "overflow_policy": self.settings.overflow_policy,
                "writer_alive": any(not th.finished for th in self._threads[:WRITERS]),
                "writers": WRITERS,
                "writers_started": bool(self._threads),
                "writers_alive": sum(1 for th in self._threads[:WRITERS] if not th.finished),
                "writer_errors": self.writer.loop_errors,
                "undeliverable": self.writer.undeliverable(),
                "dead_letter_dir": str(self.dead_letters.directory),
                "dead_letter_error": self.writer.dead_letter_error,
            }
        figures.update(self.metrics.counters())
        figures["breaker"] = self.breaker.snapshot()
        return figures
