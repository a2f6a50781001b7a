"""Index names: one family per record kind, time-partitioned by the entity's creation time.

Every snapshot of an entity goes to the partition of its ``created_at`` (an owner field that never
changes), so external versioning sees all versions of one entity in one index and retention can
drop whole indices. Indices are shared by all tenants: per-tenant indices multiply shard counts by
the number of tenants for no isolation gain, since every query is tenant-scoped anyway.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask_difylogstore.backends.base import TimeRange
from flask_difylogstore.records import RecordKind

Period = t.Literal["day", "week", "month"]

#: Above this many partitions a read uses the family's wildcard instead of a list of names.
MAX_NAMED_PARTITIONS = 64


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


@dataclass(frozen=True)
class IndexLayout:
    """Names of the indices, templates and lifecycle policy under one prefix."""

    prefix: str
    period: Period = "month"

    # ---- names ----------------------------------------------------------------------------------
    def family(self, kind: RecordKind) -> str:
        """``<prefix>-<kind>``: the template name and the stem of every index of ``kind``."""
        return f"{self.prefix}-{kind.value}"

    def pattern(self, kind: RecordKind) -> str:
        return f"{self.family(kind)}-*"

    @property
    def policy_name(self) -> str:
        return f"{self.prefix}-workflow-logs"

    def kind_of(self, index: str) -> RecordKind | None:
        """The record kind an index name belongs to (``None`` for foreign indices)."""
        for kind in RecordKind:
            if index.startswith(self.family(kind) + "-"):
                return kind
        return None

    # ---- partitions -----------------------------------------------------------------------------
    def partition_start(self, moment: datetime) -> datetime:
        moment = _naive(moment)
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        if self.period == "day":
            return day
        if self.period == "week":
            return day - timedelta(days=day.weekday())
        return day.replace(day=1)

    def partition_end(self, moment: datetime) -> datetime:
        """The first instant after the partition holding ``moment``."""
        start = self.partition_start(moment)
        if self.period == "day":
            return start + timedelta(days=1)
        if self.period == "week":
            return start + timedelta(days=7)
        return (start + timedelta(days=32)).replace(day=1)

    def suffix(self, moment: datetime) -> str:
        start = self.partition_start(moment)
        if self.period == "day":
            return start.strftime("%Y.%m.%d")
        if self.period == "week":
            year, week, _ = start.isocalendar()
            return f"{year:04d}.w{week:02d}"
        return start.strftime("%Y.%m")

    def index_for(self, kind: RecordKind, created_at: datetime) -> str:
        """The index that holds every snapshot of an entity created at ``created_at``."""
        return f"{self.family(kind)}-{self.suffix(created_at)}"

    def partitions(self, kind: RecordKind, since: datetime, until: datetime) -> list[str]:
        """Index names covering ``[since, until)``, oldest first."""
        names: list[str] = []
        cursor = self.partition_start(since)
        last = _naive(until) - timedelta(microseconds=1)
        while cursor <= last:
            names.append(self.index_for(kind, cursor))
            cursor = self.partition_end(cursor)
        return names

    def read_target(self, kind: RecordKind, time_range: TimeRange | None) -> str:
        """What a read searches: the partitions a bounded range covers, else the whole family.

        Missing partitions are expected (nothing was written then), so callers search with
        ``ignore_unavailable``.
        """
        if time_range is None or time_range.since is None or time_range.until is None:
            return self.pattern(kind)
        if _naive(time_range.until) <= _naive(time_range.since):
            return self.index_for(kind, time_range.since)
        names = self.partitions(kind, time_range.since, time_range.until)
        if not names or len(names) > MAX_NAMED_PARTITIONS:
            return self.pattern(kind)
        return ",".join(names)
