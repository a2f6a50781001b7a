"""An in-process backend: the reference semantics of the :class:`LogBackend` protocol.

Every real backend must answer like this one: the latest snapshot of each entity (highest
``log_version``) is chosen first, deleted entities are invisible, filters apply to that latest
snapshot, ordering always ends with ``id``, keyset cursors continue strictly after the last row
and day buckets are calendar days in the requested time zone. It is also a legitimate
``LOGSTORE_BACKEND=memory`` for development (data lives as long as the process).

The predicate and ordering helpers are public because the repositories use them to merge the
write pipeline's pending records into backend answers (read-your-writes) with the same rules.
"""

from __future__ import annotations

import functools
import threading
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
    Page,
    PingResult,
    ProvisionChange,
    ProvisionReport,
    RecordQuery,
    Scope,
    TimeRange,
    WriteResult,
)
from flask_difylogstore.records import LogRecord, RecordKind, coerce, compose_version, default_clock, supersedes
from flask_difylogstore.schemas import schema

if t.TYPE_CHECKING:
    from flask_difylogstore.settings import LogStoreSettings

#: Fields a :attr:`RecordQuery.keyword` is matched against (as Dify's app-log search does).
KEYWORD_FIELDS = ("inputs", "outputs", "process_data")


def _typed(kind: RecordKind, field: str, value: t.Any) -> t.Any:
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
        options = [_typed(record.kind, flt.field, v) for v in (flt.value or ())]
        found = value is not None and value in options
        return found if flt.op == "in" else not found
    target = _typed(record.kind, flt.field, flt.value)
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


class MemoryBackend:
    """Keeps the winning snapshot of every entity in a dict; thread-safe."""

    name = "memory"
    max_batch_records = 10_000
    max_batch_bytes = 64 * 1024 * 1024

    def __init__(self) -> None:
        self._lock = threading.RLock()
        # Keyed by (tenant, app, id): an entity is its id within its owner, so another owner
        # reusing an id never replaces or hides it (as on the Elasticsearch backend).
        self._data: dict[RecordKind, dict[tuple[str, str, str], LogRecord]] = {kind: {} for kind in RecordKind}
        self._owners: dict[RecordKind, dict[str, set[tuple[str, str, str]]]] = {kind: {} for kind in RecordKind}
        self._provisioned = False
        self.writes = 0

    @classmethod
    def from_settings(cls, settings: LogStoreSettings) -> MemoryBackend:
        return cls()

    def provision(self, *, dry_run: bool = False) -> ProvisionReport:
        action: t.Literal["create", "keep"] = "keep" if self._provisioned else "create"
        report = ProvisionReport(
            self.name,
            dry_run,
            [ProvisionChange(kind.value, action, "in-process table") for kind in RecordKind],
        )
        if not dry_run:
            self._provisioned = True
        return report

    def write(self, records: Sequence[LogRecord]) -> WriteResult:
        result = WriteResult()
        with self._lock:
            self.writes += 1
            for record in records:
                table = self._data[record.kind]
                key = record.entity_key
                current = table.get(key)
                if current is not None and not supersedes(record.log_version, current.log_version):
                    result.stale += 1
                    continue
                table[key] = LogRecord(record.kind, dict(record.data), record.log_version)
                self._owners[record.kind].setdefault(record.id, set()).add(key)
                result.written += 1
        return result

    def _live(
        self,
        kind: RecordKind,
        scope: Scope,
        filters: Iterable[Filter] = (),
        time_range: TimeRange | None = None,
        keyword: str | None = None,
    ) -> list[LogRecord]:
        with self._lock:
            rows = list(self._data[kind].values())
        filters = tuple(filters)
        return [r for r in rows if record_matches(r, scope, filters, time_range, keyword)]

    def get_latest(self, kind: RecordKind, ids: Sequence[str], scope: Scope) -> dict[str, LogRecord]:
        result = {}
        with self._lock:
            table = self._data[kind]
            for id_ in ids:
                candidates = [table[key] for key in self._owners[kind].get(id_, ()) if in_scope(table[key], scope)]
                if not candidates:
                    continue
                record = max(candidates, key=lambda r: r.log_version)
                if not record.deleted:
                    result[id_] = _copy(record)
        return result

    def search(self, query: RecordQuery) -> Page:
        rows = sort_records(
            self._live(query.kind, query.scope, query.filters, query.time_range, query.keyword),
            query.order_by,
        )
        order = full_order(query.order_by)
        if query.after is not None:
            after = tuple(_typed(query.kind, name, v) for (name, _), v in zip(order, query.after, strict=False))
            rows = [r for r in rows if compare_keys(row_key(r, order), after, order) > 0]
        more = query.limit is not None and len(rows) > query.limit
        if query.limit is not None:
            rows = rows[: query.limit]
        next_after = row_key(rows[-1], order) if more and rows else None
        return Page([_project(r, query.fields) for r in rows], next_after)

    def count(
        self,
        kind: RecordKind,
        scope: Scope,
        filters: Sequence[Filter] = (),
        time_range: TimeRange | None = None,
    ) -> int:
        return len(self._live(kind, scope, filters, time_range))

    def aggregate(self, query: AggregateQuery) -> list[dict[str, t.Any]]:
        return aggregate_records(self._live(query.kind, query.scope, query.filters, query.time_range), query)

    def delete(
        self,
        kind: RecordKind,
        scope: Scope,
        filters: Sequence[Filter] = (),
        time_range: TimeRange | None = None,
        *,
        limit: int | None = None,
    ) -> int:
        with self._lock:
            rows = sort_records(self._live(kind, scope, filters, time_range), [("created_at", "asc")])
            if limit is not None:
                rows = rows[:limit]
            for record in rows:
                # Final: a deletion outranks every snapshot accepted before it, final ones included.
                version = compose_version(default_clock.now(), final=True, deleted=True)
                self._data[kind][record.entity_key] = record.tombstone(version)
            return len(rows)

    def ping(self) -> PingResult:
        return PingResult(self.name, True, 0.0)

    def close(self) -> None:
        return None

    def clear(self) -> None:
        """Forget everything (tests)."""
        with self._lock:
            for table in self._data.values():
                table.clear()
            for owners in self._owners.values():
                owners.clear()


def _copy(record: LogRecord) -> LogRecord:
    return LogRecord(record.kind, dict(record.data), record.log_version)


def _project(record: LogRecord, fields: tuple[str, ...] | None) -> LogRecord:
    if fields is None:
        return _copy(record)
    keep = set(fields) | schema(record.kind).owner_fields | {"id"}
    return LogRecord(record.kind, {k: v for k, v in record.data.items() if k in keep}, record.log_version)
