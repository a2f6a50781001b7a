"""The newest Dify line's core factories: a ``match`` on the setting picks a class imported at module level."""

from __future__ import annotations

import typing as t

from configs import dify_config
from repositories.workflow.celery_execution_writer import CeleryWorkflowExecutionRepository
from repositories.workflow.celery_node_execution_writer import CeleryWorkflowNodeExecutionRepository
from repositories.workflow.execution_writer import SQLAlchemyWorkflowExecutionRepository
from repositories.workflow.logstore.execution_writer import LogstoreWorkflowExecutionWriter
from repositories.workflow.logstore.node_execution_writer import LogstoreWorkflowNodeExecutionWriter
from repositories.workflow.node_execution_writer import SQLAlchemyWorkflowNodeExecutionRepository

#: What the host's uploader received (Dify uploads offloaded node payloads as files).
UPLOADS: list[tuple[str, str, bytes]] = []


def build_workflow_offload_uploader(*, session_factory: t.Any, tenant_id: str, user: t.Any) -> t.Callable[..., t.Any]:
    def upload(*, filename: str, content: bytes) -> str:
        UPLOADS.append((tenant_id, filename, content))
        return filename

    return upload


def create_workflow_execution_repository(
    session_factory: t.Any, tenant_id: str, user: t.Any, app_id: str, triggered_from: t.Any
) -> t.Any:
    repository_class: t.Any
    match dify_config.WORKFLOW_RUN_STORAGE_BACKEND:
        case "logstore":
            repository_class = LogstoreWorkflowExecutionWriter
        case "celery":
            repository_class = CeleryWorkflowExecutionRepository
        case "rdbms":
            repository_class = SQLAlchemyWorkflowExecutionRepository
    return repository_class(
        session_factory=session_factory, tenant_id=tenant_id, user=user, app_id=app_id, triggered_from=triggered_from
    )


def create_workflow_node_execution_repository(
    session_factory: t.Any, tenant_id: str, user: t.Any, app_id: str, triggered_from: t.Any
) -> t.Any:
    repository_class: t.Any
    match dify_config.WORKFLOW_NODE_EXECUTION_STORAGE_BACKEND:
        case "logstore":
            repository_class = LogstoreWorkflowNodeExecutionWriter
        case "celery":
            repository_class = CeleryWorkflowNodeExecutionRepository
        case "rdbms":
            repository_class = SQLAlchemyWorkflowNodeExecutionRepository
    return repository_class(
        session_factory=session_factory,
        tenant_id=tenant_id,
        user=user,
        app_id=app_id,
        triggered_from=triggered_from,
        upload_file=build_workflow_offload_uploader(session_factory=session_factory, tenant_id=tenant_id, user=user),
    )
