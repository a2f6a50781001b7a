"""Test doubles for the write pipeline: an in-memory backend with switchable faults, a file backend
for crash tests across processes, and record factories.

:class:`FakeBackend` is also the ``fake`` harness of the fault tests; ``pipeline_servers`` has the
same harness for the real backends on the local SLS / Elasticsearch servers.
"""

from __future__ import annotations

import os
import threading
import time
import typing as t
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import orjson

from flask_difylogstore.backends.base import PingResult, ProvisionReport, WriteResult
from flask_difylogstore.records import LogRecord, RecordKind, default_clock, supersedes

PAYLOAD_5K = orjson.dumps({"text": "x" * 5000}).decode()


def make_record(
    i: int,
    *,
    kind: RecordKind = RecordKind.NODE_EXECUTION,
    status: str = "running",
    payload: str = PAYLOAD_5K,
    version: int | None = None,
    run: str = "run-1",
) -> LogRecord:
    """A node-execution snapshot with a ~5 KB payload (what Dify saves per node step)."""
    data: dict[str, t.Any] = {
        "id": f"node-{i}",
        "tenant_id": "tenant-1",
        "app_id": "app-1",
        "workflow_id": "wf-1",
        "triggered_from": "workflow-run",
        "workflow_run_id": run,
        "index": i,
        "node_id": f"n{i}",
        "node_type": "llm",
        "title": f"Node {i}",
        "inputs": "{}",
        "outputs": payload,
        "status": status,
        "elapsed_time": 0.5,
        "created_at": datetime(2026, 1, 1, 12, 0, 0),
        "created_by_role": "account",
        "created_by": "user-1",
    }
    if version is None:
        version = default_clock.version_for(kind, status)
    return LogRecord(kind, data, version)


def make_app_log(i: int, *, run: str = "run-1") -> LogRecord:
    """A workflow-app-log snapshot (a second kind, so a batch spans two logstores / indices)."""
    data: dict[str, t.Any] = {
        "id": f"log-{i}",
        "tenant_id": "tenant-1",
        "app_id": "app-1",
        "workflow_id": "wf-1",
        "workflow_run_id": run,
        "created_from": "service-api",
        "created_by_role": "account",
        "created_by": "user-1",
        "created_at": datetime(2026, 1, 1, 12, 0, 0),
    }
    return LogRecord(RecordKind.APP_LOG, data, default_clock.version_for(RecordKind.APP_LOG, "succeeded"))


class _Unsupported:
    def provision(self, *, dry_run: bool = False) -> ProvisionReport:
        return ProvisionReport(backend=t.cast(str, getattr(self, "name", "fake")), dry_run=dry_run)

    def get_latest(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        raise NotImplementedError

    search = count = aggregate = delete = get_latest

    def ping(self) -> PingResult:
        return PingResult(name="fake", ok=True, latency_ms=0.0)

    def close(self) -> None:
        return None


class FakeBackend(_Unsupported):
    """In-memory LogBackend with faults: down (raises), fail_next (whole-batch 5xx/429 results),
    partial (every n-th record fails retryably), reject (predicate -> non-retryable), delay.

    It is its own harness (``backend`` is itself); see ``conftest.Harness``.
    """

    name = "fake"
    visibility_delay_s = 0.0

    def __init__(self, *, max_batch_records: int = 4096, max_batch_bytes: int = 5 * 1024 * 1024) -> None:
        self.max_batch_records = max_batch_records
        self.max_batch_bytes = max_batch_bytes
        self.lock = threading.Lock()
        self.writes: list[tuple[RecordKind, str, int]] = []
        self.batches: list[int] = []
        self.calls = 0
        self.is_down = False
        self.delay_s = 0.0
        self.fail_next_n = 0
        self.fail_status = 503
        self.partial_every = 0
        self.reject: t.Callable[[LogRecord], bool] | None = None
        self.thread_ids: set[int] = set()
        self.failed_once: set[tuple[str, int]] = set()
        self.partial_budget = -1  # retryable record failures left for `partial_every` (-1: no limit)
        self.stored: dict[tuple[RecordKind, str], LogRecord] = {}

    @property
    def backend(self) -> FakeBackend:
        return self

    # faults -----------------------------------------------------------------------------
    def go_down(self) -> None:
        self.is_down = True

    def come_back(self) -> None:
        self.is_down = False

    def fail_next(self, n: int, status: int = 503) -> None:
        self.fail_next_n, self.fail_status = n, status

    def slow(self, seconds: float) -> None:
        self.delay_s = seconds

    def fail_some(self) -> None:
        """Some records of the next batches fail retryably, the others of the same batch are stored."""
        self.partial_every, self.partial_budget = 3, 40

    def bad_record(self, i: int) -> LogRecord:
        """A record this backend refuses for good."""
        record = make_record(i)
        self.reject = lambda r: r.id == record.id
        return record

    def error_text(self, status: int) -> str:
        """What the pipeline's ``last_error`` says after ``fail_next(n, status)``."""
        return str(status)

    # LogBackend -------------------------------------------------------------------------
    def write(self, records: Sequence[LogRecord]) -> WriteResult:
        with self.lock:
            self.calls += 1
            self.thread_ids.add(threading.get_ident())
            fail_all = self.fail_next_n > 0
            if fail_all:
                self.fail_next_n -= 1
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.is_down:
            raise ConnectionError("connection refused")
        result = WriteResult()
        if fail_all:
            reason = "429 Too Many Requests" if self.fail_status == 429 else f"{self.fail_status} ServerBusy"
            result.failed = [(r, reason, True) for r in records]
            return result
        stored: list[tuple[RecordKind, str, int]] = []
        for n, record in enumerate(records):
            if self.reject is not None and self.reject(record):
                result.failed.append((record, "400 InvalidRecord", False))
            elif self.partial_every and n % self.partial_every == 0 and self.partial_budget and self._first_try(record):
                self.partial_budget -= 1
                result.failed.append((record, "500 InternalServerError", True))
            else:
                stored.append((record.kind, record.id, record.log_version))
                with self.lock:
                    current = self.stored.get((record.kind, record.id))
                    if current is None or supersedes(record.log_version, current.log_version):
                        self.stored[(record.kind, record.id)] = record
        with self.lock:
            self.writes.extend(stored)
            self.batches.append(len(records))
        result.written = len(stored)
        return result

    def get_latest(self, kind: RecordKind, ids: Sequence[str], scope: t.Any) -> dict[str, LogRecord]:
        with self.lock:
            found = [self.stored.get((kind, i)) for i in ids]
        return {r.id: r for r in found if r is not None}

    def _first_try(self, record: LogRecord) -> bool:
        key = (record.id, record.log_version)
        with self.lock:
            if key in self.failed_once:
                return False
            self.failed_once.add(key)
            return True

    # reading back -----------------------------------------------------------------------
    def delivered(self) -> set[tuple[str, int]]:
        """The winning (id, log_version) per id stored: what a reader sees."""
        latest: dict[str, int] = {}
        with self.lock:
            for _, i, v in self.writes:
                if i not in latest or supersedes(v, latest[i]):
                    latest[i] = v
        return set(latest.items())

    def raw_count(self) -> int:
        with self.lock:
            return len(self.writes)


class FileBackend(_Unsupported):
    """Appends each stored (id, log_version) as a line to a file, so another process can check it."""

    name = "filebackend"
    max_batch_records = 500
    max_batch_bytes = 5 * 1024 * 1024

    def __init__(self, path: Path, *, delay_s: float = 0.0) -> None:
        self.path = path
        self.delay_s = delay_s

    def write(self, records: Sequence[LogRecord]) -> WriteResult:
        if self.delay_s:
            time.sleep(self.delay_s)
        lines = b"".join(orjson.dumps([r.id, r.log_version]) + b"\n" for r in records)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, lines)
        finally:
            os.close(fd)
        return WriteResult(written=len(records))

    @staticmethod
    def read(path: Path) -> list[tuple[str, int]]:
        if not path.exists():
            return []
        return [tuple(orjson.loads(line)) for line in path.read_bytes().splitlines() if line]  # type: ignore[misc]


def encode_torn_tail() -> bytes:
    """The first half of a frame, as a process killed in the middle of an append leaves it."""
    from flask_difylogstore.pipeline.spool import encode_frame

    frame = encode_frame(orjson.dumps(["workflow_node_execution", {"id": "torn"}]))
    return frame[: len(frame) // 2]


class HeldBackend:
    """Wraps a backend; while held, each write waits for :meth:`release` first (a hung connection).

    Saves made while a writer is stuck here prove they never wait for the writer: one that did
    would sit until the hold's deadline, and ``timed_out`` tells.
    """

    HOLD_DEADLINE_S = 30.0

    def __init__(self, backend: t.Any) -> None:
        self._backend = backend
        self._released = threading.Event()
        self._released.set()
        self.entered = threading.Event()  # a write started since the last hold()
        self.timed_out = False

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self._backend, name)

    def hold(self) -> None:
        self.entered.clear()
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def write(self, records: Sequence[LogRecord]) -> WriteResult:
        self.entered.set()
        if not self._released.wait(self.HOLD_DEADLINE_S):
            self.timed_out = True
        result: WriteResult = self._backend.write(records)
        return result


class RecordingGate(threading.Event):
    """A provisioning gate that notes which thread looked at it, and when."""

    def __init__(self) -> None:
        super().__init__()
        self.checks: list[tuple[int, float]] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.checks.append((threading.get_ident(), time.monotonic()))
        return super().wait(timeout)

    def turn_ended_since(self, moment: float) -> bool:
        """Whether a thread looked at the gate at or after ``moment``, and then again (its turn between ended)."""
        checks = list(self.checks)
        return any(
            at >= moment and any(later == ident for later, _ in checks[i + 1 :]) for i, (ident, at) in enumerate(checks)
        )
