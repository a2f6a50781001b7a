"""The one place that turns backend-neutral queries into Elasticsearch DSL (plain dicts, never strings).

Every body it builds is scoped to the tenant (and app) of its :class:`Scope` and hides deleted
entities (tombstones); values are typed from the record schema and passed as JSON values, so no
user input is ever spliced into a query string. Ordering follows the memory backend exactly:
``id`` closes every sort, and ``None`` sorts as the greatest value (last ascending, first
descending). A caller's keyset cursor becomes a filter (so it works with any value types), while
paging inside one call uses ``search_after`` with the sort values the cluster returned, which has
no 10,000-hit window.
"""

from __future__ import annotations

import typing as t
from collections.abc import Mapping, Sequence
from datetime import datetime

from flask_difylogstore.backends.base import (
    AggregateQuery,
    Direction,
    Filter,
    GroupBy,
    Metric,
    RecordQuery,
    Scope,
    TimeRange,
)
from flask_difylogstore.backends.elasticsearch.mappings import (
    SUBSTRING_FIELDS,
    WILDCARD_SUFFIX,
    exact_field,
    unmapped_type,
)
from flask_difylogstore.backends.evaluate import full_order
from flask_difylogstore.records import FieldType, RecordKind, coerce, format_datetime
from flask_difylogstore.schemas import RecordSchema

Clause = dict[str, t.Any]
MATCH_NONE: Clause = {"match_none": {}}
MATCH_ALL: Clause = {"match_all": {}}
#: ``cardinality`` is exact up to this many distinct values (the maximum ES accepts).
CARDINALITY_PRECISION = 40_000
DAY_FORMAT = "yyyy-MM-dd"
_RANGE_OPS = {"lt": "lt", "lte": "lte", "gt": "gt", "gte": "gte"}


def _exists(name: str) -> Clause:
    return {"exists": {"field": name}}


def _not(*clauses: Clause) -> Clause:
    return {"bool": {"must_not": list(clauses)}}


def _all(*clauses: Clause) -> Clause:
    return clauses[0] if len(clauses) == 1 else {"bool": {"filter": list(clauses)}}


def _any(clauses: Sequence[Clause]) -> Clause:
    return {"bool": {"should": list(clauses), "minimum_should_match": 1}} if clauses else MATCH_NONE


def _storable(value: t.Any) -> bool:
    """Whether ``value`` could be stored at all: strings must be valid UTF-8 text (no lone surrogates)."""
    if not isinstance(value, str):
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def escape_wildcard(text: str) -> str:
    """Escape the wildcard query's special characters (``*``, ``?`` and ``\\``)."""
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")


class QueryBuilder:
    """Builds search, count, aggregation and delete-candidate bodies for one set of schemas."""

    def __init__(self, schemas: Mapping[RecordKind, RecordSchema]) -> None:
        self.schemas = schemas

    # ---- values ---------------------------------------------------------------------------------
    def _type(self, kind: RecordKind, name: str) -> FieldType:
        return self.schemas[kind].fields.get(name, FieldType.KEYWORD)

    def value(self, kind: RecordKind, name: str, raw: t.Any) -> t.Any:
        """A Python value as the JSON value ES compares with the field (``None`` stays ``None``)."""
        type_ = self._type(kind, name)
        typed = coerce(type_ if type_ is not FieldType.JSON else FieldType.TEXT, raw)
        return format_datetime(typed) if isinstance(typed, datetime) else typed

    # ---- predicates -----------------------------------------------------------------------------
    def scope_clauses(self, scope: Scope) -> list[Clause]:
        """Owner restriction; a restricted scope without a tenant cannot be built (see :class:`Scope`)."""
        filters = scope.owner_filters()
        if any(not _storable(f.value) for f in filters):
            return [MATCH_NONE]  # no stored owner has an id that is not valid text
        return [{"term": {f.field: f.value}} for f in filters]

    def predicate(self, kind: RecordKind, flt: Filter) -> Clause:
        """One :class:`Filter` with the memory backend's null semantics."""
        schema = self.schemas[kind]
        if flt.op == "is_null":
            return _not(_exists(flt.field))
        if flt.op == "not_null":
            return _exists(flt.field)
        field = exact_field(schema, flt.field)
        if flt.op in ("in", "not_in"):
            # A value that is not valid text (a lone surrogate) equals no stored value.
            values = [self.value(kind, flt.field, v) for v in (flt.value or ()) if v is not None and _storable(v)]
            if flt.op == "in":
                return {"terms": {field: values}} if values else MATCH_NONE
            return _not({"terms": {field: values}}) if values else MATCH_ALL
        if not _storable(flt.value):
            if flt.op in ("eq", "ne"):
                return MATCH_NONE if flt.op == "eq" else _exists(field)
            raise ValueError(f"{flt.field}: the value is not valid text and cannot be compared")
        target = self.value(kind, flt.field, flt.value)
        if flt.op == "eq":
            return {"term": {field: target}} if target is not None else MATCH_NONE
        if flt.op == "ne":
            return _all(_exists(field), _not({"term": {field: target}})) if target is not None else _exists(field)
        if flt.op in _RANGE_OPS:
            return {"range": {field: {_RANGE_OPS[flt.op]: target}}} if target is not None else MATCH_NONE
        raise ValueError(f"unknown filter operator {flt.op!r}")

    def keyword_clause(self, kind: RecordKind, keyword: str) -> Clause:
        """Case-insensitive substring match in the payload fields Dify's keyword search covers."""
        if not _storable(keyword):
            return MATCH_NONE
        fields = [n for n in self.schemas[kind].fields if n in SUBSTRING_FIELDS]
        pattern = f"*{escape_wildcard(keyword)}*"
        return _any(
            [
                {"wildcard": {f"{name}.{WILDCARD_SUFFIX}": {"value": pattern, "case_insensitive": True}}}
                for name in sorted(fields)
            ]
        )

    def time_clause(self, time_range: TimeRange | None) -> Clause | None:
        if time_range is None or (time_range.since is None and time_range.until is None):
            return None
        bounds: dict[str, str] = {}
        if time_range.since is not None:
            bounds["gte"] = format_datetime(time_range.since)
        if time_range.until is not None:
            bounds["lt"] = format_datetime(time_range.until)
        return {"range": {"created_at": bounds}}

    def where(
        self,
        kind: RecordKind,
        scope: Scope,
        filters: Sequence[Filter] = (),
        time_range: TimeRange | None = None,
        keyword: str | None = None,
        *,
        include_deleted: bool = False,
    ) -> Clause:
        """The bool query of live entities in ``scope`` matching every predicate."""
        clauses = self.scope_clauses(scope)
        clauses += [self.predicate(kind, f) for f in filters]
        window = self.time_clause(time_range)
        if window is not None:
            clauses.append(window)
        if keyword:
            clauses.append(self.keyword_clause(kind, keyword))
        body: dict[str, t.Any] = {"filter": clauses}
        if not include_deleted:
            body["must_not"] = [{"term": {"log_deleted": 1}}]
        return {"bool": body}

    # ---- ordering -------------------------------------------------------------------------------
    def sort(self, kind: RecordKind, order: Sequence[tuple[str, Direction]]) -> list[Clause]:
        """ES sort for a full order (``id`` included); ``None`` greatest like the memory backend."""
        schema = self.schemas[kind]
        return [
            {
                exact_field(schema, name): {
                    "order": direction,
                    "missing": "_last" if direction == "asc" else "_first",
                    "unmapped_type": unmapped_type(schema, name),
                }
            }
            for name, direction in order
        ]

    def keyset(self, kind: RecordKind, order: Sequence[tuple[str, Direction]], after: Sequence[t.Any]) -> Clause:
        """Rows strictly after ``after`` in ``order``: OR over i of (keys before i equal, key i beyond)."""
        schema = self.schemas[kind]
        alternatives: list[Clause] = []
        equal: list[Clause] = []
        for (name, direction), raw in zip(order, after, strict=False):
            field = exact_field(schema, name)
            value = self.value(kind, name, raw)
            if value is None:
                beyond = None if direction == "asc" else _exists(field)
                same = _not(_exists(field))
            elif direction == "asc":
                beyond = _any([{"range": {field: {"gt": value}}}, _not(_exists(field))])
                same = {"term": {field: value}}
            else:
                beyond = {"range": {field: {"lt": value}}}
                same = {"term": {field: value}}
            if beyond is not None:
                alternatives.append(_all(*equal, beyond))
            equal.append(same)
        return _any(alternatives)

    # ---- request bodies -------------------------------------------------------------------------
    def source_fields(self, kind: RecordKind, fields: Sequence[str] | None) -> list[str] | bool:
        if fields is None:
            return True
        keep = {*fields, *self.schemas[kind].owner_fields, "id", "log_version", "log_deleted"}
        return sorted(keep)

    def search_body(self, query: RecordQuery) -> dict[str, t.Any]:
        """The search for a :class:`RecordQuery`, without ``size`` / ``search_after`` (added per page)."""
        where = self.where(query.kind, query.scope, query.filters, query.time_range, query.keyword)
        order = full_order(query.order_by)
        if query.after is not None:
            where["bool"]["filter"].append(self.keyset(query.kind, order, query.after))
        return {
            "query": where,
            "sort": self.sort(query.kind, order),
            "_source": self.source_fields(query.kind, query.fields),
            "track_total_hits": False,
        }

    def count_body(
        self, kind: RecordKind, scope: Scope, filters: Sequence[Filter], time_range: TimeRange | None
    ) -> dict[str, t.Any]:
        return {"query": self.where(kind, scope, filters, time_range)}

    def delete_candidates_body(
        self, kind: RecordKind, scope: Scope, filters: Sequence[Filter], time_range: TimeRange | None
    ) -> dict[str, t.Any]:
        """Oldest first (as the memory backend deletes under a limit), only what a tombstone needs."""
        schema = self.schemas[kind]
        fields = sorted({*schema.owner_fields, "id", "status", "log_version"} & set(schema.fields))
        return {
            "query": self.where(kind, scope, filters, time_range),
            "sort": self.sort(kind, full_order([("created_at", "asc")])),
            "_source": fields,
            "track_total_hits": False,
        }

    # ---- aggregations ---------------------------------------------------------------------------
    def metric_aggs(self, kind: RecordKind, metrics: Sequence[Metric]) -> dict[str, t.Any]:
        """Sub-aggregations named ``m<i>``; ``count`` needs none (bucket ``doc_count``)."""
        schema = self.schemas[kind]
        aggs: dict[str, t.Any] = {}
        for i, metric in enumerate(metrics):
            if metric.function == "count":
                continue
            field = exact_field(schema, metric.field or "")
            if metric.function == "count_distinct":
                aggs[f"m{i}"] = {"cardinality": {"field": field, "precision_threshold": CARDINALITY_PRECISION}}
            else:
                aggs[f"m{i}"] = {metric.function: {"field": field}}
        return aggs

    def _source(self, kind: RecordKind, group: GroupBy) -> dict[str, t.Any]:
        field = exact_field(self.schemas[kind], group.field)
        if group.day_in_timezone:
            return {
                "date_histogram": {
                    "field": field,
                    "calendar_interval": "day",
                    "time_zone": group.day_in_timezone,
                    "format": DAY_FORMAT,
                    # Entities without the date form a null day, as in the other backends.
                    "missing_bucket": True,
                }
            }
        return {"terms": {"field": field, "missing_bucket": True}}

    def aggregate_body(
        self, query: AggregateQuery, *, page_size: int, after_key: Mapping[str, t.Any] | None = None
    ) -> dict[str, t.Any]:
        """A composite aggregation over the groups (paged by ``after_key``), or plain metrics."""
        where = self.where(query.kind, query.scope, query.filters, query.time_range)
        metrics = self.metric_aggs(query.kind, query.metrics)
        if not query.group_by:
            body: dict[str, t.Any] = {"query": where, "size": 0, "track_total_hits": True}
            if metrics:
                body["aggs"] = metrics
            return body
        composite: dict[str, t.Any] = {
            "size": page_size,
            "sources": [{f"g{i}": self._source(query.kind, g)} for i, g in enumerate(query.group_by)],
        }
        if after_key:
            composite["after"] = dict(after_key)
        groups: dict[str, t.Any] = {"composite": composite}
        if metrics:
            groups["aggs"] = metrics
        return {"query": where, "size": 0, "track_total_hits": False, "aggs": {"groups": groups}}
