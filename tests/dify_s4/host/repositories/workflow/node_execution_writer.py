"""``SQLAlchemyWorkflowNodeExecutionRepository`` of the newest Dify line: keyword-only ``upload_file``.

Node executions in ``workflow_node_executions`` (the package's relational writer underneath); a
node id owned by another tenant or app is refused.
"""

from __future__ import annotations

import typing as t

from models.workflow import WorkflowNodeExecutionModel

from flask_difylogstore.repositories.relational import RelationalWorkflowNodeExecutionRepository


class SQLAlchemyWorkflowNodeExecutionRepository(RelationalWorkflowNodeExecutionRepository):
    """``upload_file`` is required, as Dify's factory passes it for every backend."""

    def __init__(
        self,
        session_factory: t.Any,
        tenant_id: str,
        user: t.Any,
        app_id: str | None,
        triggered_from: t.Any,
        *,
        upload_file: t.Callable[..., t.Any],
    ) -> None:
        if not tenant_id:
            raise ValueError("tenant_id is required")
        super().__init__(
            session_factory=session_factory,
            user=user,
            app_id=app_id,
            triggered_from=triggered_from,
            tenant_id=tenant_id,
        )
        self.upload_file = upload_file

    def _check_owner(self, execution: t.Any) -> None:
        with self._session_factory() as session:
            existing = session.get(WorkflowNodeExecutionModel, execution.id)
            if existing is not None and (
                existing.tenant_id != self._tenant_id or (self._app_id is not None and existing.app_id != self._app_id)
            ):
                raise ValueError("Unauthorized access to workflow node execution")

    def save(self, execution: t.Any) -> None:
        self._check_owner(execution)
        super().save(execution)

    def save_synchronously(self, execution: t.Any) -> None:
        """The caller row, committed before this returns."""
        self.save(execution)

    def save_execution_data(self, execution: t.Any) -> None:
        self._check_owner(execution)
        super().save_execution_data(execution)
