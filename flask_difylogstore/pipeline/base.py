"""What repositories hand records to: a sink. The background pipeline is one; :class:`DirectSink` another."""

from __future__ import annotations

import threading
import typing as t
from collections.abc import Callable, Iterable, Sequence

from flask_difylogstore.backends.base import LogBackend, WriteResult
from flask_difylogstore.errors import BackendUnavailableError
from flask_difylogstore.payloads import TruncationLimits
from flask_difylogstore.record_bounds import bound_record
from flask_difylogstore.records import LogRecord, RecordKind


@t.runtime_checkable
class RecordSink(t.Protocol):
    """Accepts snapshots from ``save()`` and delivers them to the backend."""

    def submit(self, records: Sequence[LogRecord]) -> None:
        """Accept records for delivery. Returns without network I/O for the background pipeline."""
        ...

    def pending(self, kind: RecordKind) -> Iterable[LogRecord]:
        """Accepted records of ``kind`` the backend has not acknowledged yet (for read-your-writes)."""
        ...

    def flush(self, timeout: float | None = None) -> bool:
        """Deliver everything accepted so far; ``True`` when nothing is left pending."""
        ...

    def forget_delivered(self, kind: RecordKind) -> None:
        """Stop serving delivered records of ``kind`` from memory (a delete made them obsolete)."""
        ...

    def close(self, timeout: float | None = None) -> None:
        """Flush within ``timeout`` and stop; what is not delivered stays durable where supported."""
        ...

    def stats(self) -> dict[str, t.Any]:
        """Figures for the health report."""
        ...


class DirectSink:
    """Writes each submitted batch synchronously (migration bulk loads, tests, simple setups).

    ``before_write`` runs once before the first write (provisioning must happen before data is
    written, or SLS would not index it).
    """

    def __init__(
        self,
        backend: LogBackend,
        *,
        before_write: Callable[[], None] | None = None,
        limits: TruncationLimits | None = None,
    ) -> None:
        self._backend = backend
        self._limits = limits or TruncationLimits()
        self._record_max_bytes = record_max_bytes(backend)
        self._before_write = before_write
        self._ready = before_write is None
        self._lock = threading.Lock()
        self._written = 0
        self._stale = 0
        self._failed = 0

    def _ensure_ready(self) -> None:
        if self._ready:
            return
        with self._lock:
            if not self._ready and self._before_write is not None:
                self._before_write()
                self._ready = True

    def submit(self, records: Sequence[LogRecord]) -> None:
        if not records:
            return
        self._ensure_ready()
        result = self.write_batches(records)
        if result.failed:
            reasons = "; ".join(sorted({reason for _, reason, _ in result.failed}))
            raise BackendUnavailableError(f"{len(result.failed)} of {len(records)} records not stored: {reasons}")

    def write_batches(self, records: Sequence[LogRecord]) -> WriteResult:
        """Write ``records`` in batches within the backend's limits; return the combined result."""
        total = WriteResult()
        batch: list[LogRecord] = []
        size = 0
        limit_records = self._backend.max_batch_records
        limit_bytes = self._backend.max_batch_bytes
        for original in records:
            record = bound_record(original, self._limits, self._record_max_bytes)
            record_size = approximate_size(record)
            if batch and (len(batch) >= limit_records or size + record_size > limit_bytes):
                _merge(total, self._backend.write(batch))
                batch, size = [], 0
            batch.append(record)
            size += record_size
        if batch:
            _merge(total, self._backend.write(batch))
        with self._lock:
            self._written += total.written
            self._stale += total.stale
            self._failed += len(total.failed)
        return total

    def pending(self, kind: RecordKind) -> Iterable[LogRecord]:
        return ()

    def forget_delivered(self, kind: RecordKind) -> None:
        return None

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self, timeout: float | None = None) -> None:
        return None

    def stats(self) -> dict[str, t.Any]:
        return {"mode": "direct", "written": self._written, "stale": self._stale, "failed": self._failed}


def record_max_bytes(backend: LogBackend) -> int:
    """Largest record sent to ``backend``: half its request limit, room for encoding overhead (JSON escapes)."""
    return max(64 * 1024, int(backend.max_batch_bytes) // 2)


def approximate_size(record: LogRecord) -> int:
    """A cheap upper-bound estimate of a record's serialised size, for batching by bytes."""
    size = 64
    for key, value in record.data.items():
        size += len(key) + (len(value) * 3 if isinstance(value, str) else 24)
    return size


def _merge(total: WriteResult, part: WriteResult) -> None:
    total.written += part.written
    total.stale += part.stale
    total.failed.extend(part.failed)
