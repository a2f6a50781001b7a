"""Control rows, pauses, migration fallback and outages: the SQL half the newest Dify line keeps.

Follows ``storage_contracts/test_logstore_policies.py`` (dual write and graph policy, the explicit
fallback, a failing control write, control-only updates) and
``storage_contracts/test_regressions.py::test_run_can_pause_and_resume_before_log_delivery``
(langgenius/dify 7b95e300 / ab1d0626).
"""

from __future__ import annotations

import typing as t
from datetime import timedelta

import pytest
import sqlalchemy as sa
from models.workflow import WorkflowNodeExecutionModel, WorkflowPause, WorkflowRun
from repositories.workflow.execution_writer import SQLAlchemyWorkflowExecutionRepository
from repositories.workflow.pause_repository import HumanInputRequired, SchedulingPause
from sqlalchemy import event

from flask_difylogstore.dify import compat
from flask_difylogstore.errors import BackendUnavailableError

from .conftest import Backend, HostFactory
from .harness import S4Storage, node, run

RunStatus = compat.WorkflowExecutionStatus
NodeStatus = compat.WorkflowNodeExecutionStatus
MODES = pytest.mark.parametrize("mode", ["rdbms", "logstore"])


def flags(**values: bool) -> dict[str, str]:
    names = {"dual_write": "LOGSTORE_DUAL_WRITE_ENABLED", "dual_read": "LOGSTORE_DUAL_READ_ENABLED"}
    names["graph"] = "LOGSTORE_ENABLE_PUT_GRAPH_FIELD"
    return {names[key]: str(value).lower() for key, value in values.items()}


@pytest.mark.parametrize("dual_write", [False, True])
@pytest.mark.parametrize("graph", [False, True])
def test_dual_write_and_graph_policy_affect_persisted_data(
    make_host: HostFactory, dual_write: bool, graph: bool
) -> None:
    host = make_host(run_mode="logstore", node_mode="logstore", **flags(dual_write=dual_write, graph=graph))
    with host.app.app_context():
        host.run_writer().save(run())
        host.node_writer().save(node())
        # No settle: the control row is synchronous and this process reads its own writes.
        actual = host.runs().get_workflow_run_by_id("tenant-1", "app-1", "run-1")
        assert actual is not None
        assert actual.graph_dict == (run().graph if graph else {})
        with host.sessions() as session:
            sql_run = session.get(WorkflowRun, "run-1")
            sql_node = session.get(WorkflowNodeExecutionModel, "execution-1")
            assert sql_run is not None, "the workflow_runs control row exists after save()"
            assert sql_run.status == run().status
            assert (sql_node is not None) is dual_write
            assert sql_run.graph_dict == (run().graph if dual_write else {})
            assert sql_run.inputs_dict == (run().inputs if dual_write else {})
            assert sql_run.outputs_dict == (run().outputs if dual_write else {})
            if sql_node is not None:
                assert sql_node.outputs_dict == node().outputs


@MODES
def test_required_control_write_failure_is_propagated(make_host: HostFactory, mode: str) -> None:
    host = make_host(run_mode=mode, node_mode=mode)

    def fail_control_write(_mapper: t.Any, _connection: t.Any, _target: t.Any) -> None:
        raise RuntimeError("control database unavailable")

    with host.app.app_context():
        writer = host.run_writer()
        event.listen(WorkflowRun, "before_insert", fail_control_write)
        try:
            with pytest.raises(RuntimeError, match="control database unavailable"):
                writer.save(run())
        finally:
            event.remove(WorkflowRun, "before_insert", fail_control_write)
        with host.sessions() as session:
            assert session.get(WorkflowRun, "run-1") is None
        host.settle()
        assert host.runs().get_workflow_run_by_id("tenant-1", "app-1", "run-1") is None


def test_caller_row_failure_is_propagated_before_the_log_store_sees_the_node(make_host: HostFactory) -> None:
    """``save_synchronously``: the relational caller row first; its failure reaches the engine."""
    host = make_host()

    def fail_insert(_mapper: t.Any, _connection: t.Any, _target: t.Any) -> None:
        raise RuntimeError("caller row unavailable")

    with host.app.app_context():
        event.listen(WorkflowNodeExecutionModel, "before_insert", fail_insert)
        try:
            with pytest.raises(RuntimeError, match="caller row unavailable"):
                host.node_writer().save_synchronously(node().model_copy(update={"status": NodeStatus.RUNNING}))
        finally:
            event.remove(WorkflowNodeExecutionModel, "before_insert", fail_insert)
        host.settle()
        assert host.nodes().get_execution_by_id("execution-1", "tenant-1") is None


def test_control_only_update_preserves_an_existing_sql_log_copy(make_host: HostFactory) -> None:
    first = make_host(run_mode="logstore", node_mode="logstore", **flags(dual_write=True))
    with first.app.app_context():
        first.run_writer().save(run())
    second = make_host(run_mode="logstore", node_mode="logstore", database=first.database, **flags(dual_write=False))
    with second.app.app_context():
        second.run_writer().save(run().model_copy(update={"total_tokens": 42, "outputs": {"new": "log-only"}}))
        with second.sessions() as session:
            sql_run = session.get(WorkflowRun, "run-1")
            assert sql_run is not None
            assert sql_run.total_tokens == 42
            assert sql_run.outputs_dict == run().outputs
            assert sql_run.graph_dict == run().graph
        second.settle()
        logged = second.runs().get_workflow_run_by_id("tenant-1", "app-1", "run-1")
        assert logged is not None and logged.outputs_dict == {"new": "log-only"} and logged.total_tokens == 42


@pytest.mark.parametrize("human_input", [False, True], ids=["scheduling", "human-input"])
def test_run_can_pause_and_resume_before_log_delivery(storage: S4Storage, human_input: bool) -> None:
    writer = storage.run_writer()
    running = run().model_copy(update={"status": RunStatus.RUNNING, "finished_at": None})
    writer.save(running)
    # No settle: control transactions cannot wait for the log store.
    repo = storage.runs()
    reason = (
        HumanInputRequired(form_id="form-1", node_id="node-1")
        if human_input
        else SchedulingPause(message="waiting for capacity")
    )
    pause = repo.create_workflow_pause(running.id_, "actor-1", "state-1", [reason])
    assert pause.get_state() == b"state-1"
    record = repo.get_pause_record(workspace_id="tenant-1", workflow_run_id=running.id_)
    assert record is not None
    assert record.status == RunStatus.PAUSED
    assert record.paused_at is not None
    assert record.reasons == (reason,)
    assert record.form_tokens == {}
    assert repo.get_pause_record(workspace_id="other-tenant", workflow_run_id=running.id_) is None
    assert repo.get_workflow_pause(running.id_).id == pause.id
    storage.settle()  # delivering the older RUNNING snapshot must not reverse the SQL pause
    with storage.sessions() as session:
        control = session.get(WorkflowRun, running.id_)
        assert control is not None
        assert control.status == RunStatus.PAUSED
    writer.save(running.model_copy(update={"status": RunStatus.PAUSED}))
    resumed = repo.resume_workflow_pause(running.id_, pause)
    assert resumed.resumed_at is not None
    assert resumed.get_state() == b"state-1"
    storage.settle()  # nor may the delayed PAUSED snapshot undo resumption
    record = repo.get_pause_record(workspace_id="tenant-1", workflow_run_id=running.id_)
    assert record is not None
    assert record.status == RunStatus.RUNNING
    repo.delete_workflow_pause(resumed)
    assert repo.get_workflow_pause(running.id_) is None
    writer.save(run())
    storage.settle()
    with storage.sessions() as session:
        control = session.get(WorkflowRun, running.id_)
        assert control is not None
        assert control.status == RunStatus.SUCCEEDED
        assert session.scalars(sa.select(WorkflowPause)).all() == []
    logged = storage.runs().get_workflow_run_by_id("tenant-1", "app-1", running.id_)
    assert logged is not None and logged.status == RunStatus.SUCCEEDED


def test_a_pause_needs_the_control_row(storage: S4Storage) -> None:
    """Dify's pause repository: ``create_workflow_pause`` reads ``workflow_runs`` (``ValueError`` without it)."""
    with pytest.raises(ValueError, match="WorkflowRun not found"):
        storage.runs().create_workflow_pause("never-saved", "actor-1", "state", [SchedulingPause("x")])


def _sql_only_run(host: S4Storage) -> None:
    """A run saved before the migration: in SQL only, through the host's own SQL writer."""
    from models import Account
    from models.enums import WorkflowRunTriggeredFrom

    SQLAlchemyWorkflowExecutionRepository(
        session_factory=host.sessions,
        tenant_id="tenant-1",
        user=Account(id="actor-1", current_tenant_id="tenant-1"),
        app_id="app-1",
        triggered_from=WorkflowRunTriggeredFrom.APP_RUN,
    ).save(run())


@pytest.mark.parametrize("dual_read", [False, True])
@pytest.mark.parametrize("unavailable", [False, True], ids=["not-in-log-store", "unavailable"])
def test_migration_fallback_is_explicit_and_preserves_lookup_scope(
    make_host: HostFactory, backend: Backend, monkeypatch: pytest.MonkeyPatch, dual_read: bool, unavailable: bool
) -> None:
    host = make_host(run_mode="logstore", node_mode="logstore", **flags(dual_read=dual_read))
    with host.app.app_context():
        _sql_only_run(host)
        reader = host.runs()
        calls: dict[str, t.Callable[[], t.Any]] = {
            "scoped": lambda: reader.get_workflow_run_by_id("tenant-1", "app-1", "run-1"),
            "tenant": lambda: reader.get_workflow_run_by_id_and_tenant_id("tenant-1", "run-1"),
            "internal": lambda: reader.get_workflow_run_by_id_without_tenant("run-1"),
        }
        outage = backend.unavailable(host.state, monkeypatch) if unavailable else _nothing()
        with outage:
            for lookup, call in calls.items():
                if unavailable and not dual_read:
                    # Dify raises its transport's error; the package raises BackendUnavailableError (the
                    # memory backend's simulated outage raises RuntimeError itself).
                    expected = RuntimeError if backend.name == "memory" else BackendUnavailableError
                    with pytest.raises(expected):
                        call()
                    continue
                actual = call()
                assert (actual is not None) is dual_read, lookup
                if actual is not None:
                    assert actual.outputs_dict == run().outputs
                assert reader.get_workflow_run_by_id("tenant-2", "app-1", "run-1") is None
                assert reader.get_workflow_run_by_id("tenant-1", "app-2", "run-1") is None
                assert reader.get_workflow_run_by_id_and_tenant_id("tenant-2", "run-1") is None
        if unavailable and dual_read:
            assert host.state.counters.get("dual_read_fallbacks", 0) >= 3, "the outage was not simulated"


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_save_is_accepted_while_the_log_store_is_down(
    make_host: HostFactory, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deliberately unlike Dify's own log store (``test_failed_writes_are_reported_and_do_not_poison_read_cache``
    expects the dispatch error on the engine thread): the package's ``save()`` returns once the record is
    spooled (DESIGN.md, decision 2), and the record reaches the log store when it is back. The control row
    is still written synchronously."""
    host = make_host(run_mode="logstore", node_mode="logstore")
    with host.app.app_context():
        with backend.unavailable(host.state, monkeypatch):
            host.run_writer().save(run())
            host.node_writer().save(node())
            with host.sessions() as session:
                assert session.get(WorkflowRun, "run-1") is not None
            # Pause control does not depend on the log store either.
            running = run("run-2").model_copy(update={"status": RunStatus.RUNNING, "finished_at": None})
            host.run_writer().save(running)
            pause = host.runs().create_workflow_pause("run-2", "actor-1", "state", [SchedulingPause("capacity")])
            record = host.runs().get_pause_record(workspace_id="tenant-1", workflow_run_id="run-2")
            assert record is not None and record.status == RunStatus.PAUSED
            host.runs().resume_workflow_pause("run-2", pause)
        host.settle()
        fresh = host.nodes().get_execution_by_id("execution-1", "tenant-1")
        assert fresh is not None and fresh.outputs_dict == node().outputs
        stored = host.runs().get_workflow_run_by_id("tenant-1", "app-1", "run-1")
        assert stored is not None and stored.outputs_dict == run().outputs


def test_pause_maintenance_and_message_refs_are_answered_by_the_sql_repository(storage: S4Storage) -> None:
    """``prune_pauses`` and ``get_message_refs`` (S4 ``APIWorkflowRunRepository``) reach Dify's SQL repository."""
    storage.run_writer().save(run().model_copy(update={"status": RunStatus.RUNNING, "finished_at": None}))
    repo = storage.runs()
    pause = repo.create_workflow_pause("run-1", "actor-1", "state", [SchedulingPause("capacity")])
    assert list(repo.prune_pauses(pause.paused_at - timedelta(seconds=1), pause.paused_at)) == []
    assert list(repo.prune_pauses(pause.paused_at + timedelta(seconds=1), pause.paused_at)) == [pause.id]
    assert repo.get_workflow_pause("run-1") is None
    assert repo.get_message_refs(app_id="app-1", workflow_run_ids=["run-1"]) == {}
