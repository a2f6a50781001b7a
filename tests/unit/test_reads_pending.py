"""Console aggregates merge what this process has not delivered yet, without waiting on the write path.

A backend outage must not make every chart wait (or show stale numbers): the reader takes the pending
snapshots into account itself. Checked against the truth computed from every snapshot, over random
histories (updates of stored runs, new runs, deletions, filters on a changing field) and every
metric the repositories use.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from flask_difylogstore.backends import AggregateQuery, Filter, GroupBy, Metric, Scope, TimeRange
from flask_difylogstore.backends.evaluate import aggregate_records
from flask_difylogstore.backends.memory import MemoryBackend
from flask_difylogstore.records import LogRecord, RecordKind, VersionClock, latest_by_id
from flask_difylogstore.repositories import _reads
from flask_difylogstore.repositories._reads import Reader

T0 = datetime(2026, 6, 1, 15, 30)
STATUSES = ["running", "succeeded", "failed", "stopped"]


class PendingSink:
    """The part of the write pipeline a reader uses: the snapshots accepted but not delivered."""

    def __init__(self) -> None:
        self.records: list[LogRecord] = []

    def pending(self, kind: RecordKind) -> list[LogRecord]:
        return [r for r in self.records if r.kind is kind]

    def flush(self, timeout: float | None = None) -> bool:  # pragma: no cover - must never be called
        raise AssertionError("a console read waited on the write path")


def snapshot(clock: VersionClock, rng: random.Random, id_: str, app: str) -> LogRecord:
    status = rng.choice(STATUSES)
    data = {
        "id": id_,
        "tenant_id": "t1",
        "app_id": app,
        "status": status,
        "created_at": T0 + timedelta(hours=rng.randrange(0, 72)),
        "created_by": f"u{rng.randrange(4)}",
        "total_tokens": rng.randrange(0, 100),
        "triggered_from": "app-run",
    }
    return LogRecord(RecordKind.RUN, data, clock.version_for(RecordKind.RUN, status, deleted=rng.random() < 0.05))


QUERIES = [
    AggregateQuery(RecordKind.RUN, Scope("t1", "a1"), (Metric("count", alias="count"),), (GroupBy("status"),)),
    AggregateQuery(
        RecordKind.RUN,
        Scope("t1", "a1"),
        (Metric("count", alias="runs"), Metric("sum", "total_tokens", alias="tokens")),
        (GroupBy("created_at", day_in_timezone="Asia/Shanghai", alias="date"),),
        (Filter("status", "in", ["succeeded", "failed"]),),
        TimeRange(T0, T0 + timedelta(hours=48)),
    ),
    AggregateQuery(
        RecordKind.RUN,
        Scope("t1", "a1"),
        (Metric("count_distinct", "created_by", alias="terminals"), Metric("count", alias="runs")),
        (GroupBy("created_at", day_in_timezone="UTC", alias="date"),),
    ),
    AggregateQuery(RecordKind.RUN, Scope("t1"), (Metric("max", "total_tokens", alias="most"),), (GroupBy("app_id"),)),
]


@pytest.mark.parametrize("max_excluded", [1000, 0], ids=["pending-left-out", "stored-subtracted"])
@pytest.mark.parametrize("seed", range(30))
def test_aggregates_merge_pending_snapshots_exactly(
    seed: int, max_excluded: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_reads, "MAX_EXCLUDED_IDS", max_excluded)
    rng = random.Random(seed)
    clock = VersionClock(tag=1)
    backend = MemoryBackend()
    sink = PendingSink()
    every: list[LogRecord] = []
    ids = [f"run-{i}" for i in range(rng.randrange(1, 30))]
    for id_ in ids:
        app = rng.choice(["a1", "a2"])
        for _ in range(rng.randrange(1, 4)):
            record = snapshot(clock, rng, id_, app)
            every.append(record)
            # Some snapshots reached the backend, others are still pending. A deletion is pending here:
            # a stored deletion marker newer than a pending snapshot is not visible to reads by design
            # (``get_latest`` returns live entities), and deletes reach the backend after a flush.
            if record.deleted or rng.random() < 0.4:
                sink.records.append(record)
            else:
                backend.write([record])
    truth = [r for r in latest_by_id(every).values() if not r.deleted]
    reader = Reader(backend, sink)  # type: ignore[arg-type]
    for query in QUERIES:
        expected = aggregate_records([r for r in truth if _in(r, query)], query)
        assert reader.aggregate(query) == expected, query


def _in(record: LogRecord, query: AggregateQuery) -> bool:
    from flask_difylogstore.backends.evaluate import record_matches

    return record_matches(record, query.scope, query.filters, query.time_range)


class SubmittingSink(PendingSink):
    """A pipeline that accepts records and never delivers them (the backend is unreachable)."""

    def submit(self, records: list[LogRecord]) -> None:
        self.records.extend(records)

    def forget_delivered(self, kind: RecordKind) -> None:
        return None


def test_deletes_reach_undelivered_entities_without_waiting() -> None:
    """A clean-up during an outage deletes what was accepted but not delivered, and never waits for it."""
    from flask_difylogstore import LogStoreSettings
    from flask_difylogstore.extension import LogStoreState
    from flask_difylogstore.repositories import LogStoreAPIWorkflowRunRepository

    clock = VersionClock(tag=1)
    backend = MemoryBackend()
    sink = SubmittingSink()
    stored_run = snapshot(clock, random.Random(1), "run-stored", "a1")
    stored_run = LogRecord(
        stored_run.kind, {**stored_run.data, "status": "running"}, clock.version_for(RecordKind.RUN, "running")
    )
    backend.write([stored_run])
    newer = LogRecord(
        RecordKind.RUN, {**stored_run.data, "status": "succeeded"}, clock.version_for(RecordKind.RUN, "succeeded")
    )
    only_pending = LogRecord(
        RecordKind.RUN, {**stored_run.data, "id": "run-pending", "status": "succeeded"},
        clock.version_for(RecordKind.RUN, "succeeded"),
    )  # fmt: skip
    sink.records += [newer, only_pending]
    repo = LogStoreAPIWorkflowRunRepository()
    repo._state_override = LogStoreState(
        settings=LogStoreSettings(_env_file=None, backend="memory"), backend=backend, sink=sink
    )  # type: ignore[arg-type]
    assert repo.delete_runs_by_ids(["run-stored", "run-pending", "run-unknown"]) == 2
    reader = Reader(backend, sink)  # type: ignore[arg-type]
    assert reader.get(RecordKind.RUN, ["run-stored", "run-pending"], Scope("t1")) == {}
    # The markers outrank the final snapshots accepted before the delete, wherever they land.
    markers = [r for r in sink.records if r.deleted]
    assert {m.id for m in markers} == {"run-stored", "run-pending"}
    backend.write([newer, only_pending, *markers])
    assert backend.get_latest(RecordKind.RUN, ["run-stored", "run-pending"], Scope("t1")) == {}
