"""``DifyAPISQLAlchemyWorkflowRunRepository``: the console's and clean-up jobs' run reads over SQL, plus pauses."""

from __future__ import annotations

from flask_difylogstore.repositories.relational_api import RelationalAPIWorkflowRunRepository
from repositories.workflow.pause_repository import WorkflowPauseRepository


class DifyAPISQLAlchemyWorkflowRunRepository(WorkflowPauseRepository, RelationalAPIWorkflowRunRepository):
    """Constructed with ``session_maker=`` by ``create_api_workflow_run_repository``."""
