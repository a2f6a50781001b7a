"""The writer's side of the pipeline: batches from memory, spilled records and adopted segments.

Called from the writer threads only (see :class:`~flask_difylogstore.pipeline.writer.Feed`), one
method at a time (``_feed_lock``), so batches are taken, retried and settled in turn while the
backend calls run side by side. It shares the pipeline's lock with ``submit`` but holds it only
for constant-time steps: it takes the whole submitted queue in one swap and builds batches from
its own ``_staged`` queue, which the saving threads never touch; disk reads, deletes and the
bookkeeping of large batches happen outside.
"""

from __future__ import annotations

import logging
import time
import typing as t
from collections import deque
from collections.abc import Callable

import orjson

from flask_difylogstore.pipeline import lifecycle, spool
from flask_difylogstore.pipeline.metrics import PipelineMetrics
from flask_difylogstore.pipeline.pending import PendingIndex
from flask_difylogstore.pipeline.spool import Segment, Spool
from flask_difylogstore.records import LogRecord, RecordKind
from flask_difylogstore.schemas import RecordSchema
from flask_difylogstore.settings import PipelineSettings

logger = logging.getLogger(__name__)

SCAN_INTERVAL_S = 10.0
MAINTENANCE_INTERVAL_S = 0.5
#: Records forgotten by the pending index per turn of the lock.
FORGET_CHUNK = 256


class Entry:
    """A record on its way to the backend, and the segment that holds it durably."""

    __slots__ = ("attempts", "queued_at", "reason", "record", "segment", "settled", "size")

    def __init__(self, record: LogRecord, segment: Segment, size: int, queued_at: float) -> None:
        self.record = record
        self.segment = segment
        self.size = size
        self.attempts = 0
        self.queued_at = queued_at
        self.settled = False
        self.reason: str | None = None


class WriterSide:
    """Mixin of :class:`~flask_difylogstore.pipeline.spooling.SpoolingPipeline` feeding its writer."""

    settings: PipelineSettings
    directory: t.Any
    memory_max_bytes: int
    metrics: PipelineMetrics
    spool: Spool
    index: PendingIndex
    stopping: bool
    visibility_delay_s: float
    _lock: t.Any
    _feed_lock: t.Any
    _wake: lifecycle.Wakeup
    _queue: deque[Entry]
    _queue_bytes: int
    _staged: deque[Entry]
    _staged_bytes: int
    _linger: deque[tuple[float, list[LogRecord]]]
    _memory_bytes: int
    _unacked: int
    _spill: Segment | None
    _flush_until: float
    _last_maintenance: float
    _last_scan: float
    _schema_for: Callable[[RecordKind], RecordSchema]
    _spool_error: Callable[[str], None]

    def sleep(self, timeout: float) -> None:
        self._wake.wait(timeout)

    def maintenance(self) -> None:
        with self._feed_lock:
            self._maintenance()

    def _maintenance(self) -> None:
        now = time.monotonic()
        if self._linger and self._linger[0][0] <= now:
            self._expire_linger(now)
        if self.spool.untrimmed:
            with self._lock:
                sealed = self.spool.take_sealed()
            spool.trim(sealed)
        if now - self._last_maintenance < MAINTENANCE_INTERVAL_S:
            return
        self._last_maintenance = now
        with self._lock:
            if self.spool.active is not None and self.spool.active is not self._spill:
                self.spool.seal_idle()
            done = self.spool.collect_done()
        spool.delete(done)
        if now - self._last_scan >= SCAN_INTERVAL_S:
            self._scan()

    def _scan(self) -> None:
        self._last_scan = time.monotonic()
        found, others = self.spool.scan()
        with self._lock:
            self.spool.adopt(found, others)
        if found:
            logger.warning(
                "flask-difylogstore: replaying %d spool segments left by stopped processes (%d bytes)",
                len(found),
                sum(s.size for s in found),
            )
            self._wake.set()

    def refill(self) -> None:
        """Read spilled or adopted records from disk while memory has room."""
        if self._spill is None and not self.spool.adopted:
            return  # the common case, decided without a lock (a spill that starts now is seen next turn)
        with self._feed_lock:
            self._refill()

    def _refill(self) -> None:
        with self._lock:
            if self._memory_bytes > self.memory_max_bytes // 2:
                return
            segment = self._spill
            if segment is None:
                segment = next((s for s in self.spool.adopted if not s.sealed), None)
            if segment is None:
                return
            end = segment.size
        payloads, skipped = spool.read_segment(segment, end, max_bytes=max(64 * 1024, self.memory_max_bytes // 4))
        entries: list[Entry] = []
        broken = 0
        now = time.monotonic()
        for payload in payloads:
            try:
                record = self._decode(payload)
                entries.append(Entry(record, segment, len(payload), now))
            except Exception as exc:
                broken += 1
                self._spool_error(f"unreadable record in {segment.path.name}: {type(exc).__name__}: {exc}")
        if skipped:
            self.metrics.add(skipped_bytes=skipped)
            logger.warning(
                "flask-difylogstore: skipped %d damaged bytes in %s (torn write of a crashed process)",
                skipped,
                segment.path.name,
            )
        total = sum(e.size for e in entries)
        with self._lock:
            self._memory_bytes += total
            if segment.adopted:
                segment.appended += len(entries)
                if segment.read_offset >= segment.size:
                    segment.sealed = True
            else:
                self._unacked -= broken
                segment.acked += broken
                if segment.read_offset >= segment.size:
                    later = (s for s in self.spool.segments if s.seq > segment.seq)
                    self._spill = next(later, None)
            done = self.spool.collect_done()
        if segment.adopted and entries:
            self.metrics.add(replayed=len(entries))
        self._staged.extend(entries)
        self._staged_bytes += total
        spool.delete(done)

    def _decode(self, payload: bytes) -> LogRecord:
        """A spooled record: ``[kind, data, log_version]`` (or ``[kind, wire form]`` from older versions)."""
        item = orjson.loads(payload)
        kind = RecordKind(item[0])
        wire = item[1] if len(item) == 2 else {**item[1], "log_version": item[2]}
        return LogRecord.from_wire(kind, wire, self._schema_for(kind))

    def next_batch(self, max_records: int, max_bytes: int) -> tuple[list[Entry] | None, float]:
        with self._feed_lock:
            return self._next_batch(max_records, max_bytes)

    def _next_batch(self, max_records: int, max_bytes: int) -> tuple[list[Entry] | None, float]:
        staged = self._staged
        with self._lock:
            incoming = self._queue
            if incoming:
                self._queue = deque()
                incoming_bytes, self._queue_bytes = self._queue_bytes, 0
            more = self._spill is not None or any(not s.sealed for s in self.spool.adopted)
        if incoming:
            staged.extend(incoming)
            self._staged_bytes += incoming_bytes
        if not staged:
            return None, (0.0 if more else MAINTENANCE_INTERVAL_S)
        now = time.monotonic()
        interval = self.settings.flush_interval_ms / 1000.0
        age = now - staged[0].queued_at
        ready = (
            len(staged) >= max_records
            or self._staged_bytes >= max_bytes
            or age >= interval
            or now < self._flush_until
            or self.stopping
        )
        if not ready:
            return None, interval - age
        batch: list[Entry] = []
        size = 0
        while staged and len(batch) < max_records:
            entry = staged[0]
            if batch and size + entry.size > max_bytes:
                break
            staged.popleft()
            batch.append(entry)
            size += entry.size
        self._staged_bytes -= size
        return batch, 0.0

    def settle(self, ok: list[Entry], dead: list[Entry], retry: list[Entry]) -> None:
        with self._feed_lock:
            self._settle(ok, dead, retry)

    def _settle(self, ok: list[Entry], dead: list[Entry], retry: list[Entry]) -> None:
        if retry:
            self._staged.extendleft(reversed(retry))
            self._staged_bytes += sum(e.size for e in retry)
        settled = ok + dead
        if not settled:
            return
        size = sum(e.size for e in settled)
        per_segment: dict[Segment, int] = {}
        for entry in settled:
            per_segment[entry.segment] = per_segment.get(entry.segment, 0) + 1
        own = [e.record for e in settled if not e.segment.adopted]
        with self._lock:
            self._memory_bytes -= size
            self._unacked -= len(own)
            for segment, count in per_segment.items():
                segment.acked += count
            done = self.spool.collect_done()
        spool.delete(done)
        if not own:
            return
        if self.visibility_delay_s > 0:
            # Stored, but not searchable yet (Elasticsearch's refresh): keep serving them from memory.
            self._linger.append((time.monotonic() + self.visibility_delay_s, own))
        else:
            self._forget(own)

    def forget_delivered(self, kind: RecordKind) -> None:
        """Drop delivered records of ``kind`` still served for visibility: a delete superseded them.

        Without this a record stored just before a delete would be served from memory for up to
        ``visibility_delay_s`` after the backend already hides the deleted entity.
        """
        with self._lock:
            lingering = list(self._linger)
        for _, records in lingering:
            self._forget([r for r in records if r.kind is kind])

    def _expire_linger(self, now: float) -> None:
        while self._linger and self._linger[0][0] <= now:
            self._forget(self._linger.popleft()[1])

    def _forget(self, records: list[LogRecord]) -> None:
        """Drop stored records from the pending index, a chunk per turn of the lock."""
        for start in range(0, len(records), FORGET_CHUNK):
            chunk = records[start : start + FORGET_CHUNK]
            with self._lock:
                self.index.discard_many(chunk)

    def _idle(self) -> bool:
        lifecycle.acquire(self._lock)
        try:
            return self._unacked <= 0 and not any(s.unacked or not s.sealed for s in self.spool.adopted)
        finally:
            self._lock.release()
