"""An in-process backend: the reference semantics of the :class:`LogBackend` protocol.

Every real backend must answer like this one: the latest snapshot of each entity (highest
``log_version``) is chosen first, deleted entities are invisible, filters apply to that latest
snapshot, ordering always ends with ``id``, keyset cursors continue strictly after the last row
and day buckets are calendar days in the requested time zone. It is also a legitimate
``LOGSTORE_BACKEND=memory`` for development (data lives as long as the process). The rules
themselves live in :mod:`flask_difylogstore.backends.evaluate`, shared with the other backends and
the repositories' read-your-writes merge.
"""

from __future__ import annotations

import threading
import typing as t
from collections.abc import Iterable, Sequence

from flask_difylogstore.backends.base import (
    AggregateQuery,
    Filter,
    Page,
    PingResult,
    ProvisionChange,
    ProvisionReport,
    RecordQuery,
    Scope,
    TimeRange,
    WriteResult,
)
from flask_difylogstore.backends.evaluate import (
    aggregate_records,
    compare_keys,
    full_order,
    in_scope,
    record_matches,
    row_key,
    sort_records,
    typed_value,
)
from flask_difylogstore.records import LogRecord, RecordKind, compose_version, default_clock, supersedes
from flask_difylogstore.schemas import schema

if t.TYPE_CHECKING:
    from flask_difylogstore.settings import LogStoreSettings


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
            after = tuple(typed_value(query.kind, name, v) for (name, _), v in zip(order, query.after, strict=False))
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
