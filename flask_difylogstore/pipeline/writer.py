"""The background writer: batches, backend calls, retries with back-off, dead letters.

``WRITERS`` OS threads per pipeline share one :class:`Writer`. It waits for provisioning before
the first write (SLS would not index data written before the index exists), takes batches within
both the settings' and the backend's limits, and settles every record of every batch:
acknowledged (stored or stale), retried later (exponential back-off with full jitter, capped at
``max_retry_delay_s``, no attempt limit: a retryable record is kept until the backend takes it),
or moved to the dead-letter file when the backend says retrying cannot help. Nothing leaves the
spool any other way: a refused record whose dead letter cannot be written (disk full, read-only
mount, ``dead`` not a directory) stays in the spool, is counted as ``undeliverable`` and is
dead-lettered again every ``DEAD_LETTER_RETRY_S``. An exception anywhere in the loop is logged
(rate-limited) and the loop carries on: a writer thread never dies of one. Batches in flight at
the same time may hold versions of one entity; the backends keep the highest ``log_version``
whatever the order of arrival, so that is safe.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
import typing as t
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from flask_difylogstore._settings_errors import mask_url_credentials
from flask_difylogstore.backends.base import LogBackend, WriteResult
from flask_difylogstore.pipeline.breaker import PROBE_WAIT_S, CircuitBreaker
from flask_difylogstore.pipeline.lifecycle import native_lock
from flask_difylogstore.pipeline.metrics import PipelineMetrics
from flask_difylogstore.pipeline.spool import decode_frames, encode_frame
from flask_difylogstore.records import LogRecord

if t.TYPE_CHECKING:
    from flask_difylogstore.pipeline.feed import Entry

logger = logging.getLogger(__name__)

#: The writer's own random source: a background thread must not move the application's global one.
_jitter = random.Random()

RETRY_BASE_S = 0.05
#: How often records that could not be dead-lettered are tried again.
DEAD_LETTER_RETRY_S = 5.0
#: At most one log line per this many seconds for each repeated error of the writer loop.
ERROR_LOG_INTERVAL_S = 10.0
PROBE_RECORDS = 16
#: Writer threads per pipeline. A backend call is mostly encoding (holding the GIL) then waiting for
#: the server (not holding it); with two, one encodes the next batch while the other waits.
WRITERS = 2


class Gate(t.Protocol):
    """What the writer waits on before its first write (the extension's provisioning gate)."""

    def wait(self, timeout: float | None = None) -> bool: ...


class Feed(t.Protocol):
    """The pipeline side of the writer: where batches come from and where outcomes go."""

    stopping: bool

    def maintenance(self) -> None: ...
    def refill(self) -> None: ...
    def next_batch(self, max_records: int, max_bytes: int) -> tuple[list[Entry] | None, float]: ...
    def settle(self, ok: list[Entry], dead: list[Entry], retry: list[Entry]) -> None: ...
    def sleep(self, timeout: float) -> None: ...


def backoff_delay(attempt: int, cap: float, base: float = RETRY_BASE_S) -> float:
    """Exponential back-off with full jitter: uniform in ``[0, min(cap, base * 2**attempt)]``."""
    return _jitter.uniform(0.0, min(cap, base * (2 ** min(attempt, 30))))


def _sort_outcomes(
    batch: list[Entry], failures: dict[int, tuple[str, bool]]
) -> tuple[list[Entry], list[Entry], list[Entry]]:
    """The batch's entries as (stored, refused for good, to retry); a retried entry counts an attempt."""
    ok: list[Entry] = []
    dead: list[Entry] = []
    retry: list[Entry] = []
    for entry in batch:
        outcome = failures.get(id(entry.record))
        if outcome is None:
            ok.append(entry)
        elif outcome[1]:
            entry.attempts += 1
            retry.append(entry)
        else:
            dead.append(entry)
    return ok, dead, retry


@dataclass
class Writer:
    """Moves batches from the feed to the backend; runs in the pipeline's writer thread."""

    backend: LogBackend
    feed: Feed
    metrics: PipelineMetrics
    dead_letters: DeadLetters
    batch_max_records: int
    batch_max_bytes: int
    max_retry_delay_s: float
    gate: Gate | None = None
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    consecutive_failures: int = 0
    retry_at: float = 0.0
    provisioned: bool = False
    loop_errors: int = 0
    stuck: list[Entry] = field(default_factory=list)
    dead_letter_error: str | None = None

    def __post_init__(self) -> None:
        self.breaker.max_open_s = self.max_retry_delay_s
        self.max_records = max(1, min(self.batch_max_records, self.backend.max_batch_records))
        self.max_bytes = max(1, min(self.batch_max_bytes, self.backend.max_batch_bytes))
        self._stuck_lock = native_lock()
        self._stuck_retry_at = 0.0
        self._last_error_log = -ERROR_LOG_INTERVAL_S

    def run(self) -> None:
        """The loop of a writer thread: survives any exception, so delivery never stops for good."""
        while not self.feed.stopping:
            try:
                self._turn()
            except Exception as exc:
                self.loop_errors += 1
                self.metrics.error(f"writer: {type(exc).__name__}: {exc}")
                now = time.monotonic()
                if now - self._last_error_log >= ERROR_LOG_INTERVAL_S:
                    self._last_error_log = now
                    logger.exception(
                        "flask-difylogstore: %s writer error (%d so far), carrying on",
                        self.backend.name,
                        self.loop_errors,
                    )
                self.feed.sleep(min(1.0, backoff_delay(min(self.loop_errors, 10), 1.0) + 0.05))

    def _turn(self) -> None:
        """One turn of the loop: maintenance, then at most one batch."""
        feed = self.feed
        feed.maintenance()
        if self.stuck and time.monotonic() >= self._stuck_retry_at:
            self._retry_stuck()
        if not self.is_provisioned():
            feed.sleep(0.2)
            return
        wait = max(self.breaker.wait_time(), self.retry_at - time.monotonic())
        if wait > 0:
            feed.sleep(min(wait, 1.0))
            return
        feed.refill()
        probe = self.breaker.state == "half_open"
        if probe and not self.breaker.claim_probe():
            feed.sleep(PROBE_WAIT_S)  # another writer's probe is out
            return
        try:
            batch, wait = feed.next_batch(
                min(self.max_records, PROBE_RECORDS) if probe else self.max_records, self.max_bytes
            )
        except BaseException:
            if probe:
                self.breaker.release_probe()
            raise
        if batch is None:
            if probe:
                self.breaker.release_probe()
            feed.sleep(wait)
            return
        try:
            self.deliver(batch)
        except BaseException:
            if probe:  # without an outcome the probe must not stay claimed, or no writer would send again
                self.breaker.release_probe()
            raise

    def is_provisioned(self) -> bool:
        if not self.provisioned:
            self.provisioned = self.gate is None or bool(self.gate.wait(0))
        return self.provisioned

    def deliver(self, batch: list[Entry]) -> None:
        """Write one batch and settle each of its records (on an unexpected error: retry them all)."""
        for entry in batch:
            entry.settled = False
        try:
            self._deliver(batch)
        except BaseException:
            with contextlib.suppress(Exception):
                self.feed.settle([], [], [e for e in batch if not e.settled])
            raise

    def _deliver(self, batch: list[Entry]) -> None:
        records = [entry.record for entry in batch]
        result, raised = self._write(records)
        failures = {id(record): (reason, retryable) for record, reason, retryable in result.failed}
        ok, dead, retry = _sort_outcomes(batch, failures)
        if dead:
            dead, _stuck = self._dead_letter(dead, failures)  # the stuck ones stay in the spool
        for entry in batch:
            entry.settled = True
        self.feed.settle(ok, dead, retry)
        self.metrics.add(
            batches=1,
            written=result.written,
            stale=result.stale,
            retried=len(retry),
            dead_lettered=len(dead),
            failed_batches=1 if result.failed else 0,
        )
        if ok:
            self.metrics.last_success_at = time.time()
        if retry:
            self._back_off(
                failures[id(retry[0].record)][0], len(retry), len(batch), stored_some=bool(ok) and not raised
            )
        else:
            self._recovered()

    def _write(self, records: list[LogRecord]) -> tuple[WriteResult, bool]:
        """The backend's answer, and whether it raised (then every record failed, retryably)."""
        try:
            return self.backend.write(records), False
        except Exception as exc:
            reason = mask_url_credentials(f"{type(exc).__name__}: {exc}")
            return WriteResult(failed=[(record, reason, True) for record in records]), True

    def _back_off(self, reason: str, retried: int, size: int, *, stored_some: bool) -> None:
        """After a batch with retryable failures: note the error, tell the breaker, plan the next attempt."""
        self.metrics.error(reason)
        self.consecutive_failures += 1
        if stored_some:
            self.breaker.release_probe()  # partly stored: the backend answers, not a reason to open
        else:
            self.breaker.failure()
        self.retry_at = time.monotonic() + backoff_delay(self.consecutive_failures, self.max_retry_delay_s)
        if self.consecutive_failures in (1, 10) or self.consecutive_failures % 100 == 0:
            logger.warning(
                "flask-difylogstore: %s write failed (%d of %d records, attempt %d), retrying: %s",
                self.backend.name,
                retried,
                size,
                self.consecutive_failures,
                reason,
            )

    def _recovered(self) -> None:
        """After a batch with nothing to retry: the back-off ends and the breaker closes."""
        if self.consecutive_failures:
            logger.info(
                "flask-difylogstore: %s writes recovered after %d failed attempts",
                self.backend.name,
                self.consecutive_failures,
            )
        self.consecutive_failures = 0
        self.retry_at = 0.0
        self.breaker.success()

    def _dead_letter(self, dead: list[Entry], failures: dict[int, tuple[str, bool]]) -> tuple[list[Entry], list[Entry]]:
        """Write dead letters; return the entries written and those kept in the spool (not writable)."""
        written, stuck = self._write_dead_letters([(e, failures[id(e.record)][0]) for e in dead])
        if written:
            logger.error(
                "flask-difylogstore: %s rejected %d records for good; kept in %s (first: %s)",
                self.backend.name,
                len(written),
                self.dead_letters.directory,
                failures[id(written[0].record)][0],
            )
        return written, stuck

    def _write_dead_letters(self, items: list[tuple[Entry, str]]) -> tuple[list[Entry], list[Entry]]:
        written: list[Entry] = []
        stuck: list[Entry] = []
        for entry, reason in items:
            self.metrics.error(f"rejected {entry.record.kind.value} {entry.record.id}: {reason}")
            if stuck:  # the dead-letter file failed for this batch: don't hammer it
                stuck.append(entry)
                continue
            try:
                self.dead_letters.add(entry.record, reason, entry.attempts)
            except Exception as exc:
                self.dead_letter_error = f"{type(exc).__name__}: {exc}"
                stuck.append(entry)
            else:
                written.append(entry)
        if stuck:
            for entry, reason in items:
                entry.reason = reason
            with self._stuck_lock:
                self.stuck.extend(stuck)
                self._stuck_retry_at = time.monotonic() + DEAD_LETTER_RETRY_S
                total = len(self.stuck)
            now = time.monotonic()
            if now - self._last_error_log >= ERROR_LOG_INTERVAL_S:
                self._last_error_log = now
                logger.error(
                    "flask-difylogstore: %s refused %d records for good and they cannot be written to the "
                    "dead-letter directory %s (%s); they stay in the spool (%d so far), retried every %gs",
                    self.backend.name,
                    len(stuck),
                    self.dead_letters.directory,
                    self.dead_letter_error,
                    total,
                    DEAD_LETTER_RETRY_S,
                )
        elif written:
            self.dead_letter_error = None
        return written, stuck

    def _retry_stuck(self) -> None:
        """Dead-letter again the records whose dead letter could not be written."""
        with self._stuck_lock:
            items, self.stuck = self.stuck, []
            self._stuck_retry_at = time.monotonic() + DEAD_LETTER_RETRY_S
        if not items:
            return
        try:
            written, stuck = self._write_dead_letters([(e, e.reason or "refused") for e in items])
        except BaseException:
            with self._stuck_lock:
                self.stuck.extend(items)
            raise
        if written:
            self.feed.settle([], written, [])
            self.metrics.add(dead_lettered=len(written))
            logger.warning(
                "flask-difylogstore: wrote %d held-back dead letters to %s (%d still held)",
                len(written),
                self.dead_letters.directory,
                len(stuck),
            )

    def undeliverable(self) -> int:
        """Records refused for good that are still in the spool because their dead letter failed."""
        return len(self.stuck)


class DeadLetters:
    """Records the backend refused for good, appended (and fsynced) to ``<spool>/dead/``.

    The file is never deleted by the pipeline; :func:`read_dead_letters` lists what is in it.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fd = -1
        self._lock = native_lock()  # the writer threads add concurrently

    def add(self, record: LogRecord, reason: str, attempts: int) -> None:
        payload = orjson.dumps(
            {
                "kind": record.kind.value,
                "record": record.to_wire(),
                "reason": reason,
                "attempts": attempts,
                "at": time.time(),
            },
            default=str,
        )
        with self._lock:
            if self._fd < 0:
                self.directory.mkdir(parents=True, exist_ok=True)
                path = self.directory / f"dead-{os.getpid()}-{time.time_ns()}.log"
                self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            os.write(self._fd, encode_frame(payload))
            os.fsync(self._fd)

    def forget(self) -> None:
        """In a forked child: use a file of its own."""
        self._fd = -1
        self._lock = native_lock()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def read_dead_letters(directory: Path | str) -> Iterator[dict[str, t.Any]]:
    """Every dead letter under ``directory`` (a backend's spool directory or its ``dead/``)."""
    base = Path(directory)
    folder = base if base.name == "dead" else base / "dead"
    for path in sorted(folder.glob("dead-*.log")):
        payloads, _, _ = decode_frames(path.read_bytes(), at_eof=True)
        for payload in payloads:
            item = orjson.loads(payload)
            item["file"] = str(path)
            yield item
