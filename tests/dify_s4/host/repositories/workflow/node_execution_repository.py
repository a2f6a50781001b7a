"""``DifyAPISQLAlchemyWorkflowNodeExecutionRepository``: the console's node-execution reads over SQL."""

from __future__ import annotations

from flask_difylogstore.repositories.relational_api_node import RelationalAPIWorkflowNodeExecutionRepository


class DifyAPISQLAlchemyWorkflowNodeExecutionRepository(RelationalAPIWorkflowNodeExecutionRepository):
    """Constructed with ``session_maker=`` by ``create_api_workflow_node_execution_repository``."""
