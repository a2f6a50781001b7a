"""The relational baseline of Dify's API node-execution repository; see :mod:`.relational`."""

from __future__ import annotations

import typing as t
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from flask_difylogstore import payloads
from flask_difylogstore.dify import compat
from flask_difylogstore.dify.enums import WorkflowNodeExecutionStatus
from flask_difylogstore.dify.models import WorkflowNodeExecutionModel, WorkflowNodeExecutionOffload
from flask_difylogstore.repositories._context import enum_value, naive_utc
from flask_difylogstore.repositories.relational import SessionRepository, default_storage

#: Dify's ``WorkflowNodeExecutionTriggeredFrom.WORKFLOW_TOOL``: a node run as a tool of another workflow.
WORKFLOW_TOOL = "workflow-tool"


def _with_offloads(stmt: t.Any) -> t.Any:
    return stmt.options(selectinload(WorkflowNodeExecutionModel.offload_data))


class RelationalAPIWorkflowNodeExecutionRepository(SessionRepository):
    """Dify's ``DifyAPISQLAlchemyWorkflowNodeExecutionRepository`` over the package's models."""

    _model = WorkflowNodeExecutionModel

    def get_node_last_execution(self, tenant_id: str, app_id: str, workflow_id: str, node_id: str) -> t.Any:
        m = self._model
        rows = self._scalars(
            _with_offloads(sa.select(m))
            .where(
                m.tenant_id == tenant_id,
                m.app_id == app_id,
                m.workflow_id == workflow_id,
                m.node_id == node_id,
                m.status != WorkflowNodeExecutionStatus.PAUSED.value,
                m.triggered_from != WORKFLOW_TOOL,
            )
            .order_by(m.created_at.desc(), m.id.desc())
            .limit(1)
        )
        return rows[0] if rows else None

    def get_executions_by_workflow_run(self, tenant_id: str, app_id: str, workflow_run_id: str) -> Sequence[t.Any]:
        m = self._model
        return self._scalars(
            _with_offloads(sa.select(m))
            .where(
                m.tenant_id == tenant_id,
                m.app_id == app_id,
                m.workflow_run_id == workflow_run_id,
            )
            .order_by(m.created_at.asc(), m.id.asc())
        )

    def get_execution_snapshots_by_workflow_run(
        self, tenant_id: str, app_id: str, workflow_id: str, triggered_from: str, workflow_run_id: str
    ) -> Sequence[t.Any]:
        """Minimal snapshots of a run's node executions, ``created_at`` ascending (S4)."""
        m = self._model
        rows = self._scalars(
            sa.select(m)
            .where(
                m.tenant_id == tenant_id,
                m.app_id == app_id,
                m.workflow_id == workflow_id,
                m.triggered_from == str(enum_value(triggered_from)),
                m.workflow_run_id == workflow_run_id,
            )
            .order_by(m.created_at.asc(), m.id.asc())
        )
        snapshot = compat.node_snapshot_class()
        result = []
        for row in rows:
            metadata = payloads.loads(row.execution_metadata)
            extra = metadata if isinstance(metadata, dict) else {}
            result.append(
                snapshot(
                    execution_id=str(row.node_execution_id or row.id),
                    node_id=row.node_id,
                    node_type=str(row.node_type),
                    title=row.title,
                    index=row.index,
                    status=str(row.status),
                    elapsed_time=float(row.elapsed_time or 0.0),
                    created_at=row.created_at,
                    finished_at=row.finished_at,
                    iteration_id=extra.get("iteration_id"),
                    loop_id=extra.get("loop_id"),
                )
            )
        return result

    def load_full_process_data(self, execution: t.Any, storage: t.Any = None) -> t.Any:
        """The full ``process_data`` of a row: its offloaded file when truncated, else the column (S4)."""
        o = WorkflowNodeExecutionOffload
        rows = self._scalars(
            sa.select(o)
            .options(selectinload(o.file))
            .where(o.node_execution_id == str(execution.id), o.type_ == "process_data")
        )
        for offload in rows:
            if offload.file is not None:
                store = storage if storage is not None else default_storage()
                return payloads.loads(store.load(offload.file.key).decode("utf-8"))
        return payloads.loads(execution.process_data)

    def get_execution_by_id(self, execution_id: str, tenant_id: str | None = None) -> t.Any:
        m = self._model
        stmt = _with_offloads(sa.select(m)).where(m.id == execution_id)
        if tenant_id:
            stmt = stmt.where(m.tenant_id == tenant_id)
        rows = self._scalars(stmt)
        return rows[0] if rows else None

    def get_expired_executions_batch(
        self, tenant_id: str, before_date: datetime, batch_size: int = 1000
    ) -> Sequence[t.Any]:
        m = self._model
        return self._scalars(
            _with_offloads(sa.select(m))
            .where(
                m.tenant_id == tenant_id,
                m.created_at < naive_utc(before_date),
            )
            .order_by(m.created_at.asc(), m.id.asc())
            .limit(batch_size)
        )

    def _delete_nodes(self, condition: t.Any) -> int:
        m = self._model
        with self._session_factory() as session:
            ids = sa.select(m.id).where(condition)
            session.execute(
                sa.delete(WorkflowNodeExecutionOffload).where(WorkflowNodeExecutionOffload.node_execution_id.in_(ids))
            )
            result = session.execute(sa.delete(m).where(condition))
            session.commit()
            return int(getattr(result, "rowcount", 0) or 0)

    def delete_expired_executions(self, tenant_id: str, before_date: datetime, batch_size: int = 1000) -> int:
        m = self._model
        return self._delete_nodes(sa.and_(m.tenant_id == tenant_id, m.created_at < naive_utc(before_date)))

    def delete_executions_by_app(self, tenant_id: str, app_id: str, batch_size: int = 1000) -> int:
        return self._delete_nodes(sa.and_(self._model.tenant_id == tenant_id, self._model.app_id == app_id))

    def delete_executions_by_ids(self, execution_ids: Sequence[str]) -> int:
        return self._delete_nodes(self._model.id.in_(list(execution_ids))) if execution_ids else 0

    def count_by_runs(self, session: Session, run_ids: Sequence[str]) -> tuple[int, int]:
        m = self._model
        nodes = int(
            session.scalar(sa.select(sa.func.count()).select_from(m).where(m.workflow_run_id.in_(list(run_ids)))) or 0
        )
        offloads = int(
            session.scalar(
                sa.select(sa.func.count())
                .select_from(WorkflowNodeExecutionOffload)
                .where(
                    WorkflowNodeExecutionOffload.node_execution_id.in_(
                        sa.select(m.id).where(m.workflow_run_id.in_(list(run_ids)))
                    )
                )
            )
            or 0
        )
        return nodes, offloads

    def delete_by_runs(self, session: Session, run_ids: Sequence[str]) -> tuple[int, int]:
        m = self._model
        ids = sa.select(m.id).where(m.workflow_run_id.in_(list(run_ids)))
        offloads = session.execute(
            sa.delete(WorkflowNodeExecutionOffload).where(WorkflowNodeExecutionOffload.node_execution_id.in_(ids))
        )
        nodes = session.execute(sa.delete(m).where(m.workflow_run_id.in_(list(run_ids))))
        return int(getattr(nodes, "rowcount", 0) or 0), int(getattr(offloads, "rowcount", 0) or 0)

    def get_offloads_by_execution_ids(
        self, session: Session, node_execution_ids: Sequence[str]
    ) -> Sequence[WorkflowNodeExecutionOffload]:
        return list(
            session.scalars(
                sa.select(WorkflowNodeExecutionOffload).where(
                    WorkflowNodeExecutionOffload.node_execution_id.in_(list(node_execution_ids))
                )
            )
        )
