"""The Elasticsearch backend answers exactly like the in-process reference backend on the same history."""

from __future__ import annotations

import random
import typing as t
from datetime import timedelta

import pytest

from flask_difylogstore.backends.base import (
    AggregateQuery,
    Filter,
    GroupBy,
    Metric,
    RecordQuery,
    Scope,
    TimeRange,
)
from flask_difylogstore.backends.elasticsearch import ElasticsearchBackend
from flask_difylogstore.backends.memory import MemoryBackend
from flask_difylogstore.records import LogRecord, RecordKind
from tests.backends import es_fixtures
from tests.backends.records import BASE_TIME, RecordFactory

es_backend = es_fixtures.es_backend
es_prefix = es_fixtures.es_prefix
es_server = es_fixtures.es_server
es_settings = es_fixtures.es_settings
records = es_fixtures.records

STATUSES = ["running", "succeeded", "failed", "stopped"]


def _history(make: RecordFactory, rng: random.Random) -> list[LogRecord]:
    history: list[LogRecord] = []
    for n in range(80):
        common: dict[str, t.Any] = {
            "tenant": rng.choice(["t1", "t1", "t2"]),
            "app": rng.choice(["a1", "a2"]),
            # Around midnight UTC and across days, so time zones move runs between days.
            "offset_s": rng.choice([0, 3600, 7200, 15 * 3600, 16 * 3600 + 30, 86_400 + 60]) + rng.randrange(3),
            "created_by": rng.choice(["u1", "u2", "u3", None]),
        }
        for _ in range(rng.randrange(1, 4)):
            finished = rng.random() < 0.5
            history.append(
                make.run(
                    id=f"run-{n:03d}",
                    status=rng.choice(STATUSES),
                    total_tokens=rng.randrange(5),
                    finished_at=BASE_TIME + timedelta(hours=rng.randrange(30)) if finished else None,
                    elapsed_time=rng.choice([None, 0.5, 1.5]),
                    inputs=rng.choice(['{"q": "Hello World"}', '{"q": "bye"}', '{"city": "S\\u00e3o Paulo"}']),
                    error=rng.choice([None, "Timeout after 30s", "bad input"]),
                    **common,
                )
            )
    rng.shuffle(history)  # delivery order differs from version order
    return history


@pytest.fixture
def both(es_backend: ElasticsearchBackend, records: RecordFactory) -> tuple[ElasticsearchBackend, MemoryBackend]:
    history = _history(records, random.Random(20261121))
    memory = MemoryBackend()
    for record in history:
        memory.write([record])
    for start in range(0, len(history), 37):  # several batches, each with duplicates and reorderings
        assert es_backend.write(history[start : start + 37]).ok
    es_backend.refresh()
    return es_backend, memory


def _data(page: t.Any) -> list[dict[str, t.Any]]:
    return [r.data for r in page.records]


QUERIES: list[dict[str, t.Any]] = [
    {},
    {"filters": (Filter("status", "eq", "running"),)},
    {"filters": (Filter("status", "ne", "running"),)},
    {"filters": (Filter("status", "in", ["failed", "stopped"]),)},
    {"filters": (Filter("status", "not_in", ["failed"]),)},
    {"filters": (Filter("created_by", "not_in", ["u1"]),)},
    {"filters": (Filter("created_by", "ne", "u1"),)},
    {"filters": (Filter("finished_at", "is_null"),)},
    {
        "filters": (
            Filter("finished_at", "not_null"),
            Filter("finished_at", "lt", BASE_TIME + timedelta(hours=5)),
        )
    },
    {"filters": (Filter("elapsed_time", "gte", 1.0),)},
    {"filters": (Filter("error", "eq", "bad input"),)},
    {"filters": (Filter("status", "eq", None),)},
    {
        "filters": (Filter("total_tokens", "lt", 2),),
        "order_by": (("total_tokens", "asc"), ("created_at", "desc")),
    },
    {"order_by": (("finished_at", "desc"),)},
    {"order_by": (("finished_at", "asc"),)},
    {"order_by": (("created_by", "desc"), ("elapsed_time", "asc"))},
    {"order_by": (("elapsed_time", "desc"), ("id", "asc"))},
    {"time_range": TimeRange(BASE_TIME + timedelta(seconds=1), BASE_TIME + timedelta(hours=2))},
    {"time_range": TimeRange(since=BASE_TIME + timedelta(hours=16))},
    {"keyword": "hello w"},
    {"keyword": "PAULO"},
    {"keyword": "no-such-text"},
    {"fields": ("status", "total_tokens")},
]


@pytest.mark.parametrize("tenant", ["t1", "t2"])
@pytest.mark.parametrize("spec", QUERIES, ids=[str(i) for i in range(len(QUERIES))])
def test_search_pages_like_the_reference(
    both: tuple[ElasticsearchBackend, MemoryBackend], spec: dict[str, t.Any], tenant: str
) -> None:
    es, memory = both
    for app in (None, "a1"):
        scope = Scope(tenant, app)
        query = RecordQuery(RecordKind.RUN, scope, limit=None, **spec)
        assert _data(es.search(query)) == _data(memory.search(query))
        # Keyset paging with a small page size visits the same rows in the same order.
        after, seen = None, []
        while True:
            paged = RecordQuery(RecordKind.RUN, scope, limit=7, after=after, **spec)
            es_page, mem_page = es.search(paged), memory.search(paged)
            assert _data(es_page) == _data(mem_page)
            assert es_page.next_after == mem_page.next_after
            seen += _data(es_page)
            after = es_page.next_after
            if after is None:
                break
        assert seen == _data(memory.search(query))
        filters = spec.get("filters", ())
        time_range = spec.get("time_range")
        assert es.count(RecordKind.RUN, scope, filters, time_range) == memory.count(
            RecordKind.RUN, scope, filters, time_range
        )


AGGREGATES: list[tuple[tuple[Metric, ...], tuple[GroupBy, ...]]] = [
    ((Metric("count"),), (GroupBy("status"),)),
    ((Metric("count"), Metric("sum", "total_tokens")), ()),
    ((Metric("max", "finished_at"), Metric("min", "elapsed_time"), Metric("max", "total_tokens")), ()),
    ((Metric("count"), Metric("count_distinct", "created_by")), (GroupBy("created_by"),)),
    ((Metric("sum", "elapsed_time"),), (GroupBy("app_id"), GroupBy("status"))),
]
TIMEZONES = ["UTC", "Asia/Shanghai", "America/Los_Angeles", "Asia/Kolkata"]


@pytest.mark.parametrize("timezone", TIMEZONES)
def test_daily_aggregations_in_time_zones(both: tuple[ElasticsearchBackend, MemoryBackend], timezone: str) -> None:
    es, memory = both
    day = GroupBy("created_at", day_in_timezone=timezone, alias="date")
    for metrics in [
        (Metric("count", alias="runs"),),
        (Metric("count_distinct", "created_by", alias="terminals"),),
        (Metric("sum", "total_tokens", alias="tokens"),),
    ]:
        for groups in [(day,), (day, GroupBy("created_by"))]:
            query = AggregateQuery(RecordKind.RUN, Scope("t1", "a1"), metrics, groups)
            assert es.aggregate(query) == memory.aggregate(query)


@pytest.mark.parametrize("spec", AGGREGATES, ids=[str(i) for i in range(len(AGGREGATES))])
def test_aggregates_like_the_reference(
    both: tuple[ElasticsearchBackend, MemoryBackend], spec: tuple[tuple[Metric, ...], tuple[GroupBy, ...]]
) -> None:
    es, memory = both
    metrics, groups = spec
    for scope in (Scope("t1"), Scope("t2", "a2"), Scope("nobody")):
        for filters in ((), (Filter("status", "ne", "running"),)):
            query = AggregateQuery(RecordKind.RUN, scope, metrics, groups, filters)
            assert es.aggregate(query) == memory.aggregate(query)


def test_delete_with_limit_like_the_reference(both: tuple[ElasticsearchBackend, MemoryBackend]) -> None:
    es, memory = both
    filters = (Filter("status", "in", ["failed", "stopped"]),)
    assert es.delete(RecordKind.RUN, Scope("t1"), filters, limit=5) == memory.delete(
        RecordKind.RUN, Scope("t1"), filters, limit=5
    )
    query = RecordQuery(RecordKind.RUN, Scope("t1"), limit=None)
    assert _data(es.search(query)) == _data(memory.search(query))
    ids = [f"run-{n:03d}" for n in range(80)]
    assert (
        es.get_latest(RecordKind.RUN, ids, Scope("t1")).keys()
        == memory.get_latest(RecordKind.RUN, ids, Scope("t1")).keys()
    )
