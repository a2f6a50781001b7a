"""The writer's side of the pipeline: batches from memory, spilled records and adopted segments.

Called from the writer thread only (see :class:`~flask_difylogstore.pipeline.writer.Feed`); shares
the pipeline's lock with ``submit``, and never holds it across disk reads or deletes.
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
from flask_difylogstore.records import LogRecord, RecordKind, RecordSchema
from flask_difylogstore.settings import PipelineSettings

logger = logging.getLogger(__name__)

SCAN_INTERVAL_S = 10.0
MAINTENANCE_INTERVAL_S = 0.5


class Entry:
    """A record on its way to the backend, and the segment that holds it durably."""

    __slots__ = ("attempts", "queued_at", "record", "segment", "size")

    def __init__(self, record: LogRecord, segment: Segment, size: int) -> None:
        self.record = record
        self.segment = segment
        self.size = size
        self.attempts = 0
        self.queued_at = time.monotonic()


class WriterSide:
    """Mixin of :class:`~flask_difylogstore.pipeline.spooling.SpoolingPipeline` feeding its writer."""

    settings: PipelineSettings
    directory: t.Any
    memory_max_bytes: int
    metrics: PipelineMetrics
    spool: Spool
    index: PendingIndex
    stopping: bool
    _lock: t.Any
    _wake: lifecycle.Wakeup
    _queue: deque[Entry]
    _queue_bytes: int
    _memory_bytes: int
    _unacked: int
    _spill: Segment | None
    _flush_until: float
    _last_maintenance: float
    _last_scan: float
    _schema_for: Callable[[RecordKind], RecordSchema]

    def _spool_error(self, message: str) -> None:
        raise NotImplementedError

    def sleep(self, timeout: float) -> None:
        self._wake.wait(timeout)

    def maintenance(self) -> None:
        now = time.monotonic()
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
        found = self.spool.scan()
        if found:
            logger.warning(
                "flask-difylogstore: replaying %d spool segments left by stopped processes (%d bytes)",
                len(found),
                sum(s.size for s in found),
            )
            self._wake.set()

    def refill(self) -> None:
        """Read spilled or adopted records from disk while memory has room."""
        with self._lock:
            if self._memory_bytes > self.memory_max_bytes // 2:
                return
            segment = self._spill
            if segment is None:
                segment = next((s for s in self.spool.adopted if not s.sealed), None)
            if segment is None:
                return
            end = segment.size
        payloads, skipped = spool.read_segment(
            segment, end, max_bytes=max(64 * 1024, self.memory_max_bytes // 4)
        )
        entries: list[Entry] = []
        broken = 0
        for payload in payloads:
            try:
                kind_value, wire = orjson.loads(payload)
                kind = RecordKind(kind_value)
                entries.append(
                    Entry(LogRecord.from_wire(kind, wire, self._schema_for(kind)), segment, len(payload))
                )
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
        done: list[Segment] = []
        with self._lock:
            total = sum(e.size for e in entries)
            self._queue.extend(entries)
            self._queue_bytes += total
            self._memory_bytes += total
            if segment.adopted:
                segment.appended += len(entries)
                self.metrics.add(replayed=len(entries))
                if segment.read_offset >= segment.size:
                    segment.sealed = True
            else:
                self._unacked -= broken
                segment.acked += broken
                if segment.read_offset >= segment.size:
                    later = [s for s in self.spool.segments if s.path.name > segment.path.name]
                    self._spill = later[0] if later else None
            done = self.spool.collect_done()
        spool.delete(done)

    def next_batch(self, max_records: int, max_bytes: int) -> tuple[list[Entry] | None, float]:
        now = time.monotonic()
        interval = self.settings.flush_interval_ms / 1000.0
        with self._lock:
            if not self._queue:
                more = self._spill is not None or any(not s.sealed for s in self.spool.adopted)
                return None, (0.0 if more else MAINTENANCE_INTERVAL_S)
            age = now - self._queue[0].queued_at
            ready = (
                len(self._queue) >= max_records
                or self._queue_bytes >= max_bytes
                or age >= interval
                or now < self._flush_until
                or self.stopping
            )
            if not ready:
                return None, interval - age
            batch: list[Entry] = []
            size = 0
            while self._queue and len(batch) < max_records:
                entry = self._queue[0]
                if batch and size + entry.size > max_bytes:
                    break
                self._queue.popleft()
                batch.append(entry)
                size += entry.size
            self._queue_bytes -= size
            return batch, 0.0

    def settle(self, ok: list[Entry], dead: list[Entry], retry: list[Entry]) -> None:
        with self._lock:
            for entry in ok + dead:
                self._memory_bytes -= entry.size
                if not entry.segment.adopted:
                    self._unacked -= 1
                    self.index.discard(entry.record)
                entry.segment.acked += 1
            if retry:
                self._queue.extendleft(reversed(retry))
                self._queue_bytes += sum(e.size for e in retry)
            done = self.spool.collect_done()
        spool.delete(done)

    def _idle(self) -> bool:
        with self._lock:
            return self._unacked <= 0 and not any(s.unacked or not s.sealed for s in self.spool.adopted)
