"""Every S2, S3 and S4 contract method exists on the public classes; constructors fit every line."""

from __future__ import annotations

import inspect
import typing as t
import uuid

import pytest

from flask_difylogstore import repositories
from flask_difylogstore.dify.enums import WorkflowNodeExecutionTriggeredFrom, WorkflowRunTriggeredFrom
from tests.contract.conftest import logstore_app
from tests.contract.scenario import Account, EndUser

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


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_every_contract_method_is_implemented(name: str) -> None:
    cls = getattr(repositories, name)
    for method in CONTRACTS[name]:
        function = getattr(cls, method)
        source = inspect.getsource(function)
        assert not source.rstrip().endswith("..."), f"{name}.{method} is a stub"


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
