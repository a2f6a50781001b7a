"""Reads that also see records this process accepted but the backend has not stored yet.

The write pipeline acknowledges ``save()`` before the backend has the record, so every read
merges ``sink.pending(kind)`` with the backend's answer: per entity the higher ``log_version``
wins, the merged snapshot is filtered again with the backend's own rules
(:mod:`flask_difylogstore.backends.memory`), and nothing is returned twice.
"""

from __future__ import annotations

import dataclasses
import typing as t
from collections.abc import Iterable, Sequence

from flask_difylogstore.backends.base import (
    AggregateQuery,
    Filter,
    LogBackend,
    Page,
    RecordQuery,
    Scope,
    TimeRange,
)
from flask_difylogstore.backends.memory import (
    compare_keys,
    full_order,
    in_scope,
    record_matches,
    row_key,
    sort_records,
)
from flask_difylogstore.pipeline.base import RecordSink
from flask_difylogstore.records import LogRecord, RecordKind, latest_by_id

#: How long an aggregate waits for pending records of its scope to reach the backend.
AGGREGATE_FLUSH_TIMEOUT_S = 5.0


class Reader:
    """Backend reads merged with the sink's pending records."""

    def __init__(self, backend: LogBackend, sink: RecordSink | None) -> None:
        self.backend = backend
        self.sink = sink

    def pending(self, kind: RecordKind, scope: Scope) -> dict[str, LogRecord]:
        """The newest pending snapshot per id within ``scope`` (tombstones included)."""
        if self.sink is None:
            return {}
        return latest_by_id(r for r in self.sink.pending(kind) if in_scope(r, scope))

    def get(self, kind: RecordKind, ids: Sequence[str], scope: Scope) -> dict[str, LogRecord]:
        """Latest non-deleted snapshot per id."""
        ids = list(dict.fromkeys(i for i in ids if i))
        if not ids:
            return {}
        pending = self.pending(kind, scope)
        found = self.backend.get_latest(kind, ids, scope)
        result: dict[str, LogRecord] = {}
        for id_ in ids:
            candidates = [r for r in (found.get(id_), pending.get(id_)) if r is not None]
            if not candidates:
                continue
            best = max(candidates, key=lambda r: r.log_version)
            if not best.deleted:
                result[id_] = best
        return result

    def get_one(self, kind: RecordKind, id_: str, scope: Scope) -> LogRecord | None:
        return self.get(kind, [id_], scope).get(id_)

    def search(self, query: RecordQuery) -> Page:
        """:meth:`LogBackend.search` with pending records merged in."""
        pending = self.pending(query.kind, query.scope)
        if not pending:
            return self.backend.search(query)
        limit = None if query.limit is None else query.limit + len(pending)
        page = self.backend.search(dataclasses.replace(query, limit=limit))
        merged = [r for r in page.records if not _overridden(r, pending)]
        stored = {r.id: r.log_version for r in page.records}
        order = full_order(query.order_by)
        for record in pending.values():
            if stored.get(record.id, -1) >= record.log_version:
                continue  # the backend already has this snapshot or a newer one
            if not record_matches(record, query.scope, query.filters, query.time_range, query.keyword):
                continue
            if query.after is not None and compare_keys(row_key(record, order), query.after, order) <= 0:
                continue
            merged.append(record)
        merged = sort_records(merged, query.order_by)
        more = page.next_after is not None
        if query.limit is not None and len(merged) > query.limit:
            merged, more = merged[: query.limit], True
        return Page(merged, row_key(merged[-1], order) if more and merged else None)

    def search_all(self, query: RecordQuery) -> list[LogRecord]:
        """Every matching record (the backend pages past its own caps)."""
        return self.search(dataclasses.replace(query, limit=None)).records

    def iterate(self, query: RecordQuery, page_size: int = 1000) -> Iterable[LogRecord]:
        """All matching records, fetched ``page_size`` at a time with the keyset cursor."""
        after = query.after
        while True:
            page = self.search(dataclasses.replace(query, limit=page_size, after=after))
            yield from page.records
            if page.next_after is None:
                return
            after = page.next_after

    def count(
        self,
        kind: RecordKind,
        scope: Scope,
        filters: Sequence[Filter] = (),
        time_range: TimeRange | None = None,
    ) -> int:
        """Entities matching, counting pending snapshots instead of the stored ones they replace."""
        total = self.backend.count(kind, scope, filters, time_range)
        pending = self.pending(kind, scope)
        if not pending:
            return total
        stored = self.backend.get_latest(kind, list(pending), scope)
        for id_, record in pending.items():
            old = stored.get(id_)
            if old is not None and old.log_version >= record.log_version:
                continue
            if old is not None and record_matches(old, scope, filters, time_range):
                total -= 1
            if record_matches(record, scope, filters, time_range):
                total += 1
        return total

    def aggregate(self, query: AggregateQuery) -> list[dict[str, t.Any]]:
        """Backend aggregates, after giving pending records of the scope a chance to land."""
        if self.sink is not None and self.pending(query.kind, query.scope):
            self.sink.flush(AGGREGATE_FLUSH_TIMEOUT_S)
        return self.backend.aggregate(query)


def _overridden(record: LogRecord, pending: dict[str, LogRecord]) -> bool:
    newer = pending.get(record.id)
    return newer is not None and newer.log_version > record.log_version
