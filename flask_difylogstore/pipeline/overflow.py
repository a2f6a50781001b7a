"""When a record cannot be spooled: the spool's size cap, or a disk that is full or failing.

The two causes are told apart, because their remedies differ: a spool at ``LOGSTORE_SPOOL_MAX_BYTES``
means the backend is not keeping up; a full (or failing) disk says nothing about the backend. While
the backend is delivering, a record the disk cannot take is kept in memory and sent (counted as
``unspooled``: it is not durable until acknowledged), so a healthy backend keeps receiving records
on a nearly full disk. Otherwise the overflow policy decides: ``block`` waits for room only when
waiting can make room (the spool's cap, while the writer drains it), ``drop_newest`` drops, ``fail``
raises. Every message is logged at most once per ``LOG_INTERVAL_S``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import shutil
import time
import typing as t
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from flask_difylogstore.errors import BackendUnavailableError
from flask_difylogstore.pipeline import lifecycle
from flask_difylogstore.pipeline.metrics import PipelineMetrics
from flask_difylogstore.pipeline.pending import PendingIndex
from flask_difylogstore.pipeline.segments import Segment
from flask_difylogstore.pipeline.spool import SpoolFullError
from flask_difylogstore.records import LogRecord
from flask_difylogstore.settings import PipelineSettings

if t.TYPE_CHECKING:
    from flask_difylogstore.pipeline.feed import Entry

logger = logging.getLogger(__name__)

#: At most one log line per this many seconds for each kind of overflow message.
LOG_INTERVAL_S = 10.0

#: The "segment" of records held only in memory: never a file, acknowledged like any other.
MEMORY_SEGMENT = Segment(Path("<memory>"), -1)


class RateLimitedLog:
    """Logs a message of each kind at most once per ``LOG_INTERVAL_S``, saying how many were held back."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def __call__(self, kind: str, level: int, message: str, *args: t.Any) -> None:
        now = time.monotonic()
        if now - self._last.get(kind, -LOG_INTERVAL_S) < LOG_INTERVAL_S:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return
        self._last[kind] = now
        held = self._suppressed.pop(kind, 0)
        if held:
            message += f" ({held} more like this in the last {LOG_INTERVAL_S:g}s)"
        logger.log(level, message, *args)


def disk_problem(exc: BaseException) -> bool:
    """Whether ``exc`` is about the disk (full, read-only, I/O error) rather than the spool's cap."""
    return isinstance(exc, OSError) and not isinstance(exc, SpoolFullError)


def free_bytes(directory: Path) -> int | None:
    with contextlib.suppress(OSError):
        return shutil.disk_usage(directory if directory.exists() else directory.parent).free
    return None


class Overflow:
    """Mixin of :class:`~flask_difylogstore.pipeline.spooling.SpoolingPipeline`: records the spool cannot take."""

    settings: PipelineSettings
    directory: Path
    metrics: PipelineMetrics
    memory_max_bytes: int
    index: PendingIndex
    _lock: t.Any
    _wake: lifecycle.Wakeup
    _queue: deque[Entry]
    _queue_bytes: int
    _staged: deque[Entry]
    _memory_bytes: int
    _unacked: int
    _spill: Segment | None
    _log_limited: RateLimitedLog
    _stalled: Callable[[], bool]
    _counter: Callable[[str, int], None]

    def _keep_in_memory(self, entries: list[Entry]) -> bool:
        """Queue ``entries`` without a spool copy while the backend delivers and memory has room."""
        if self._stalled():
            return False
        total = sum(e.size for e in entries)
        count = len(entries)
        lifecycle.acquire(self._lock)
        try:
            if self._spill is not None or self._memory_bytes + total > self.memory_max_bytes:
                return False
            for entry in entries:
                entry.segment = MEMORY_SEGMENT
                self.index.add(entry.record, entry.size)
            self._queue.extend(entries)
            self._queue_bytes += total
            self._memory_bytes += total
            self._unacked += count
            self.metrics.accepted += count
            self.metrics.unspooled += count
        finally:
            self._lock.release()
        self._wake.set()
        return True

    def _memory_only(self) -> int:
        """Records waiting in memory without a spool copy (lost if the process stops before delivery)."""
        lifecycle.acquire(self._lock)
        try:
            waiting = list(self._queue) + list(self._staged)
        finally:
            self._lock.release()
        return sum(1 for entry in waiting if entry.segment is MEMORY_SEGMENT)

    def _disk_message(self, exc: BaseException) -> str:
        free = free_bytes(self.directory)
        space = "" if free is None else f", {free / 1024 / 1024:.1f} MB free"
        cause = "is full" if getattr(exc, "errno", None) == errno.ENOSPC else "cannot be written"
        return (
            f"the disk holding the log-store spool {self.directory} {cause} ({exc}{space}); free disk space or "
            "point LOGSTORE_SPOOL_DIR at a larger volume"
        )

    def _overflow(self, records: Sequence[LogRecord], exc: Exception) -> None:
        policy = self.settings.overflow_policy
        disk = disk_problem(exc)
        reason = (
            self._disk_message(exc)
            if disk
            else (
                f"the log-store spool is full ({exc}) and the backend is not keeping up; check the backend "
                "(health endpoint) or raise LOGSTORE_SPOOL_MAX_BYTES"
            )
        )
        if policy == "drop_newest":
            self.metrics.add(dropped=len(records))
            self._counter("pipeline.dropped", len(records))
            self._log_limited(
                "drop", logging.ERROR,
                "flask-difylogstore: dropping new records (policy drop_newest; %d dropped so far): %s",
                self.metrics.dropped, reason,
            )  # fmt: skip
            return
        self.metrics.add(rejected=len(records))
        self._counter("pipeline.rejected", len(records))
        self._log_limited(
            "refuse", logging.ERROR, "flask-difylogstore: refusing %d records (policy %s; %d refused so far): %s",
            len(records), policy, self.metrics.rejected, reason,
        )  # fmt: skip
        raise BackendUnavailableError(reason) from exc

    def _may_wait_for_room(self, exc: Exception, deadline: float) -> bool:
        """``block`` policy: wait for the writer to make room under the spool's cap (never for a full disk)."""
        if self.settings.overflow_policy != "block" or time.monotonic() >= deadline:
            return False
        return not disk_problem(exc)
