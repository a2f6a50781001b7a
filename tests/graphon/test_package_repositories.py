"""graphon's entities and engine through the package's repositories, on every backend.

(a) entities built the way Dify's persistence layer builds them (running → succeeded, a failed node,
token metadata, a truncated output, a key only graphon knows) come back field by field as graphon's
own classes; (b) graphon's engine runs small graphs (no LLM, no network) and its events drive the
repositories in the order of Dify's persistence layer (``api/core/app/workflow/layers/persistence.py``
of langgenius/dify at 7b95e300); the final state of every node, the tracing list and the console
reads are checked against what the engine produced.
"""

from __future__ import annotations

import typing as t
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from graphon.entities import WorkflowExecution, WorkflowNodeExecution
from graphon.enums import (
    BuiltinNodeTypes,
    WorkflowExecutionStatus,
    WorkflowNodeExecutionMetadataKey,
    WorkflowNodeExecutionStatus,
    WorkflowType,
)

from flask_difylogstore.repositories import (
    LogStoreAPIWorkflowNodeExecutionRepository,
    LogStoreAPIWorkflowRunRepository,
    LogStoreWorkflowExecutionRepository,
    LogStoreWorkflowNodeExecutionRepository,
)
from tests.contract.conftest import flush, logstore_app
from tests.graphon.engine_driver import run_graph


@dataclass
class Owner:
    tenant_id: str
    app_id: str

    def run_writer(self) -> LogStoreWorkflowExecutionRepository:
        return LogStoreWorkflowExecutionRepository(
            session_factory=None, tenant_id=self.tenant_id, user=_User("user-1"), app_id=self.app_id,
            triggered_from="app-run",
        )  # fmt: skip

    def node_writer(self) -> LogStoreWorkflowNodeExecutionRepository:
        return LogStoreWorkflowNodeExecutionRepository(
            session_factory=None, tenant_id=self.tenant_id, user=_User("user-1"), app_id=self.app_id,
            triggered_from="workflow-run", upload_file=lambda **_: None,
        )  # fmt: skip


@dataclass
class _User:
    id: str


@pytest.fixture
def owner(backend_values: dict[str, t.Any], tmp_path: Path) -> Iterator[Owner]:
    with logstore_app(backend_values, tmp_path):
        yield Owner(str(uuid.uuid4()), str(uuid.uuid4()))


def _node_fields(node: WorkflowNodeExecution) -> dict[str, t.Any]:
    """Every field a node entity carries (enums as their values, times without tzinfo)."""
    data = node.model_dump()
    data["metadata"] = {str(getattr(k, "value", k)): v for k, v in (node.metadata or {}).items()}
    data["status"] = node.status.value
    for name in ("created_at", "finished_at"):
        value = data[name]
        if isinstance(value, datetime) and value.tzinfo is not None:
            data[name] = value.astimezone(UTC).replace(tzinfo=None)
    return data


NOW = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(minutes=5)


def test_entities_round_trip_as_graphons_classes(owner: Owner) -> None:
    run_id = str(uuid.uuid4())
    execution = WorkflowExecution.new(
        id_=run_id, workflow_id="wf", workflow_type=WorkflowType.WORKFLOW, workflow_version="draft",
        graph={"nodes": [{"id": "start"}], "edges": []}, inputs={"q": "契约"}, started_at=NOW,
    )  # fmt: skip
    owner.run_writer().save(execution)
    running = WorkflowNodeExecution(
        id=str(uuid.uuid4()), node_execution_id="n1", workflow_id="wf", workflow_execution_id=run_id, index=1,
        node_id="llm", node_type=BuiltinNodeTypes.LLM, title="LLM", status=WorkflowNodeExecutionStatus.RUNNING,
        created_at=NOW,
        metadata={WorkflowNodeExecutionMetadataKey.ITERATION_ID: None, WorkflowNodeExecutionMetadataKey.LOOP_ID: None},
    )  # fmt: skip
    writer = owner.node_writer()
    writer.save(running)
    done = running.model_copy(deep=True)
    done.status = WorkflowNodeExecutionStatus.SUCCEEDED
    done.finished_at = NOW + timedelta(seconds=3)
    done.elapsed_time = 3.0
    done.update_from_mapping(
        inputs={"prompt": "hi"},
        process_data={"model": "m"},
        outputs={"text": "x" * 50_000},  # truncated in the log store, full value restored on read
        metadata={
            WorkflowNodeExecutionMetadataKey.TOTAL_TOKENS: 42,
            WorkflowNodeExecutionMetadataKey.TOTAL_PRICE: "0.01",
            WorkflowNodeExecutionMetadataKey.CURRENCY: "USD",
            WorkflowNodeExecutionMetadataKey.COMPLETED_REASON: "stop",
        },
    )
    writer.save(done)
    writer.save_execution_data(done)
    failed = WorkflowNodeExecution(
        id=str(uuid.uuid4()), node_execution_id="n2", workflow_id="wf", workflow_execution_id=run_id, index=2,
        node_id="code", node_type=BuiltinNodeTypes.CODE, title="Code", status=WorkflowNodeExecutionStatus.FAILED,
        error="ZeroDivisionError: division by zero", created_at=NOW + timedelta(seconds=3),
        finished_at=NOW + timedelta(seconds=4), elapsed_time=1.0, inputs={"a": 1}, outputs=None,
    )  # fmt: skip
    writer.save(failed)
    execution.status = WorkflowExecutionStatus.FAILED
    execution.error_message = failed.error or ""
    execution.finished_at = NOW + timedelta(seconds=4)
    execution.total_tokens = 42
    execution.total_steps = 2
    owner.run_writer().save(execution)
    flush()

    back = owner.node_writer().get_by_workflow_execution(run_id)
    assert all(type(n) is WorkflowNodeExecution for n in back)
    assert [type(n.node_type) for n in back] == [str, str]  # graphon: node types are plain strings
    assert [_node_fields(n) for n in back] == [_node_fields(done), _node_fields(failed)]
    assert back[0].outputs_truncated and back[0].get_truncated_outputs() != done.outputs
    assert back[0].metadata[WorkflowNodeExecutionMetadataKey.COMPLETED_REASON] == "stop"

    row = LogStoreAPIWorkflowRunRepository().get_workflow_run_by_id(owner.tenant_id, owner.app_id, run_id)
    assert (row.status, row.error, row.total_tokens, row.total_steps) == ("failed", failed.error, 42, 2)
    assert row.graph_dict == execution.graph and row.inputs_dict == execution.inputs
    assert (row.created_at, row.finished_at) == (NOW, NOW + timedelta(seconds=4))


@pytest.mark.parametrize("kind", ["ok", "fails", "partial", "retried", "aborted"])
def test_engine_runs_drive_the_repositories(owner: Owner, kind: str) -> None:
    outcome = run_graph(kind, owner.run_writer(), owner.node_writer(), tenant_id=owner.tenant_id, app_id=owner.app_id)
    flush()
    # The engine's own view of every node, in final state, equals what the log store returns.
    history = owner.node_writer().get_by_workflow_execution(outcome.run_id)
    assert [_node_fields(n) for n in history] == [_node_fields(n) for n in outcome.node_executions]
    # The tracing panel: every node execution row, created_at ascending, with the engine's status.
    rows = LogStoreAPIWorkflowNodeExecutionRepository().get_executions_by_workflow_run(
        owner.tenant_id, owner.app_id, outcome.run_id
    )
    assert [(r.id, r.status, r.index) for r in rows] == [
        (n.id, n.status.value, n.index) for n in outcome.node_executions
    ]
    # The run detail and the logs list.
    runs = LogStoreAPIWorkflowRunRepository()
    run = runs.get_workflow_run_by_id(owner.tenant_id, owner.app_id, outcome.run_id)
    expected = outcome.execution
    assert run.status == expected.status.value
    assert run.error == (expected.error_message or None)
    assert run.outputs_dict == (dict(expected.outputs) if expected.outputs else {})
    assert (run.total_steps, run.exceptions_count) == (expected.total_steps, expected.exceptions_count)
    page = runs.get_paginated_workflow_runs(owner.tenant_id, owner.app_id, "app-run")
    assert [r.id for r in page.data] == [outcome.run_id]
    counts = runs.get_workflow_runs_count(owner.tenant_id, owner.app_id, "app-run")
    assert counts["total"] == 1 and counts[expected.status.value] == 1
    if kind == "ok":
        assert run.outputs_dict and "Hello Graphon!" in str(run.outputs_dict)
    last = LogStoreAPIWorkflowNodeExecutionRepository().get_node_last_execution(
        owner.tenant_id, owner.app_id, outcome.workflow_id, outcome.node_executions[-1].node_id
    )
    assert last is not None and last.id == outcome.node_executions[-1].id
