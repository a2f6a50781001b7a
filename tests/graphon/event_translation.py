"""graphon 0.8 engine events -> Dify repository calls, handler by handler as Dify's persistence layer does it.

Source followed: ``api/core/app/workflow/layers/persistence.py`` (langgenius/dify @ 7b95e300), class
``WorkflowPersistenceLayer``. Each ``_on_*`` method below names the Dify handler it mirrors. Differences that
come from graphon 0.8 itself (not from this translation) are marked "graphon 0.8:".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from graphon.engine_events import (
    EngineEvent,
    GraphRunAbortedEvent,
    GraphRunFailedEvent,
    GraphRunPartialSucceededEvent,
    GraphRunPausedEvent,
    GraphRunStartedEvent,
    GraphRunSucceededEvent,
    NodeRunExceptionEvent,
    NodeRunFailedEvent,
    NodeRunPauseRequestedEvent,
    NodeRunRetryEvent,
    NodeRunStartedEvent,
    NodeRunSucceededEvent,
)
from graphon.entities import WorkflowExecution, WorkflowNodeExecution, WorkflowStartReason
from graphon.enums import (
    BuiltinNodeTypes,
    WorkflowExecutionStatus,
    WorkflowNodeExecutionMetadataKey,
    WorkflowNodeExecutionStatus,
    WorkflowType,
)
from graphon.node_events import NodeRunResult
from graphon.runtime.runtime_state_protocol import ReadOnlyRuntimeState

from tests.graphon.dify_helpers import (
    CONVERSATION_ID_KEY,
    RETRY_HISTORY_PROCESS_DATA_KEY,
    SYSTEM_VARIABLE_NODE_ID,
    WORKFLOW_EXECUTION_ID_KEY,
    RetryAttempt,
    handle_special_values,
    naive_utc_now,
    preserve_workflow_agent_binding_id,
    project_node_outputs_for_workflow_run,
)


@dataclass(frozen=True)
class RepositoryCall:
    """One repository call: which writer, which method, the entity's id and its status at call time."""

    repository: Literal["run", "node"]
    method: str
    entity_id: str
    status: str


class DifyPersistenceTranslator:
    """State and handlers of Dify's ``WorkflowPersistenceLayer``, minus tracing and the inspector feed."""

    def __init__(
        self,
        run_repo: Any,
        node_repo: Any,
        *,
        workflow_id: str,
        workflow_type: WorkflowType,
        workflow_version: str,
        graph_data: Mapping[str, Any],
        user_inputs: Mapping[str, Any],
    ) -> None:
        self._run_repo = run_repo
        self._node_repo = node_repo
        self._workflow_id = workflow_id
        self._workflow_type = workflow_type
        self._workflow_version = workflow_version
        self._graph_data = graph_data
        self._user_inputs = dict(user_inputs)
        # graphon 0.8: a node names its owning container (``container_id``); its kind comes from the graph.
        self._node_types = {
            str(node["id"]): str(node.get("data", {}).get("type", ""))
            for node in graph_data.get("nodes", [])
            if isinstance(node, Mapping) and "id" in node
        }
        self.calls: list[RepositoryCall] = []
        self.workflow_execution: WorkflowExecution | None = None
        self.node_execution_cache: dict[str, WorkflowNodeExecution] = {}
        self._node_sequence = 0

    def reset(self) -> None:
        """Dify's ``on_graph_start``."""
        self.workflow_execution = None
        self.node_execution_cache.clear()
        self._node_sequence = 0

    def handle(self, event: EngineEvent, state: ReadOnlyRuntimeState) -> None:
        """Dify's ``on_event`` dispatch (``NodeRunRetryEvent`` subclasses ``NodeRunStartedEvent``: it goes first)."""
        match event:
            case GraphRunStartedEvent():
                self._on_graph_run_started(event, state)
            case GraphRunSucceededEvent():
                self._finish_run(WorkflowExecutionStatus.SUCCEEDED, state, outputs=event.outputs)
            case GraphRunPartialSucceededEvent():
                self._finish_run(
                    WorkflowExecutionStatus.PARTIAL_SUCCEEDED,
                    state,
                    outputs=event.outputs,
                    exceptions_count=event.exceptions_count,
                )
            case GraphRunFailedEvent():
                self._finish_run(
                    WorkflowExecutionStatus.FAILED, state, error=event.error, exceptions_count=event.exceptions_count
                )
            case GraphRunAbortedEvent():
                self._finish_run(
                    WorkflowExecutionStatus.STOPPED, state, error=event.reason or "Workflow execution aborted"
                )
            case GraphRunPausedEvent():
                self._on_graph_run_paused(event, state)
            case NodeRunRetryEvent():
                self._on_node_retry(event)
            case NodeRunStartedEvent():
                self._on_node_started(event)
            case NodeRunSucceededEvent():
                self._update_node(
                    event.id,
                    event.node_run_result,
                    WorkflowNodeExecutionStatus.SUCCEEDED,
                    finished_at=event.finished_at,
                )
            case NodeRunFailedEvent():
                self._update_node(
                    event.id,
                    event.node_run_result,
                    WorkflowNodeExecutionStatus.FAILED,
                    error=event.error,
                    finished_at=event.finished_at,
                )
            case NodeRunExceptionEvent():
                self._update_node(
                    event.id,
                    event.node_run_result,
                    WorkflowNodeExecutionStatus.EXCEPTION,
                    error=event.error,
                    finished_at=event.finished_at,
                )
            case NodeRunPauseRequestedEvent():
                self._update_node(
                    event.id, event.node_run_result, WorkflowNodeExecutionStatus.PAUSED, error="", update_outputs=False
                )
            case _:
                pass

    # -- graph level ---------------------------------------------------------------------------------------------

    def _on_graph_run_started(self, event: GraphRunStartedEvent, state: ReadOnlyRuntimeState) -> None:
        """Dify's ``_handle_graph_run_started``."""
        system_variables = state.variable_pool.get_by_prefix(SYSTEM_VARIABLE_NODE_ID)
        execution_id = system_variables.get(WORKFLOW_EXECUTION_ID_KEY)
        if not execution_id:
            raise ValueError("workflow_execution_id must be provided in system variables for pause/resume flows")
        inputs: dict[str, Any] = dict(self._user_inputs)
        for name, value in system_variables.items():
            if name != CONVERSATION_ID_KEY:
                inputs[f"sys.{name}"] = value
        execution = WorkflowExecution.new(
            id_=str(execution_id),
            workflow_id=self._workflow_id,
            workflow_type=self._workflow_type,
            workflow_version=self._workflow_version,
            graph=self._graph_data,
            inputs=handle_special_values(inputs) or {},
            started_at=naive_utc_now(),
        )
        self._save_run(execution)
        self.workflow_execution = execution
        if event.reason == WorkflowStartReason.RESUMPTION:
            node_executions = self._node_repo.get_by_workflow_execution(execution.id_)
            self.node_execution_cache = {node.id: node for node in node_executions}
            self._node_sequence = max((node.index for node in node_executions), default=0)

    def _finish_run(
        self,
        status: WorkflowExecutionStatus,
        state: ReadOnlyRuntimeState,
        *,
        outputs: Mapping[str, Any] | None = None,
        error: str | None = None,
        exceptions_count: int | None = None,
    ) -> None:
        """Dify's ``_handle_graph_run_{succeeded,partial_succeeded,failed,aborted}``."""
        execution = self._execution()
        if outputs is not None:
            execution.outputs = outputs
        execution.status = status
        if error is not None:
            execution.error_message = error
        if exceptions_count is not None:
            execution.exceptions_count = exceptions_count
        self._populate_completion_statistics(execution, state)
        if status in (WorkflowExecutionStatus.FAILED, WorkflowExecutionStatus.STOPPED):
            self._fail_running_nodes(error_message=execution.error_message or "")
        self._save_run(execution)

    def _on_graph_run_paused(self, event: GraphRunPausedEvent, state: ReadOnlyRuntimeState) -> None:
        """Dify's ``_handle_graph_run_paused``: no ``finished_at``."""
        execution = self._execution()
        execution.status = WorkflowExecutionStatus.PAUSED
        execution.outputs = event.outputs
        self._populate_completion_statistics(execution, state, update_finished=False)
        self._save_run(execution)

    @staticmethod
    def _populate_completion_statistics(
        execution: WorkflowExecution, state: ReadOnlyRuntimeState, *, update_finished: bool = True
    ) -> None:
        if update_finished:
            execution.finished_at = naive_utc_now()
        execution.total_tokens = state.total_tokens
        execution.total_steps = state.node_run_steps
        execution.outputs = execution.outputs or state.outputs
        execution.exceptions_count = max(execution.exceptions_count, state.exceptions_count)

    def _fail_running_nodes(self, *, error_message: str) -> None:
        """Dify's ``_fail_running_node_executions``: ``save`` only, no ``save_execution_data``."""
        now = naive_utc_now()
        for node in self.node_execution_cache.values():
            if node.status == WorkflowNodeExecutionStatus.RUNNING:
                node.status = WorkflowNodeExecutionStatus.FAILED
                node.error = error_message
                node.finished_at = now
                node.elapsed_time = max((now - node.created_at).total_seconds(), 0.0)
                self._save_node("save", node)

    # -- node level ----------------------------------------------------------------------------------------------

    def _on_node_started(self, event: NodeRunStartedEvent) -> None:
        """Dify's ``_handle_node_started``."""
        execution = self._execution()
        container_type = self._node_types.get(event.container_id) if event.container_id else None
        metadata = {
            WorkflowNodeExecutionMetadataKey.ITERATION_ID: (
                event.container_id if container_type == BuiltinNodeTypes.ITERATION else None
            ),
            WorkflowNodeExecutionMetadataKey.LOOP_ID: (
                event.container_id if container_type == BuiltinNodeTypes.LOOP else None
            ),
        }
        self._node_sequence += 1
        node = WorkflowNodeExecution(
            id=event.id,
            node_execution_id=event.id,
            workflow_id=execution.workflow_id,
            workflow_execution_id=execution.id_,
            predecessor_node_id=event.predecessor_node_id,
            index=self._node_sequence,
            node_id=event.node_id,
            node_type=event.node_type,
            title=event.node_title,
            status=WorkflowNodeExecutionStatus.RUNNING,
            metadata=metadata,
            created_at=event.start_at,
        )
        self.node_execution_cache[event.id] = node
        if event.node_type == BuiltinNodeTypes.AGENT and event.node_version == "2":
            self._save_node("save_synchronously", node)
        else:
            self._save_node("save", node)

    def _on_node_retry(self, event: NodeRunRetryEvent) -> None:
        """Dify's ``_handle_node_retry`` with ``_append_retry_history``."""
        node = self._node(event.id)
        node.status = WorkflowNodeExecutionStatus.RETRY
        node.error = event.error
        result = event.node_run_result
        finished_at = naive_utc_now()
        process_data = dict(preserve_workflow_agent_binding_id(result.process_data, node.process_data) or {})
        raw_history = process_data.get(RETRY_HISTORY_PROCESS_DATA_KEY)
        history = list(raw_history) if isinstance(raw_history, list) else []
        attempt = RetryAttempt(
            retry_index=event.retry_index,
            inputs=result.inputs,
            process_data=result.process_data,
            outputs=project_node_outputs_for_workflow_run(
                node_type=node.node_type, inputs=result.inputs, outputs=result.outputs
            ),
            error=result.error or event.error,
            elapsed_time=max((finished_at - event.start_at).total_seconds(), 0.0),
            execution_metadata={key.value: value for key, value in result.metadata.items()},
            created_at=int(event.start_at.timestamp()),
            finished_at=int(finished_at.timestamp()),
        )
        history.append(attempt.model_dump(mode="json"))
        process_data[RETRY_HISTORY_PROCESS_DATA_KEY] = history
        node.process_data = process_data
        self._save_node("save", node)
        self._save_node("save_execution_data", node)

    def _update_node(
        self,
        node_execution_id: str,
        result: NodeRunResult,
        status: WorkflowNodeExecutionStatus,
        *,
        error: str | None = None,
        update_outputs: bool = True,
        finished_at: datetime | None = None,
    ) -> None:
        """Dify's ``_update_node_execution`` (succeeded / failed / exception / pause requested)."""
        node = self._node(node_execution_id)
        actual_finished_at = finished_at or naive_utc_now()
        node.status = status
        node.finished_at = actual_finished_at
        node.elapsed_time = max((actual_finished_at - node.created_at).total_seconds(), 0.0)
        if error:
            node.error = error
        if update_outputs:
            outputs = project_node_outputs_for_workflow_run(
                node_type=node.node_type, inputs=result.inputs, outputs=result.outputs
            )
            process_data = preserve_workflow_agent_binding_id(node.process_data, result.process_data)
            history = (node.process_data or {}).get(RETRY_HISTORY_PROCESS_DATA_KEY)
            if isinstance(history, list) and history:
                process_data = {**(process_data or {}), RETRY_HISTORY_PROCESS_DATA_KEY: history}
            node.update_from_mapping(
                inputs=result.inputs, process_data=process_data, outputs=outputs, metadata=result.metadata
            )
        else:
            node.process_data = preserve_workflow_agent_binding_id(result.process_data, node.process_data)
        self._save_node("save", node)
        self._save_node("save_execution_data", node)

    # -- helpers -------------------------------------------------------------------------------------------------

    def _execution(self) -> WorkflowExecution:
        if self.workflow_execution is None:
            raise ValueError("workflow execution not initialized")
        return self.workflow_execution

    def _node(self, node_execution_id: str) -> WorkflowNodeExecution:
        if node_execution_id not in self.node_execution_cache:
            raise ValueError(f"Node execution not found for id={node_execution_id}")
        return self.node_execution_cache[node_execution_id]

    def _save_run(self, execution: WorkflowExecution) -> None:
        self.calls.append(RepositoryCall("run", "save", execution.id_, execution.status.value))
        self._run_repo.save(execution)

    def _save_node(self, method: str, node: WorkflowNodeExecution) -> None:
        self.calls.append(RepositoryCall("node", method, node.id, node.status.value))
        getattr(self._node_repo, method)(node)
