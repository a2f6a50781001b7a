"""The S4 factories as Dify's storage-contract suite drives them, and its representative snapshots.

Follows Dify's ``api/tests/unit_tests/repositories/workflow/storage_contracts/harness.py`` and
``entities.py`` (``run_writer()``, ``node_writer()``, ``runs()``, ``nodes()``, ``settle()``; ``run()``
and ``node()``), with entities from :mod:`flask_difylogstore.dify.compat` so the same scenarios run
on graphon's entities (Python 3.12) and the package's own (Python 3.11).
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from extensions.application_services import workflow_storage, workflow_writers
from flask import Flask
from models import Account
from models.enums import WorkflowRunTriggeredFrom
from models.workflow import WorkflowNodeExecutionTriggeredFrom
from sqlalchemy.orm import Session, sessionmaker

from flask_difylogstore.dify import compat
from flask_difylogstore.extension import LogStoreState, get_state

START = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(hours=2)


def run(id: str = "run-1", *, start: datetime = START, workflow_id: str = "workflow-1") -> t.Any:
    """Dify's contract run: a succeeded workflow run with business fields set."""
    return compat.WorkflowExecution(
        id_=id,
        workflow_id=workflow_id,
        workflow_type=compat.WorkflowType.WORKFLOW,
        workflow_version="1",
        graph={"nodes": []},
        inputs={"question": "契约"},
        outputs={"answer": [1, 2]},
        status=compat.WorkflowExecutionStatus.SUCCEEDED,
        error_message="",
        total_tokens=17,
        total_steps=2,
        exceptions_count=3,
        started_at=start,
        finished_at=start + timedelta(seconds=5),
    )


def node(id: str = "execution-1", *, index: int = 1) -> t.Any:
    """Dify's contract node execution: a succeeded LLM node of ``run-1``."""
    return compat.WorkflowNodeExecution(
        id=id,
        node_execution_id=f"trace-{id}",
        workflow_id="workflow-1",
        workflow_execution_id="run-1",
        index=index,
        node_id="node-1",
        node_type=compat.node_type("llm"),
        title="Contract node",
        status=compat.WorkflowNodeExecutionStatus.SUCCEEDED,
        inputs={"question": "契约"},
        outputs={"answer": [1, 2]},
        process_data={"steps": ["one", "two"]},
        error=None,
        elapsed_time=5,
        created_at=START + timedelta(seconds=index),
        finished_at=START + timedelta(seconds=index + 5),
    )


@dataclass
class S4Storage:
    """Repositories exactly as the host's S4 factories build them, on one app."""

    app: Flask
    sessions: sessionmaker[Session]
    backend: str
    server: t.Any = None
    database: str = ""

    def run_writer(
        self,
        *,
        tenant: str = "tenant-1",
        app: str = "app-1",
        actor: str = "actor-1",
        trigger: t.Any = WorkflowRunTriggeredFrom.APP_RUN,
    ) -> t.Any:
        return workflow_writers.create_workflow_execution_repository(
            session_factory=self.sessions,
            tenant_id=tenant,
            app_id=app,
            user=Account(id=actor, current_tenant_id=tenant),
            triggered_from=trigger,
        )

    def node_writer(
        self,
        *,
        tenant: str = "tenant-1",
        app: str = "app-1",
        trigger: t.Any = WorkflowNodeExecutionTriggeredFrom.WORKFLOW_RUN,
    ) -> t.Any:
        return workflow_writers.create_workflow_node_execution_repository(
            session_factory=self.sessions,
            tenant_id=tenant,
            app_id=app,
            user=Account(id="actor-1", current_tenant_id=tenant),
            triggered_from=trigger,
        )

    def runs(self) -> t.Any:
        return workflow_storage.create_api_workflow_run_repository(self.sessions)

    def nodes(self) -> t.Any:
        return workflow_storage.create_api_workflow_node_execution_repository(self.sessions)

    @property
    def state(self) -> LogStoreState:
        return get_state(self.app)

    def settle(self) -> None:
        """Deliver everything accepted to the log store (Dify's harness drains its task queue here)."""
        assert self.state.require_sink().flush(30), "the write pipeline did not deliver in time"
