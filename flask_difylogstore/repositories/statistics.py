"""Run counts and the console's four daily charts, computed by the backend over the latest snapshots.

Days are calendar days of the run's creation time in the caller's time zone (Dify's SQL uses
``created_at AT TIME ZONE 'UTC' AT TIME ZONE :tz``); ``start_date`` / ``end_date`` bound the
creation time (inclusive / exclusive), as naive UTC.

With dual read on, both stores are aggregated and added group by group (each run counted once, see
:mod:`flask_difylogstore.repositories.dual_read`). Distinct creators per day are not additive across two
stores, so the charts are then built from runs and tokens per ``(day, creator)``.
"""

from __future__ import annotations

import dataclasses
import re
import typing as t
import zoneinfo
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from flask_difylogstore.backends.base import AggregateQuery, Filter, GroupBy, Metric, TimeRange
from flask_difylogstore.dify.entities import naive_utc_now
from flask_difylogstore.records import RecordKind
from flask_difylogstore.repositories._context import enum_value, naive_utc, scope
from flask_difylogstore.repositories._reads import Reader

if t.TYPE_CHECKING:
    from flask_difylogstore.repositories.dual_read import Merger

RUN_STATUS_KEYS = ("running", "succeeded", "failed", "stopped", "partial-succeeded")
_TIME_RANGE = re.compile(r"^\s*(\d+)\s*([dhms])\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def checked_timezone(name: str | None) -> str:
    """An IANA time-zone name the statistics can group by, or a ``ValueError`` naming ``timezone``.

    Checked here rather than by the backend: an unknown or hostile name must not reach a log store's
    query (SLS would fail with an OS error, Elasticsearch with a server error).
    """
    value = name or "UTC"
    if not isinstance(value, str) or len(value) > 64 or "\x00" in value:
        raise ValueError(f"timezone: {str(value)[:80]!r} is not a time-zone name")
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError, UnicodeError):
        raise ValueError(f"timezone: unknown time zone {value!r}") from None
    return value


def parse_time_range(value: str) -> timedelta:
    """Dify's ``time_range`` strings: ``7d``, ``4h``, ``30m``, ``30s``."""
    match = _TIME_RANGE.match(value or "")
    if not match:
        raise ValueError(f"invalid time range {value!r}: use e.g. 7d, 4h, 30m or 30s")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def triggered_from_filter(triggered_from: t.Any) -> Filter:
    """``eq`` for one trigger source, ``in`` for a sequence of them (str or enum members)."""
    if isinstance(triggered_from, str | bytes) or not isinstance(triggered_from, Sequence):
        return Filter("triggered_from", "eq", enum_value(triggered_from))
    return Filter("triggered_from", "in", [enum_value(v) for v in triggered_from])


def _from_creators(
    rows: list[dict[str, t.Any]], metrics: tuple[Metric, ...], keep_creators: bool
) -> list[dict[str, t.Any]]:
    """Rows per ``(date, created_by)`` with ``runs`` / ``token_count``, reshaped to what ``metrics`` asks."""
    if keep_creators:
        return rows
    days: dict[str, dict[str, t.Any]] = {}
    for row in rows:
        day = days.setdefault(str(row["date"]), {"date": row["date"], "runs": 0, "token_count": 0, "creators": set()})
        day["runs"] += int(row["runs"] or 0)
        day["token_count"] += int(row["token_count"] or 0)
        day["creators"].add(row.get("created_by"))
    result = []
    for day in (days[d] for d in sorted(days)):
        out = {"date": day["date"]}
        for metric in metrics:
            out[metric.name] = len(day["creators"]) if metric.function == "count_distinct" else day[metric.name]
        result.append(out)
    return result


class RunStatistics:
    """Counts and daily statistics of runs (mixed into the API run repository, which provides these two)."""

    _reader: Callable[[], Reader]
    _merger: Callable[[], Merger]

    def get_workflow_runs_count(
        self,
        tenant_id: str,
        app_id: str,
        triggered_from: t.Any,
        status: str | None = None,
        time_range: str | None = None,
    ) -> dict[str, int]:
        """Runs per status plus ``total``; ``time_range`` keeps runs created within it."""
        window = TimeRange(since=naive_utc_now() - parse_time_range(time_range)) if time_range else TimeRange()
        filters = [triggered_from_filter(triggered_from)]
        if status:
            filters.append(Filter("status", "eq", status))
        rows = self._merger().aggregate(
            AggregateQuery(
                RecordKind.RUN,
                scope(tenant_id, app_id),
                (Metric("count", alias="count"),),
                (GroupBy("status"),),
                tuple(filters),
                window,
            )
        )
        counts = {"total": 0, **dict.fromkeys(RUN_STATUS_KEYS, 0)}
        for row in rows:
            counts["total"] += int(row["count"])
            if row["status"] in counts:
                counts[str(row["status"])] = int(row["count"])
        return counts

    def _daily(
        self,
        tenant_id: str,
        app_id: str,
        triggered_from: t.Any,
        start_date: datetime | None,
        end_date: datetime | None,
        timezone: str,
        metrics: tuple[Metric, ...],
        extra_group: tuple[GroupBy, ...] = (),
    ) -> list[dict[str, t.Any]]:
        query = AggregateQuery(
            RecordKind.RUN,
            scope(tenant_id, app_id),
            metrics,
            (GroupBy("created_at", day_in_timezone=checked_timezone(timezone), alias="date"), *extra_group),
            (triggered_from_filter(triggered_from),),
            TimeRange(naive_utc(start_date), naive_utc(end_date)),
        )
        merger = self._merger()
        if merger.sessions is None:
            return merger.reader.aggregate(query)
        per_creator = dataclasses.replace(
            query,
            metrics=(Metric("count", alias="runs"), Metric("sum", "total_tokens", alias="token_count")),
            group_by=(query.group_by[0], GroupBy("created_by")),
        )
        return _from_creators(merger.aggregate(per_creator), metrics, bool(extra_group))

    def get_daily_runs_statistics(
        self,
        tenant_id: str,
        app_id: str,
        triggered_from: t.Any,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        timezone: str = "UTC",
    ) -> list[dict[str, t.Any]]:
        """``[{"date": "YYYY-MM-DD", "runs": n}]``."""
        rows = self._daily(
            tenant_id,
            app_id,
            triggered_from,
            start_date,
            end_date,
            timezone,
            (Metric("count", alias="runs"),),
        )
        return [{"date": r["date"], "runs": int(r["runs"])} for r in rows]

    def get_daily_terminals_statistics(
        self,
        tenant_id: str,
        app_id: str,
        triggered_from: t.Any,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        timezone: str = "UTC",
    ) -> list[dict[str, t.Any]]:
        """``[{"date", "terminal_count"}]``: distinct creators per day."""
        rows = self._daily(
            tenant_id,
            app_id,
            triggered_from,
            start_date,
            end_date,
            timezone,
            (Metric("count_distinct", "created_by", alias="terminal_count"),),
        )
        return [{"date": r["date"], "terminal_count": int(r["terminal_count"])} for r in rows]

    def get_daily_token_cost_statistics(
        self,
        tenant_id: str,
        app_id: str,
        triggered_from: t.Any,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        timezone: str = "UTC",
    ) -> list[dict[str, t.Any]]:
        """``[{"date", "token_count"}]``: sum of ``total_tokens`` per day."""
        rows = self._daily(
            tenant_id,
            app_id,
            triggered_from,
            start_date,
            end_date,
            timezone,
            (Metric("sum", "total_tokens", alias="token_count"),),
        )
        return [{"date": r["date"], "token_count": int(r["token_count"] or 0)} for r in rows]

    def get_average_app_interaction_statistics(
        self,
        tenant_id: str,
        app_id: str,
        triggered_from: t.Any,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        timezone: str = "UTC",
    ) -> list[dict[str, t.Any]]:
        """``[{"date", "interactions"}]``: runs per creator, averaged per day (2 decimals)."""
        rows = self._daily(
            tenant_id,
            app_id,
            triggered_from,
            start_date,
            end_date,
            timezone,
            (Metric("count", alias="runs"),),
            (GroupBy("created_by"),),
        )
        per_day: dict[str, list[int]] = {}
        for row in rows:
            per_day.setdefault(str(row["date"]), []).append(int(row["runs"]))
        return [{"date": day, "interactions": round(sum(v) / len(v), 2)} for day, v in sorted(per_day.items())]
