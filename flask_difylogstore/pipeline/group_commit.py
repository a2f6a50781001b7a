"""Group commit of the spool: one fsync per interval for all appends, and a spare segment kept ready.

The fsync thread of :class:`~flask_difylogstore.pipeline.spooling.SpoolingPipeline` runs here. Saves
copy into mapped segments without a system call; this thread makes them durable in batches
(``LOGSTORE_SPOOL_FSYNC_INTERVAL_MS``) and prepares the next segment, so that neither an fsync nor
a file creation ever happens on a caller's thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import typing as t
from pathlib import Path

from flask_difylogstore.pipeline import lifecycle, spool
from flask_difylogstore.pipeline.metrics import PipelineMetrics
from flask_difylogstore.pipeline.spool import Spool
from flask_difylogstore.settings import PipelineSettings

logger = logging.getLogger(__name__)


class GroupCommit:
    """Mixin of :class:`~flask_difylogstore.pipeline.spooling.SpoolingPipeline`: its fsync thread."""

    settings: PipelineSettings
    directory: Path
    spool: Spool
    metrics: PipelineMetrics
    stopping: bool
    closed: bool
    _lock: t.Any
    _fsync_wake: lifecycle.Wakeup
    _fsync_idle: bool
    _spare_requested: bool
    _log_limited: t.Any

    def _fsync_loop(self) -> None:
        """Group commit: while appends come in, one fsync per interval; idle, a wait for the next append.

        This thread also keeps a spare segment ready. Saves wake it only when it is idle or when a
        rotation took the spare: a wake-up per save would make it contend for the GIL with the
        saving threads all the time.
        """
        interval = self.settings.fsync_interval_ms / 1000.0
        last = 0.0
        while True:
            if self._fsync_idle:
                self._fsync_wake.wait(1.0)
            self._keep_spare()
            delay = last + interval - time.monotonic()
            if delay > 0 and self._fsync_wake.wait(delay):  # cut short by a rotation that took the spare
                self._keep_spare()
            last = time.monotonic()
            synced = self._sync_now()
            if self.stopping:
                return
            if not synced:
                self._fsync_idle = True
                if any(seg.dirty for seg in list(self.spool.segments)):  # appended since: no wait
                    self._fsync_idle = False

    def _sync_now(self) -> bool:
        with self._lock:
            dirty, dir_dirty = self.spool.dirty_segments()
        spool.sync(dirty, self.directory if dir_dirty else None, self._spool_error)
        return bool(dirty)

    def _wake_fsync(self) -> None:
        if self._fsync_idle:
            self._fsync_idle = False
            self._fsync_wake.set()

    def _keep_spare(self) -> None:
        """Prepare the next segment ahead of time, so a rotation in ``submit`` costs no I/O."""
        with self._lock:
            wanted = self.spool.wants_spare()
        self._spare_requested = False
        if not wanted:
            return
        try:
            seg = self.spool.prepare_spare()
        except OSError as exc:
            self._spool_error(f"preparing a segment: {exc}")
            lifecycle.native_sleep(1.0)
            return
        with self._lock:
            kept = not self.closed and self.spool.install_spare(seg)
        if not kept:
            spool.delete([seg])

    def _spool_error(self, message: str) -> None:
        """Count and remember a spool failure; log it at most once per ``LOG_INTERVAL_S`` (a full disk repeats)."""
        self.metrics.add(spool_errors=1)
        self.metrics.error(message)
        self._log_limited("spool", logging.ERROR, "flask-difylogstore: spool error: %s", message)


def fsync_quietly(fd: int) -> None:
    """fsync ``fd``, ignoring errors (the descriptor may have been closed by a rotation since)."""
    with contextlib.suppress(OSError):
        os.fsync(fd)
