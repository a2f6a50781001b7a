"""The relational baseline of Dify's API node-execution repository; see :mod:`.relational`."""

from __future__ import annotations

import typing as t
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from flask_difylogstore.dify.models import WorkflowNodeExecutionModel, WorkflowNodeExecutionOffload
from flask_difylogstore.repositories.relational import SessionRepository
from flask_difylogstore.repositories.statistics import naive_utc


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
