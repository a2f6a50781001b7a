"""The SLS query builder as strings: scoping, escaping, latest-before-filter, windows and limits."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_difylogstore.backends.aliyun_sls.query import (
    MAX_SQL_OFFSET,
    MAX_SQL_ROWS,
    QueryBuilder,
    search_literal,
    sql_literal,
)
from flask_difylogstore.backends.base import Filter, GroupBy, Metric, Scope, TimeRange
from flask_difylogstore.records import RecordKind
from flask_difylogstore.schemas import schema


@pytest.fixture
def builder() -> QueryBuilder:
    return QueryBuilder(schema(RecordKind.RUN), clock=lambda: 1_800_000_000.0)


def _unquote_sql(text: str) -> str:
    assert text.startswith("'") and text.endswith("'")
    body = text[1:-1]
    assert re.fullmatch(r"(?:[^']|'')*", body), "a lone quote would end the literal"
    return body.replace("''", "'")


def _unquote_search(text: str) -> str:
    assert text.startswith('"') and text.endswith('"')
    body = text[1:-1]
    assert re.fullmatch(r'(?:[^"\\]|\\.)*', body, re.S), "an unescaped quote would end the phrase"
    return re.sub(r"\\(.)", r"\1", body, flags=re.S)


@given(st.text())
def test_sql_literal_round_trips_and_never_ends_early(value: str) -> None:
    if "\x00" in value:
        return
    assert _unquote_sql(sql_literal(value)) == value


@given(st.text())
def test_search_literal_round_trips_and_never_ends_early(value: str) -> None:
    assert _unquote_search(search_literal(value)) == value


def test_sql_literal_keeps_backslashes_literal() -> None:
    # Presto (SLS SQL) has no backslash escapes: a trailing backslash must not swallow the quote.
    assert sql_literal("a\\") == "'a\\'"
    assert sql_literal("x' OR '1'='1") == "'x'' OR ''1''=''1'"


def test_search_literal_escapes_backslash_before_quote() -> None:
    assert search_literal('a\\" or tenant_id:*') == '"a\\\\\\" or tenant_id:*"'


def test_tenant_and_app_always_applied_inside_the_version_window(builder: QueryBuilder) -> None:
    st_ = builder.rows(
        Scope("t-1", "a-1"), [], None, order_by=[("created_at", "desc")], columns=[], after=None, count=10
    )
    assert st_.search == 'tenant_id:"t-1" and app_id:"a-1"'
    inner = st_.sql.split("FROM log WHERE", 1)[1].split(") AS v", 1)[0]  # type: ignore[union-attr]
    assert "\"tenant_id\" = 't-1'" in inner and "\"app_id\" = 'a-1'" in inner


def test_changing_fields_are_filtered_after_picking_the_latest(builder: QueryBuilder) -> None:
    st_ = builder.rows(
        Scope("t"),
        [Filter("status", "eq", "running"), Filter("workflow_id", "eq", "w")],
        None,
        order_by=[("created_at", "desc")],
        columns=[],
        after=None,
        count=10,
    )
    sql = st_.sql or ""
    inner, outer = sql.split(") AS v", 1)
    assert 'ROW_NUMBER() OVER (PARTITION BY "id" ORDER BY "log_version" DESC)' in inner
    assert "\"workflow_id\" = 'w'" in inner and "status\" = 'running'" not in inner
    assert "\"status\" = 'running'" in outer
    assert '"_version_rank" = 1' in outer and 'coalesce("log_deleted", 0) = 0' in outer


def test_every_statement_has_an_explicit_limit_within_caps(builder: QueryBuilder) -> None:
    rows = builder.rows(Scope("t"), [], None, order_by=[], columns=[], after=None, count=50_000)
    assert (rows.sql or "").endswith(f"LIMIT 0, {MAX_SQL_ROWS}")
    agg = builder.aggregate(
        Scope("t"),
        [],
        None,
        [GroupBy("status")],
        [Metric("count")],
        offset=MAX_SQL_OFFSET - 10,
        count=MAX_SQL_ROWS,
    )
    assert (agg.sql or "").endswith(f"LIMIT {MAX_SQL_OFFSET - 10}, 10")
    assert (builder.count(Scope("t"), [], None).sql or "").endswith("LIMIT 0, 1")


def test_time_range_bounds_the_log_time_and_filters_exactly(builder: QueryBuilder) -> None:
    since, until = datetime(2026, 1, 1, 0, 0, 0), datetime(2026, 1, 2, 0, 0, 0, 500)
    st_ = builder.count(Scope("t"), [], TimeRange(since, until))
    assert st_.from_time == 1767225600 and st_.to_time == 1767312001
    assert "\"created_at\" >= '2026-01-01T00:00:00.000000'" in (st_.sql or "")
    assert "\"created_at\" < '2026-01-02T00:00:00.000500'" in (st_.sql or "")
    unbounded = builder.count(Scope("t"), [], None)
    assert unbounded.from_time == 0 and unbounded.to_time > 1_800_000_000


def test_only_schema_fields_reach_the_query(builder: QueryBuilder) -> None:
    with pytest.raises(ValueError):
        builder.rows(
            Scope("t"),
            [Filter('status" OR 1=1 --', "eq", "x")],
            None,
            order_by=[],
            columns=[],
            after=None,
            count=1,
        )
    with pytest.raises(ValueError):
        builder.rows(Scope("t"), [], None, order_by=[("id; drop", "asc")], columns=[], after=None, count=1)
    with pytest.raises(ValueError):
        builder.group_expr(GroupBy("created_at", day_in_timezone="Mars/Olympus'"))


def test_unsafe_values_are_not_used_as_search_prefilter(builder: QueryBuilder) -> None:
    st_ = builder.count(Scope('t" or tenant_id:*'), [], None)
    assert st_.search == "*"
    assert '"tenant_id" = \'t" or tenant_id:*\'' in (st_.sql or "")


def test_reference_null_semantics(builder: QueryBuilder) -> None:
    assert builder.predicate(Filter("finished_at", "eq", None)) == "FALSE"
    assert builder.predicate(Filter("finished_at", "ne", None)) == '"finished_at" IS NOT NULL'
    assert builder.predicate(Filter("status", "in", [])) == "FALSE"
    assert builder.predicate(Filter("status", "not_in", [])) == "TRUE"
    assert builder.predicate(Filter("status", "not_in", ["a"])) == '("status" IS NULL OR NOT ("status" IN (\'a\')))'
    assert builder.predicate(Filter("status", "eq", "a\x00")) == "FALSE"


def test_keyset_sorts_absent_values_greatest(builder: QueryBuilder) -> None:
    keys = builder.order_keys([("finished_at", "desc")])
    assert keys == [("finished_at", "desc"), ("id", "desc")]
    cond = builder.keyset(keys, [None, "x"])
    assert cond == '(("finished_at" IS NOT NULL) OR ("finished_at" IS NULL AND "id" < \'x\'))'


def test_day_buckets_use_the_requested_timezone(builder: QueryBuilder) -> None:
    expr = builder.group_expr(GroupBy("created_at", day_in_timezone="Asia/Shanghai"))
    assert expr == "date_format(from_unixtime(\"_time\", 'Asia/Shanghai'), '%Y-%m-%d')"


@settings(max_examples=200)
@given(st.text(), st.text())
def test_any_scope_value_yields_a_well_formed_statement(tenant: str, app: str) -> None:
    b = QueryBuilder(schema(RecordKind.RUN))
    statement = b.rows(
        Scope(tenant or "x", app or None),
        [Filter("status", "eq", tenant)],
        None,
        order_by=[("created_at", "desc")],
        columns=[],
        after=(datetime(2026, 1, 1), app),
        count=10,
    )
    # The search part only ever holds quoted plain identifiers.
    assert re.fullmatch(r'\*|(?:\w+:"[A-Za-z0-9_.\-]+"(?: and )?)+', statement.search)
