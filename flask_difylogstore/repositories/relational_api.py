"""The relational baseline of Dify's two API repositories (runs, node executions); see :mod:`.relational`."""

from __future__ import annotations

import typing as t
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from flask_difylogstore.backends.evaluate import day_in_timezone
from flask_difylogstore.dify import compat
from flask_difylogstore.dify.entities import naive_utc_now
from flask_difylogstore.dify.models import (
    WorkflowAppLog,
    WorkflowRun,
)
from flask_difylogstore.repositories._context import enum_value, naive_utc
from flask_difylogstore.repositories.relational_retention import RelationalRunRetention
from flask_difylogstore.repositories.statistics import RUN_STATUS_KEYS, parse_time_range


def _triggered(triggered_from: t.Any) -> t.Any:
    if isinstance(triggered_from, str) or not isinstance(triggered_from, Sequence):
        return WorkflowRun.triggered_from == enum_value(triggered_from)
    return WorkflowRun.triggered_from.in_([enum_value(v) for v in triggered_from])


def _daily_value(metric: str, runs: list[tuple[str, int]]) -> int | float:
    """A statistic of one day's ``(created_by, total_tokens)`` pairs."""
    if metric == "runs":
        return len(runs)
    if metric == "terminal_count":
        return len({creator for creator, _ in runs})
    if metric == "token_count":
        return sum(tokens for _, tokens in runs)
    per_user: dict[str, int] = {}
    for creator, _ in runs:
        per_user[creator] = per_user.get(creator, 0) + 1
    return round(len(runs) / len(per_user), 2)


def _daily_sql(
    session: Session, metric: str, where: list[sa.ColumnElement[bool]], timezone: str
) -> list[dict[str, t.Any]]:
    """A daily statistic computed by PostgreSQL (GROUP BY the creation day in ``timezone``)."""
    day = sa.cast(sa.func.timezone(timezone, sa.func.timezone("UTC", WorkflowRun.created_at)), sa.Date).label("day")
    if metric == "interactions":
        per_user = (
            sa.select(day, WorkflowRun.created_by, sa.func.count(WorkflowRun.id).label("n"))
            .where(*where)
            .group_by(day, WorkflowRun.created_by)
            .subquery()
        )
        stmt = sa.select(per_user.c.day, sa.func.avg(per_user.c.n)).group_by(per_user.c.day).order_by(per_user.c.day)
        return [{"date": str(d), "interactions": round(float(v), 2)} for d, v in session.execute(stmt).all()]
    value = {
        "runs": sa.func.count(WorkflowRun.id),
        "terminal_count": sa.func.count(sa.distinct(WorkflowRun.created_by)),
        "token_count": sa.func.coalesce(sa.func.sum(WorkflowRun.total_tokens), 0),
    }[metric]
    stmt = sa.select(day, value).where(*where).group_by(day).order_by(day)
    return [{"date": str(d), metric: int(v)} for d, v in session.execute(stmt).all()]


class RelationalAPIWorkflowRunRepository(RelationalRunRetention):
    """Dify's ``DifyAPISQLAlchemyWorkflowRunRepository`` over the package's models."""

    def get_paginated_workflow_runs(
        self,
        tenant_id: str,
        app_id: str,
        triggered_from: t.Any,
        limit: int = 20,
        last_id: str | None = None,
        status: str | None = None,
    ) -> t.Any:
        stmt = sa.select(WorkflowRun).where(
            WorkflowRun.tenant_id == tenant_id, WorkflowRun.app_id == app_id, _triggered(triggered_from)
        )
        if status:
            stmt = stmt.where(WorkflowRun.status == status)
        if last_id:
            last = self.get_workflow_run_by_id(tenant_id, app_id, last_id)
            if last is None:
                raise ValueError("Last workflow run not exists")
            stmt = stmt.where(
                sa.or_(
                    WorkflowRun.created_at < last.created_at,
                    sa.and_(WorkflowRun.created_at == last.created_at, WorkflowRun.id < last.id),
                )
            )
        rows = self._scalars(stmt.order_by(WorkflowRun.created_at.desc(), WorkflowRun.id.desc()).limit(limit + 1))
        return compat.InfiniteScrollPagination(data=rows[:limit], limit=limit, has_more=len(rows) > limit)

    def get_workflow_run_by_id(self, tenant_id: str, app_id: str, run_id: str) -> WorkflowRun | None:
        rows = self._scalars(
            sa.select(WorkflowRun).where(
                WorkflowRun.tenant_id == tenant_id, WorkflowRun.app_id == app_id, WorkflowRun.id == run_id
            )
        )
        return rows[0] if rows else None

    def get_workflow_run_by_id_without_tenant(self, run_id: str) -> WorkflowRun | None:
        rows = self._scalars(sa.select(WorkflowRun).where(WorkflowRun.id == run_id))
        return rows[0] if rows else None

    def get_workflow_runs_count(
        self,
        tenant_id: str,
        app_id: str,
        triggered_from: t.Any,
        status: str | None = None,
        time_range: str | None = None,
    ) -> dict[str, int]:
        stmt = sa.select(WorkflowRun.status, sa.func.count(WorkflowRun.id)).where(
            WorkflowRun.tenant_id == tenant_id, WorkflowRun.app_id == app_id, _triggered(triggered_from)
        )
        if time_range:
            stmt = stmt.where(WorkflowRun.created_at >= naive_utc_now() - parse_time_range(time_range))
        if status:
            stmt = stmt.where(WorkflowRun.status == status)
        counts = {"total": 0, **dict.fromkeys(RUN_STATUS_KEYS, 0)}
        with self._session_factory() as session:
            for run_status, count in session.execute(stmt.group_by(WorkflowRun.status)):
                counts["total"] += int(count)
                if run_status in counts:
                    counts[run_status] = int(count)
        return counts

    def _daily(
        self,
        metric: str,
        tenant_id: str,
        app_id: str,
        triggered_from: t.Any,
        start_date: datetime | None,
        end_date: datetime | None,
        timezone: str,
    ) -> list[dict[str, t.Any]]:
        """One daily statistic, grouped by the run's creation day in ``timezone``.

        On PostgreSQL the database groups, with the statement Dify's SQL repository uses
        (``created_at AT TIME ZONE 'UTC' AT TIME ZONE :tz``); other databases (SQLite in the demo)
        have no time zones, so their rows are grouped here.
        """
        where = [WorkflowRun.tenant_id == tenant_id, WorkflowRun.app_id == app_id, _triggered(triggered_from)]
        if start_date is not None:
            where.append(WorkflowRun.created_at >= naive_utc(start_date))
        if end_date is not None:
            where.append(WorkflowRun.created_at < naive_utc(end_date))
        with self._session_factory() as session:
            if session.get_bind().dialect.name == "postgresql":
                return _daily_sql(session, metric, where, timezone)
            rows = session.execute(
                sa.select(WorkflowRun.created_at, WorkflowRun.created_by, WorkflowRun.total_tokens).where(*where)
            ).all()
        days: dict[str, list[tuple[str, int]]] = {}
        for created_at, creator, tokens in rows:
            days.setdefault(day_in_timezone(created_at, timezone), []).append((str(creator), int(tokens or 0)))
        return [{"date": day, metric: _daily_value(metric, runs)} for day, runs in sorted(days.items())]

    def get_daily_runs_statistics(
        self,
        tenant_id: str,
        app_id: str,
        triggered_from: t.Any,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        timezone: str = "UTC",
    ) -> list[dict[str, t.Any]]:
        return self._daily("runs", tenant_id, app_id, triggered_from, start_date, end_date, timezone)

    def get_daily_terminals_statistics(
        self,
        tenant_id: str,
        app_id: str,
        triggered_from: t.Any,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        timezone: str = "UTC",
    ) -> list[dict[str, t.Any]]:
        return self._daily("terminal_count", tenant_id, app_id, triggered_from, start_date, end_date, timezone)

    def get_daily_token_cost_statistics(
        self,
        tenant_id: str,
        app_id: str,
        triggered_from: t.Any,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        timezone: str = "UTC",
    ) -> list[dict[str, t.Any]]:
        return self._daily("token_count", tenant_id, app_id, triggered_from, start_date, end_date, timezone)

    def get_average_app_interaction_statistics(
        self,
        tenant_id: str,
        app_id: str,
        triggered_from: t.Any,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        timezone: str = "UTC",
    ) -> list[dict[str, t.Any]]:
        return self._daily("interactions", tenant_id, app_id, triggered_from, start_date, end_date, timezone)

    def get_workflow_run_by_id_and_tenant_id(self, tenant_id: str, run_id: str) -> WorkflowRun | None:
        rows = self._scalars(sa.select(WorkflowRun).where(WorkflowRun.tenant_id == tenant_id, WorkflowRun.id == run_id))
        return rows[0] if rows else None

    def get_message_refs(self, *, app_id: str, workflow_run_ids: Sequence[str]) -> dict[str, t.Any]:
        """No ``messages`` table exists outside Dify, so no run answered a chat message."""
        return {}

    def get_pause_record(self, *, workspace_id: str, workflow_run_id: str) -> t.Any:
        """Pauses exist only in Dify's schema (``create_workflow_pause`` refuses outside Dify): none."""
        return None

    def get_workflow_pause(self, workflow_run_id: str) -> t.Any:
        """Pauses exist only in Dify's schema: none."""
        return None

    def get_app_logs_by_run_id(self, session: Session, run_id: str) -> Sequence[WorkflowAppLog]:
        return list(session.scalars(sa.select(WorkflowAppLog).where(WorkflowAppLog.workflow_run_id == run_id)))

    def _needs_dify(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        raise NotImplementedError("pause and archive tables exist only in Dify's own schema; run inside Dify")

    create_workflow_pause = resume_workflow_pause = delete_workflow_pause = prune_pauses = _needs_dify
    get_pause_records_by_run_id = get_pause_reason_records_by_run_id = _needs_dify
    get_archived_run_ids = get_archived_logs_by_time_range = get_archived_log_by_run_id = _needs_dify
    delete_archive_log_by_run_id = get_archived_runs_by_time_range = create_archive_logs = _needs_dify
