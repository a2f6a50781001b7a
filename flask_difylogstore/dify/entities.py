"""Dify's domain entities (``WorkflowExecution``, ``WorkflowNodeExecution``) for standalone use.

Field names, defaults and methods follow Dify's ``core.workflow.entities`` (1.9 - 1.13), so code
written against Dify's entities works with these, and the repositories accept either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, PrivateAttr

from flask_difylogstore.dify.enums import (
    NodeType,
    WorkflowExecutionStatus,
    WorkflowNodeExecutionMetadataKey,
    WorkflowNodeExecutionStatus,
    WorkflowType,
)


def naive_utc_now() -> datetime:
    """The current UTC time without tzinfo, as Dify stores it."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class OrderConfig:
    """Ordering of node-execution lists, as Dify's repositories take it."""

    order_by: list[str] = field(default_factory=list)
    order_direction: Literal["asc", "desc"] | None = None


class WorkflowExecution(BaseModel):
    """One workflow run, as the engine sees it (tenant, app and creator belong to the repository)."""

    id_: str
    workflow_id: str
    workflow_version: str
    workflow_type: WorkflowType
    graph: Mapping[str, Any]
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any] | None = None
    status: WorkflowExecutionStatus = WorkflowExecutionStatus.RUNNING
    error_message: str = ""
    total_tokens: int = 0
    total_steps: int = 0
    exceptions_count: int = 0
    started_at: datetime
    finished_at: datetime | None = None

    @property
    def elapsed_time(self) -> float:
        end = self.finished_at or naive_utc_now()
        return (end - self.started_at).total_seconds()

    @classmethod
    def new(
        cls,
        *,
        id_: str,
        workflow_id: str,
        workflow_type: WorkflowType,
        workflow_version: str,
        graph: Mapping[str, Any],
        inputs: Mapping[str, Any],
        started_at: datetime,
    ) -> WorkflowExecution:
        return cls(
            id_=id_,
            workflow_id=workflow_id,
            workflow_type=workflow_type,
            workflow_version=workflow_version,
            graph=graph,
            inputs=inputs,
            status=WorkflowExecutionStatus.RUNNING,
            started_at=started_at,
        )


class WorkflowNodeExecution(BaseModel):
    """One execution of one node, with Dify's truncation holders for large payloads."""

    id: str
    node_execution_id: str | None = None
    workflow_id: str
    workflow_execution_id: str | None = None
    index: int
    predecessor_node_id: str | None = None
    node_id: str
    node_type: NodeType
    title: str
    inputs: Mapping[str, Any] | None = None
    process_data: Mapping[str, Any] | None = None
    outputs: Mapping[str, Any] | None = None
    status: WorkflowNodeExecutionStatus = WorkflowNodeExecutionStatus.RUNNING
    error: str | None = None
    elapsed_time: float = 0.0
    metadata: Mapping[WorkflowNodeExecutionMetadataKey, Any] | None = None
    created_at: datetime
    finished_at: datetime | None = None

    _truncated_inputs: Mapping[str, Any] | None = PrivateAttr(None)
    _truncated_outputs: Mapping[str, Any] | None = PrivateAttr(None)
    _truncated_process_data: Mapping[str, Any] | None = PrivateAttr(None)

    def get_truncated_inputs(self) -> Mapping[str, Any] | None:
        return self._truncated_inputs

    def get_truncated_outputs(self) -> Mapping[str, Any] | None:
        return self._truncated_outputs

    def get_truncated_process_data(self) -> Mapping[str, Any] | None:
        return self._truncated_process_data

    def set_truncated_inputs(self, truncated: Mapping[str, Any] | None) -> None:
        self._truncated_inputs = truncated

    def set_truncated_outputs(self, truncated: Mapping[str, Any] | None) -> None:
        self._truncated_outputs = truncated

    def set_truncated_process_data(self, truncated: Mapping[str, Any] | None) -> None:
        self._truncated_process_data = truncated

    @property
    def inputs_truncated(self) -> bool:
        return self._truncated_inputs is not None

    @property
    def outputs_truncated(self) -> bool:
        return self._truncated_outputs is not None

    @property
    def process_data_truncated(self) -> bool:
        return self._truncated_process_data is not None

    def get_response_inputs(self) -> Mapping[str, Any] | None:
        return self._truncated_inputs if self._truncated_inputs is not None else self.inputs

    def get_response_outputs(self) -> Mapping[str, Any] | None:
        return self._truncated_outputs if self._truncated_outputs is not None else self.outputs

    def get_response_process_data(self) -> Mapping[str, Any] | None:
        if self._truncated_process_data is not None:
            return self._truncated_process_data
        return self.process_data

    def update_from_mapping(
        self,
        inputs: Mapping[str, Any] | None = None,
        process_data: Mapping[str, Any] | None = None,
        outputs: Mapping[str, Any] | None = None,
        metadata: Mapping[WorkflowNodeExecutionMetadataKey, Any] | None = None,
    ) -> None:
        if inputs is not None:
            self.inputs = dict(inputs)
        if process_data is not None:
            self.process_data = dict(process_data)
        if outputs is not None:
            self.outputs = dict(outputs)
        if metadata is not None:
            self.metadata = dict(metadata)


class InfiniteScrollPagination:
    """Dify's ``libs.infinite_scroll_pagination.InfiniteScrollPagination`` (a page of rows + ``has_more``)."""

    def __init__(self, data: Any, limit: int, has_more: bool) -> None:
        self.data = data
        self.limit = limit
        self.has_more = has_more


@dataclass(frozen=True)
class WorkflowRunCleanupRef:
    """Dify's ``services.workflow.run_entities.WorkflowRunCleanupRef``: what a retention scan needs of a run."""

    id: str
    tenant_id: str
    created_at: datetime


class WorkflowRunMessageRef(NamedTuple):
    """Dify's ``WorkflowRunMessageRef``: the chat message a run answered, if any."""

    message_id: str
    conversation_id: str


@dataclass(frozen=True)
class WorkflowNodeExecutionSnapshot:
    """Dify's ``services.workflow.node_execution_queries.WorkflowNodeExecutionSnapshot`` (stream recovery)."""

    execution_id: str
    node_id: str
    node_type: str
    title: str
    index: int
    status: str
    elapsed_time: float
    created_at: datetime
    finished_at: datetime | None
    iteration_id: str | None = None
    loop_id: str | None = None
