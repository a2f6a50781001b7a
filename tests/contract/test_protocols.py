"""Every S2, S3 and S4 contract method answers on the public classes (or refuses as documented); constructors fit
every line."""

from __future__ import annotations

import inspect
import re
import typing as t
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from flask_difylogstore import repositories
from flask_difylogstore.dify.entities import WorkflowExecution, WorkflowNodeExecution
from flask_difylogstore.dify.enums import (
    NodeType,
    WorkflowExecutionStatus,
    WorkflowNodeExecutionStatus,
    WorkflowNodeExecutionTriggeredFrom,
    WorkflowRunTriggeredFrom,
    WorkflowType,
)
from flask_difylogstore.dify.models import Base, WorkflowAppLog
from tests.contract.conftest import flush, logstore_app
from tests.contract.scenario import BASE, Account, EndUser

CONTRACTS: dict[str, set[str]] = {
    "LogStoreWorkflowExecutionRepository": {"save"},
    "LogStoreWorkflowNodeExecutionRepository": {
        "save",
        "save_execution_data",
        "save_synchronously",
        "get_by_workflow_run",
        "get_by_workflow_execution",
        "get_max_index",
    },
    "LogStoreAPIWorkflowRunRepository": {
        "save",
        "get_paginated_workflow_runs",
        "get_workflow_run_by_id",
        "get_workflow_run_by_id_without_tenant",
        "get_workflow_runs_count",
        "get_daily_runs_statistics",
        "get_daily_terminals_statistics",
        "get_daily_token_cost_statistics",
        "get_average_app_interaction_statistics",
        "get_expired_runs_batch",
        "delete_runs_by_ids",
        "delete_runs_by_app",
        "get_runs_batch_by_time_range",
        "delete_runs_with_related",
        "count_runs_with_related",
        "create_workflow_pause",
        "resume_workflow_pause",
        "delete_workflow_pause",
        "prune_pauses",
        "get_archived_run_ids",
        "get_archived_logs_by_time_range",
        "get_archived_log_by_run_id",
        "delete_archive_log_by_run_id",
        "get_pause_records_by_run_id",
        "get_pause_reason_records_by_run_id",
        "get_app_logs_by_run_id",
        "create_archive_logs",
        "get_archived_runs_by_time_range",
        "get_message_refs",
        "get_pause_record",
        "get_workflow_pause",
        "get_workflow_run_by_id_and_tenant_id",
        "get_cleanup_refs_batch_by_time_range",
        "delete_runs_with_related_by_ids",
        "count_runs_with_related_by_ids",
    },
    "LogStoreAPIWorkflowNodeExecutionRepository": {
        "get_node_last_execution",
        "get_executions_by_workflow_run",
        "get_execution_by_id",
        "delete_expired_executions",
        "delete_executions_by_app",
        "get_expired_executions_batch",
        "delete_executions_by_ids",
        "count_by_runs",
        "delete_by_runs",
        "get_offloads_by_execution_ids",
        "save",
        "save_execution_data",
        "get_by_workflow_run",
        "load_full_process_data",
        "get_execution_snapshots_by_workflow_run",
    },
    "LogStoreWorkflowAppLogRepository": {
        "save",
        "get_by_id",
        "get_by_workflow_run_id",
        "get_paginated_logs",
        "delete_by_app",
        "delete_expired",
    },
}


@dataclass(frozen=True)
class Refusal:
    """A contract method that raises ``NotImplementedError`` on purpose: why, and what its message says."""

    why: str
    message: str


#: Deliberate refusals, on every line and every app. Dify never calls these through the class paths the package is
#: configured under (``api/core/repositories/factory.py`` and ``api/repositories/factory.py`` of langgenius/dify):
#: the engine writes through the core repositories, which know the tenant, app and creator.
REFUSALS: dict[tuple[str, str], Refusal] = {
    ("LogStoreAPIWorkflowRunRepository", "save"): Refusal(
        "runs are saved by the engine through CORE_WORKFLOW_EXECUTION_REPOSITORY; the API repository has no "
        "tenant, app or creator to write with",
        "save runs through LogStoreWorkflowExecutionRepository",
    ),
    ("LogStoreAPIWorkflowNodeExecutionRepository", "save"): Refusal(
        "node executions are saved through CORE_WORKFLOW_NODE_EXECUTION_REPOSITORY (as with Dify's SQL "
        "implementation, the API node repository is read / maintenance only)",
        "save node executions with LogStoreWorkflowNodeExecutionRepository",
    ),
    ("LogStoreAPIWorkflowNodeExecutionRepository", "save_execution_data"): Refusal(
        "payloads are saved with their execution through the core node repository",
        "save node executions with LogStoreWorkflowNodeExecutionRepository",
    ),
    ("LogStoreAPIWorkflowNodeExecutionRepository", "get_by_workflow_run"): Refusal(
        "the core protocol's read needs the tenant the core repository is built with; the API repository "
        "answers get_executions_by_workflow_run(tenant_id, app_id, workflow_run_id) instead",
        "use get_executions_by_workflow_run",
    ),
}

#: Pauses and archive logs live in Dify's own tables (``workflow_pauses``, ``workflow_pause_reasons``,
#: ``workflow_archive_logs``) that Dify reads and writes in its own transactions; the package delegates them to the
#: relational repository. Inside Dify that is Dify's SQL repository; on a standalone app the package's relational
#: repository has no such tables and refuses with this message (``repositories/relational_api.py``).
NEEDS_DIFY = "pause and archive tables exist only in Dify's own schema; run inside Dify"
NEEDS_DIFY_METHODS = {
    "create_workflow_pause",
    "resume_workflow_pause",
    "delete_workflow_pause",
    "prune_pauses",
    "get_pause_records_by_run_id",
    "get_pause_reason_records_by_run_id",
    "get_archived_run_ids",
    "get_archived_logs_by_time_range",
    "get_archived_log_by_run_id",
    "delete_archive_log_by_run_id",
    "get_archived_runs_by_time_range",
    "create_archive_logs",
}

RUN_REPO, NODE_REPO = "LogStoreAPIWorkflowRunRepository", "LogStoreAPIWorkflowNodeExecutionRepository"


def test_the_documented_refusals_are_contract_methods() -> None:
    assert all(method in CONTRACTS[name] for name, method in REFUSALS)
    assert CONTRACTS[RUN_REPO] >= NEEDS_DIFY_METHODS


class _Caller:
    """Calls contract methods, checking the documented refusals and that nothing else is unimplemented."""

    def __init__(self, repositories: dict[str, t.Any]) -> None:
        self.repositories = repositories
        self.called: set[tuple[str, str]] = set()

    def __call__(self, name: str, method: str, *args: t.Any, **kwargs: t.Any) -> t.Any:
        self.called.add((name, method))
        function = getattr(self.repositories[name], method)
        refusal = REFUSALS.get((name, method))
        if refusal is None and name == RUN_REPO and method in NEEDS_DIFY_METHODS:
            refusal = Refusal("needs Dify's own tables", NEEDS_DIFY)
        if refusal is not None:
            with pytest.raises(NotImplementedError, match=re.escape(refusal.message)):
                function(*args, **kwargs)
            return None
        try:
            return function(*args, **kwargs)
        except NotImplementedError as exc:  # reported by name: the one thing this test is about
            pytest.fail(f"{name}.{method} is not implemented: {exc}")


def _finished_run(run_id: str, workflow_id: str) -> WorkflowExecution:
    execution = WorkflowExecution.new(
        id_=run_id,
        workflow_id=workflow_id,
        workflow_type=WorkflowType.WORKFLOW,
        workflow_version="1",
        graph={"nodes": []},
        inputs={"query": "hello"},
        started_at=BASE,
    )
    execution.status = WorkflowExecutionStatus.SUCCEEDED
    execution.outputs = {"answer": "done"}
    execution.total_tokens, execution.total_steps = 10, 1
    execution.finished_at = BASE + timedelta(seconds=5)
    return execution


def _finished_node(node_id: str, run_id: str, workflow_id: str, name: str = "llm-1") -> WorkflowNodeExecution:
    node = WorkflowNodeExecution(
        id=node_id,
        node_execution_id=node_id,
        workflow_id=workflow_id,
        workflow_execution_id=run_id,
        index=1,
        node_id=name,
        node_type=NodeType.LLM,
        title="Step 1",
        created_at=BASE + timedelta(milliseconds=10),
    )
    node.status = WorkflowNodeExecutionStatus.SUCCEEDED
    node.finished_at, node.elapsed_time = BASE + timedelta(seconds=1), 1.0
    node.update_from_mapping(inputs={"q": "hello"}, process_data={"step": 1}, outputs={"text": "done"})
    return node


def test_every_contract_method_can_be_called(backend_values: dict[str, t.Any], tmp_path: Path) -> None:
    """Each method of each contract is called with valid arguments on a real app: it answers, or it is one of
    the documented refusals. The method lists follow Dify's protocols (``api/core/workflow/repositories/`` and
    ``api/repositories/`` of langgenius/dify, 1.9 to the newest line)."""
    tenant, app_id, workflow_id = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    run_id, node_id, log_id = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    # More runs and nodes, one for each delete below to remove.
    other_run, spare_run, last_run, other_node, spare_node = (str(uuid.uuid4()) for _ in range(5))
    all_runs = {run_id, other_run, spare_run, last_run}
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'dify.db'}")
    Base.metadata.create_all(engine)
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    account = Account(str(uuid.uuid4()), tenant)
    future, past = BASE + timedelta(days=3650), BASE - timedelta(days=3650)
    with logstore_app(backend_values, tmp_path):
        call = _Caller(
            {
                "LogStoreWorkflowExecutionRepository": repositories.LogStoreWorkflowExecutionRepository(
                    session_factory=sessions, user=account, app_id=app_id,
                    triggered_from=WorkflowRunTriggeredFrom.APP_RUN,
                ),
                "LogStoreWorkflowNodeExecutionRepository": repositories.LogStoreWorkflowNodeExecutionRepository(
                    session_factory=sessions, user=account, app_id=app_id,
                    triggered_from=WorkflowNodeExecutionTriggeredFrom.WORKFLOW_RUN,
                ),
                RUN_REPO: repositories.LogStoreAPIWorkflowRunRepository(session_maker=sessions),
                NODE_REPO: repositories.LogStoreAPIWorkflowNodeExecutionRepository(session_maker=sessions),
                "LogStoreWorkflowAppLogRepository": repositories.LogStoreWorkflowAppLogRepository(),
            }
        )  # fmt: skip
        # -- writes (S2 / S3 core, app logs) ----------------------------------------------------------------
        core, core_nodes = "LogStoreWorkflowExecutionRepository", "LogStoreWorkflowNodeExecutionRepository"
        for run in sorted(all_runs):
            call(core, "save", _finished_run(run, workflow_id))
        node = _finished_node(node_id, run_id, workflow_id)
        call(core_nodes, "save", node)
        call(core_nodes, "save_execution_data", node)
        call(core_nodes, "save_synchronously", node)
        call(core_nodes, "save", _finished_node(other_node, other_run, workflow_id, "llm-2"))
        call(core_nodes, "save", _finished_node(spare_node, spare_run, workflow_id, "llm-3"))
        app_log = WorkflowAppLog(
            id=log_id, tenant_id=tenant, app_id=app_id, workflow_id=workflow_id, workflow_run_id=run_id,
            created_from="service-api", created_by_role="account", created_by=account.id, created_at=BASE,
        )  # fmt: skip
        call("LogStoreWorkflowAppLogRepository", "save", app_log)
        flush()

        # -- reads --------------------------------------------------------------------------------------------
        assert [n.id for n in call(core_nodes, "get_by_workflow_run", run_id)] == [node_id]
        assert [n.id for n in call(core_nodes, "get_by_workflow_execution", workflow_execution_id=run_id)] == [node_id]
        assert call(core_nodes, "get_max_index", run_id) == 1

        run_row = call(RUN_REPO, "get_workflow_run_by_id", tenant, app_id, run_id)
        assert run_row is not None and run_row.id == run_id
        assert call(RUN_REPO, "get_workflow_run_by_id_without_tenant", run_id).id == run_id
        assert call(RUN_REPO, "get_workflow_run_by_id_and_tenant_id", tenant_id=tenant, run_id=run_id).id == run_id
        page = call(RUN_REPO, "get_paginated_workflow_runs", tenant, app_id, "app-run", limit=1)
        assert len(page.data) == 1 and page.has_more
        assert call(RUN_REPO, "get_workflow_runs_count", tenant, app_id, "app-run")["total"] == 4
        for statistics in (
            "get_daily_runs_statistics",
            "get_daily_terminals_statistics",
            "get_daily_token_cost_statistics",
            "get_average_app_interaction_statistics",
        ):
            assert len(call(RUN_REPO, statistics, tenant, app_id, "app-run", timezone="Asia/Shanghai")) == 1
        assert {r.id for r in call(RUN_REPO, "get_expired_runs_batch", tenant, future, 10)} == all_runs
        batch = call(RUN_REPO, "get_runs_batch_by_time_range", start_from=None, end_before=future, last_seen=None,
                     batch_size=10, tenant_ids=[tenant])  # fmt: skip
        assert {r.id for r in batch} == all_runs
        refs = call(RUN_REPO, "get_cleanup_refs_batch_by_time_range", start_from=None, end_before=future,
                    last_seen=None, batch_size=10, tenant_ids=[tenant])  # fmt: skip
        assert len(refs) == 4
        related = {"runs": 1, "node_executions": 1, "offloads": 0, "app_logs": 1, "trigger_logs": 0, "pauses": 0,
                   "pause_reasons": 0}  # fmt: skip
        assert call(RUN_REPO, "count_runs_with_related", [run_row]) == related
        assert call(RUN_REPO, "count_runs_with_related_by_ids", [run_id]) == related
        assert call(RUN_REPO, "get_message_refs", app_id=app_id, workflow_run_ids=[run_id]) == {}
        assert call(RUN_REPO, "get_pause_record", workspace_id=tenant, workflow_run_id=run_id) is None
        assert call(RUN_REPO, "get_workflow_pause", workflow_run_id=run_id) is None

        node_row = call(NODE_REPO, "get_execution_by_id", node_id, tenant)
        assert node_row is not None and node_row.id == node_id
        assert call(NODE_REPO, "get_node_last_execution", tenant, app_id, workflow_id, "llm-1").id == node_id
        assert [n.id for n in call(NODE_REPO, "get_executions_by_workflow_run", tenant, app_id, run_id)] == [node_id]
        snapshots = call(NODE_REPO, "get_execution_snapshots_by_workflow_run", tenant, app_id, workflow_id,
                         "workflow-run", run_id)  # fmt: skip
        assert [s.execution_id for s in snapshots] == [node_id]
        assert call(NODE_REPO, "load_full_process_data", node_row) == {"step": 1}
        expired_nodes = call(NODE_REPO, "get_expired_executions_batch", tenant, future, 10)
        assert {n.id for n in expired_nodes} == {node_id, other_node, spare_node}
        call(NODE_REPO, "get_by_workflow_run", run_id)
        call(NODE_REPO, "save", node)
        call(NODE_REPO, "save_execution_data", node)
        with sessions() as session:
            assert call(NODE_REPO, "count_by_runs", session, [run_id])[0] == 1
            assert list(call(NODE_REPO, "get_offloads_by_execution_ids", session, [node_id])) == []
            assert list(call(RUN_REPO, "get_app_logs_by_run_id", session, run_id)) == []

        logs = "LogStoreWorkflowAppLogRepository"
        assert call(logs, "get_by_id", tenant, log_id).id == log_id
        assert call(logs, "get_by_workflow_run_id", tenant, run_id).id == log_id
        assert call(logs, "get_paginated_logs", tenant, app_id)["total"] == 1

        # -- refusals: the API run repository's save, and Dify's own pause / archive tables ------------------
        call(RUN_REPO, "save", _finished_run(run_id, workflow_id))
        with sessions() as session:
            call(RUN_REPO, "create_workflow_pause", run_id, account.id, "{}", [])
            call(RUN_REPO, "resume_workflow_pause", run_id, None)
            call(RUN_REPO, "delete_workflow_pause", None)
            call(RUN_REPO, "prune_pauses", past, past, 10)
            call(RUN_REPO, "get_pause_records_by_run_id", session, run_id)
            call(RUN_REPO, "get_pause_reason_records_by_run_id", session, [])
            call(RUN_REPO, "get_archived_run_ids", session, [run_id])
            call(RUN_REPO, "get_archived_logs_by_time_range", session, [tenant], past, future, 10)
            call(RUN_REPO, "get_archived_log_by_run_id", run_id)
            call(RUN_REPO, "delete_archive_log_by_run_id", session, run_id)
            call(RUN_REPO, "get_archived_runs_by_time_range", session, [tenant], past, future, 10)
            call(RUN_REPO, "create_archive_logs", session, run_row, [], None)

        # -- deletes (last: they remove what the reads above found) -------------------------------------------
        assert call(logs, "delete_expired", tenant, past) == 0
        assert call(logs, "delete_by_app", tenant, app_id) == 1
        assert call(NODE_REPO, "delete_expired_executions", tenant, past, 10) == 0
        with sessions() as session:
            assert call(NODE_REPO, "delete_by_runs", session, [run_id])[0] == 1
            session.commit()
        assert call(NODE_REPO, "delete_executions_by_ids", [other_node]) == 1
        assert call(NODE_REPO, "delete_executions_by_app", tenant, app_id) == 1  # spare_node
        deleted = {**related, "node_executions": 0, "app_logs": 0}  # removed by the deletes above
        assert call(RUN_REPO, "delete_runs_with_related", [run_row]) == deleted
        assert call(RUN_REPO, "delete_runs_with_related_by_ids", [other_run]) == deleted
        assert call(RUN_REPO, "delete_runs_by_ids", [spare_run]) == 1
        assert call(RUN_REPO, "delete_runs_by_app", tenant, app_id) == 1  # last_run
        assert call(RUN_REPO, "get_workflow_runs_count", tenant, app_id, "app-run")["total"] == 0

    engine.dispose()
    expected = {(name, method) for name, methods in CONTRACTS.items() for method in methods}
    assert call.called == expected, sorted(expected ^ call.called)


def test_constructors_accept_both_contract_lines(backend_values: dict[str, t.Any], tmp_path: t.Any) -> None:
    tenant = str(uuid.uuid4())
    with logstore_app(backend_values, tmp_path):
        account, end_user = Account(str(uuid.uuid4()), tenant), EndUser(str(uuid.uuid4()), tenant)
        s2 = repositories.LogStoreWorkflowExecutionRepository(
            session_factory=None, user=account, app_id="a", triggered_from=WorkflowRunTriggeredFrom.APP_RUN
        )
        s3 = repositories.LogStoreWorkflowNodeExecutionRepository(
            session_factory=None,
            tenant_id=tenant,
            user=end_user,
            app_id="a",
            triggered_from=WorkflowNodeExecutionTriggeredFrom.WORKFLOW_RUN,
            file_uploads=object(),
        )
        assert s2._owner.created_by_role == "account" and s3._owner.created_by_role == "end_user"
        assert s3._owner.tenant_id == tenant
        repositories.LogStoreAPIWorkflowRunRepository()
        repositories.LogStoreAPIWorkflowRunRepository(session_maker=None)
        repositories.LogStoreAPIWorkflowNodeExecutionRepository(session_maker=object())
        with pytest.raises(ValueError):
            repositories.LogStoreWorkflowNodeExecutionRepository(user=account, app_id="a")
        with pytest.raises(ValueError):
            repositories.LogStoreWorkflowExecutionRepository(user=object(), app_id="a")
        with pytest.raises(NotImplementedError):
            repositories.LogStoreAPIWorkflowRunRepository().save(None)


#: The newest line's parameter names (``api/services/workflow/run_repository.py`` and
#: ``node_execution_queries.py`` of langgenius/dify at 7b95e300): Dify calls most of them by keyword.
S4_SIGNATURES: dict[str, dict[str, set[str]]] = {
    "LogStoreAPIWorkflowRunRepository": {
        "get_message_refs": {"app_id", "workflow_run_ids"},
        "get_pause_record": {"workspace_id", "workflow_run_id"},
        "get_workflow_run_by_id_and_tenant_id": {"tenant_id", "run_id"},
        "get_workflow_pause": {"workflow_run_id"},
        "get_runs_batch_by_time_range": {
            "start_from", "end_before", "last_seen", "batch_size", "run_types", "tenant_ids", "tenant_prefixes",
            "workflow_ids", "run_shard_index", "run_shard_total",
        },
        "get_cleanup_refs_batch_by_time_range": {
            "start_from", "end_before", "last_seen", "batch_size", "run_types", "tenant_ids", "workflow_ids",
            "upper_bound",
        },
        "delete_runs_with_related_by_ids": {"run_ids", "delete_node_executions", "delete_trigger_logs"},
        "count_runs_with_related_by_ids": {"run_ids", "count_node_executions", "count_trigger_logs"},
        "delete_runs_with_related": {"runs", "delete_node_executions", "delete_trigger_logs"},
        "count_runs_with_related": {"runs", "count_node_executions", "count_trigger_logs"},
        "create_workflow_pause": {"workflow_run_id", "state_owner_user_id", "state", "pause_reasons"},
        "resume_workflow_pause": {"workflow_run_id", "pause_entity"},
        "delete_workflow_pause": {"pause_entity"},
        "prune_pauses": {"expiration", "resumption_expiration", "limit"},
    },
    "LogStoreAPIWorkflowNodeExecutionRepository": {
        "load_full_process_data": {"execution"},
        "get_execution_snapshots_by_workflow_run": {
            "tenant_id", "app_id", "workflow_id", "triggered_from", "workflow_run_id",
        },
        "get_node_last_execution": {"tenant_id", "app_id", "workflow_id", "node_id"},
    },
    "LogStoreWorkflowNodeExecutionRepository": {
        "get_by_workflow_execution": {"workflow_execution_id", "order_config"},
        "save_synchronously": {"execution"},
    },
}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "method"), sorted((name, method) for name, methods in S4_SIGNATURES.items() for method in methods)
)
def test_newest_line_signatures_match_and_swallow_nothing(name: str, method: str) -> None:
    """Each method takes exactly S4's parameters: by name, and nothing else (no ``**kwargs`` that would
    silently ignore a filter the package cannot apply)."""
    parameters = inspect.signature(getattr(getattr(repositories, name), method)).parameters
    names = {p for p in parameters if p != "self"}
    assert names == S4_SIGNATURES[name][method]
    assert not any(p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in parameters.values())
