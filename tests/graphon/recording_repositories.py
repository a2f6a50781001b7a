"""In-memory run / node repositories that keep a deep copy of every save and one shared call log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from graphon.entities import WorkflowExecution, WorkflowNodeExecution

from tests.graphon.engine_driver import RepositoryCall


@dataclass
class CallLog:
    """Calls to both repositories, interleaved in the order they happened."""

    calls: list[RepositoryCall] = field(default_factory=list)


class RecordingRunRepository:
    """``save(execution)`` keeps the latest copy per run id and every snapshot in order."""

    def __init__(self, log: CallLog) -> None:
        self.log = log
        self.runs: dict[str, WorkflowExecution] = {}
        self.snapshots: list[WorkflowExecution] = []

    def save(self, execution: WorkflowExecution) -> None:
        self.log.calls.append(RepositoryCall("run", "save", execution.id_, execution.status.value))
        copy = execution.model_copy(deep=True)
        self.runs[execution.id_] = copy
        self.snapshots.append(copy)


class RecordingNodeRepository:
    """The four node-writer methods; each keeps a deep copy, so later changes by the caller cannot leak in."""

    def __init__(self, log: CallLog) -> None:
        self.log = log
        self.nodes: dict[str, WorkflowNodeExecution] = {}
        self.snapshots: list[tuple[str, WorkflowNodeExecution]] = []

    def _keep(self, method: str, execution: WorkflowNodeExecution) -> None:
        self.log.calls.append(RepositoryCall("node", method, execution.id, execution.status.value))
        copy = execution.model_copy(deep=True)
        self.nodes[execution.id] = copy
        self.snapshots.append((method, copy))

    def save(self, execution: WorkflowNodeExecution) -> None:
        self._keep("save", execution)

    def save_execution_data(self, execution: WorkflowNodeExecution) -> None:
        self._keep("save_execution_data", execution)

    def save_synchronously(self, execution: WorkflowNodeExecution) -> None:
        self._keep("save_synchronously", execution)

    def get_by_workflow_execution(self, workflow_execution_id: str) -> Sequence[WorkflowNodeExecution]:
        rows = [node for node in self.nodes.values() if node.workflow_execution_id == workflow_execution_id]
        return [node.model_copy(deep=True) for node in sorted(rows, key=lambda node: node.index)]

    def first_snapshot(self, node_execution_id: str) -> WorkflowNodeExecution:
        return next(copy for _, copy in self.snapshots if copy.id == node_execution_id)
