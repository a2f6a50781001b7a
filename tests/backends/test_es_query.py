"""The query builder's DSL (plain dicts): scoping, typing, keysets, aggregations, index targets."""

from __future__ import annotations

import json
import typing as t
from datetime import datetime

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
from flask_difylogstore.backends.elasticsearch import results
from flask_difylogstore.backends.elasticsearch.indices import IndexLayout
from flask_difylogstore.backends.elasticsearch.query import QueryBuilder, escape_wildcard
from flask_difylogstore.records import RecordKind
from flask_difylogstore.schemas import schema, schemas

RUN = RecordKind.RUN


@pytest.fixture
def builder() -> QueryBuilder:
    return QueryBuilder(schemas())


def _walk(node: t.Any) -> t.Iterator[t.Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_every_body_is_tenant_scoped_and_hides_tombstones(builder: QueryBuilder) -> None:
    scope = Scope("tenant-1", "app-1")
    bodies = [
        builder.search_body(RecordQuery(RUN, scope, keyword="x", after=(datetime(2026, 1, 1), "id"))),
        builder.count_body(RUN, scope, (), None),
        builder.delete_candidates_body(RUN, scope, (), None),
        builder.aggregate_body(AggregateQuery(RUN, scope, (Metric("count"),), (GroupBy("status"),)), page_size=10),
    ]
    for body in bodies:
        where = body["query"]["bool"]
        assert {"term": {"tenant_id": "tenant-1"}} in where["filter"]
        assert {"term": {"app_id": "app-1"}} in where["filter"]
        assert where["must_not"] == [{"term": {"log_deleted": 1}}]


def test_filters_use_typed_values_and_the_memory_null_rules(builder: QueryBuilder) -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678901)
    assert builder.predicate(RUN, Filter("status", "in", ["a", None, "b"])) == {"terms": {"status": ["a", "b"]}}
    assert builder.predicate(RUN, Filter("status", "in", [None])) == {"match_none": {}}
    assert builder.predicate(RUN, Filter("status", "not_in", [])) == {"match_all": {}}
    assert builder.predicate(RUN, Filter("created_at", "lt", moment)) == {
        "range": {"created_at": {"lt": "2026-01-02T03:04:05.678901"}}
    }
    assert builder.predicate(RUN, Filter("total_tokens", "gte", "7")) == {"range": {"total_tokens": {"gte": 7}}}
    assert builder.predicate(RUN, Filter("error", "eq", "boom")) == {"term": {"error.keyword": "boom"}}
    ne = builder.predicate(RUN, Filter("status", "ne", "x"))
    assert {"exists": {"field": "status"}} in ne["bool"]["filter"]


def test_hostile_values_stay_values(builder: QueryBuilder) -> None:
    evil = '"}]} OR tenant_id:* \\ *?'
    body = builder.search_body(RecordQuery(RUN, Scope(evil), filters=(Filter("status", "eq", evil),), keyword=evil))
    encoded = json.dumps(body)
    assert json.loads(encoded) == body  # a plain JSON document, nothing spliced into strings
    assert {"term": {"tenant_id": evil}} in body["query"]["bool"]["filter"]
    assert escape_wildcard("a*b?c\\") == "a\\*b\\?c\\\\"


def test_sort_puts_nulls_where_the_memory_backend_does(builder: QueryBuilder) -> None:
    sort = builder.search_body(RecordQuery(RUN, Scope("t"), order_by=(("finished_at", "desc"),)))["sort"]
    assert sort[0]["finished_at"]["missing"] == "_first"
    assert sort[1] == {"id": {"order": "desc", "missing": "_first", "unmapped_type": "keyword"}}
    asc = builder.sort(RUN, [("error", "asc")])
    assert asc == [{"error.keyword": {"order": "asc", "missing": "_last", "unmapped_type": "keyword"}}]


def test_keyset_is_an_or_of_prefix_equalities(builder: QueryBuilder) -> None:
    clause = builder.keyset(RUN, [("total_tokens", "asc"), ("id", "asc")], [3, "r1"])
    first, second = clause["bool"]["should"]
    assert {"range": {"total_tokens": {"gt": 3}}} in _walk(first)
    assert second["bool"]["filter"][0] == {"term": {"total_tokens": 3}}
    nulls = builder.keyset(RUN, [("finished_at", "desc"), ("id", "desc")], [None, "r1"])
    assert nulls["bool"]["should"][0] == {"exists": {"field": "finished_at"}}


def test_composite_aggregation_body_and_rows(builder: QueryBuilder) -> None:
    query = AggregateQuery(
        RUN,
        Scope("t"),
        (Metric("count"), Metric("count_distinct", "created_by"), Metric("sum", "total_tokens"),
         Metric("max", "finished_at")),
        (GroupBy("created_at", day_in_timezone="Asia/Shanghai", alias="date"), GroupBy("status")),
    )  # fmt: skip
    body = builder.aggregate_body(query, page_size=500, after_key={"g0": "2026-01-01", "g1": "x"})
    composite = body["aggs"]["groups"]["composite"]
    assert composite["after"] == {"g0": "2026-01-01", "g1": "x"}
    assert composite["sources"][0]["g0"]["date_histogram"] == {
        "field": "created_at",
        "calendar_interval": "day",
        "time_zone": "Asia/Shanghai",
        "format": "yyyy-MM-dd",
        "missing_bucket": True,
    }
    assert composite["sources"][1]["g1"]["terms"] == {"field": "status", "missing_bucket": True}
    assert body["aggs"]["groups"]["aggs"]["m1"]["cardinality"]["field"] == "created_by"
    buckets = [
        {"key": {"g0": "2026-01-02", "g1": None}, "doc_count": 2, "m1": {"value": 1}, "m2": {"value": 7.0},
         "m3": {"value": None}},
        {"key": {"g0": "2026-01-01", "g1": "ok"}, "doc_count": 1, "m1": {"value": 1}, "m2": {"value": 3.0},
         "m3": {"value": 1.7672256e12, "value_as_string": "2026-01-01T00:00:00.000Z"}},
    ]  # fmt: skip
    rows = results.sort_rows(query, results.composite_rows(schema(RUN), query, buckets))
    assert rows == [
        {"date": "2026-01-01", "status": "ok", "count": 1, "count_distinct_created_by": 1,
         "sum_total_tokens": 3, "max_finished_at": datetime(2026, 1, 1)},
        {"date": "2026-01-02", "status": None, "count": 2, "count_distinct_created_by": 1,
         "sum_total_tokens": 7, "max_finished_at": None},
    ]  # fmt: skip


def test_reads_target_only_the_partitions_a_range_covers() -> None:
    layout = IndexLayout("dify")
    window = TimeRange(datetime(2026, 1, 15), datetime(2026, 3, 1))
    assert layout.read_target(RUN, window) == "dify-workflow_execution-2026.01,dify-workflow_execution-2026.02"
    assert layout.read_target(RUN, TimeRange(since=datetime(2026, 1, 1))) == "dify-workflow_execution-*"
    wide = TimeRange(datetime(2000, 1, 1), datetime(2026, 1, 1))
    assert layout.read_target(RUN, wide) == "dify-workflow_execution-*"
    days = IndexLayout("dify", "day").partitions(RUN, datetime(2026, 2, 27, 23), datetime(2026, 3, 1, 0, 0, 1))
    assert days == [f"dify-workflow_execution-2026.{d}" for d in ("02.27", "02.28", "03.01")]
    assert layout.partition_end(datetime(2026, 12, 31, 23, 59)) == datetime(2027, 1, 1)
