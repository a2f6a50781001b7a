"""``SQLAlchemyWorkflowExecutionRepository`` as the newest Dify line shapes it: ``save`` and ``save_control``.

``save_control`` keeps the run's identity and lifecycle in ``workflow_runs`` without graph, inputs
or outputs (an existing copy of those is kept); both refuse a run id owned by another tenant, app
or workflow, and keep the first ``created_at`` (pause / resume).
"""

from __future__ import annotations

import typing as t

from models.workflow import WorkflowRun

from flask_difylogstore import conversions
from flask_difylogstore.repositories.relational import RelationalWorkflowExecutionRepository

PAYLOAD_COLUMNS = ("graph", "inputs", "outputs")


class SQLAlchemyWorkflowExecutionRepository(RelationalWorkflowExecutionRepository):
    """Runs in ``workflow_runs``; ``tenant_id`` is required as on the newest line."""

    def __init__(
        self, session_factory: t.Any, tenant_id: str, user: t.Any, app_id: str | None, triggered_from: t.Any
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

    def save(self, execution: t.Any) -> None:
        self._save(execution, include_payload=True)

    def save_control(self, execution: t.Any) -> None:
        """The control row only: graph, inputs and outputs stay with the log backend."""
        self._save(execution, include_payload=False)

    def _save(self, execution: t.Any, *, include_payload: bool) -> None:
        data = conversions.run_data(execution, self._owner)
        with self._session_factory() as session:
            existing = session.get(WorkflowRun, execution.id_)
            if existing is not None:
                if (
                    existing.tenant_id != self._tenant_id
                    or (self._app_id is not None and existing.app_id != self._app_id)
                    or existing.workflow_id != execution.workflow_id
                ):
                    raise ValueError("Unauthorized access to workflow run")
                data["created_at"] = existing.created_at
            row = conversions.build_model(WorkflowRun, data)
            if not include_payload:
                for name in PAYLOAD_COLUMNS:
                    setattr(row, name, getattr(existing, name) if existing is not None else None)
            session.merge(row)
            session.commit()
