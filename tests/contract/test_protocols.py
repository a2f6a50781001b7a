"""Every S2 and S3 contract method exists on the public classes; constructors fit both lines."""

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
