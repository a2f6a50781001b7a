"""The pipeline's parts on their own, and its wiring into the Flask extension."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import orjson
from flask import Flask
from pipeline_fakes import FakeBackend, make_record

from flask_difylogstore import DifyLogStore, LogStoreSettings
from flask_difylogstore.backends.base import Scope
from flask_difylogstore.pipeline import SpoolingPipeline, lifecycle, spool
from flask_difylogstore.pipeline.breaker import CircuitBreaker
from flask_difylogstore.pipeline.lifecycle import wait_until
from flask_difylogstore.pipeline.pending import PendingIndex
from flask_difylogstore.pipeline.writer import backoff_delay
from flask_difylogstore.records import RecordKind
from flask_difylogstore.settings import PipelineSettings


def test_pending_index_keeps_latest_per_id_within_its_cap() -> None:
    index = PendingIndex(max_bytes=250)
    old, new = make_record(1, version=10), make_record(1, version=20)
    index.add(new, 100)
    index.add(old, 100)
    assert index.records(RecordKind.NODE_EXECUTION) == [new]
    index.add(make_record(2, version=5), 100)
    index.add(make_record(3, version=5), 100)  # over the cap: not indexed, counted
    assert len(index) == 2 and index.overflow == 1
    index.discard(old)  # an older acknowledgement does not hide the newer pending snapshot
    assert index.records(RecordKind.NODE_EXECUTION)[0] is new
    index.discard(new)
    assert [r.id for r in index.records(RecordKind.NODE_EXECUTION)] == ["node-2"]


def test_breaker_opens_probes_and_closes() -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=3, base_open_s=1.0, max_open_s=4.0, clock=lambda: now[0])
    for _ in range(3):
        assert breaker.wait_time() == 0
        breaker.failure()
    assert breaker.state == "open" and breaker.wait_time() > 0
    now[0] += 1.0
    assert breaker.wait_time() == 0 and breaker.state == "half_open"
    breaker.failure()  # failed probe: open again, longer
    assert breaker.state == "open"
    now[0] += 4.0
    assert breaker.wait_time() == 0
    breaker.success()
    assert breaker.state == "closed" and breaker.failures == 0


def test_breaker_cool_down_doubles_per_failed_probe_and_admits_one_probe() -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, base_open_s=1.0, max_open_s=8.0, clock=lambda: now[0])
    breaker.failure()
    breaker.failure()
    waits = []
    for _ in range(5):
        waits.append(breaker.wait_time())
        now[0] += waits[-1]
        assert breaker.wait_time() == 0 and breaker.state == "half_open"
        assert breaker.claim_probe() and not breaker.claim_probe()  # the second writer waits
        assert breaker.wait_time() > 0
        breaker.failure()
    ceilings = [1.0, 2.0, 4.0, 8.0, 8.0]
    assert all(c / 2 <= w <= c for w, c in zip(waits, ceilings, strict=True)), waits
    now[0] += 8.0
    assert breaker.wait_time() == 0 and breaker.claim_probe()
    breaker.release_probe()  # no batch to send after all: another writer may probe
    assert breaker.claim_probe()
    breaker.success()
    assert breaker.state == "closed" and breaker.claim_probe() and breaker.claim_probe()


def test_backoff_is_capped_full_jitter() -> None:
    delays = [backoff_delay(attempt, cap=2.0) for attempt in range(40) for _ in range(20)]
    assert min(delays) >= 0 and max(delays) <= 2.0
    assert max(backoff_delay(1, cap=30.0) for _ in range(200)) <= 0.1


def test_extension_builds_the_pipeline_and_reads_see_own_writes(tmp_path: Path) -> None:
    settings = LogStoreSettings(backend="memory", spool_dir=tmp_path, pipeline={"flush_interval_ms": 10})
    app = Flask(__name__)
    DifyLogStore(app, settings=settings)
    state = DifyLogStore.state(app)
    try:
        assert isinstance(state.sink, SpoolingPipeline)
        record = make_record(7, status="succeeded")
        state.sink.submit([record])
        assert [r.id for r in state.sink.pending(RecordKind.NODE_EXECUTION)] in ([record.id], [])
        assert state.sink.flush(5)
        assert state.sink.stats()["written"] == 1
        stored = state.require_backend().get_latest(RecordKind.NODE_EXECUTION, [record.id], Scope("tenant-1"))
        assert stored[record.id].log_version == record.log_version
        assert (tmp_path / "memory").is_dir()
    finally:
        state.close(5)


def test_spooled_records_of_the_older_format_are_replayed(tmp_path: Path) -> None:
    """Segments written before the spool stored ``[kind, data, log_version]`` held ``[kind, wire]``."""
    old, new = make_record(1), make_record(2)
    frames = spool.encode_frame(orjson.dumps([old.kind.value, old.to_wire()]))
    frames += spool.encode_frame(orjson.dumps([new.kind.value, new.data, new.log_version], default=str))
    (tmp_path / "seg-999999-1-000001.log").write_bytes(frames)  # left by a process that is gone
    backend = FakeBackend()
    pipeline = SpoolingPipeline(backend, PipelineSettings(flush_interval_ms=10), tmp_path)
    pipeline.start()
    try:
        assert pipeline.flush(5)
        assert backend.delivered() == {(old.id, old.log_version), (new.id, new.log_version)}
        assert backend.get_latest(RecordKind.NODE_EXECUTION, [old.id], None)[old.id].data == old.data
    finally:
        pipeline.close(2)


def test_acquire_takes_a_free_lock_and_waits_for_a_held_one() -> None:
    lock = lifecycle.native_lock()
    lifecycle.acquire(lock)
    steps: list[str] = []

    def take() -> None:
        lifecycle.acquire(lock)  # spins, then blocks until this thread lets go
        steps.append("acquired")
        lock.release()

    taker = threading.Thread(target=take)
    taker.start()

    def taker_inside_acquire() -> bool:
        frame = sys._current_frames().get(taker.ident or 0)
        return frame is not None and frame.f_code is lifecycle.acquire.__code__

    assert wait_until(taker_inside_acquire, 10)  # the other thread is waiting for the held lock
    steps.append("released")
    lock.release()
    taker.join(10)
    assert steps == ["released", "acquired"]
