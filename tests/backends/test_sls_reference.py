"""The SLS backend answers exactly like the in-process reference backend on the same history."""

from __future__ import annotations

import random
import typing as t
from datetime import timedelta

import pytest

from flask_difylogstore.backends.aliyun_sls import AliyunSLSBackend
from flask_difylogstore.backends.base import (
    AggregateQuery,
    Filter,
    GroupBy,
    Metric,
    RecordQuery,
    Scope,
    TimeRange,
)
from flask_difylogstore.backends.memory import MemoryBackend
from flask_difylogstore.records import LogRecord, RecordKind
from tests.backends.conftest import RunFactory
from tests.backends.records import BASE_TIME

STATUSES = ["running", "succeeded", "failed", "stopped"]


def _history(make_run: RunFactory, rng: random.Random) -> list[LogRecord]:
    records: list[LogRecord] = []
    for n in range(45):
        run_id = f"run-{n:03d}"
        common = {
            "tenant": rng.choice(["t1", "t1", "t2"]),
            "app": rng.choice(["a1", "a2"]),
            "offset_s": rng.choice([0, 3600, 7200, 86_400 + 60]) + rng.randrange(3),
            "created_by": rng.choice(["u1", "u2", "u3"]),
        }
        for _ in range(rng.randrange(1, 4)):
            finished = rng.random() < 0.5
            records.append(
                make_run(
                    id=run_id,
                    status=rng.choice(STATUSES),
                    total_tokens=rng.randrange(5),
                    finished_at=BASE_TIME + timedelta(hours=rng.randrange(30)) if finished else None,
                    elapsed_time=rng.choice([None, 0.5, 1.5]),
                    **common,
                )
            )
    rng.shuffle(records)  # delivery order differs from version order
    return records


QUERIES: list[dict[str, t.Any]] = [
    {},
    {"filters": (Filter("status", "eq", "running"),)},
    {"filters": (Filter("status", "ne", "running"),)},
    {"filters": (Filter("status", "in", ["failed", "stopped"]),)},
    {"filters": (Filter("status", "not_in", ["failed"]),)},
    {"filters": (Filter("finished_at", "is_null"),)},
    {"filters": (Filter("elapsed_time", "gte", 1.0),)},
    {
        "filters": (Filter("total_tokens", "lt", 2),),
        "order_by": (("total_tokens", "asc"), ("created_at", "desc")),
    },
    {"order_by": (("finished_at", "desc"),)},
    {"order_by": (("finished_at", "asc"),)},
    {"order_by": (("elapsed_time", "desc"), ("id", "asc"))},
    {"time_range": TimeRange(BASE_TIME + timedelta(seconds=1), BASE_TIME + timedelta(hours=2))},
]


@pytest.fixture
def both(sls_backend: AliyunSLSBackend, make_run: RunFactory) -> tuple[AliyunSLSBackend, MemoryBackend]:
    rng = random.Random(20261121)
    history = _history(make_run, rng)
    memory = MemoryBackend()
    for record in history:
        memory.write([record])
    assert sls_backend.write(history).ok
    for backend in (sls_backend, memory):
        backend.delete(RecordKind.RUN, Scope("t1", "a2"), [Filter("created_by", "eq", "u3")])
    return sls_backend, memory


def _pages(backend: t.Any, query: RecordQuery) -> list[list[tuple[str, int]]]:
    pages, after = [], None
    while True:
        page = backend.search(RecordQuery(**{**query.__dict__, "after": after}))
        pages.append([(r.id, r.log_version) for r in page.records])
        if page.next_after is None:
            return pages
        after = page.next_after


@pytest.mark.parametrize("spec", QUERIES, ids=[str(i) for i in range(len(QUERIES))])
def test_search_count_and_paging_match_the_reference(
    both: tuple[AliyunSLSBackend, MemoryBackend], spec: dict[str, t.Any]
) -> None:
    sls, memory = both
    paged = RecordQuery(RecordKind.RUN, Scope("t1"), limit=12, **spec)
    assert _pages(sls, paged) == _pages(memory, paged)
    full = RecordQuery(RecordKind.RUN, Scope("t1", "a2"), limit=None, **spec)
    assert [r.data for r in sls.search(full).records] == [r.data for r in memory.search(full).records]
    args = (RecordKind.RUN, Scope("t2"), spec.get("filters", ()), spec.get("time_range"))
    assert sls.count(*args) == memory.count(*args)


def test_aggregates_match_the_reference(both: tuple[AliyunSLSBackend, MemoryBackend]) -> None:
    sls, memory = both
    query = AggregateQuery(
        RecordKind.RUN,
        Scope("t1"),
        metrics=(
            Metric("count"),
            Metric("count_distinct", "created_by"),
            Metric("sum", "total_tokens"),
            Metric("max", "elapsed_time"),
            Metric("min", "finished_at"),
        ),
        group_by=(GroupBy("created_at", day_in_timezone="America/Los_Angeles"), GroupBy("status")),
    )
    assert sls.aggregate(query) == memory.aggregate(query)
    by_finish = AggregateQuery(
        RecordKind.RUN,
        Scope("t1"),
        metrics=(Metric("count"),),
        group_by=(GroupBy("finished_at", day_in_timezone="Asia/Tokyo"),),
    )
    assert sls.aggregate(by_finish) == memory.aggregate(by_finish)
