"""The engine driver runs real graphon workflows and saves them in the order Dify's persistence layer does.

Followed: ``api/core/app/workflow/layers/persistence.py`` (langgenius/dify @ 7b95e300c7de,
``WorkflowPersistenceLayer``) for the calls and their order; graphon 0.8.0 ``graphon/engine/engine.py`` for the
engine's events (a failed run emits ``GraphRunFailedEvent``, then ``Engine.run`` raises).
"""

from __future__ import annotations

from dataclasses import dataclass

import jinja2
import pytest
from graphon.entities import WorkflowNodeExecution
from graphon.enums import (
    BuiltinNodeTypes,
    ErrorStrategy,
    WorkflowExecutionStatus,
    WorkflowNodeExecutionMetadataKey,
    WorkflowNodeExecutionStatus,
)

from tests.graphon.demo_graphs import (
    ABORT_REASON,
    DEFAULT_GREETING,
    END_FALLBACK_NODE_ID,
    END_NODE_ID,
    FALLBACK_NODE_ID,
    FALLBACK_TEMPLATE,
    GREET_NODE_ID,
    GREETING_TEMPLATE,
    IF_ELSE_NODE_ID,
    MAX_RETRIES,
    START_NODE_ID,
    GraphKind,
    expected_greet_error,
    expected_path,
)
from tests.graphon.dify_helpers import RETRY_HISTORY_PROCESS_DATA_KEY
from tests.graphon.engine_driver import GraphRunOutcome, RepositoryCall, run_graph
from tests.graphon.recording_repositories import CallLog, RecordingNodeRepository, RecordingRunRepository

ALL_KINDS = ["ok", "fails", "partial", "retried", "aborted"]
TENANT_ID = "tenant-graphon"
APP_ID = "app-graphon"


@dataclass
class Recorded:
    outcome: GraphRunOutcome
    runs: RecordingRunRepository
    nodes: RecordingNodeRepository
    log: CallLog


def _run(kind: GraphKind, *, name: str = "Graphon") -> Recorded:
    log = CallLog()
    runs, nodes = RecordingRunRepository(log), RecordingNodeRepository(log)
    outcome = run_graph(kind, runs, nodes, tenant_id=TENANT_ID, app_id=APP_ID, name=name)
    return Recorded(outcome, runs, nodes, log)


def _expected_calls(outcome: GraphRunOutcome) -> list[RepositoryCall]:
    """persistence.py call order for a run whose nodes ran one after another:

    run ``save`` (running); per node ``save`` (running), ``save`` + ``save_execution_data`` per retry (retry),
    ``save`` + ``save_execution_data`` (final) -- or, for a node still running when the run failed or stopped
    (it never reported a result, so its inputs are unset), one ``save`` (failed); last the run ``save`` (final).
    """
    retry = WorkflowNodeExecutionStatus.RETRY.value
    calls = [RepositoryCall("run", "save", outcome.run_id, WorkflowExecutionStatus.RUNNING.value)]
    for node in outcome.node_executions:
        calls.append(RepositoryCall("node", "save", node.id, WorkflowNodeExecutionStatus.RUNNING.value))
        for _ in (node.process_data or {}).get(RETRY_HISTORY_PROCESS_DATA_KEY, []):
            calls.append(RepositoryCall("node", "save", node.id, retry))
            calls.append(RepositoryCall("node", "save_execution_data", node.id, retry))
        calls.append(RepositoryCall("node", "save", node.id, node.status.value))
        if node.inputs is not None:
            calls.append(RepositoryCall("node", "save_execution_data", node.id, node.status.value))
    calls.append(RepositoryCall("run", "save", outcome.run_id, outcome.execution.status.value))
    return calls


def test_ok_graph_succeeds_with_the_rendered_template_in_the_run_outputs() -> None:
    # persistence.py _handle_graph_run_succeeded: outputs from the event, status, finished_at, total_steps.
    recorded = _run("ok")
    outcome, runs, nodes = recorded.outcome, recorded.runs, recorded.nodes
    rendered = jinja2.Template(GREETING_TEMPLATE).render(name="Graphon")

    run = runs.runs[outcome.run_id]
    assert run.status == WorkflowExecutionStatus.SUCCEEDED
    assert run.outputs == {"greeting": rendered}
    assert run.error_message == ""
    assert run.finished_at is not None and run.finished_at >= run.started_at
    assert run.total_steps == len(outcome.node_executions) == 4
    assert run.workflow_id == outcome.workflow_id
    assert run.inputs["name"] == "Graphon"
    assert run.inputs["sys.workflow_run_id"] == outcome.run_id
    assert run.inputs["sys.app_id"] == APP_ID
    assert run.graph == outcome.graph_config
    assert outcome.engine_error is None
    assert outcome.event_names[0] == "GraphRunStartedEvent"
    assert outcome.event_names[-1] == "GraphRunSucceededEvent"

    for node in outcome.node_executions:
        stored = nodes.nodes[node.id]
        assert stored.status == WorkflowNodeExecutionStatus.SUCCEEDED, node.node_id
        assert stored.inputs is not None and stored.outputs is not None, node.node_id
        assert stored.finished_at is not None and stored.elapsed_time >= 0.0
        assert stored.error is None
        assert stored.workflow_execution_id == outcome.run_id
    assert outcome.node(GREET_NODE_ID).inputs == {"name": "Graphon"}
    assert outcome.node(GREET_NODE_ID).outputs == {"output": rendered}
    assert outcome.node(END_NODE_ID).outputs == {"greeting": rendered}
    # workflow_run_outputs.py: a start node's public outputs are its inputs.
    assert outcome.node(START_NODE_ID).outputs == {"name": "Graphon"}


def test_if_else_takes_the_true_branch_and_the_skipped_branch_never_starts() -> None:
    recorded = _run("ok")
    outcome, nodes = recorded.outcome, recorded.nodes

    assert outcome.node_ids == expected_path("ok", "Graphon")
    assert outcome.node(IF_ELSE_NODE_ID).outputs == {"result": True, "selected_case_id": "true"}
    started = {copy.node_id for method, copy in nodes.snapshots if method == "save"}
    assert started == set(expected_path("ok", "Graphon"))
    assert FALLBACK_NODE_ID not in started and END_FALLBACK_NODE_ID not in started
    assert outcome.event_names.count("GraphEdgeSkippedEvent") == 2


def test_empty_name_takes_the_false_branch() -> None:
    recorded = _run("ok", name="")
    outcome, runs = recorded.outcome, recorded.runs

    assert outcome.node_ids == expected_path("ok", "")
    assert outcome.node(IF_ELSE_NODE_ID).outputs == {"result": False, "selected_case_id": "false"}
    assert runs.runs[outcome.run_id].outputs == {"greeting": FALLBACK_TEMPLATE}
    assert GREET_NODE_ID not in outcome.node_ids and END_NODE_ID not in outcome.node_ids


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_node_indexes_count_from_one_in_start_order(kind: GraphKind) -> None:
    # persistence.py _handle_node_started: index=self._next_node_sequence(), created_at=event.start_at.
    recorded = _run(kind)
    outcome, nodes = recorded.outcome, recorded.nodes

    first_saves = [copy for method, copy in nodes.snapshots if method == "save" and copy.status == "running"]
    assert [copy.index for copy in first_saves] == list(range(1, len(outcome.node_executions) + 1))
    assert [copy.node_id for copy in first_saves] == list(outcome.node_ids)
    created = [copy.created_at for copy in first_saves]
    assert created == sorted(created)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_call_sequence_matches_the_persistence_layer(kind: GraphKind) -> None:
    recorded = _run(kind)
    outcome, runs, nodes = recorded.outcome, recorded.runs, recorded.nodes

    assert recorded.log.calls == _expected_calls(outcome) == list(outcome.calls)
    # What the repositories hold last is what the outcome reports, field by field.
    assert runs.runs[outcome.run_id].model_dump() == outcome.execution.model_dump()
    for node in outcome.node_executions:
        assert nodes.nodes[node.id].model_dump() == node.model_dump()
    assert [n.model_dump() for n in nodes.get_by_workflow_execution(outcome.run_id)] == [
        n.model_dump() for n in outcome.node_executions
    ]


def test_a_node_is_first_saved_running_without_payloads() -> None:
    # persistence.py _handle_node_started: RUNNING, metadata {ITERATION_ID, LOOP_ID}, payloads not set yet.
    recorded = _run("ok")
    outcome, nodes = recorded.outcome, recorded.nodes

    for node in outcome.node_executions:
        first = nodes.first_snapshot(node.id)
        assert first.status == WorkflowNodeExecutionStatus.RUNNING
        assert first.inputs is None and first.outputs is None and first.finished_at is None
        assert first.metadata == {
            WorkflowNodeExecutionMetadataKey.ITERATION_ID: None,
            WorkflowNodeExecutionMetadataKey.LOOP_ID: None,
        }
        assert first.node_execution_id == first.id == node.id
        assert (first.index, first.created_at, first.title) == (node.index, node.created_at, node.title)
    assert outcome.node(GREET_NODE_ID).node_type == BuiltinNodeTypes.TEMPLATE_TRANSFORM


def test_failing_template_fails_the_node_and_the_run_with_the_jinja2_error() -> None:
    # persistence.py _handle_node_failed / _handle_graph_run_failed: error on both, FAILED on both.
    recorded = _run("fails")
    outcome, runs, nodes = recorded.outcome, recorded.runs, recorded.nodes
    message = expected_greet_error("fails", "Graphon")

    run = runs.runs[outcome.run_id]
    assert run.status == WorkflowExecutionStatus.FAILED
    assert run.error_message == message
    assert run.finished_at is not None
    assert run.total_steps == 3
    assert outcome.engine_error == message
    assert outcome.event_names[-2:] == ("NodeRunFailedEvent", "GraphRunFailedEvent")

    failed = nodes.nodes[outcome.node(GREET_NODE_ID).id]
    assert failed.status == WorkflowNodeExecutionStatus.FAILED
    assert failed.error == message
    assert failed.inputs == {"name": "Graphon"}
    assert failed.finished_at is not None
    assert outcome.node_ids == expected_path("fails", "Graphon")
    for node_id in (START_NODE_ID, IF_ELSE_NODE_ID):
        assert outcome.node(node_id).status == WorkflowNodeExecutionStatus.SUCCEEDED
    assert all(node.status != WorkflowNodeExecutionStatus.RUNNING for node in nodes.nodes.values())


def test_default_value_strategy_ends_the_node_in_exception_and_the_run_partial_succeeded() -> None:
    # persistence.py _handle_node_exception / _handle_graph_run_partial_succeeded; graphon 0.8
    # engine/event/node_failure.py _handle_default_value (outputs = defaults + error_message + error_type).
    recorded = _run("partial")
    outcome, runs, nodes = recorded.outcome, recorded.runs, recorded.nodes
    message = expected_greet_error("partial", "Graphon")

    run = runs.runs[outcome.run_id]
    assert run.status == WorkflowExecutionStatus.PARTIAL_SUCCEEDED
    assert run.exceptions_count == 1
    assert run.outputs == {"greeting": DEFAULT_GREETING}
    assert outcome.engine_error is None
    greet = nodes.nodes[outcome.node(GREET_NODE_ID).id]
    assert greet.status == WorkflowNodeExecutionStatus.EXCEPTION
    assert greet.error == message
    assert greet.outputs is not None and greet.outputs["output"] == DEFAULT_GREETING
    assert greet.outputs["error_message"] == message
    assert greet.metadata == {WorkflowNodeExecutionMetadataKey.ERROR_STRATEGY: ErrorStrategy.DEFAULT_VALUE}
    assert outcome.node(END_NODE_ID).status == WorkflowNodeExecutionStatus.SUCCEEDED


def test_a_retried_node_is_saved_as_retry_with_its_attempt_in_process_data_then_failed() -> None:
    # persistence.py _handle_node_retry + _append_retry_history (core/app/workflow/retry_history.py), then
    # _handle_node_failed keeping the history (_merge_retry_history).
    recorded = _run("retried")
    outcome, runs, nodes = recorded.outcome, recorded.runs, recorded.nodes
    message = expected_greet_error("retried", "Graphon")

    assert outcome.event_names.count("NodeRunRetryEvent") == MAX_RETRIES
    greet_id = outcome.node(GREET_NODE_ID).id
    retry_saves = [copy for method, copy in nodes.snapshots if copy.id == greet_id and copy.status == "retry"]
    assert [method for method, copy in nodes.snapshots if copy.id == greet_id] == [
        "save",
        *["save", "save_execution_data"] * MAX_RETRIES,
        "save",
        "save_execution_data",
    ]
    assert retry_saves and all(copy.error == message for copy in retry_saves)
    final = nodes.nodes[greet_id]
    assert final.status == WorkflowNodeExecutionStatus.FAILED
    assert final.error == message
    assert final.node_type == BuiltinNodeTypes.CODE
    history = (final.process_data or {})[RETRY_HISTORY_PROCESS_DATA_KEY]
    assert [attempt["retry_index"] for attempt in history] == list(range(1, MAX_RETRIES + 1))
    assert history[0]["error"] == message
    assert history[0]["inputs"] == {"name": "Graphon"}
    assert runs.runs[outcome.run_id].status == WorkflowExecutionStatus.FAILED
    assert runs.runs[outcome.run_id].error_message == message


def test_an_aborted_run_is_stopped_and_its_running_node_saved_failed() -> None:
    # persistence.py _handle_graph_run_aborted + _fail_running_node_executions (save only, no execution data).
    recorded = _run("aborted")
    outcome, runs, nodes = recorded.outcome, recorded.runs, recorded.nodes

    run = runs.runs[outcome.run_id]
    assert run.status == WorkflowExecutionStatus.STOPPED
    assert ABORT_REASON in run.error_message
    assert run.finished_at is not None
    # greet started and never finished: the abort is the next (and last) event.
    assert outcome.event_names[-2:] == ("NodeRunStartedEvent", "GraphRunAbortedEvent")
    greet = nodes.nodes[outcome.node(GREET_NODE_ID).id]
    assert greet.status == WorkflowNodeExecutionStatus.FAILED
    assert greet.error == run.error_message
    assert greet.finished_at is not None and greet.elapsed_time >= 0.0
    assert greet.inputs is None and greet.outputs is None
    assert [method for method, copy in nodes.snapshots if copy.id == greet.id] == ["save", "save"]
    for node_id in (START_NODE_ID, IF_ELSE_NODE_ID):
        assert outcome.node(node_id).status == WorkflowNodeExecutionStatus.SUCCEEDED


class _BrokenNodeRepository(RecordingNodeRepository):
    def save_execution_data(self, execution: WorkflowNodeExecution) -> None:
        raise OSError("log store unavailable")


def test_repository_errors_are_raised_after_the_run() -> None:
    # graphon's EventStream logs and swallows layer errors; the driver must not hide them from a test.
    log = CallLog()
    with pytest.raises(ExceptionGroup) as caught:
        run_graph("ok", RecordingRunRepository(log), _BrokenNodeRepository(log), tenant_id=TENANT_ID, app_id=APP_ID)

    assert {type(error) for error in caught.value.exceptions} == {OSError}
    assert len(caught.value.exceptions) == 4
    assert log.calls[-1] == RepositoryCall("run", "save", log.calls[0].entity_id, "succeeded")
