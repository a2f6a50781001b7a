"""The pure part of dual read: how rows and aggregates of the two stores are combined (rule in
:mod:`flask_difylogstore.repositories.dual_read`)."""

from __future__ import annotations

import typing as t
from collections.abc import Callable, Sequence
from datetime import datetime

from flask_difylogstore.backends.base import AggregateQuery, TimeRange
from flask_difylogstore.repositories.dual_sql import Key


def narrow(window: TimeRange, since: datetime | None = None, until: datetime | None = None) -> TimeRange:
    """``window`` intersected with ``[since, until)``."""
    lower = max((v for v in (window.since, since) if v is not None), default=None)
    upper = min((v for v in (window.until, until) if v is not None), default=None)
    return TimeRange(lower, upper)


def row_key(row: t.Any) -> Key:
    return row.created_at, str(row.id)


def combine(
    logstore: list[t.Any], relational: list[t.Any], dropped: set[str], limit: int, descending: bool
) -> tuple[list[t.Any], bool]:
    """One page from two sorted batches of ``limit + 1`` rows each (see the module docstring)."""
    full = [row_key(rows[-1]) for rows in (logstore, relational) if len(rows) > limit]
    merged = sorted([*logstore, *(r for r in relational if str(r.id) not in dropped)], key=row_key, reverse=descending)
    if full:
        frontier = max(full) if descending else min(full)
        merged = [r for r in merged if (row_key(r) >= frontier if descending else row_key(r) <= frontier)]
    return merged[:limit], len(merged) > limit or bool(full)


def merge_entities(
    logstore: Sequence[t.Any],
    relational: Sequence[t.Any],
    cutover: datetime | None,
    *,
    key: Callable[[t.Any], t.Any] = row_key,
    reverse: bool = False,
) -> list[t.Any]:
    """All entities of a bounded read (one run's node executions), the by-id rule applied to each."""
    if not relational:
        return list(logstore)
    chosen = {str(r.id): r for r in relational if cutover is None or r.created_at < cutover}
    for row in logstore:
        if cutover is None or row.created_at >= cutover or str(row.id) not in chosen:
            chosen[str(row.id)] = row
    return sorted(chosen.values(), key=key, reverse=reverse)


def merge_groups(
    first: list[dict[str, t.Any]], second: list[dict[str, t.Any]], query: AggregateQuery
) -> list[dict[str, t.Any]]:
    """Aggregate rows of disjoint sets of entities, added group by group (counts and sums)."""
    if not second:
        return first
    names = [g.name for g in query.group_by]
    merged: dict[tuple[t.Any, ...], dict[str, t.Any]] = {}
    for row in [*first, *second]:
        key = tuple(row.get(n) for n in names)
        current = merged.setdefault(key, {**row, **{m.name: None for m in query.metrics}})
        for metric in query.metrics:
            a, b = current.get(metric.name), row.get(metric.name)
            if metric.function in ("count", "sum"):
                current[metric.name] = (a or 0) + (b or 0)
            elif metric.function in ("max", "min"):
                values = [v for v in (a, b) if v is not None]
                current[metric.name] = (max if metric.function == "max" else min)(values) if values else None
            else:
                raise ValueError(f"{metric.function} of two stores cannot be merged; group by the field instead")
    return [merged[k] for k in sorted(merged, key=lambda k: tuple((v is None, "" if v is None else v) for v in k))]
