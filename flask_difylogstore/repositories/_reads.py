"""Reads that also see records this process accepted but the backend has not stored yet.

The write pipeline acknowledges ``save()`` before the backend has the record, so every read
merges ``sink.pending(kind)`` with the backend's answer: per entity the higher ``log_version``
wins, the merged snapshot is filtered again with the backend's own rules
(:mod:`flask_difylogstore.backends.evaluate`), and nothing is returned twice.
"""

from __future__ import annotations

import dataclasses
import typing as t
from collections.abc import Iterable, Sequence

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
from flask_difylogstore.backends.evaluate import (
    aggregate_records,
    compare_keys,
    full_order,
    in_scope,
    record_matches,
    row_key,
    sort_records,
)
from flask_difylogstore.pipeline.base import RecordSink
from flask_difylogstore.records import LogRecord, RecordKind, latest_by_id
from flask_difylogstore.repositories.dual_merge import merge_groups

#: Most pending entities an aggregate leaves out of the backend's answer by id (a longer list is
#: subtracted instead: query size stays bounded during long outages).
MAX_EXCLUDED_IDS = 1000


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
        """Backend aggregates with this process's pending snapshots merged in; never waits on the write path.

        Usually the entities with a pending snapshot are left out of the backend's aggregate
        (``id not_in``) and aggregated here from their winning snapshot (pending, or stored when that
        is newer), and the two disjoint parts are added group by group: exact whatever the backend
        has made visible yet. With more than :data:`MAX_EXCLUDED_IDS` pending entities (a long
        outage), the backend aggregates everything and the stored snapshots it counted are taken out
        again (counts and sums). ``count_distinct`` is computed from a count per (group, value).
        """
        pending = self.pending(query.kind, query.scope)
        if not pending:
            return self.backend.aggregate(query)
        exclude = len(pending) <= MAX_EXCLUDED_IDS or any(m.function in ("max", "min") for m in query.metrics)
        distinct = [m for m in query.metrics if m.function == "count_distinct"]
        plain = tuple(m for m in query.metrics if m.function != "count_distinct")
        parts: list[list[dict[str, t.Any]]] = []
        if plain:
            parts.append(self._merged(dataclasses.replace(query, metrics=plain), pending, exclude))
        for metric in distinct:
            parts.append(self._distinct(query, metric, pending, exclude))
        return _join_groups(query, parts)

    def _merged(self, query: AggregateQuery, pending: dict[str, LogRecord], exclude: bool) -> list[dict[str, t.Any]]:
        """``query`` (counts, sums, max, min) over the backend's entities and the pending ones."""
        where = (query.scope, query.filters, query.time_range)
        if exclude:
            part = dataclasses.replace(query, filters=(*query.filters, Filter("id", "not_in", sorted(pending))))
            base = self.backend.aggregate(part)
        else:
            base = self.backend.aggregate(query)
        # Read after the aggregate: a backend that makes recent writes visible for it (Elasticsearch's
        # refresh) has done so, so the stored snapshots found here are the ones it counted.
        stored = self.backend.get_latest(query.kind, list(pending), query.scope)
        winners: list[LogRecord] = []
        counted: list[LogRecord] = []
        for id_, record in pending.items():
            old = stored.get(id_)
            if not exclude and old is not None and not old.deleted and record_matches(old, *where):
                counted.append(old)
            winner = old if old is not None and old.log_version >= record.log_version else record
            if not winner.deleted and record_matches(winner, *where):
                winners.append(winner)
        rows = merge_groups(base, aggregate_records(winners, query), query)
        return rows if exclude else _subtract(query, rows, aggregate_records(counted, query))

    def _distinct(
        self, query: AggregateQuery, metric: Metric, pending: dict[str, LogRecord], exclude: bool
    ) -> list[dict[str, t.Any]]:
        """``count_distinct(field)`` per group: entities per (group, value) merged, then values counted."""
        value = GroupBy(t.cast(str, metric.field), alias="__distinct_value")
        expanded = dataclasses.replace(
            query, metrics=(Metric("count", alias="__distinct_rows"),), group_by=(*query.group_by, value)
        )
        names = [g.name for g in query.group_by]
        result: dict[tuple[t.Any, ...], dict[str, t.Any]] = {}
        for row in self._merged(expanded, pending, exclude):
            key = tuple(row.get(n) for n in names)
            group = result.setdefault(key, {**{n: row.get(n) for n in names}, metric.name: 0})
            if row.get(value.name) is not None and row.get("__distinct_rows"):
                group[metric.name] += 1
        return list(result.values())


def _subtract(
    query: AggregateQuery, rows: list[dict[str, t.Any]], removed: list[dict[str, t.Any]]
) -> list[dict[str, t.Any]]:
    """Counts and sums of ``rows`` minus ``removed``, group by group; groups left with no entity dropped."""
    names = [g.name for g in query.group_by]
    by_key = {tuple(row.get(n) for n in names): row for row in rows}
    for row in removed:
        target = by_key.get(tuple(row.get(n) for n in names))
        if target is not None:
            for metric in query.metrics:
                target[metric.name] = (target.get(metric.name) or 0) - (row.get(metric.name) or 0)
    counts = [m.name for m in query.metrics if m.function == "count"]
    return [row for row in rows if not counts or any(row.get(name) for name in counts)]


def _join_groups(query: AggregateQuery, parts: list[list[dict[str, t.Any]]]) -> list[dict[str, t.Any]]:
    """Rows of the same groups with different metrics, joined by group key, in group-key order."""
    names = [g.name for g in query.group_by]
    joined: dict[tuple[t.Any, ...], dict[str, t.Any]] = {}
    for rows in parts:
        for row in rows:
            key = tuple(row.get(n) for n in names)
            joined.setdefault(key, {}).update(row)
    for row in joined.values():
        for metric in query.metrics:
            row.setdefault(metric.name, 0 if metric.function in ("count", "count_distinct") else None)
    return [joined[k] for k in sorted(joined, key=lambda k: tuple((v is None, "" if v is None else v) for v in k))]


def _overridden(record: LogRecord, pending: dict[str, LogRecord]) -> bool:
    newer = pending.get(record.id)
    return newer is not None and newer.log_version > record.log_version
