"""The relational baseline of workflow app logs (Dify has no repository for them); see :mod:`.relational`."""

from __future__ import annotations

import contextlib
import typing as t
import uuid
from collections.abc import Sequence

import sqlalchemy as sa

from flask_difylogstore import conversions
from flask_difylogstore.dify.models import WorkflowAppLog, WorkflowRun
from flask_difylogstore.repositories._context import enum_value, naive_utc


class RelationalWorkflowAppLogRepository:
    """``workflow_app_logs`` with Dify's listing: status / keyword filters join ``workflow_runs``."""

    def __init__(self, session_maker: t.Any = None, **extra: t.Any) -> None:
        from flask_difylogstore.repositories.relational import resolve_session_factory

        self._session_factory = resolve_session_factory(session_maker)

    def save(self, app_log: t.Any) -> None:
        data = conversions.app_log_data(app_log)
        app_log.id, app_log.created_at = data["id"], data["created_at"]
        with self._session_factory() as session:
            session.merge(conversions.build_model(WorkflowAppLog, data))
            session.commit()

    def get_by_id(self, tenant_id: str, log_id: str) -> WorkflowAppLog | None:
        with self._session_factory() as session:
            return session.scalar(
                sa.select(WorkflowAppLog).where(WorkflowAppLog.tenant_id == tenant_id, WorkflowAppLog.id == log_id)
            )

    def get_by_workflow_run_id(self, tenant_id: str, workflow_run_id: str) -> WorkflowAppLog | None:
        with self._session_factory() as session:
            return session.scalar(
                sa.select(WorkflowAppLog)
                .where(
                    WorkflowAppLog.tenant_id == tenant_id,
                    WorkflowAppLog.workflow_run_id == workflow_run_id,
                )
                .order_by(WorkflowAppLog.created_at.desc(), WorkflowAppLog.id.desc())
                .limit(1)
            )

    def get_paginated_logs(
        self,
        tenant_id: str,
        app_id: str,
        *,
        keyword: str | None = None,
        status: str | None = None,
        created_at_before: t.Any = None,
        created_at_after: t.Any = None,
        created_from: str | None = None,
        created_by: str | Sequence[str] | None = None,
        page: int = 1,
        limit: int = 20,
    ) -> dict[str, t.Any]:
        stmt = sa.select(WorkflowAppLog).where(WorkflowAppLog.tenant_id == tenant_id, WorkflowAppLog.app_id == app_id)
        if keyword or status:
            stmt = stmt.join(WorkflowRun, WorkflowRun.id == WorkflowAppLog.workflow_run_id)
        if keyword:
            like = "%" + keyword[:30].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            conditions: list[sa.ColumnElement[bool]] = [
                WorkflowRun.inputs.ilike(like, escape="\\"),
                WorkflowRun.outputs.ilike(like, escape="\\"),
            ]
            with contextlib.suppress(ValueError):
                conditions.append(WorkflowRun.id == str(uuid.UUID(keyword)))
            stmt = stmt.where(sa.or_(*conditions))
        if status:
            stmt = stmt.where(WorkflowRun.status == enum_value(status))
        if created_from:
            stmt = stmt.where(WorkflowAppLog.created_from == enum_value(created_from))
        if created_by:
            stmt = stmt.where(
                WorkflowAppLog.created_by.in_([created_by] if isinstance(created_by, str) else list(created_by))
            )
        if created_at_after is not None:
            stmt = stmt.where(WorkflowAppLog.created_at >= naive_utc(created_at_after))
        if created_at_before is not None:
            stmt = stmt.where(WorkflowAppLog.created_at < naive_utc(created_at_before))
        skip = max(page - 1, 0) * limit
        with self._session_factory() as session:
            total = int(session.scalar(sa.select(sa.func.count()).select_from(stmt.subquery())) or 0)
            rows = list(
                session.scalars(
                    stmt.order_by(WorkflowAppLog.created_at.desc(), WorkflowAppLog.id.desc()).offset(skip).limit(limit)
                )
            )
        return {
            "page": page,
            "limit": limit,
            "total": total,
            "has_more": total > skip + len(rows),
            "data": rows,
        }

    def _delete(self, *conditions: t.Any) -> int:
        with self._session_factory() as session:
            result = session.execute(sa.delete(WorkflowAppLog).where(*conditions))
            session.commit()
            return int(getattr(result, "rowcount", 0) or 0)

    def delete_by_app(self, tenant_id: str, app_id: str) -> int:
        return self._delete(WorkflowAppLog.tenant_id == tenant_id, WorkflowAppLog.app_id == app_id)

    def delete_expired(self, tenant_id: str, before_date: t.Any) -> int:
        return self._delete(WorkflowAppLog.tenant_id == tenant_id, WorkflowAppLog.created_at < naive_utc(before_date))
