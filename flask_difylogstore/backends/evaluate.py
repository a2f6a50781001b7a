"""Queries evaluated over records in Python: matching, ordering, keyset keys and aggregation.

These are the reference semantics of the :class:`LogBackend` protocol, shared by everything that
answers a query without a store's help: the in-process backend, the Elasticsearch backend's
cursors and bucket ordering, and the repositories merging the write pipeline's pending records
into backend answers (read-your-writes) with the same rules. Filters apply to the latest,
non-deleted snapshot; ordering always ends with ``id`` and puts ``None`` last in ascending order;
day buckets are calendar days in the requested time zone.
"""

from __future__ import annotations

import functools
import typing as t
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask_difylogstore.backends.base import (
    AggregateQuery,
    Direction,
    Filter,
    GroupBy,
    Metric,
    Scope,
    TimeRange,
)
from flask_difylogstore.records import LogRecord, RecordKind, coerce
from flask_difylogstore.schemas import schema

#: Fields a :attr:`RecordQuery.keyword` is matched against (as Dify's app-log search does).
KEYWORD_FIELDS = ("inputs", "outputs", "process_data")


def typed_value(kind: RecordKind, field: str, value: t.Any) -> t.Any:
    """``value`` coerced to the stored type of ``field`` (a query value compared with stored data)."""
    if value is None:
        return None
    return coerce(schema(kind).fields.get(field, _keyword_type()), value)


@functools.cache
def _keyword_type() -> t.Any:
    from flask_difylogstore.records import FieldType

    return FieldType.KEYWORD


def _compare(a: t.Any, b: t.Any) -> int:
    """Total order with ``None`` greatest (PostgreSQL's NULLS LAST for ascending order)."""
    if a is None or b is None:
        return (a is None) - (b is None)
    if a == b:
        return 0
    try:
        return -1 if a < b else 1
    except TypeError:
        return -1 if str(a) < str(b) else 1


def full_order(order_by: Sequence[tuple[str, Direction]]) -> tuple[tuple[str, Direction], ...]:
    """``order_by`` with ``id`` appended (in the direction of the last key) when it is missing."""
    order = tuple(order_by)
    if not any(name == "id" for name, _ in order):
        order += (("id", order[-1][1] if order else "asc"),)
    return order


def row_key(record: LogRecord, order: Sequence[tuple[str, Direction]]) -> tuple[t.Any, ...]:
    return tuple(record.data.get(name) for name, _ in order)


def compare_keys(a: Sequence[t.Any], b: Sequence[t.Any], order: Sequence[tuple[str, Direction]]) -> int:
    for (_, direction), left, right in zip(order, a, b, strict=False):
        result = _compare(left, right)
        if result:
            return result if direction == "asc" else -result
    return 0


def sort_records(records: Iterable[LogRecord], order_by: Sequence[tuple[str, Direction]]) -> list[LogRecord]:
    """Records sorted by ``order_by`` + ``id`` tie-breaker."""
    order = full_order(order_by)

    def compare(a: LogRecord, b: LogRecord) -> int:
        return compare_keys(row_key(a, order), row_key(b, order), order)

    return sorted(records, key=functools.cmp_to_key(compare))


def in_scope(record: LogRecord, scope: Scope) -> bool:
    if scope.tenant_id and record.data.get("tenant_id") != scope.tenant_id:
        return False
    return not (scope.app_id and record.data.get("app_id") != scope.app_id)


def filter_matches(record: LogRecord, flt: Filter) -> bool:
    value = record.data.get(flt.field)
    if flt.op == "is_null":
        return value is None
    if flt.op == "not_null":
        return value is not None
    if flt.op in ("in", "not_in"):
        options = [typed_value(record.kind, flt.field, v) for v in (flt.value or ())]
        found = value is not None and value in options
        return found if flt.op == "in" else not found
    target = typed_value(record.kind, flt.field, flt.value)
    if flt.op == "eq":
        return value is not None and value == target
    if flt.op == "ne":
        return value is not None and value != target
    if value is None or target is None:
        return False
    result = _compare(value, target)
    return {"lt": result < 0, "lte": result <= 0, "gt": result > 0, "gte": result >= 0}[flt.op]


def time_matches(record: LogRecord, time_range: TimeRange | None) -> bool:
    if time_range is None or (time_range.since is None and time_range.until is None):
        return True
    created = record.data.get("created_at")
    if not isinstance(created, datetime):
        return False
    if time_range.since is not None and created < _naive(time_range.since):
        return False
    return not (time_range.until is not None and created >= _naive(time_range.until))


def keyword_matches(record: LogRecord, keyword: str | None) -> bool:
    if not keyword:
        return True
    needle = keyword.lower()
    return any(needle in str(record.data.get(name) or "").lower() for name in KEYWORD_FIELDS)


def record_matches(
    record: LogRecord,
    scope: Scope,
    filters: Iterable[Filter] = (),
    time_range: TimeRange | None = None,
    keyword: str | None = None,
) -> bool:
    """Whether a (latest, non-deleted) snapshot satisfies a query's scope and predicates."""
    return (
        not record.deleted
        and in_scope(record, scope)
        and all(filter_matches(record, f) for f in filters)
        and time_matches(record, time_range)
        and keyword_matches(record, keyword)
    )


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


def day_in_timezone(value: datetime, timezone: str) -> str:
    """The calendar day (``YYYY-MM-DD``) of a naive-UTC datetime in ``timezone``."""
    return value.replace(tzinfo=UTC).astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d")


def group_value(record: LogRecord, group: GroupBy) -> t.Any:
    value = record.data.get(group.field)
    if group.day_in_timezone and isinstance(value, datetime):
        return day_in_timezone(value, group.day_in_timezone)
    return value


def compute_metric(metric: Metric, rows: Sequence[LogRecord]) -> t.Any:
    if metric.function == "count":
        return len(rows)
    values = [r.data.get(metric.field or "") for r in rows]
    present = [v for v in values if v is not None]
    if metric.function == "count_distinct":
        return len(set(present))
    if metric.function == "sum":
        return sum(present) if present else 0
    if not present:
        return None
    return max(present) if metric.function == "max" else min(present)


def aggregate_records(records: Iterable[LogRecord], query: AggregateQuery) -> list[dict[str, t.Any]]:
    """Group already-selected latest snapshots as :class:`AggregateQuery` describes."""
    groups: dict[tuple[t.Any, ...], list[LogRecord]] = {}
    for record in records:
        key = tuple(group_value(record, g) for g in query.group_by)
        groups.setdefault(key, []).append(record)
    if not query.group_by and not groups:
        groups[()] = []
    ascending: list[tuple[str, Direction]] = [("key", "asc")] * len(query.group_by)

    def compare(a: tuple[t.Any, ...], b: tuple[t.Any, ...]) -> int:
        return compare_keys(a, b, ascending)

    rows = []
    for key in sorted(groups, key=functools.cmp_to_key(compare)):
        row: dict[str, t.Any] = {g.name: v for g, v in zip(query.group_by, key, strict=True)}
        for metric in query.metrics:
            row[metric.name] = compute_metric(metric, groups[key])
        rows.append(row)
    return rows
