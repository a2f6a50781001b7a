"""The reference semantics: latest wins before filtering, tombstones, keyset paging, day buckets."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest

from flask_difylogstore.backends import AggregateQuery, Filter, GroupBy, Metric, RecordQuery, Scope, TimeRange
from flask_difylogstore.backends.evaluate import day_in_timezone
from flask_difylogstore.backends.memory import MemoryBackend
from flask_difylogstore.records import LogRecord, RecordKind, VersionClock

T0 = datetime(2026, 6, 1, 15, 30)


@pytest.fixture
def clock() -> VersionClock:
    return VersionClock(tag=1)


def run(
    clock: VersionClock,
    id_: str,
    status: str = "running",
    tenant: str = "t1",
    app: str = "a1",
    at: datetime = T0,
    **data: object,
) -> LogRecord:
    fields = {
        "id": id_,
        "tenant_id": tenant,
        "app_id": app,
        "status": status,
        "created_at": at,
        "created_by": "u1",
        "total_tokens": 0,
        **data,
    }
    return LogRecord(RecordKind.RUN, fields, clock.version_for(RecordKind.RUN, status))


def search(backend: MemoryBackend, **kwargs: object) -> list[str]:
    query = RecordQuery(RecordKind.RUN, kwargs.pop("scope", Scope("t1")), **kwargs)  # type: ignore[arg-type]
    return [r.id for r in backend.search(query).records]


def test_latest_version_is_chosen_before_filtering(clock: VersionClock) -> None:
    backend = MemoryBackend()
    running = run(clock, "r1")
    done = run(clock, "r1", "succeeded")
    late_running = run(clock, "r1", "running")  # newer clock, but a final snapshot outranks it
    result = backend.write([done, running, late_running, done])
    assert (result.written, result.stale) == (1, 3)
    assert search(backend, filters=(Filter("status", "eq", "running"),)) == []
    assert search(backend, filters=(Filter("status", "eq", "succeeded"),)) == ["r1"]
    assert backend.count(RecordKind.RUN, Scope("t1"), [Filter("status", "eq", "running")]) == 0


def test_scope_isolates_tenants_and_apps(clock: VersionClock) -> None:
    backend = MemoryBackend()
    backend.write([run(clock, "a"), run(clock, "b", tenant="t2"), run(clock, "c", app="a2")])
    assert search(backend) == ["c", "a"]
    assert search(backend, scope=Scope("t1", "a1")) == ["a"]
    assert search(backend, scope=Scope.unscoped(), order_by=(("id", "asc"),)) == ["a", "b", "c"]
    assert backend.get_latest(RecordKind.RUN, ["a", "b"], Scope("t2")).keys() == {"b"}
    with pytest.raises(ValueError):
        Scope("")


def test_keyset_paging_with_id_tiebreak(clock: VersionClock) -> None:
    backend = MemoryBackend()
    backend.write([run(clock, f"r{i}", at=T0 + timedelta(seconds=i // 3)) for i in range(10)])
    seen: list[str] = []
    after = None
    while True:
        page = backend.search(
            RecordQuery(RecordKind.RUN, Scope("t1"), order_by=(("created_at", "desc"),), limit=4, after=after)
        )
        seen += [r.id for r in page.records]
        if page.next_after is None:
            break
        after = page.next_after
    expected = sorted((f"r{i}" for i in range(10)), key=lambda i: (int(i[1:]) // 3, i), reverse=True)
    assert seen == expected


def test_nulls_sort_like_postgresql(clock: VersionClock) -> None:
    backend = MemoryBackend()
    backend.write([run(clock, "a", finished_at=None), run(clock, "b", finished_at=T0)])
    assert search(backend, order_by=(("finished_at", "asc"),)) == ["b", "a"]
    assert search(backend, order_by=(("finished_at", "desc"),)) == ["a", "b"]
    assert search(backend, filters=(Filter("finished_at", "is_null"),)) == ["a"]
    assert search(backend, filters=(Filter("finished_at", "not_null"),)) == ["b"]
    assert search(backend, filters=(Filter("finished_at", "lt", "2030-01-01T00:00:00"),)) == ["b"]


def test_filters_time_range_and_keyword(clock: VersionClock) -> None:
    backend = MemoryBackend()
    backend.write(
        [
            run(clock, "a", at=T0, inputs='{"q": "Hello World"}'),
            run(clock, "b", at=T0 + timedelta(hours=1), outputs='{"a": "bye"}', status="failed"),
            run(clock, "c", at=T0 + timedelta(hours=2), status="stopped"),
        ]
    )
    assert search(backend, filters=(Filter("status", "in", ["failed", "stopped"]),)) == ["c", "b"]
    assert search(backend, filters=(Filter("status", "not_in", ["failed"]),)) == ["c", "a"]
    assert search(backend, filters=(Filter("status", "ne", "running"),)) == ["c", "b"]
    assert search(backend, time_range=TimeRange(T0, T0 + timedelta(hours=2))) == ["b", "a"]
    assert search(backend, keyword="hello world") == ["a"] and search(backend, keyword="BYE") == ["b"]
    assert search(backend, fields=("status",), limit=1) == ["c"]


def test_tombstones_hide_and_outrank(clock: VersionClock) -> None:
    backend = MemoryBackend()
    backend.write([run(clock, "a"), run(clock, "b", at=T0 - timedelta(days=1))])
    assert backend.delete(RecordKind.RUN, Scope("t1"), time_range=TimeRange(until=T0)) == 1
    assert search(backend) == ["a"]
    backend.write([run(clock, "b", "succeeded")])  # a late write cannot resurrect it
    assert search(backend) == ["a"] and backend.get_latest(RecordKind.RUN, ["b"], Scope("t1")) == {}
    assert backend.delete(RecordKind.RUN, Scope("t1"), [Filter("id", "in", ["a", "zz"])], limit=5) == 1
    assert backend.count(RecordKind.RUN, Scope("t1")) == 0


def test_aggregates_group_by_day_in_timezone(clock: VersionClock) -> None:
    backend = MemoryBackend()
    late = datetime(2026, 6, 1, 23, 30)  # 2 June in Shanghai, 1 June in Los Angeles
    backend.write(
        [
            run(clock, "a", at=late, created_by="u1", total_tokens=5),
            run(clock, "b", at=late, created_by="u2", total_tokens=7),
            run(clock, "c", at=datetime(2026, 6, 1, 1), created_by="u1", total_tokens=None),
        ]
    )
    query = AggregateQuery(
        RecordKind.RUN,
        Scope("t1"),
        (
            Metric("count"),
            Metric("count_distinct", "created_by"),
            Metric("sum", "total_tokens"),
            Metric("max", "total_tokens"),
            Metric("min", "total_tokens"),
        ),
        (GroupBy("created_at", day_in_timezone="Asia/Shanghai", alias="date"),),
    )
    assert backend.aggregate(query) == [
        {
            "date": "2026-06-01",
            "count": 1,
            "count_distinct_created_by": 1,
            "sum_total_tokens": 0,
            "max_total_tokens": None,
            "min_total_tokens": None,
        },
        {
            "date": "2026-06-02",
            "count": 2,
            "count_distinct_created_by": 2,
            "sum_total_tokens": 12,
            "max_total_tokens": 7,
            "min_total_tokens": 5,
        },
    ]
    assert day_in_timezone(late, "America/Los_Angeles") == "2026-06-01"
    empty = AggregateQuery(RecordKind.RUN, Scope("t9"), (Metric("count"),))
    assert backend.aggregate(empty) == [{"count": 0}]


def test_concurrent_writers_keep_the_winner(clock: VersionClock) -> None:
    backend = MemoryBackend()
    records = [run(clock, f"r{i % 50}", "succeeded" if i >= 950 else "running") for i in range(1000)]

    def write(part: list[LogRecord]) -> None:
        for record in part:
            backend.write([record])

    threads = [threading.Thread(target=write, args=(records[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert backend.count(RecordKind.RUN, Scope("t1"), [Filter("status", "eq", "succeeded")]) == 50


def test_provision_ping_and_factory() -> None:
    from flask_difylogstore.backends import resolve_backend
    from flask_difylogstore.settings import LogStoreSettings

    backend = resolve_backend("memory").from_settings(LogStoreSettings(_env_file=None, backend="memory"))
    assert isinstance(backend, MemoryBackend)
    assert backend.provision(dry_run=True).changed and backend.provision().changed
    assert not backend.provision().changed
    assert backend.ping().ok
    backend.close()
