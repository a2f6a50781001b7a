from __future__ import annotations

import threading
from datetime import datetime

from flask_difylogstore.records import (
    DELETED_BIT,
    LogRecord,
    RecordKind,
    VersionClock,
    compose_version,
    is_final_status,
    latest_by_id,
    supersedes,
    version_time_ms,
)
from flask_difylogstore.schemas import schema


def test_clock_is_strictly_monotonic_under_many_threads() -> None:
    clock = VersionClock()
    readings: list[list[int]] = [[] for _ in range(16)]

    def work(out: list[int]) -> None:
        for _ in range(5000):
            out.append(clock.now())

    threads = [threading.Thread(target=work, args=(out,)) for out in readings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    merged = [v for out in readings for v in out]
    assert len(set(merged)) == len(merged) == 80_000
    for out in readings:
        assert out == sorted(out)


def test_clock_survives_a_wall_clock_going_backwards() -> None:
    times = iter([1000, 1000, 990, 980, 1005])
    clock = VersionClock(wall=lambda: next(times), tag=7)
    values = [clock.now() for _ in range(5)]
    assert values == sorted(values) and len(set(values)) == 5


def test_counter_overflow_moves_to_the_next_millisecond() -> None:
    clock = VersionClock(wall=lambda: 5000, tag=1)
    values = [clock.now() for _ in range(3000)]
    assert values == sorted(values)
    assert version_time_ms(values[-1]) == 5001


def test_observe_pulls_the_clock_past_a_foreign_version() -> None:
    lagging = VersionClock(wall=lambda: 1_000, tag=1)
    ahead = VersionClock(wall=lambda: 9_000_000, tag=2)
    foreign = ahead.now()
    lagging.observe(foreign)
    assert lagging.now() > foreign


def test_ties_between_processes_are_broken_by_the_tag() -> None:
    a = VersionClock(wall=lambda: 42, tag=1).now()
    b = VersionClock(wall=lambda: 42, tag=2).now()
    assert a != b and (a < b)


def test_final_state_wins_whatever_the_clocks_say() -> None:
    early_final = compose_version(100, final=True)
    late_running = compose_version(10_000_000, final=False)
    assert supersedes(early_final, late_running)
    assert not supersedes(late_running, early_final)
    later_final = compose_version(200, final=True)
    assert supersedes(later_final, early_final)


def test_tombstones_outrank_everything() -> None:
    tomb = compose_version(1, final=False, deleted=True)
    assert tomb & DELETED_BIT
    assert supersedes(tomb, compose_version(10**12, final=True))


def test_final_statuses_per_kind() -> None:
    for status in ("succeeded", "failed", "stopped", "partial-succeeded"):
        assert is_final_status(RecordKind.RUN, status)
    for status in ("running", "paused", "scheduled", None):
        assert not is_final_status(RecordKind.RUN, status)
    for status in ("succeeded", "failed", "exception", "stopped"):
        assert is_final_status(RecordKind.NODE_EXECUTION, status)
    for status in ("running", "retry", "paused", "pending"):
        assert not is_final_status(RecordKind.NODE_EXECUTION, status)


def test_latest_by_id_and_wire_round_trip() -> None:
    clock = VersionClock()
    created = datetime(2026, 1, 2, 3, 4, 5, 123456)
    base = {
        "id": "r1",
        "tenant_id": "t",
        "app_id": "a",
        "status": "running",
        "created_at": created,
        "total_tokens": 3,
        "elapsed_time": 1.5,
        "finished_at": None,
    }
    running = LogRecord(RecordKind.RUN, dict(base), clock.version_for(RecordKind.RUN, "running"))
    done = LogRecord(RecordKind.RUN, {**base, "status": "succeeded"}, clock.version_for(RecordKind.RUN, "succeeded"))
    late_running = LogRecord(RecordKind.RUN, dict(base), clock.version_for(RecordKind.RUN, "running"))
    assert latest_by_id([late_running, done, running])["r1"] is done
    wire = done.to_wire()
    assert wire["created_at"] == "2026-01-02T03:04:05.123456" and wire["log_deleted"] == 0
    as_strings = {k: ("null" if v is None else str(v)) for k, v in wire.items()}
    back = LogRecord.from_wire(RecordKind.RUN, as_strings, schema(RecordKind.RUN))
    assert back.data == done.data and back.log_version == done.log_version


def test_schema_is_derived_from_the_models() -> None:
    run = schema(RecordKind.RUN)
    assert run.fields["total_tokens"] == "long" and run.fields["elapsed_time"] == "double"
    assert run.fields["created_at"] == "datetime" and run.fields["graph"] == "json"
    assert {"log_version", "log_deleted"} <= set(run.fields)
    node = schema(RecordKind.NODE_EXECUTION)
    assert {"inputs_truncated", "outputs_truncated", "process_data_truncated"} <= set(node.fields)
    assert set(node.payload_fields) == {"inputs", "outputs", "process_data", "execution_metadata"}
    assert "status" not in node.owner_fields and "tenant_id" in node.owner_fields
