"""Turning search hits and aggregation buckets back into records and rows typed like the memory backend."""

from __future__ import annotations

import functools
import typing as t
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from flask_difylogstore.backends.base import AggregateQuery, Metric
from flask_difylogstore.backends.evaluate import compare_keys
from flask_difylogstore.records import FieldType, LogRecord, RecordKind, coerce, parse_datetime
from flask_difylogstore.schemas import RecordSchema

Row = dict[str, t.Any]


def record_from_hit(kind: RecordKind, hit: Mapping[str, t.Any], schema: RecordSchema) -> LogRecord:
    return LogRecord.from_wire(kind, hit["_source"], schema)


def _datetime_from_number(value: float) -> datetime:
    seconds = value / 1e9 if abs(value) > 1e14 else value / 1e3
    return datetime.fromtimestamp(seconds, tz=UTC).replace(tzinfo=None)


def _typed(type_: FieldType, value: t.Any) -> t.Any:
    if value is None:
        return None
    if type_ is FieldType.DATETIME and isinstance(value, int | float) and not isinstance(value, bool):
        return _datetime_from_number(value)
    if type_ is FieldType.LONG and isinstance(value, float):
        return round(value)
    return coerce(type_, value)


def metric_value(schema: RecordSchema, index: int, metric: Metric, bucket: Mapping[str, t.Any]) -> t.Any:
    """The value of metric ``m<index>`` in a bucket, as the memory backend would compute it."""
    if metric.function == "count":
        return int(bucket.get("doc_count", 0))
    result = bucket.get(f"m{index}") or {}
    value = result.get("value")
    if metric.function == "count_distinct":
        return int(value or 0)
    type_ = schema.fields.get(metric.field or "", FieldType.DOUBLE)
    if metric.function == "sum":
        return _typed(type_, value or 0) if type_ in (FieldType.LONG, FieldType.DOUBLE) else value or 0
    if value is None:
        return None
    if type_ is FieldType.DATETIME and result.get("value_as_string"):
        return parse_datetime(str(result["value_as_string"]))
    return _typed(type_, value)


def _metrics(schema: RecordSchema, query: AggregateQuery, bucket: Mapping[str, t.Any]) -> Row:
    return {m.name: metric_value(schema, i, m, bucket) for i, m in enumerate(query.metrics)}


def group_value(schema: RecordSchema, query: AggregateQuery, index: int, key: t.Any) -> t.Any:
    group = query.group_by[index]
    if group.day_in_timezone or key is None:
        return key
    return _typed(schema.fields.get(group.field, FieldType.KEYWORD), key)


def plain_row(schema: RecordSchema, query: AggregateQuery, response: Mapping[str, t.Any]) -> Row:
    """The single row of an ungrouped aggregation."""
    total = response["hits"]["total"]
    bucket = {
        "doc_count": total["value"] if isinstance(total, dict) else total,
        **response.get("aggregations", {}),
    }
    return _metrics(schema, query, bucket)


def composite_rows(schema: RecordSchema, query: AggregateQuery, buckets: Sequence[Mapping[str, t.Any]]) -> list[Row]:
    rows = []
    for bucket in buckets:
        row = {g.name: group_value(schema, query, i, bucket["key"].get(f"g{i}")) for i, g in enumerate(query.group_by)}
        row.update(_metrics(schema, query, bucket))
        rows.append(row)
    return rows


def sort_rows(query: AggregateQuery, rows: list[Row]) -> list[Row]:
    """Group keys ascending with ``None`` last, as the memory backend orders them."""
    names = [g.name for g in query.group_by]
    order = [("k", "asc")] * len(names)

    def cmp(a: Row, b: Row) -> int:
        return compare_keys([a[n] for n in names], [b[n] for n in names], order)  # type: ignore[arg-type]

    return sorted(rows, key=functools.cmp_to_key(cmp))
