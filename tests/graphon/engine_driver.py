"""Run a graphon workflow and persist it through a run writer and a node writer the way Dify does.

:class:`PersistenceDriver` is a graphon engine layer that turns engine events into repository calls in the
order and shape of Dify's ``WorkflowPersistenceLayer`` (``api/core/app/workflow/layers/persistence.py`` in
langgenius/dify at 7b95e300). Dify's layer targets graphon <= 0.7 (``graphon.graph_engine`` /
``graphon.graph_events``); this one is written for graphon 0.8 (``graphon.engine`` / ``graphon.engine_events``),
where nodes report their owning container as ``container_id`` instead of ``in_iteration_id`` / ``in_loop_id``.

:func:`run_graph` builds one of the graphs in :mod:`tests.graphon.demo_graphs`, runs it with graphon's
``Engine`` and returns what was saved, so a test can read the repositories back and compare field by field.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from graphon.engine import Engine
from graphon.engine.layer import Layer
from graphon.engine_events import EngineEvent, GraphRunAbortedEvent
from graphon.entities import WorkflowExecution, WorkflowNodeExecution
from graphon.enums import WorkflowType
from graphon.graph import Graph
from graphon.runtime.init_params import InitParams
from graphon.runtime.runtime_state import RuntimeState
from graphon.runtime.variable_pool import VariablePool

from tests.graphon.demo_graphs import ABORT_REASON, START_NODE_ID, GraphKind, build_graph_config
from tests.graphon.event_translation import DifyPersistenceTranslator, RepositoryCall
from tests.graphon.host_runtimes import GatedPythonExecutor, LocalNodeFactory

__all__ = [
    "GraphRunOutcome",
    "PersistenceDriver",
    "RepositoryCall",
    "WorkflowNodeWriter",
    "WorkflowRunWriter",
    "run_graph",
]


class WorkflowRunWriter(Protocol):
    """What the driver needs from a run repository (Dify's ``WorkflowExecutionRepository``)."""

    def save(self, execution: WorkflowExecution) -> None: ...


class WorkflowNodeWriter(Protocol):
    """What the driver needs from a node repository (Dify's ``WorkflowNodeExecutionRepository``)."""

    def save(self, execution: WorkflowNodeExecution) -> None: ...

    def save_execution_data(self, execution: WorkflowNodeExecution) -> None: ...

    def save_synchronously(self, execution: WorkflowNodeExecution) -> None: ...

    def get_by_workflow_execution(self, workflow_execution_id: str) -> Sequence[WorkflowNodeExecution]: ...


class PersistenceDriver(Layer):
    """graphon engine layer: every engine event becomes the repository calls Dify's persistence layer makes.

    Repository errors do not stop the engine (graphon logs and swallows layer errors, as Dify's engine does);
    they are kept in :attr:`errors` so :func:`run_graph` can raise them after the run.
    """

    def __init__(
        self,
        run_repo: WorkflowRunWriter,
        node_repo: WorkflowNodeWriter,
        *,
        tenant_id: str,
        app_id: str,
        workflow_id: str,
        graph_data: Mapping[str, Any],
        user_inputs: Mapping[str, Any],
        workflow_type: WorkflowType = WorkflowType.WORKFLOW,
        workflow_version: str = "draft",
    ) -> None:
        super().__init__()
        # Dify's layer does not use these either (its repositories are bound to them); kept for the caller.
        self.tenant_id = tenant_id
        self.app_id = app_id
        self.translator = DifyPersistenceTranslator(
            run_repo,
            node_repo,
            workflow_id=workflow_id,
            workflow_type=workflow_type,
            workflow_version=workflow_version,
            graph_data=graph_data,
            user_inputs=user_inputs,
        )
        self.event_names: list[str] = []
        self.errors: list[Exception] = []

    def on_graph_start(self) -> None:
        self.translator.reset()

    def on_event(self, event: EngineEvent) -> None:
        self.event_names.append(type(event).__name__)
        try:
            self.translator.handle(event, self.runtime_state)
        except Exception as error:
            self.errors.append(error)
            raise

    @property
    def calls(self) -> list[RepositoryCall]:
        """Repository calls made so far, in order."""
        return list(self.translator.calls)

    @property
    def workflow_execution(self) -> WorkflowExecution | None:
        return self.translator.workflow_execution

    @property
    def node_executions(self) -> list[WorkflowNodeExecution]:
        """Node executions in their current state, in start (``index``) order."""
        return sorted(self.translator.node_execution_cache.values(), key=lambda node: node.index)


@dataclass(frozen=True)
class GraphRunOutcome:
    """What one :func:`run_graph` call saved; entities are deep copies of their final saved state."""

    graph_kind: GraphKind
    run_id: str
    tenant_id: str
    app_id: str
    workflow_id: str
    user_id: str
    execution: WorkflowExecution
    node_executions: tuple[WorkflowNodeExecution, ...]
    """Every node execution in final state, ordered by ``index`` (1..n, start order)."""
    event_names: tuple[str, ...]
    """Class names of every engine event the driver received, in delivery order."""
    calls: tuple[RepositoryCall, ...]
    """The repository calls the driver made, in order."""
    engine_error: str | None = None
    """Message of the exception graphon's ``Engine.run`` raised after a failed run; ``None`` otherwise."""
    graph_config: Mapping[str, Any] = field(default_factory=dict)

    def node(self, node_id: str) -> WorkflowNodeExecution:
        """The (single) execution of graph node ``node_id``."""
        matches = [node for node in self.node_executions if node.node_id == node_id]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} executions of node {node_id!r} in run {self.run_id}")
        return matches[0]

    @property
    def node_ids(self) -> tuple[str, ...]:
        """Graph node ids in start order."""
        return tuple(node.node_id for node in self.node_executions)


def run_graph(
    graph_kind: GraphKind,
    run_repo: WorkflowRunWriter,
    node_repo: WorkflowNodeWriter,
    *,
    tenant_id: str,
    app_id: str,
    workflow_id: str | None = None,
    user_id: str = "user-1",
    run_id: str | None = None,
    name: str = "Graphon",
    workflow_version: str = "draft",
    raise_repository_errors: bool = True,
) -> GraphRunOutcome:
    """Run ``graph_kind`` (see :mod:`tests.graphon.demo_graphs`) with graphon's engine, saving through the repos.

    ``tenant_id`` / ``app_id`` must be the ones the repositories were built for (Dify binds repositories to
    them; the entities carry neither). ``app_id``, ``user_id``, ``workflow_id`` and ``run_id`` also go into
    the ``sys.*`` variables, so the saved run inputs hold them as Dify's do. ``name`` is the start node's
    input: non-empty takes the if-else's ``true`` branch (greet), empty takes ``false`` (fallback).

    A failing, partial or aborted run is not an error here: the outcome holds the final run and, for a failed
    one, ``engine_error``. Repository exceptions raised inside the engine are re-raised afterwards as an
    ``ExceptionGroup`` unless ``raise_repository_errors`` is false.
    """
    run_id = run_id or str(uuid.uuid4())
    workflow_id = workflow_id or str(uuid.uuid4())
    graph_config = build_graph_config(graph_kind)
    user_inputs = {"name": name}

    pool = VariablePool()
    system_variables: dict[str, Any] = {
        "files": [],
        "user_id": user_id,
        "app_id": app_id,
        "workflow_id": workflow_id,
        "workflow_run_id": run_id,
        "timestamp": int(datetime.now(UTC).timestamp()),
    }
    for key, value in system_variables.items():
        pool.add(("sys", key), value)
    for key, value in user_inputs.items():
        pool.add((START_NODE_ID, key), value)

    runtime_state = RuntimeState(workflow_id=workflow_id, variable_pool=pool, start_at=time.time())
    init_params = InitParams(
        workflow_id=workflow_id,
        graph_config=graph_config,
        run_context={"tenant_id": tenant_id, "app_id": app_id, "user_id": user_id},
        call_depth=0,
    )
    # "aborted": the code node requests the abort as it starts and is held RUNNING until the run has stopped.
    gate = GatedPythonExecutor() if graph_kind == "aborted" else None
    factory = LocalNodeFactory(init_params=init_params, runtime_state=runtime_state, code_executor=gate)
    graph = Graph.init(graph_config=graph_config, node_factory=factory, root_node_id=START_NODE_ID)
    driver = PersistenceDriver(
        run_repo,
        node_repo,
        tenant_id=tenant_id,
        app_id=app_id,
        workflow_id=workflow_id,
        graph_data=graph_config,
        user_inputs=user_inputs,
        workflow_version=workflow_version,
    )
    # One worker: node start order (and so ``index``) is the graph's order, run after run.
    engine = Engine(graph=graph, runtime_state=runtime_state, workers=1)
    engine.add_layer(driver)
    if gate is not None:
        gate.on_enter = lambda: engine.request_abort(ABORT_REASON)

    engine_error: str | None = None
    try:
        for event in engine.run():
            if gate is not None and isinstance(event, GraphRunAbortedEvent):
                gate.release.set()
    except Exception as error:  # graphon re-raises the failure after emitting GraphRunFailedEvent
        engine_error = str(error)
    finally:
        if gate is not None:
            gate.release.set()

    if driver.errors and raise_repository_errors:
        raise ExceptionGroup(f"repository calls failed during run {run_id}", driver.errors)
    execution = driver.workflow_execution
    if execution is None:
        raise RuntimeError(f"run {run_id}: the engine never reported GraphRunStartedEvent ({engine_error})")
    return GraphRunOutcome(
        graph_kind=graph_kind,
        run_id=run_id,
        tenant_id=tenant_id,
        app_id=app_id,
        workflow_id=workflow_id,
        user_id=user_id,
        execution=execution.model_copy(deep=True),
        node_executions=tuple(node.model_copy(deep=True) for node in driver.node_executions),
        event_names=tuple(driver.event_names),
        calls=tuple(driver.calls),
        engine_error=engine_error,
        graph_config=graph_config,
    )
