"""One reference suite for every backend: each answers exactly like the in-process reference on the same history.

The reference is :class:`MemoryBackend` (the protocol's reference semantics, see its module docstring), fed one
record at a time in delivery order. The backend under test gets the same history in several batches, each with
duplicate ids and versions out of order, then the same deletion. Every query shape below runs on every backend of
``tests.contract.conftest.BACKENDS`` (memory, aliyun_sls on a LocalSLSServer, elasticsearch on a
LocalElasticsearchServer, plus any ``DIFYLOGSTORE_CONTRACT_BACKENDS`` extra), so adding a backend or a shape is one
entry. Answers are also checked against an oracle computed here from the history alone (latest version per entity,
scope, deletions, paging = one full read, count = rows), so the memory backend is held to something too.

Semantics followed: Dify's ``api/repositories/api_workflow_run_repository.py`` (paginated runs, daily statistics in
the caller's time zone), and ``docs/sls.md`` / ``docs/elasticsearch.md`` of this package for how each store keeps them.
"""

from __future__ import annotations

import random
import typing as t
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from flask_difylogstore.backends import create_backend
from flask_difylogstore.backends.base import (
    AggregateQuery,
    Filter,
    GroupBy,
    LogBackend,
    Metric,
    Page,
    RecordQuery,
    Scope,
    TimeRange,
)
from flask_difylogstore.backends.memory import MemoryBackend
from flask_difylogstore.records import LogRecord, RecordKind
from tests.backends.records import BASE_TIME, RecordFactory
from tests.contract.conftest import BACKENDS, EXTRA_BACKENDS, make_settings, selected_backends

STATUSES = ["running", "succeeded", "failed", "stopped"]
RUNS = 80
BATCH = 37  # several batches, each with duplicates and reorderings
#: The deletion every backend and the reference receive before any read (SLS: tombstones; ES: deletes).
DELETED_SCOPE, DELETED_FILTERS = Scope("t1", "a2"), (Filter("created_by", "eq", "u3"),)
SCOPES = [Scope(tenant, app) for tenant in ("t1", "t2") for app in (None, "a1", "a2")]


def _history(make: RecordFactory, rng: random.Random, prefix: str = "") -> list[LogRecord]:
    history: list[LogRecord] = []
    for n in range(RUNS):
        common: dict[str, t.Any] = {
            "tenant": prefix + rng.choice(["t1", "t1", "t2"]),
            "app": rng.choice(["a1", "a2"]),
            # Around midnight UTC and across days, so time zones move runs between days.
            "offset_s": rng.choice([0, 3600, 7200, 15 * 3600, 16 * 3600 + 30, 86_400 + 60]) + rng.randrange(3),
            "created_by": rng.choice(["u1", "u2", "u3", None]),
        }
        for _ in range(rng.randrange(1, 4)):
            finished = rng.random() < 0.5
            history.append(
                make.run(
                    id=f"{prefix}run-{n:03d}",
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


def _refresh(backend: LogBackend) -> None:
    """Make writes searchable now where the backend has a refresh interval (Elasticsearch)."""
    refresh = getattr(backend, "refresh", None)
    if callable(refresh):
        refresh()


def _load(backend: LogBackend, reference: MemoryBackend, history: list[LogRecord], scope: Scope) -> None:
    for record in history:
        reference.write([record])
    for start in range(0, len(history), BATCH):
        result = backend.write(history[start : start + BATCH])
        assert result.ok, result.failed[:3]
    _refresh(backend)
    assert backend.delete(RecordKind.RUN, scope, DELETED_FILTERS) == reference.delete(
        RecordKind.RUN, scope, DELETED_FILTERS
    )
    _refresh(backend)


class Oracle:
    """What any backend must return, computed from the history alone: the latest live snapshot per entity."""

    def __init__(self, history: list[LogRecord], deleted_scope: Scope) -> None:
        latest: dict[str, LogRecord] = {}
        for record in history:
            if record.id not in latest or record.log_version > latest[record.id].log_version:
                latest[record.id] = record
        self.latest = {
            id_: r
            for id_, r in latest.items()
            if not (
                r.tenant_id == deleted_scope.tenant_id
                and r.data["app_id"] == deleted_scope.app_id
                and r.data["created_by"] == "u3"
            )
        }

    def in_scope(self, scope: Scope) -> set[str]:
        return {
            id_
            for id_, r in self.latest.items()
            if r.tenant_id == scope.tenant_id and (scope.app_id is None or r.data["app_id"] == scope.app_id)
        }

    def check(self, records: list[LogRecord], scope: Scope) -> None:
        """Each row is the latest live snapshot of a distinct entity of the scope (projected rows: a subset)."""
        ids = [r.id for r in records]
        assert len(ids) == len(set(ids)), "an entity came back twice"
        allowed = self.in_scope(scope)
        for record in records:
            assert record.id in allowed, f"{record.id} is outside {scope} or deleted"
            expected = self.latest[record.id]
            assert record.log_version == expected.log_version, f"{record.id}: not the latest version"
            assert all(expected.data.get(k) == v for k, v in record.data.items()), record.id


class Loaded(t.NamedTuple):
    name: str
    backend: LogBackend
    reference: MemoryBackend
    oracle: Oracle


@pytest.fixture(scope="module", params=selected_backends())
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    """One backend (with its local server) holding the shared history; the reads below never change it."""
    name = str(request.param)
    tmp = tmp_path_factory.mktemp(f"reference-{name}")
    with {**BACKENDS, **EXTRA_BACKENDS}[name](tmp) as values:
        backend = create_backend(make_settings(values, tmp))
        backend.provision()
        history = _history(RecordFactory(), random.Random(20261121))
        reference = MemoryBackend()
        _load(backend, reference, history, DELETED_SCOPE)
        try:
            yield Loaded(name, backend, reference, Oracle(history, DELETED_SCOPE))
        finally:
            backend.close()


def _rows(page: Page) -> list[tuple[str, int, dict[str, t.Any]]]:
    return [(r.id, r.log_version, r.data) for r in page.records]


#: Search shapes (filters, ordering, time ranges, keyword, projection); each runs in every scope of SCOPES.
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


@pytest.mark.parametrize("page_size", [7, 12])
@pytest.mark.parametrize("spec", QUERIES, ids=[str(i) for i in range(len(QUERIES))])
def test_search_count_and_paging_match_the_reference(loaded: Loaded, spec: dict[str, t.Any], page_size: int) -> None:
    backend, reference, oracle = loaded.backend, loaded.reference, loaded.oracle
    for scope in SCOPES:
        query = RecordQuery(RecordKind.RUN, scope, limit=None, **spec)
        full = backend.search(query)
        assert _rows(full) == _rows(reference.search(query)), scope
        assert full.next_after is None
        oracle.check(full.records, scope)
        if not spec:
            assert {r.id for r in full.records} == oracle.in_scope(scope)
        # Keyset paging visits the same rows in the same order, with the reference's cursors.
        after, seen = None, []
        while True:
            paged = RecordQuery(RecordKind.RUN, scope, limit=page_size, after=after, **spec)
            page, expected = backend.search(paged), reference.search(paged)
            assert _rows(page) == _rows(expected), (scope, after)
            assert page.next_after == expected.next_after, (scope, after)
            assert len(page.records) <= page_size
            seen += _rows(page)
            after = page.next_after
            if after is None:
                break
        assert seen == _rows(full)
        filters, time_range = spec.get("filters", ()), spec.get("time_range")
        count = backend.count(RecordKind.RUN, scope, filters, time_range)
        assert count == reference.count(RecordKind.RUN, scope, filters, time_range), scope
        if "keyword" not in spec:
            assert count == len(full.records)


#: Aggregation shapes (metrics, groups); each runs in several scopes, with and without a filter.
AGGREGATES: list[tuple[tuple[Metric, ...], tuple[GroupBy, ...]]] = [
    ((Metric("count"),), (GroupBy("status"),)),
    ((Metric("count"), Metric("sum", "total_tokens")), ()),
    ((Metric("max", "finished_at"), Metric("min", "elapsed_time"), Metric("max", "total_tokens")), ()),
    ((Metric("count"), Metric("count_distinct", "created_by")), (GroupBy("created_by"),)),
    ((Metric("sum", "elapsed_time"),), (GroupBy("app_id"), GroupBy("status"))),
    (
        (
            Metric("count"),
            Metric("count_distinct", "created_by"),
            Metric("sum", "total_tokens"),
            Metric("max", "elapsed_time"),
            Metric("min", "finished_at"),
        ),
        (GroupBy("created_at", day_in_timezone="America/Los_Angeles"), GroupBy("status")),
    ),
    ((Metric("count"),), (GroupBy("finished_at", day_in_timezone="Asia/Tokyo"),)),
]


@pytest.mark.parametrize("spec", AGGREGATES, ids=[str(i) for i in range(len(AGGREGATES))])
def test_aggregates_match_the_reference(
    loaded: Loaded, spec: tuple[tuple[Metric, ...], tuple[GroupBy, ...]], request: pytest.FixtureRequest
) -> None:
    backend, reference = loaded.backend, loaded.reference
    metrics, groups = spec
    for scope in (Scope("t1"), Scope("t1", "a2"), Scope("t2", "a2"), Scope("nobody")):
        for filters in ((), (Filter("status", "ne", "running"),)):
            query = AggregateQuery(RecordKind.RUN, scope, metrics, groups, filters)
            assert backend.aggregate(query) == reference.aggregate(query), (scope, filters)


TIMEZONES = ["UTC", "Asia/Shanghai", "America/Los_Angeles", "Asia/Kolkata"]


@pytest.mark.parametrize("timezone", TIMEZONES)
def test_daily_aggregations_in_time_zones(loaded: Loaded, timezone: str) -> None:
    """Dify's daily statistics group by the calendar day in the caller's time zone."""
    backend, reference = loaded.backend, loaded.reference
    day = GroupBy("created_at", day_in_timezone=timezone, alias="date")
    for metrics in [
        (Metric("count", alias="runs"),),
        (Metric("count_distinct", "created_by", alias="terminals"),),
        (Metric("sum", "total_tokens", alias="tokens"),),
    ]:
        for groups in [(day,), (day, GroupBy("created_by"))]:
            query = AggregateQuery(RecordKind.RUN, Scope("t1", "a1"), metrics, groups)
            assert backend.aggregate(query) == reference.aggregate(query)


def test_deletes_hide_entities_like_the_reference(loaded: Loaded) -> None:
    """The shared deletion (tombstones on SLS, deletes on Elasticsearch) hides the same entities."""
    backend, reference, oracle = loaded.backend, loaded.reference, loaded.oracle
    ids = [f"run-{n:03d}" for n in range(RUNS)]
    for scope in SCOPES:
        got = backend.get_latest(RecordKind.RUN, ids, scope)
        assert {k: (v.log_version, v.data) for k, v in got.items()} == {
            k: (v.log_version, v.data) for k, v in reference.get_latest(RecordKind.RUN, ids, scope).items()
        }
        assert got.keys() == oracle.in_scope(scope)
    assert backend.count(RecordKind.RUN, DELETED_SCOPE, DELETED_FILTERS) == 0


def test_delete_with_limit_like_the_reference(loaded: Loaded) -> None:
    """A limited delete removes the oldest matches first. Runs on its own tenants, so shared reads are untouched."""
    backend = loaded.backend
    prefix = f"d{uuid.uuid4().hex[:6]}-"
    history = _history(RecordFactory(), random.Random(20261122), prefix=prefix)
    reference = MemoryBackend()
    _load(backend, reference, history, Scope(prefix + "t1", "a2"))
    filters = (Filter("status", "in", ["failed", "stopped"]),)
    scope = Scope(prefix + "t1")
    assert backend.delete(RecordKind.RUN, scope, filters, limit=5) == reference.delete(
        RecordKind.RUN, scope, filters, limit=5
    )
    _refresh(backend)
    query = RecordQuery(RecordKind.RUN, scope, limit=None)
    assert _rows(backend.search(query)) == _rows(reference.search(query))
    ids = [f"{prefix}run-{n:03d}" for n in range(RUNS)]
    assert (
        backend.get_latest(RecordKind.RUN, ids, scope).keys() == reference.get_latest(RecordKind.RUN, ids, scope).keys()
    )
