"""The background writer: batches, backend calls, retries with back-off, dead letters.

``WRITERS`` OS threads per pipeline share one :class:`Writer`. It waits for provisioning before
the first write (SLS would not index data written before the index exists), takes batches within
both the settings' and the backend's limits, and settles every record of every batch:
acknowledged (stored or stale), retried later (exponential back-off with full jitter, capped at
``max_retry_delay_s``, no attempt limit: a retryable record is kept until the backend takes it),
or moved to the dead-letter file when the backend says retrying cannot help. Nothing leaves the
spool any other way. Batches in flight at the same time may hold versions of one entity; the
backends keep the highest ``log_version`` whatever the order of arrival, so that is safe.
"""

from __future__ import annotations

import logging
import os
import random
import time
import typing as t
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from flask_difylogstore.backends.base import LogBackend, WriteResult
from flask_difylogstore.pipeline.breaker import PROBE_WAIT_S, CircuitBreaker
from flask_difylogstore.pipeline.lifecycle import native_lock
from flask_difylogstore.pipeline.metrics import PipelineMetrics
from flask_difylogstore.pipeline.spool import decode_frames, encode_frame
from flask_difylogstore.records import LogRecord

if t.TYPE_CHECKING:
    from flask_difylogstore.pipeline.feed import Entry

logger = logging.getLogger(__name__)

RETRY_BASE_S = 0.05
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
    return random.uniform(0.0, min(cap, base * (2 ** min(attempt, 30))))


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

    def __post_init__(self) -> None:
        self.breaker.max_open_s = self.max_retry_delay_s
        self.max_records = max(1, min(self.batch_max_records, self.backend.max_batch_records))
        self.max_bytes = max(1, min(self.batch_max_bytes, self.backend.max_batch_bytes))

    def run(self) -> None:
        feed = self.feed
        while not feed.stopping:
            feed.maintenance()
            if not self._provisioned():
                feed.sleep(0.2)
                continue
            wait = max(self.breaker.wait_time(), self.retry_at - time.monotonic())
            if wait > 0:
                feed.sleep(min(wait, 1.0))
                continue
            feed.refill()
            probe = self.breaker.state == "half_open"
            if probe and not self.breaker.claim_probe():
                feed.sleep(PROBE_WAIT_S)  # another writer's probe is out
                continue
            batch, wait = feed.next_batch(
                min(self.max_records, PROBE_RECORDS) if probe else self.max_records, self.max_bytes
            )
            if batch is None:
                if probe:
                    self.breaker.release_probe()
                feed.sleep(wait)
                continue
            self.deliver(batch)

    def _provisioned(self) -> bool:
        if not self.provisioned:
            self.provisioned = self.gate is None or bool(self.gate.wait(0))
        return self.provisioned

    def deliver(self, batch: list[Entry]) -> None:
        """Write one batch and settle each of its records."""
        records = [entry.record for entry in batch]
        raised = False
        try:
            result = self.backend.write(records)
        except Exception as exc:
            raised = True
            reason = f"{type(exc).__name__}: {exc}"
            result = WriteResult(failed=[(record, reason, True) for record in records])
        failures = {id(record): (reason, retryable) for record, reason, retryable in result.failed}
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
        if dead:
            self._dead_letter(dead, failures)
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
            first_reason = failures[id(retry[0].record)][0]
            self.metrics.error(first_reason)
            self.consecutive_failures += 1
            if raised or not ok:
                self.breaker.failure()
            else:
                self.breaker.release_probe()  # partly stored: the backend answers, not a reason to open
            self.retry_at = time.monotonic() + backoff_delay(self.consecutive_failures, self.max_retry_delay_s)
            if self.consecutive_failures in (1, 10) or self.consecutive_failures % 100 == 0:
                logger.warning(
                    "flask-difylogstore: %s write failed (%d of %d records, attempt %d), retrying: %s",
                    self.backend.name,
                    len(retry),
                    len(batch),
                    self.consecutive_failures,
                    first_reason,
                )
        else:
            if self.consecutive_failures:
                logger.info(
                    "flask-difylogstore: %s writes recovered after %d failed attempts",
                    self.backend.name,
                    self.consecutive_failures,
                )
            self.consecutive_failures = 0
            self.retry_at = 0.0
            self.breaker.success()

    def _dead_letter(self, dead: list[Entry], failures: dict[int, tuple[str, bool]]) -> None:
        for entry in dead:
            reason = failures[id(entry.record)][0]
            self.dead_letters.add(entry.record, reason, entry.attempts)
            self.metrics.error(f"rejected {entry.record.kind.value} {entry.record.id}: {reason}")
        logger.error(
            "flask-difylogstore: %s rejected %d records for good; kept in %s (first: %s)",
            self.backend.name,
            len(dead),
            self.dead_letters.directory,
            failures[id(dead[0].record)][0],
        )


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
