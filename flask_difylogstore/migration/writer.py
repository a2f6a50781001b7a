"""Bulk writes of migrated records, retried; every record ends up stored or reported as failed.

Migration does not go through the hot-path pipeline (its spool and backpressure are built for
``save()``), but writes synchronously with :meth:`DirectSink.write_batches`, which cuts batches at
the backend's own request limits (SLS ``PutLogs``, Elasticsearch ``_bulk``).
"""

from __future__ import annotations

import time
import typing as t
from collections.abc import Callable, Sequence

from flask_difylogstore.backends.base import LogBackend, WriteResult
from flask_difylogstore.pipeline.base import DirectSink
from flask_difylogstore.records import LogRecord


class BulkWriter:
    """Writes record lists in backend-sized batches, retrying what the backend says may succeed later."""

    def __init__(
        self,
        backend: LogBackend,
        *,
        attempts: int = 4,
        backoff: float = 0.5,
        before_write: Callable[[], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._sink = DirectSink(backend)
        self._before_write = before_write
        self._ready = before_write is None
        self.attempts = max(attempts, 1)
        self.backoff = backoff
        self._sleep = sleep

    def _prepare(self) -> None:
        if not self._ready and self._before_write is not None:
            self._before_write()
            self._ready = True

    def write(self, records: Sequence[LogRecord]) -> WriteResult:
        """Store ``records``; ``failed`` holds those still not stored after every attempt."""
        total = WriteResult()
        if not records:
            return total
        self._prepare()
        pending: Sequence[LogRecord] = records
        delay = self.backoff
        for attempt in range(self.attempts):
            try:
                result = self._sink.write_batches(pending)
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                result = WriteResult(failed=[(r, reason, True) for r in pending])
            total.written += result.written
            total.stale += result.stale
            retry = [r for r, _, retryable in result.failed if retryable]
            total.failed.extend(f for f in result.failed if not f[2])
            if not retry:
                break
            if attempt == self.attempts - 1:
                total.failed.extend(f for f in result.failed if f[2])
                break
            self._sleep(delay)
            delay = min(delay * 2, 30.0)
            pending = retry
        return total


def failure_reasons(
    failed: t.Iterable[tuple[LogRecord, str, bool]], owner: Callable[[LogRecord], str]
) -> dict[str, str]:
    """The first failure reason per owning row id."""
    reasons: dict[str, str] = {}
    for rec, reason, _ in failed:
        reasons.setdefault(owner(rec), reason)
    return reasons
