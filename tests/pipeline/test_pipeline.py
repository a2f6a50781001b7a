"""Behaviour of the spooling pipeline against backends with switchable faults.

Tests taking ``harness`` run three times: on the in-memory fake, and on the real ``aliyun_sls``
and ``elasticsearch`` backends with the local servers injecting the faults.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from conftest import FAST, Harness, MakePipeline
from pipeline_fakes import FakeBackend, HeldBackend, RecordingGate, make_app_log, make_record

from flask_difylogstore.backends.base import Scope
from flask_difylogstore.errors import BackendUnavailableError
from flask_difylogstore.pipeline import RecordSink, read_dead_letters
from flask_difylogstore.pipeline.lifecycle import wait_until
from flask_difylogstore.records import RecordKind


def ids(harness: Harness | FakeBackend) -> set[str]:
    return {i for i, _ in harness.delivered()}


def test_is_a_record_sink_and_delivers_in_batches(harness: Harness, make_pipeline: MakePipeline) -> None:
    pipeline = make_pipeline(harness.backend, batch_max_records=100)
    assert isinstance(pipeline, RecordSink)
    records = [make_record(i) for i in range(1000)]
    for record in records:
        pipeline.submit([record])
    assert pipeline.flush(10)
    assert harness.delivered() == {(r.id, r.log_version) for r in records}
    assert max(harness.batches) <= 100 and len(harness.batches) >= 10
    stats = pipeline.stats()
    assert stats["written"] == 1000 and stats["dropped"] == 0 and stats["unacknowledged"] == 0


def test_batches_respect_the_backend_limits(make_pipeline: MakePipeline) -> None:
    backend = FakeBackend(max_batch_records=7, max_batch_bytes=20_000)
    pipeline = make_pipeline(backend)
    pipeline.submit([make_record(i) for i in range(50)])
    assert pipeline.flush(10)
    assert max(backend.batches) <= 3  # 5 KB records, 20 KB per request
    assert len(backend.delivered()) == 50


def test_read_your_writes_until_acknowledged(harness: Harness, make_pipeline: MakePipeline) -> None:
    harness.go_down()
    pipeline = make_pipeline(harness.backend)
    older = make_record(1, status="running")
    newer = make_record(1, status="succeeded")
    pipeline.submit([newer])
    pipeline.submit([older])  # arrives later, but a final status outranks it
    pending = list(pipeline.pending(RecordKind.NODE_EXECUTION))
    assert [r.log_version for r in pending] == [newer.log_version]
    assert list(pipeline.pending(RecordKind.RUN)) == []
    harness.come_back()
    assert pipeline.flush(10)
    # stored; a backend that makes writes searchable only later keeps serving them for that long
    assert wait_until(lambda: list(pipeline.pending(RecordKind.NODE_EXECUTION)) == [], 5)
    assert harness.delivered() == {(newer.id, newer.log_version)}


def test_a_read_right_after_the_acknowledgement_still_sees_the_record(
    harness: Harness, make_pipeline: MakePipeline
) -> None:
    """Elasticsearch acknowledges before a refresh makes the write searchable; reads must not miss it."""
    pipeline = make_pipeline(harness.backend)
    records = [make_record(i, status="succeeded") for i in range(20)]
    pipeline.submit(records)
    assert pipeline.flush(10)
    wanted = [r.id for r in records]
    stored = harness.backend.get_latest(RecordKind.NODE_EXECUTION, wanted, Scope("tenant-1"))
    pending = {r.id for r in pipeline.pending(RecordKind.NODE_EXECUTION)}
    assert set(stored) | pending == set(wanted)
    delay = float(getattr(harness.backend, "visibility_delay_s", 0.0))
    assert wait_until(lambda: not list(pipeline.pending(RecordKind.NODE_EXECUTION)), delay + 2)


def test_waits_for_provisioning_before_the_first_write(harness: Harness, make_pipeline: MakePipeline) -> None:
    gate = RecordingGate()
    pipeline = make_pipeline(harness.backend, gate=gate)
    pipeline.submit([make_record(1)])
    due = time.monotonic() + FAST["flush_interval_ms"] / 1000  # from then on a batch is ready
    # a writer turn that began after the record was due and ended would have sent it, gate ignored
    assert wait_until(lambda: gate.turn_ended_since(due), 10)
    assert harness.calls == 0 and not harness.delivered()
    gate.set()
    assert pipeline.flush(5)
    assert len(harness.delivered()) == 1


@pytest.mark.parametrize("status", [503, 429])
def test_error_responses_are_retried(harness: Harness, make_pipeline: MakePipeline, status: int) -> None:
    harness.fail_next(4, status)
    pipeline = make_pipeline(harness.backend)
    pipeline.submit([make_record(i) for i in range(20)])
    assert pipeline.flush(10)
    assert len(harness.delivered()) == 20
    assert pipeline.stats()["retried"] >= 20
    assert harness.error_text(status) in (pipeline.stats()["last_error"] or "")


def test_partial_failures_and_slow_backend_lose_nothing(harness: Harness, make_pipeline: MakePipeline) -> None:
    harness.fail_some()
    harness.slow(0.05)
    held = HeldBackend(harness.backend)
    pipeline = make_pipeline(held, batch_max_records=50)
    records = [make_record(i) if i % 2 else make_app_log(i) for i in range(300)]
    held.hold()
    pipeline.submit(records[:1])
    assert wait_until(held.entered.is_set, 10)  # a writer is now stuck in the backend
    for record in records[1:]:
        pipeline.submit([record])
    assert not held.timed_out  # a slow backend does not slow save(): none waited for the stuck writer
    held.release()
    assert pipeline.flush(15)
    assert harness.delivered() == {(r.id, r.log_version) for r in records}
    stats = pipeline.stats()
    assert stats["retried"] >= 1 and stats["dead_lettered"] == 0
    assert stats["written"] + stats["stale"] == 300


def test_non_retryable_failures_go_to_dead_letters(harness: Harness, make_pipeline: MakePipeline) -> None:
    records = [make_record(i) for i in range(10)]
    records[3] = harness.bad_record(3)
    pipeline = make_pipeline(harness.backend)
    pipeline.submit(records)
    assert pipeline.flush(10)
    assert ids(harness) == {f"node-{i}" for i in range(10)} - {"node-3"}
    assert pipeline.stats()["dead_lettered"] == 1
    letters = list(read_dead_letters(pipeline.directory))
    assert [d["record"]["id"] for d in letters] == ["node-3"] and letters[0]["reason"]


def test_outage_of_thousands_of_saves_never_blocks_and_loses_nothing(
    harness: Harness, make_pipeline: MakePipeline
) -> None:
    harness.go_down()
    held = HeldBackend(harness.backend)
    pipeline = make_pipeline(held, memory_max_bytes=1024 * 1024)  # forces spilling to disk
    records = [make_record(i) for i in range(3000)]
    for record in records[:1000]:
        pipeline.submit([record])  # meanwhile the writer fails, backs off, opens the breaker
    assert wait_until(lambda: pipeline.stats()["breaker"]["opens"] >= 1, 5)
    held.hold()  # the next attempt hangs, as on a dead connection
    assert wait_until(held.entered.is_set, 10)
    for record in records[1000:]:
        pipeline.submit([record])
    assert not held.timed_out  # no save waited for the writer, stuck or failing
    stats = pipeline.stats()
    assert stats["spilling"] and stats["memory_bytes"] <= 1024 * 1024
    held.release()
    assert not pipeline.flush(0.2)
    harness.come_back()
    assert pipeline.flush(20)
    assert harness.delivered() == {(r.id, r.log_version) for r in records}
    assert pipeline.stats()["breaker"]["state"] == "closed"


@pytest.mark.parametrize("policy", ["drop_newest", "fail"])
def test_spool_cap_applies_the_policy_and_counts(harness: Harness, make_pipeline: MakePipeline, policy: str) -> None:
    harness.go_down()
    pipeline = make_pipeline(harness.backend, spool_max_bytes=1024 * 1024, overflow_policy=policy)
    accepted = refused = 0
    for i in range(400):  # ~2 MB of 5 KB records into a 1 MB spool
        try:
            pipeline.submit([make_record(i)])
            accepted += 1
        except BackendUnavailableError:
            refused += 1
    stats = pipeline.stats()
    if policy == "drop_newest":
        assert refused == 0 and stats["dropped"] > 150
    else:
        assert refused > 150 and stats["rejected"] == refused and stats["dropped"] == 0
    harness.come_back()
    assert pipeline.flush(10)
    assert len(harness.delivered()) == stats["accepted"] == 400 - stats["dropped"] - stats["rejected"]


def test_block_policy_waits_for_room(harness: Harness, make_pipeline: MakePipeline) -> None:
    harness.slow(0.02)
    pipeline = make_pipeline(
        harness.backend,
        spool_max_bytes=1024 * 1024,
        overflow_policy="block",
        segment_bytes=64 * 1024,
        segment_age_s=0.05,
    )
    records = [make_record(i) for i in range(600)]
    for record in records:
        pipeline.submit([record])
    assert pipeline.flush(10)
    assert len(harness.delivered()) == 600 and pipeline.stats()["dropped"] == 0


def test_32_threads_saving_at_once(harness: Harness, make_pipeline: MakePipeline) -> None:
    pipeline = make_pipeline(harness.backend)
    barrier = threading.Barrier(32)
    errors: list[BaseException] = []

    def save(t: int) -> None:
        barrier.wait()
        try:
            for i in range(100):
                pipeline.submit([make_record(t * 1000 + i)])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(t,)) for t in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert pipeline.flush(15)
    assert len(ids(harness)) == 3200 and harness.raw_count() == 3200  # each stored once
    assert pipeline.stats()["stale"] == 0


def test_close_flushes_and_leaves_the_rest_for_the_next_start(
    harness: Harness, make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    first = make_pipeline(harness.backend)
    first.submit([make_record(i) for i in range(100)])
    first.close(5)
    assert len(harness.delivered()) == 100
    assert not list((tmp_path / "spool").glob("seg-*.log"))  # acknowledged segments are deleted

    harness.go_down()
    second = make_pipeline(harness.backend)
    second.submit([make_record(i) for i in range(100, 150)])
    second.close(0.3)
    assert list((tmp_path / "spool").glob("seg-*.log"))
    harness.come_back()
    third = make_pipeline(harness.backend)
    assert third.flush(10)
    assert ids(harness) == {f"node-{i}" for i in range(150)}
    assert third.stats()["replayed"] == 50


def test_forked_child_gets_its_own_writer(make_pipeline: MakePipeline, tmp_path: Path) -> None:
    harness = FakeBackend()  # a forked child must not share an HTTP client's pooled connections
    pipeline = make_pipeline(harness)
    pipeline.submit([make_record(0)])
    assert pipeline.flush(5)
    parent_writer = pipeline._threads[0]
    out = tmp_path / "child.txt"
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            assert pipeline._threads == [] and not pipeline.stats()["unacknowledged"]
            pipeline.submit([make_record(1)])
            assert pipeline._threads and pipeline._threads[0] is not parent_writer
            assert pipeline.flush(5)
            out.write_text(repr(sorted(ids(harness))))
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert out.read_text() == repr(["node-0", "node-1"])  # the child's writer delivered in the child
    pipeline.submit([make_record(2)])
    assert pipeline.flush(5)
    assert ids(harness) == {"node-0", "node-2"}  # the parent is unaffected
