"""Counters and figures for the health report: is the pipeline keeping up, and did it lose anything."""

from __future__ import annotations

import time
import typing as t
from dataclasses import dataclass, field

from flask_difylogstore._settings_errors import mask_url_credentials
from flask_difylogstore.pipeline.lifecycle import native_lock


@dataclass
class PipelineMetrics:
    """Monotonic counters, updated from the save path and the writer thread.

    ``dropped`` stays 0 unless the operator chose ``drop_newest``; ``dead_lettered`` records are
    kept in the dead-letter file, not lost.
    """

    accepted: int = 0
    written: int = 0
    stale: int = 0
    retried: int = 0
    dead_lettered: int = 0
    dropped: int = 0
    rejected: int = 0
    replayed: int = 0
    spilled: int = 0
    batches: int = 0
    failed_batches: int = 0
    skipped_bytes: int = 0
    spool_errors: int = 0
    unspooled: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    last_success_at: float | None = None
    _lock: t.Any = field(default_factory=native_lock, repr=False)

    def add(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)

    def error(self, message: str) -> None:
        self.last_error = mask_url_credentials(message)
        self.last_error_at = time.time()

    def counters(self) -> dict[str, t.Any]:
        with self._lock:
            return {
                "accepted": self.accepted,
                "written": self.written,
                "stale": self.stale,
                "retried": self.retried,
                "dead_lettered": self.dead_lettered,
                "dropped": self.dropped,
                "rejected": self.rejected,
                "replayed": self.replayed,
                "spilled": self.spilled,
                "batches": self.batches,
                "failed_batches": self.failed_batches,
                "skipped_bytes": self.skipped_bytes,
                "spool_errors": self.spool_errors,
                "unspooled": self.unspooled,
                "last_error": self.last_error,
                "last_error_at": self.last_error_at,
                "last_success_at": self.last_success_at,
            }
