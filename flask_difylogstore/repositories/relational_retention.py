"""The relational baseline's retention half of the API run repository: Dify's SQL for clean-up scans and deletes.

Scans follow :mod:`.run_selection` (the same filters as the log store, applied in SQL the way Dify's
own repository applies them); deletes remove runs with their node executions, offloads and app logs
in one transaction.
"""

from __future__ import annotations

import typing as t
from collections.abc import Callable, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from flask_difylogstore.dify import compat
from flask_difylogstore.dify.models import (
    WorkflowAppLog,
    WorkflowNodeExecutionModel,
    WorkflowNodeExecutionOffload,
    WorkflowRun,
)
from flask_difylogstore.records import FINAL_RUN_STATUSES
from flask_difylogstore.repositories._context import naive_utc
from flask_difylogstore.repositories.relational import SessionRepository
from flask_difylogstore.repositories.run_selection import RunSelection


class RelationalRunRetention(SessionRepository):
    """Retention scans and deletes of runs over the package's models."""

    def get_expired_runs_batch(
        self, tenant_id: str, before_date: datetime, batch_size: int = 1000
    ) -> Sequence[WorkflowRun]:
        return self._scalars(
            sa.select(WorkflowRun)
            .where(
                WorkflowRun.tenant_id == tenant_id,
                WorkflowRun.created_at < naive_utc(before_date),
            )
            .order_by(WorkflowRun.created_at.asc(), WorkflowRun.id.asc())
            .limit(batch_size)
        )

    def _select_runs(self, selection: RunSelection, last_seen: tuple[datetime, str] | None, batch_size: int) -> t.Any:
        """Dify's SQL for a retention scan (see :mod:`.run_selection` for each filter's meaning)."""
        stmt = sa.select(WorkflowRun).where(
            WorkflowRun.created_at < selection.end_before, WorkflowRun.status.in_(sorted(FINAL_RUN_STATUSES))
        )
        if selection.start_from is not None:
            stmt = stmt.where(WorkflowRun.created_at >= selection.start_from)
        if selection.run_types:
            stmt = stmt.where(WorkflowRun.type.in_(selection.run_types))
        if selection.tenant_ids:
            stmt = stmt.where(WorkflowRun.tenant_id.in_(selection.tenant_ids))
        if selection.workflow_ids:
            stmt = stmt.where(WorkflowRun.workflow_id.in_(selection.workflow_ids))
        if selection.tenant_prefixes:
            stmt = stmt.where(sa.or_(*(WorkflowRun.tenant_id.startswith(p) for p in selection.tenant_prefixes)))
        if selection.shard is not None:
            index, total = selection.shard
            normalized = sa.func.lower(sa.func.replace(sa.cast(WorkflowRun.id, sa.String()), "-", ""))
            last_hex = sa.func.substr(normalized, sa.func.length(normalized), 1)
            value = sa.case(*[(last_hex == format(v, "x"), v) for v in range(16)], else_=0)
            stmt = stmt.where(value % total == index)
        for bound, op in ((last_seen, "after"), (selection.upper_bound, "upto")):
            if bound is None:
                continue
            at, id_ = naive_utc(bound[0]), str(bound[1])
            if op == "after":
                stmt = stmt.where(
                    sa.or_(WorkflowRun.created_at > at, sa.and_(WorkflowRun.created_at == at, WorkflowRun.id > id_))
                )
            else:
                stmt = stmt.where(
                    sa.or_(WorkflowRun.created_at < at, sa.and_(WorkflowRun.created_at == at, WorkflowRun.id <= id_))
                )
        return stmt.order_by(WorkflowRun.created_at.asc(), WorkflowRun.id.asc()).limit(batch_size)

    def get_runs_batch_by_time_range(
        self,
        start_from: datetime | None,
        end_before: datetime,
        last_seen: tuple[datetime, str] | None,
        batch_size: int,
        run_types: Sequence[t.Any] | None = None,
        tenant_ids: Sequence[str] | None = None,
        tenant_prefixes: Sequence[str] | None = None,
        workflow_ids: Sequence[str] | None = None,
        run_shard_index: int | None = None,
        run_shard_total: int | None = None,
    ) -> Sequence[WorkflowRun]:
        selection = RunSelection.of(
            start_from,
            end_before,
            run_types=run_types,
            tenant_ids=tenant_ids,
            tenant_prefixes=tenant_prefixes,
            workflow_ids=workflow_ids,
            run_shard_index=run_shard_index,
            run_shard_total=run_shard_total,
        )
        if selection.selects_nothing:
            return []
        return self._scalars(self._select_runs(selection, last_seen, batch_size))

    def get_cleanup_refs_batch_by_time_range(
        self,
        start_from: datetime | None,
        end_before: datetime,
        last_seen: tuple[datetime, str] | None,
        batch_size: int,
        run_types: Sequence[t.Any] | None = None,
        tenant_ids: Sequence[str] | None = None,
        workflow_ids: Sequence[str] | None = None,
        upper_bound: tuple[datetime, str] | None = None,
    ) -> Sequence[t.Any]:
        selection = RunSelection.of(
            start_from,
            end_before,
            run_types=run_types,
            tenant_ids=tenant_ids,
            workflow_ids=workflow_ids,
            upper_bound=upper_bound,
        )
        if selection.selects_nothing:
            return []
        ref = compat.cleanup_ref_class()
        rows = self._scalars(self._select_runs(selection, last_seen, batch_size))
        return [ref(id=str(r.id), tenant_id=str(r.tenant_id), created_at=r.created_at) for r in rows]

    def delete_runs_by_ids(self, run_ids: Sequence[str]) -> int:
        return self._delete(WorkflowRun, WorkflowRun.id.in_(list(run_ids))) if run_ids else 0

    def delete_runs_by_app(self, tenant_id: str, app_id: str, batch_size: int = 1000) -> int:
        return self._delete(WorkflowRun, WorkflowRun.tenant_id == tenant_id, WorkflowRun.app_id == app_id)

    def _related(self, session: Session, run_ids: list[str], delete: bool) -> dict[str, int]:
        node_ids = sa.select(WorkflowNodeExecutionModel.id).where(
            WorkflowNodeExecutionModel.workflow_run_id.in_(run_ids)
        )
        targets = [
            (
                "offloads",
                WorkflowNodeExecutionOffload,
                WorkflowNodeExecutionOffload.node_execution_id.in_(node_ids),
            ),
            (
                "node_executions",
                WorkflowNodeExecutionModel,
                WorkflowNodeExecutionModel.workflow_run_id.in_(run_ids),
            ),
            ("app_logs", WorkflowAppLog, WorkflowAppLog.workflow_run_id.in_(run_ids)),
            ("runs", WorkflowRun, WorkflowRun.id.in_(run_ids)),
        ]
        counts = {"trigger_logs": 0, "pauses": 0, "pause_reasons": 0}
        for name, model, condition in targets:
            if delete:
                counts[name] = int(getattr(session.execute(sa.delete(model).where(condition)), "rowcount", 0) or 0)
            else:
                counts[name] = int(session.scalar(sa.select(sa.func.count()).select_from(model).where(condition)) or 0)
        return counts

    def count_runs_with_related(
        self,
        runs: Sequence[t.Any],
        count_node_executions: Callable[..., tuple[int, int]] | None = None,
        count_trigger_logs: Callable[..., int] | None = None,
    ) -> dict[str, int]:
        return self.count_runs_with_related_by_ids([str(r.id) for r in runs])

    def count_runs_with_related_by_ids(
        self,
        run_ids: Sequence[str],
        count_node_executions: Callable[..., tuple[int, int]] | None = None,
        count_trigger_logs: Callable[..., int] | None = None,
    ) -> dict[str, int]:
        with self._session_factory() as session:
            counts = self._related(session, [str(i) for i in run_ids], delete=False)
            if count_trigger_logs is not None:
                counts["trigger_logs"] = int(count_trigger_logs(session, [str(i) for i in run_ids]) or 0)
            return counts

    def delete_runs_with_related(
        self,
        runs: Sequence[t.Any],
        delete_node_executions: Callable[..., tuple[int, int]] | None = None,
        delete_trigger_logs: Callable[..., int] | None = None,
    ) -> dict[str, int]:
        return self.delete_runs_with_related_by_ids([str(r.id) for r in runs], None, delete_trigger_logs)

    def delete_runs_with_related_by_ids(
        self,
        run_ids: Sequence[str],
        delete_node_executions: Callable[..., tuple[int, int]] | None = None,
        delete_trigger_logs: Callable[..., int] | None = None,
    ) -> dict[str, int]:
        run_ids = [str(i) for i in run_ids]
        with self._session_factory() as session:
            counts = self._related(session, run_ids, delete=True)
            if delete_trigger_logs is not None:
                counts["trigger_logs"] = int(delete_trigger_logs(session, run_ids) or 0)
            session.commit()
        return counts
