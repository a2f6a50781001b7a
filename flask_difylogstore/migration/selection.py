"""Which rows a job works on: tenant, app and a ``created_at`` window given as operators think of it.

``--since`` / ``--until`` are whole UTC days with both ends inclusive (``--until 2026-01-31``
includes all of January 31), or ISO datetimes (naive = UTC, offsets converted). Internally the
window is ``since <= created_at < until``, the form every query and the log store's time range use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from flask_difylogstore.errors import DifyLogStoreError


def _parse_moment(text: str, *, end: bool) -> datetime:
    """A date (whole UTC day) or an ISO datetime (naive = UTC) as a naive-UTC bound.

    For ``end`` the result is exclusive: the day after a date, or one microsecond (the precision
    of PostgreSQL timestamps) after a datetime, so ``--until`` is inclusive either way.
    """
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = datetime(day.year, day.month, day.day)
            return start + timedelta(days=1) if end else start
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise DifyLogStoreError(
            f"cannot read {text!r} as a date: use YYYY-MM-DD (a whole UTC day) or an ISO datetime"
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment + timedelta(microseconds=1) if end else moment


@dataclass(frozen=True)
class Window:
    """Bounds on ``created_at`` (naive UTC): ``since`` inclusive, ``until`` exclusive."""

    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def parse(cls, since: str | None, until: str | None) -> Window:
        """From ``--since`` / ``--until`` text; both bounds inclusive for the operator."""
        window = cls(
            _parse_moment(since, end=False) if since else None,
            _parse_moment(until, end=True) if until else None,
        )
        if window.since and window.until and window.since >= window.until:
            raise DifyLogStoreError(f"--since {since} is not before --until {until}")
        return window


@dataclass(frozen=True)
class Selection:
    """Which rows a command works on: optional tenant, app and created_at window."""

    tenant_id: str | None = None
    app_id: str | None = None
    window: Window = field(default_factory=Window)

    def key(self) -> str:
        """A canonical text naming the selection (part of checkpoint names)."""
        parts = [
            f"tenant={self.tenant_id or '*'}",
            f"app={self.app_id or '*'}",
            f"since={self.window.since.isoformat() if self.window.since else '*'}",
            f"until={self.window.until.isoformat() if self.window.until else '*'}",
        ]
        return ",".join(parts)

    def where(self, table: sa.FromClause) -> list[sa.ColumnElement[bool]]:
        clauses: list[sa.ColumnElement[bool]] = []
        if self.tenant_id:
            clauses.append(table.c.tenant_id == self.tenant_id)
        if self.app_id:
            clauses.append(table.c.app_id == self.app_id)
        if self.window.since is not None:
            clauses.append(table.c.created_at >= self.window.since)
        if self.window.until is not None:
            clauses.append(table.c.created_at < self.window.until)
        return clauses

    def to_dict(self) -> dict[str, str | None]:
        return {
            "tenant_id": self.tenant_id,
            "app_id": self.app_id,
            "since": self.window.since.isoformat() if self.window.since else None,
            "until_exclusive": self.window.until.isoformat() if self.window.until else None,
        }
