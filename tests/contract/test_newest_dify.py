"""What Dify's storage-contract suite asserts of every backend on the newest line, on every backend here.

Each test follows a scenario of Dify's ``api/tests/unit_tests/repositories/workflow/storage_contracts/``
(``test_behavior.py``, ``test_logstore_policies.py``; commit 7b95e300 of ``langgenius/dify``), with the
entities built the way its ``entities.py`` builds them, through the classes the package hands Dify
(graphon's where it is installed). The repositories are built the way Dify's newest factories build
them (``session_factory=, tenant_id=, user=, app_id=, triggered_from=``, node writers also ``upload_file=``).
"""

from __future__ import annotations

import typing as t
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flask_difylogstore.dify import compat
from flask_difylogstore.dify.entities import OrderConfig
from flask_difylogstore.repositories import (
    LogStoreAPIWorkflowNodeExecutionRepository,
    LogStoreAPIWorkflowRunRepository,
    LogStoreWorkflowExecutionRepository,
    LogStoreWorkflowNodeExecutionRepository,
)
from tests.contract.conftest import flush, logstore_app

START = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(hours=2)


def new_id() -> str:
    return str(uuid.uuid4())


def run(id_: str, *, start: datetime = START, **update: t.Any) -> t.Any:
    values: dict[str, t.Any] = {
        "id_": id_,
        "workflow_id": "workflow-1",
        "workflow_type": compat.WorkflowType("workflow"),
        "workflow_version": "1",
        "graph": {"nodes": []},
        "inputs": {"question": "契约"},
        "outputs": {"answer": [1, 2]},
        "status": compat.WorkflowExecutionStatus("succeeded"),
        "error_message": "",
        "total_tokens": 17,
        "total_steps": 2,
        "exceptions_count": 3,
        "started_at": start,
        "finished_at": start + timedelta(seconds=5),
    }
    values.update(update)
    return compat.WorkflowExecution(**values)


def node(id_: str, run_id: str, *, index: int = 1, **update: t.Any) -> t.Any:
    values: dict[str, t.Any] = {
        "id": id_,
        "node_execution_id": f"trace-{id_}",
        "workflow_id": "workflow-1",
        "workflow_execution_id": run_id,
        "index": index,
        "node_id": "node-1",
        "node_type": compat.node_type("llm"),
        "title": "Contract node",
        "status": compat.WorkflowNodeExecutionStatus("succeeded"),
        "inputs": {"question": "契约"},
        "outputs": {"answer": [1, 2]},
        "process_data": {"steps": ["one", "two"]},
        "error": None,
        "elapsed_time": 5,
        "created_at": START + timedelta(seconds=index),
        "finished_at": START + timedelta(seconds=index + 5),
    }
    values.update(update)
    return compat.WorkflowNodeExecution(**values)


@dataclass
class User:
    """An account as Dify's newest factories pass it: the tenant comes separately, not from the user."""

    id: str


@dataclass
class Storage:
    """Dify's contract harness, over the package's classes."""

    tenant: str
    app: str

    def run_writer(self, tenant: str | None = None, app: str | None = None, trigger: str = "app-run") -> t.Any:
        return LogStoreWorkflowExecutionRepository(
            session_factory=None,
            tenant_id=tenant or self.tenant,
            user=User("actor-1"),
            app_id=app or self.app,
            triggered_from=trigger,
        )

    def node_writer(self, tenant: str | None = None, app: str | None = None) -> t.Any:
        return LogStoreWorkflowNodeExecutionRepository(
            session_factory=None,
            tenant_id=tenant or self.tenant,
            user=User("actor-1"),
            app_id=app or self.app,
            triggered_from="workflow-run",
            upload_file=lambda **_: None,
        )

    @staticmethod
    def runs() -> t.Any:
        return LogStoreAPIWorkflowRunRepository(session_maker=None)

    @staticmethod
    def nodes() -> t.Any:
        return LogStoreAPIWorkflowNodeExecutionRepository(session_maker=None)


@pytest.fixture
def storage(backend_values: dict[str, t.Any], tmp_path: Path) -> Iterator[Storage]:
    # Fresh owners per test: a backend keeps its data for the whole module.
    with logstore_app(backend_values, tmp_path):
        yield Storage(tenant=new_id(), app=new_id())


def test_writes_cannot_replace_another_owners_records(storage: Storage) -> None:
    """``test_writes_cannot_replace_another_owners_records``: a foreign owner reusing ids changes nothing."""
    run_id, node_id = new_id(), new_id()
    storage.run_writer().save(run(run_id))
    storage.node_writer().save(node(node_id, run_id))
    flush()
    for tenant, app in ((new_id(), storage.app), (storage.tenant, new_id())):
        storage.run_writer(tenant, app).save(run(run_id, outputs={"foreign": True}))
        storage.node_writer(tenant, app).save(node(node_id, run_id, outputs={"foreign": True}))
        storage.node_writer(tenant, app).save_execution_data(node(node_id, run_id, outputs={"foreign": True}))
        flush()
    actual_run = storage.runs().get_workflow_run_by_id(storage.tenant, storage.app, run_id)
    actual_nodes = storage.nodes().get_executions_by_workflow_run(storage.tenant, storage.app, run_id)
    assert actual_run is not None and actual_run.outputs_dict == {"answer": [1, 2]}
    assert [n.outputs_dict for n in actual_nodes] == [{"answer": [1, 2]}]


def test_run_lookups_are_scoped(storage: Storage) -> None:
    """``test_run_lookups_and_lists_are_scoped`` incl. the newest line's ``get_workflow_run_by_id_and_tenant_id``."""
    run_id = new_id()
    storage.run_writer().save(run(run_id))
    flush()
    runs = storage.runs()
    assert runs.get_workflow_run_by_id_and_tenant_id(storage.tenant, run_id).id == run_id
    assert runs.get_workflow_run_by_id_and_tenant_id(new_id(), run_id) is None
    assert runs.get_workflow_run_by_id_and_tenant_id("", run_id) is None
    assert runs.get_workflow_run_by_id(storage.tenant, new_id(), run_id) is None


def test_paused_nodes_remain_in_snapshots_but_not_in_completed_history(storage: Storage) -> None:
    """``test_paused_nodes_remain_in_snapshots_but_not_completed_history``."""
    run_id, node_id = new_id(), new_id()
    writer = storage.node_writer()
    writer.save(node(node_id, run_id, status=compat.WorkflowNodeExecutionStatus("paused")))
    flush()
    detail = storage.nodes().get_executions_by_workflow_run(storage.tenant, storage.app, run_id)
    assert [str(getattr(d.status, "value", d.status)) for d in detail] == ["paused"]
    assert storage.node_writer().get_by_workflow_execution(run_id) == []
    assert writer.get_by_workflow_execution(run_id) == []
    snapshots = storage.nodes().get_execution_snapshots_by_workflow_run(
        storage.tenant, storage.app, "workflow-1", "workflow-run", run_id
    )
    assert [(s.execution_id, s.status, s.node_type) for s in snapshots] == [(f"trace-{node_id}", "paused", "llm")]
    assert (
        storage.nodes().get_execution_snapshots_by_workflow_run(
            storage.tenant, storage.app, "wrong-workflow", "workflow-run", run_id
        )
        == []
    )
    assert (
        storage.nodes().get_execution_snapshots_by_workflow_run(
            storage.tenant, storage.app, "workflow-1", "single-step", run_id
        )
        == []
    )
    # The last-run panel shows results, not a paused attempt.
    assert storage.nodes().get_node_last_execution(storage.tenant, storage.app, "workflow-1", "node-1") is None


def test_resumed_node_replaces_its_paused_snapshot(storage: Storage) -> None:
    """A paused node that resumes (same id, later start) is running, then succeeded — never stuck paused."""
    run_id, node_id = new_id(), new_id()
    writer = storage.node_writer()
    writer.save(node(node_id, run_id, status=compat.WorkflowNodeExecutionStatus("paused")))
    flush()
    resumed_at = START + timedelta(minutes=1)
    writer.save(
        node(node_id, run_id, status=compat.WorkflowNodeExecutionStatus("running"), created_at=resumed_at,
             finished_at=None, outputs={})
    )  # fmt: skip
    writer.save(node(node_id, run_id, created_at=resumed_at, outputs={"answer": "resumed"}))
    flush()
    actual = storage.nodes().get_execution_by_id(node_id, storage.tenant)
    assert str(getattr(actual.status, "value", actual.status)) == "succeeded"
    assert actual.created_at == resumed_at
    assert actual.outputs_dict == {"answer": "resumed"}
    assert [n.id for n in writer.get_by_workflow_execution(run_id)] == [node_id]


def test_node_details_load_full_process_data(storage: Storage) -> None:
    """``test_node_details_and_history_preserve_payload_and_owner``: ``load_full_process_data``, also truncated."""
    run_id, small, large = new_id(), new_id(), new_id()
    big = {"steps": ["x" * 2000 for _ in range(8)]}
    storage.node_writer().save(node(small, run_id))
    storage.node_writer().save(node(large, run_id, index=2, process_data=big))
    flush()
    nodes = storage.nodes()
    small_row = nodes.get_execution_by_id(small, storage.tenant)
    large_row = nodes.get_execution_by_id(large, storage.tenant)
    assert nodes.load_full_process_data(small_row) == {"steps": ["one", "two"]}
    assert large_row.process_data_truncated
    assert nodes.load_full_process_data(large_row) == big
    assert nodes.get_execution_by_id(small, new_id()) is None


def test_history_order_and_last_execution(storage: Storage) -> None:
    """``test_node_updates_and_order_are_shared_by_fresh_readers``."""
    run_id, first, second = new_id(), new_id(), new_id()
    writer = storage.node_writer()
    writer.save(node(first, run_id, status=compat.WorkflowNodeExecutionStatus("running"), outputs={}))
    writer.save(node(second, run_id, index=2))
    writer.save(node(first, run_id))
    flush()
    history = storage.node_writer().get_by_workflow_execution(run_id, OrderConfig(["index"], "asc"))
    assert [n.id for n in history] == [first, second]
    latest = storage.nodes().get_node_last_execution(storage.tenant, storage.app, "workflow-1", "node-1")
    assert latest is not None and latest.id == second


def test_retention_scans_honour_every_filter(storage: Storage) -> None:
    """The newest line's ``get_runs_batch_by_time_range`` filters select exactly, never wider."""
    tenant_a, tenant_b = "a" + new_id()[1:], "b" + new_id()[1:]
    ids = [new_id()[:-1] + digit for digit in "0123456789abcdef"]
    for i, run_id in enumerate(ids):
        tenant = tenant_a if i % 2 == 0 else tenant_b
        workflow = "wf-even" if i % 2 == 0 else "wf-odd"
        storage.run_writer(tenant, storage.app).save(
            run(run_id, start=START + timedelta(seconds=i), workflow_id=workflow)
        )
    flush()
    runs = storage.runs()
    window = (START - timedelta(minutes=1), START + timedelta(minutes=1))
    mine = [tenant_a, tenant_b]

    def scan(**filters: t.Any) -> list[str]:
        rows = runs.get_runs_batch_by_time_range(window[0], window[1], None, 100, tenant_ids=mine, **filters)
        return [str(r.id) for r in rows]

    assert scan() == ids
    assert scan(workflow_ids=["wf-odd"]) == ids[1::2]
    assert scan(tenant_prefixes=["b"]) == ids[1::2]
    assert scan(tenant_prefixes=["a", "b"]) == ids
    assert scan(run_shard_index=1, run_shard_total=4) == [ids[1], ids[5], ids[9], ids[13]]
    assert scan(run_types=[]) == []
    with pytest.raises(ValueError, match="run_shard_total"):
        scan(run_shard_index=1)
    with pytest.raises(ValueError, match="tenant_prefixes"):
        scan(tenant_prefixes=["zz"])
    with pytest.raises(TypeError):
        runs.get_runs_batch_by_time_range(window[0], window[1], None, 100, tenant_ids=mine, app_ids=["x"])
    # Keyset paging continues after the cursor, a few rows at a time.
    page = runs.get_runs_batch_by_time_range(window[0], window[1], None, 3, tenant_ids=mine, workflow_ids=["wf-even"])
    rest = runs.get_runs_batch_by_time_range(
        window[0], window[1], (page[-1].created_at, page[-1].id), 100, tenant_ids=mine, workflow_ids=["wf-even"]
    )
    assert [str(r.id) for r in [*page, *rest]] == ids[::2]
    refs = runs.get_cleanup_refs_batch_by_time_range(
        window[0], window[1], None, 100, tenant_ids=mine, upper_bound=(START + timedelta(seconds=4), ids[4])
    )
    assert [(r.id, r.tenant_id) for r in refs] == [(ids[i], tenant_a if i % 2 == 0 else tenant_b) for i in range(5)]


def test_related_deletes_by_ids(storage: Storage) -> None:
    """``delete_runs_with_related_by_ids`` / ``count_runs_with_related_by_ids`` (Dify's clean-up by ids)."""
    kept, gone = new_id(), new_id()
    for run_id in (kept, gone):
        storage.run_writer().save(run(run_id))
        storage.node_writer().save(node(new_id(), run_id))
    flush()
    runs = storage.runs()
    counts = runs.count_runs_with_related_by_ids([gone])
    assert (counts["runs"], counts["node_executions"]) == (1, 1)
    deleted = runs.delete_runs_with_related_by_ids([gone])
    assert (deleted["runs"], deleted["node_executions"]) == (1, 1)
    assert runs.get_workflow_run_by_id(storage.tenant, storage.app, gone) is None
    assert storage.nodes().get_executions_by_workflow_run(storage.tenant, storage.app, gone) == []
    assert runs.get_workflow_run_by_id(storage.tenant, storage.app, kept) is not None


def test_latest_version_is_not_limited_to_the_first_hundred_logs(storage: Storage) -> None:
    """``test_latest_version_is_not_limited_to_first_hundred_logs``."""
    run_id = new_id()
    writer = storage.run_writer()
    for tokens in range(105):
        writer.save(run(run_id, total_tokens=tokens))
    flush()
    actual = storage.runs().get_workflow_run_by_id(storage.tenant, storage.app, run_id)
    assert actual is not None and actual.total_tokens == 104


def test_message_refs_and_pauses_outside_dify(storage: Storage) -> None:
    """Outside Dify there is no ``messages`` table and no pause table: nothing to refer to, no pause."""
    run_id = new_id()
    storage.run_writer().save(run(run_id))
    runs = storage.runs()
    assert runs.get_message_refs(app_id=storage.app, workflow_run_ids=[run_id]) == {}
    assert runs.get_pause_record(workspace_id=storage.tenant, workflow_run_id=run_id) is None
    assert runs.get_workflow_pause(run_id) is None


def test_dual_write_uses_the_tenant_the_factory_passes(backend_values: dict[str, t.Any], tmp_path: Path) -> None:
    """Newest Dify passes ``tenant_id`` next to a user that carries none; dual write must not need one."""
    import sqlalchemy as sa
    from sqlalchemy.orm import sessionmaker

    from flask_difylogstore.dify.models import Base, WorkflowNodeExecutionModel, WorkflowRun

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'dify.db'}")
    Base.metadata.create_all(engine)
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    tenant, app = new_id(), new_id()
    run_id, node_id = new_id(), new_id()
    with logstore_app(backend_values, tmp_path, dual_write_enabled=True):
        LogStoreWorkflowExecutionRepository(
            session_factory=sessions, tenant_id=tenant, user=User("actor-1"), app_id=app, triggered_from="app-run"
        ).save(run(run_id))
        LogStoreWorkflowNodeExecutionRepository(
            session_factory=sessions, tenant_id=tenant, user=User("actor-1"), app_id=app,
            triggered_from="workflow-run", upload_file=lambda **_: None,
        ).save(node(node_id, run_id))  # fmt: skip
        flush()
        from flask_difylogstore.extension import get_state

        assert get_state().counters.get("dual_write_failures", 0) == 0
    with sessions() as session:
        sql_run = session.get(WorkflowRun, run_id)
        sql_node = session.get(WorkflowNodeExecutionModel, node_id)
        assert sql_run is not None and (sql_run.tenant_id, sql_run.app_id) == (tenant, app)
        assert sql_node is not None and sql_node.tenant_id == tenant
    engine.dispose()
