"""Startup and shutdown with the backend down cost little: the time budgets handed down, and kept.

Follows docs/operations.md ("Provisioning", "What happens when"): lenient startup waits at most
``LENIENT_STARTUP_WAIT_S`` and never past a failed first attempt; strict startup raises at the
first failure or after ``LOGSTORE_STARTUP_TIMEOUT``; shutdown gives up waiting once delivery is
impossible, and the records stay in the spool for the next process.
"""

from __future__ import annotations

import threading
import typing as t
from pathlib import Path

import pytest

from flask_difylogstore import DifyLogStore, ProvisioningError, provisioning
from flask_difylogstore.backends.base import ProvisionReport, WriteResult
from flask_difylogstore.pipeline import SpoolingPipeline
from flask_difylogstore.pipeline.lifecycle import wait_until
from flask_difylogstore.provisioning import LENIENT_STARTUP_WAIT_S, ProvisioningGate
from flask_difylogstore.records import LogRecord, RecordKind, default_clock
from flask_difylogstore.settings import LogStoreSettings, PipelineSettings


class Refusing:
    """A backend whose host refuses connections: every call fails at once."""

    name = "refusing"
    max_batch_records = 100
    max_batch_bytes = 1 << 20
    visibility_delay_s = 0.0

    def __init__(self) -> None:
        self.provision_calls = 0

    def provision(self, *, dry_run: bool = False) -> ProvisionReport:
        self.provision_calls += 1
        raise ConnectionRefusedError(111, "Connection refused")

    def write(self, records: t.Sequence[LogRecord]) -> WriteResult:
        raise ConnectionRefusedError(111, "Connection refused")

    def close(self) -> None:
        return None


class Hanging(Refusing):
    """A host that never answers: provisioning blocks until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def provision(self, *, dry_run: bool = False) -> ProvisionReport:
        self.release.wait(60)
        raise TimeoutError("timed out")


def _record(i: int) -> LogRecord:
    from datetime import datetime

    data = {"id": f"run-{i}", "tenant_id": "t1", "app_id": "a1", "status": "running"}
    data["created_at"] = datetime(2026, 1, 1)
    return LogRecord(RecordKind.RUN, data, default_clock.version_for(RecordKind.RUN, "running"))


def _record_waits(gate: ProvisioningGate) -> list[float | None]:
    waits: list[float | None] = []
    real = gate._attempted.wait

    def wait(timeout: float | None = None) -> bool:
        waits.append(timeout)
        return real(timeout)

    gate._attempted.wait = wait  # type: ignore[method-assign]
    return waits


def test_lenient_startup_waits_at_most_the_lenient_budget() -> None:
    backend = Hanging()
    gate = ProvisioningGate(t.cast(t.Any, backend))
    waits = _record_waits(gate)
    gate.start(timeout=600, strict=False)
    assert waits == [LENIENT_STARTUP_WAIT_S] and LENIENT_STARTUP_WAIT_S <= 2.0
    assert not gate.ready and gate.state == "pending"  # still provisioning, in the background
    backend.release.set()
    gate.stop()


def test_a_refused_connection_ends_the_wait_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provisioning, "LENIENT_STARTUP_WAIT_S", 60.0)  # only the failure can end the wait soon
    backend = Refusing()
    gate = ProvisioningGate(t.cast(t.Any, backend), retry_initial=60)
    waits = _record_waits(gate)
    gate.start(timeout=600, strict=False)  # returns after the first attempt, not after 60 s
    assert waits == [60.0] and gate._attempted.is_set()
    assert gate.state == "failed" and backend.provision_calls == 1
    assert "Connection refused" in str(gate.last_error)
    gate.stop()


def test_strict_startup_raises_the_first_failure_not_a_timeout() -> None:
    gate = ProvisioningGate(t.cast(t.Any, Refusing()), retry_initial=60)
    with pytest.raises(ProvisioningError, match="Connection refused"):
        gate.start(timeout=600, strict=True)


def test_strict_startup_waits_the_startup_timeout_for_a_silent_host() -> None:
    backend = Hanging()
    gate = ProvisioningGate(t.cast(t.Any, backend))
    waits = _record_waits(gate)
    with pytest.raises(ProvisioningError, match="LOGSTORE_STARTUP_TIMEOUT"):
        gate.start(timeout=0.2, strict=True)
    assert waits == [0.2]
    backend.release.set()


def test_extension_hands_the_startup_budget_to_the_gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[float, bool]] = []
    original = ProvisioningGate.start

    def spy(self: ProvisioningGate, *, timeout: float, strict: bool) -> None:
        seen.append((timeout, strict))
        original(self, timeout=timeout, strict=strict)

    monkeypatch.setattr(ProvisioningGate, "start", spy)
    from flask import Flask

    settings = LogStoreSettings(_env_file=None, backend="memory", startup_timeout=7, spool_dir=tmp_path)
    app = Flask(__name__)
    DifyLogStore(app, settings=settings)
    DifyLogStore.close(app, 1)
    assert seen == [(7, False)]


def test_shutdown_with_undeliverable_records_gives_up_and_keeps_them(tmp_path: Path) -> None:
    backend = Refusing()
    gate = ProvisioningGate(t.cast(t.Any, backend), retry_initial=60)
    gate.start(timeout=1, strict=False)
    settings = PipelineSettings(flush_interval_ms=5, shutdown_timeout_s=600)
    pipeline = SpoolingPipeline(t.cast(t.Any, backend), settings, tmp_path / "spool", gate=gate)
    pipeline.start()
    pipeline.submit([_record(i) for i in range(10)])
    closer = threading.Thread(target=pipeline.close)  # the configured 600 s are not waited out
    closer.start()
    assert wait_until(lambda: not closer.is_alive(), 60)
    gate.stop()
    assert list((tmp_path / "spool").glob("seg-*.log")), "the records stay in the spool"
    from flask_difylogstore.backends.memory import MemoryBackend

    successor = SpoolingPipeline(MemoryBackend(), PipelineSettings(flush_interval_ms=5), tmp_path / "spool")
    successor.start()
    assert successor.flush(30) and successor.metrics.replayed == 10
    successor.close(5)
