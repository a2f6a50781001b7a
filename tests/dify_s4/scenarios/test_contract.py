"""Dify's storage contract through the S4 factories, with the package wired in.

Each test follows the Dify test of the same name in
``api/tests/unit_tests/repositories/workflow/storage_contracts/test_behavior.py`` (langgenius/dify
7b95e300), driven through ``run_writer()`` / ``node_writer()`` / ``runs()`` / ``nodes()`` exactly as
Dify's harness builds them; ``settle()`` waits until the write pipeline delivered to the log store.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from models.enums import WorkflowRunTriggeredFrom
from models.workflow import WorkflowNodeExecutionModel

from flask_difylogstore.dify import compat
from flask_difylogstore.dify.entities import OrderConfig

from .harness import START, S4Storage, node, run

RunStatus = compat.WorkflowExecutionStatus
NodeStatus = compat.WorkflowNodeExecutionStatus


def test_run_round_trip_preserves_business_fields(storage: S4Storage) -> None:
    expected = run()
    storage.run_writer().save(expected)
    storage.settle()
    actual = storage.runs().get_workflow_run_by_id("tenant-1", "app-1", expected.id_)
    assert actual is not None
    assert actual.inputs_dict == expected.inputs
    assert actual.outputs_dict == expected.outputs
    assert actual.graph_dict == expected.graph
    assert actual.status == expected.status
    assert actual.exceptions_count == expected.exceptions_count
    assert actual.total_tokens == expected.total_tokens
    assert actual.total_steps == expected.total_steps
    assert actual.elapsed_time == 5
    assert actual.created_at == expected.started_at
    assert actual.finished_at == expected.finished_at
    assert (actual.tenant_id, actual.app_id, actual.created_by) == ("tenant-1", "app-1", "actor-1")


def test_updates_and_redelivery_return_one_latest_run(storage: S4Storage) -> None:
    writer = storage.run_writer()
    initial = run().model_copy(update={"status": RunStatus.RUNNING, "finished_at": None, "outputs": {}})
    writer.save(initial)
    writer.save(run())
    writer.save(run())
    storage.settle()
    actual = storage.runs().get_workflow_run_by_id("tenant-1", "app-1", "run-1")
    assert actual is not None
    assert actual.status == RunStatus.SUCCEEDED
    page = storage.runs().get_paginated_workflow_runs("tenant-1", "app-1", WorkflowRunTriggeredFrom.APP_RUN)
    assert [item.id for item in page.data] == ["run-1"]
    counts = storage.runs().get_workflow_runs_count("tenant-1", "app-1", "app-run")
    assert {k: counts[k] for k in ("total", "running", "succeeded", "failed", "stopped", "partial-succeeded")} == {
        "total": 1,
        "running": 0,
        "succeeded": 1,
        "failed": 0,
        "stopped": 0,
        "partial-succeeded": 0,
    }
    assert storage.runs().get_workflow_runs_count("tenant-1", "app-1", "app-run", status="running")["total"] == 0
    running = storage.runs().get_paginated_workflow_runs(
        "tenant-1", "app-1", WorkflowRunTriggeredFrom.APP_RUN, status="running"
    )
    assert list(running.data) == []


def test_run_lookups_and_lists_are_scoped(storage: S4Storage) -> None:
    storage.run_writer().save(run())
    storage.run_writer(tenant="tenant-2").save(run("foreign-tenant"))
    storage.run_writer(app="app-2").save(run("foreign-app"))
    storage.run_writer(trigger=WorkflowRunTriggeredFrom.DEBUGGING).save(run("debug"))
    storage.settle()
    runs = storage.runs()
    assert runs.get_workflow_run_by_id("tenant-2", "app-1", "run-1") is None
    assert runs.get_workflow_run_by_id("tenant-1", "app-2", "run-1") is None
    assert runs.get_workflow_run_by_id_and_tenant_id("tenant-2", "run-1") is None
    found = runs.get_workflow_run_by_id_and_tenant_id("tenant-1", "run-1")
    assert found is not None and (found.tenant_id, found.app_id) == ("tenant-1", "app-1")
    assert runs.get_workflow_run_by_id_without_tenant("missing") is None
    assert runs.get_workflow_run_by_id_without_tenant("foreign-tenant").tenant_id == "tenant-2"
    page = runs.get_paginated_workflow_runs("tenant-1", "app-1", WorkflowRunTriggeredFrom.APP_RUN)
    assert [item.id for item in page.data] == ["run-1"]


@pytest.mark.parametrize(("foreign_tenant", "foreign_app"), [("tenant-2", "app-1"), ("tenant-1", "app-2")])
def test_writes_cannot_replace_another_owners_records(
    storage: S4Storage, foreign_tenant: str, foreign_app: str
) -> None:
    storage.run_writer().save(run())
    storage.node_writer().save(node())
    storage.settle()
    # A backend may reject the id collision (Dify's SQL control row raises ValueError) or keep it
    # apart; neither may alter the first owner's data.
    writes: tuple[Callable[[], None], ...] = (
        lambda: storage.run_writer(tenant=foreign_tenant, app=foreign_app).save(
            run().model_copy(update={"outputs": {"foreign": True}})
        ),
        lambda: storage.node_writer(tenant=foreign_tenant, app=foreign_app).save(
            node().model_copy(update={"outputs": {"foreign": True}})
        ),
        lambda: storage.node_writer(tenant=foreign_tenant, app=foreign_app).save_execution_data(
            node().model_copy(update={"outputs": {"foreign": True}})
        ),
    )
    for write in writes:
        try:
            write()
            storage.settle()
        except ValueError:
            pass
    actual_run = storage.runs().get_workflow_run_by_id("tenant-1", "app-1", "run-1")
    actual_nodes = storage.nodes().get_executions_by_workflow_run("tenant-1", "app-1", "run-1")
    assert actual_run is not None
    assert actual_run.outputs_dict == run().outputs
    assert len(actual_nodes) == 1
    assert actual_nodes[0].outputs_dict == node().outputs


def test_pagination_has_stable_tie_breaking_and_validates_cursor(storage: S4Storage) -> None:
    for id in ("run-1", "run-2", "run-3"):
        storage.run_writer().save(run(id))
    storage.settle()
    runs = storage.runs()
    first = runs.get_paginated_workflow_runs("tenant-1", "app-1", WorkflowRunTriggeredFrom.APP_RUN, limit=2)
    assert first.has_more is True
    assert [item.id for item in first.data] == ["run-3", "run-2"]
    second = runs.get_paginated_workflow_runs(
        "tenant-1", "app-1", WorkflowRunTriggeredFrom.APP_RUN, limit=2, last_id=first.data[-1].id
    )
    assert [item.id for item in second.data] == ["run-1"]
    assert second.has_more is False
    with pytest.raises(ValueError):
        runs.get_paginated_workflow_runs("tenant-2", "app-1", WorkflowRunTriggeredFrom.APP_RUN, last_id="run-1")


def test_run_counts_honor_time_range(storage: S4Storage) -> None:
    storage.run_writer().save(run("old", start=START - timedelta(days=10)))
    storage.run_writer().save(run("recent"))
    storage.settle()
    assert storage.runs().get_workflow_runs_count("tenant-1", "app-1", "app-run", time_range="7d")["total"] == 1
    assert storage.runs().get_workflow_runs_count("tenant-1", "app-1", "app-run")["total"] == 2


def test_node_details_and_history_preserve_payload_and_owner(storage: S4Storage) -> None:
    expected = node()
    storage.node_writer().save(expected)
    storage.settle()
    nodes = storage.nodes()
    actual = nodes.get_execution_by_id(expected.id, "tenant-1")
    assert actual is not None
    assert actual.inputs_dict == expected.inputs
    assert actual.outputs_dict == expected.outputs
    assert nodes.load_full_process_data(actual) == expected.process_data
    assert actual.created_at == expected.created_at
    assert actual.finished_at == expected.finished_at
    assert actual.node_execution_id == expected.node_execution_id
    assert nodes.get_execution_by_id(expected.id, "tenant-2") is None
    assert list(nodes.get_executions_by_workflow_run("tenant-2", "app-1", "run-1")) == []
    assert list(nodes.get_executions_by_workflow_run("tenant-1", "app-2", "run-1")) == []


def test_node_updates_and_order_are_shared_by_fresh_readers(storage: S4Storage) -> None:
    writer = storage.node_writer()
    writer.save(node().model_copy(update={"status": NodeStatus.RUNNING, "outputs": {}}))
    writer.save(node("execution-2", index=2))
    writer.save(node())
    writer.save(node())
    storage.settle()
    actual = storage.nodes().get_executions_by_workflow_run("tenant-1", "app-1", "run-1")
    assert [item.id for item in actual] == ["execution-1", "execution-2"]
    assert all(item.status == NodeStatus.SUCCEEDED for item in actual)
    domain = storage.node_writer().get_by_workflow_execution("run-1", OrderConfig(["index"], "asc"))
    assert [item.id for item in domain] == ["execution-1", "execution-2"]
    latest = storage.nodes().get_node_last_execution("tenant-1", "app-1", "workflow-1", "node-1")
    assert latest is not None
    assert latest.id == "execution-2"


def test_paused_nodes_remain_in_snapshots_but_not_completed_history(storage: S4Storage) -> None:
    writer = storage.node_writer()
    writer.save(node().model_copy(update={"status": NodeStatus.PAUSED}))
    storage.settle()
    detail = storage.nodes().get_executions_by_workflow_run("tenant-1", "app-1", "run-1")
    assert len(detail) == 1
    assert detail[0].status == NodeStatus.PAUSED
    assert list(storage.node_writer().get_by_workflow_execution("run-1")) == []
    assert list(writer.get_by_workflow_execution("run-1")) == []
    snapshots = storage.nodes().get_execution_snapshots_by_workflow_run(
        "tenant-1", "app-1", "workflow-1", "workflow-run", "run-1"
    )
    assert len(snapshots) == 1
    assert snapshots[0].status == "paused"


def test_caller_row_is_durable_before_async_delivery(storage: S4Storage) -> None:
    expected = node().model_copy(update={"status": NodeStatus.RUNNING})
    storage.node_writer().save_synchronously(expected)
    # The relational caller row Agent participant allocation reads exists when the call returns,
    # whatever the execution-log backend (no settle).
    with storage.sessions() as session:
        actual = session.get(WorkflowNodeExecutionModel, expected.id)
        assert actual is not None
        assert (actual.tenant_id, actual.app_id, actual.workflow_id) == ("tenant-1", "app-1", "workflow-1")
        assert actual.status == NodeStatus.RUNNING
    # And the log store has the node too.
    storage.settle()
    logged = storage.nodes().get_execution_by_id(expected.id, "tenant-1")
    assert logged is not None and logged.status == NodeStatus.RUNNING


def test_a_caller_row_and_later_log_snapshots_read_as_one_node(storage: S4Storage) -> None:
    """After ``save_synchronously`` the SQL caller row stays as written while the log store moves on; every
    read (also with dual read on, where both stores answer) shows the node once, in its latest state."""
    writer = storage.node_writer()
    started = node().model_copy(update={"status": NodeStatus.RUNNING, "finished_at": None, "outputs": None})
    writer.save_synchronously(started)
    writer.save(node())
    writer.save_execution_data(node())
    storage.settle()
    details = storage.nodes().get_executions_by_workflow_run("tenant-1", "app-1", "run-1")
    assert [(d.id, d.status, d.outputs_dict) for d in details] == [("execution-1", "succeeded", node().outputs)]
    domain = storage.node_writer().get_by_workflow_execution("run-1")
    assert [(d.id, d.status) for d in domain] == [("execution-1", NodeStatus.SUCCEEDED)]
    latest = storage.nodes().get_node_last_execution("tenant-1", "app-1", "workflow-1", "node-1")
    assert latest is not None and latest.status == NodeStatus.SUCCEEDED


def test_latest_version_is_not_limited_to_first_hundred_logs(storage: S4Storage) -> None:
    writer = storage.run_writer()
    for tokens in range(105):
        writer.save(run().model_copy(update={"total_tokens": tokens}))
    storage.settle()
    actual = storage.runs().get_workflow_run_by_id("tenant-1", "app-1", "run-1")
    assert actual is not None
    assert actual.total_tokens == 104


@pytest.mark.parametrize("deliver_before_update", [False, True])
@pytest.mark.parametrize("status", ["running", "retry", "succeeded"])
def test_data_updates_are_visible_without_resaving_execution(
    storage: S4Storage, deliver_before_update: bool, status: str
) -> None:
    expected = node().model_copy(update={"status": NodeStatus(status)})
    writer = storage.node_writer()
    writer.save(expected)
    if deliver_before_update:
        storage.settle()
    changed = expected.model_copy(update={"outputs": {"changed": True}, "process_data": {"extra": "value"}})
    writer.save_execution_data(changed)
    storage.settle()
    actual = storage.nodes().get_execution_by_id(expected.id, "tenant-1")
    assert actual is not None
    assert actual.outputs_dict == changed.outputs
    assert storage.nodes().load_full_process_data(actual) == changed.process_data


def test_unfinished_node_is_readable(storage: S4Storage) -> None:
    storage.node_writer().save(node().model_copy(update={"status": NodeStatus.RUNNING, "finished_at": None}))
    storage.settle()
    actual = storage.nodes().get_execution_by_id("execution-1", "tenant-1")
    assert actual is not None
    assert actual.finished_at is None


@pytest.mark.parametrize(("timezone", "date"), [("UTC", "2026-04-01"), ("Asia/Shanghai", "2026-04-02")])
def test_statistics_use_run_time_timezone_and_latest_values(storage: S4Storage, timezone: str, date: str) -> None:
    start = datetime(2026, 4, 1, 20)
    # Three runs start on the same local date; replayed terminal writes must not inflate token usage,
    # and active runs count too.
    writer = storage.run_writer()
    writer.save(run("a", start=start).model_copy(update={"total_tokens": 2}))
    writer.save(run("a", start=start).model_copy(update={"total_tokens": 7}))
    writer.save(run("a", start=start).model_copy(update={"total_tokens": 7}))
    writer.save(run("b", start=start).model_copy(update={"total_tokens": 3}))
    storage.run_writer(actor="actor-2").save(
        run("c", start=start).model_copy(update={"total_tokens": 1, "status": RunStatus.RUNNING, "finished_at": None})
    )
    writer.save(run("outside", start=start - timedelta(days=2)))
    storage.run_writer(tenant="tenant-2").save(run("foreign", start=start))
    storage.settle()
    args = ("tenant-1", "app-1", "app-run", start - timedelta(hours=1), start + timedelta(hours=1), timezone)
    reader = storage.runs()
    assert reader.get_daily_runs_statistics(*args) == [{"date": date, "runs": 3}]
    assert reader.get_daily_terminals_statistics(*args) == [{"date": date, "terminal_count": 2}]
    assert reader.get_daily_token_cost_statistics(*args) == [{"date": date, "token_count": 11}]
    assert reader.get_average_app_interaction_statistics(*args) == [{"date": date, "interactions": 1.5}]


def test_snapshots_and_details_preserve_scope_and_data(storage: S4Storage) -> None:
    expected = node()
    storage.node_writer().save(expected)
    storage.node_writer(app="app-2").save(node("foreign-app"))
    storage.node_writer(tenant="tenant-2").save(node("foreign-tenant"))
    storage.settle()
    reader = storage.nodes()
    snapshots = reader.get_execution_snapshots_by_workflow_run(
        "tenant-1", "app-1", "workflow-1", "workflow-run", "run-1"
    )
    assert [snapshot.execution_id for snapshot in snapshots] == [expected.node_execution_id]
    assert (
        list(
            reader.get_execution_snapshots_by_workflow_run(
                "tenant-1", "app-1", "wrong-workflow", "workflow-run", "run-1"
            )
        )
        == []
    )
    assert (
        list(reader.get_execution_snapshots_by_workflow_run("tenant-1", "app-1", "workflow-1", "single-step", "run-1"))
        == []
    )
    details = reader.get_executions_by_workflow_run(tenant_id="tenant-1", app_id="app-1", workflow_run_id="run-1")
    assert len(details) == 1
    assert details[0].id == expected.id
    assert reader.load_full_process_data(details[0]) == expected.process_data


@pytest.mark.parametrize("storage", [("logstore", "true")], indirect=True)
def test_node_history_is_not_silently_truncated_at_remote_page_size(storage: S4Storage) -> None:
    writer = storage.node_writer()
    for index in range(1001):
        writer.save(node(f"execution-{index}", index=index))
    storage.settle()
    details = storage.nodes().get_executions_by_workflow_run("tenant-1", "app-1", "run-1")
    assert len(details) == 1001
    assert len({execution.id for execution in details}) == 1001
    history = storage.node_writer().get_by_workflow_execution("run-1", OrderConfig(["index"], "asc"))
    assert [execution.index for execution in history] == list(range(1001))


@pytest.mark.parametrize("status", ["succeeded", "failed", "exception", "stopped"])
def test_a_delayed_snapshot_cannot_undo_a_finished_node(storage: S4Storage, status: str) -> None:
    """Follows ``test_celery_reordered_and_repeated_deliveries_preserve_latest_state`` (and the S4 port's
    "delayed/repeated snapshots must not undo that progress"): here the stale RUNNING snapshot is saved after
    the final one, which the package's versions rank below any final status."""
    writer = storage.node_writer()
    running = node().model_copy(update={"status": NodeStatus.RUNNING, "finished_at": None, "outputs": {}})
    writer.save(running)
    writer.save(node().model_copy(update={"status": NodeStatus(status), "outputs": {"answer": "latest"}}))
    storage.settle()
    writer.save(running)
    storage.settle()
    actual = storage.nodes().get_execution_by_id("execution-1", "tenant-1")
    assert actual is not None
    assert actual.status == status
    assert actual.outputs_dict == {"answer": "latest"}
    assert [n.status for n in storage.node_writer().get_by_workflow_execution("run-1")] == [NodeStatus(status)]


@pytest.mark.parametrize("deliver_pause_first", [False, True])
def test_a_resumed_node_is_read_as_its_latest_attempt(storage: S4Storage, deliver_pause_first: bool) -> None:
    """Follows ``test_celery_resumed_node_rejects_pre_pause_deliveries``: a node paused, then run again with a
    later ``created_at`` under the same id, is one node in its resumed attempt everywhere it is read."""
    writer = storage.node_writer()
    paused = node().model_copy(update={"status": NodeStatus.PAUSED})
    resumed = node().model_copy(
        update={
            "status": NodeStatus.RUNNING,
            "created_at": START + timedelta(minutes=1),
            "finished_at": None,
            "outputs": {},
        }
    )
    finished = resumed.model_copy(
        update={"status": NodeStatus.SUCCEEDED, "finished_at": START + timedelta(minutes=2), "outputs": {"a": "r"}}
    )
    writer.save(paused)
    if deliver_pause_first:
        storage.settle()
    writer.save(resumed)
    writer.save(finished)
    storage.settle()
    actual = storage.nodes().get_execution_by_id(paused.id, "tenant-1")
    assert actual is not None
    assert actual.status == NodeStatus.SUCCEEDED
    assert actual.created_at == resumed.created_at
    assert actual.outputs_dict == finished.outputs
    details = storage.nodes().get_executions_by_workflow_run("tenant-1", "app-1", "run-1")
    assert [(d.id, d.created_at, d.status) for d in details] == [(paused.id, resumed.created_at, "succeeded")]
    history = storage.node_writer().get_by_workflow_execution("run-1")
    assert [(h.id, h.created_at) for h in history] == [(paused.id, resumed.created_at)]
