"""Dual write composes the relational repository; dual read falls back to it for older data; graph opt-out."""

from __future__ import annotations

import typing as t
from collections.abc import Iterator

import pytest

from flask_difylogstore.repositories import (
    LogStoreAPIWorkflowNodeExecutionRepository,
    LogStoreAPIWorkflowRunRepository,
    LogStoreWorkflowExecutionRepository,
    LogStoreWorkflowNodeExecutionRepository,
)
from tests.contract.conftest import flush, logstore_app, reset_tables
from tests.contract.scenario import build_scenario, drive, node_triggered_from
from tests.contract.world import relational_side, row_view, store_scenario

pytestmark = pytest.mark.postgres


@pytest.fixture
def clean_pg(pg_schema_engine: t.Any) -> Iterator[None]:
    reset_tables(pg_schema_engine)
    yield


def test_dual_write_stores_both(
    backend_values: dict[str, t.Any], tmp_path: t.Any, pg_sessions: t.Any, clean_pg: None
) -> None:
    scenario = build_scenario(seed=31, runs_per_app=2)
    with logstore_app(backend_values, tmp_path, dual_write_enabled=True):
        drive(
            scenario,
            lambda run: LogStoreWorkflowExecutionRepository(
                session_factory=pg_sessions,
                user=run.user,
                app_id=run.app_id,
                triggered_from=run.triggered_from,
            ),
            lambda run: LogStoreWorkflowNodeExecutionRepository(
                session_factory=pg_sessions,
                user=run.user,
                app_id=run.app_id,
                triggered_from=node_triggered_from(),
            ),
        )
        flush()
        pg = relational_side(pg_sessions, None)
        ls = LogStoreAPIWorkflowRunRepository()
        for run in scenario.runs:
            assert row_view(ls.get_workflow_run_by_id(run.tenant_id, run.app_id, run.id)) == row_view(
                pg.runs.get_workflow_run_by_id(run.tenant_id, run.app_id, run.id)
            )
            assert len(pg.nodes.get_executions_by_workflow_run(run.tenant_id, run.app_id, run.id)) == len(
                LogStoreAPIWorkflowNodeExecutionRepository().get_executions_by_workflow_run(
                    run.tenant_id, run.app_id, run.id
                )
            )


def test_dual_read_falls_back_for_older_data(
    backend_values: dict[str, t.Any], tmp_path: t.Any, pg_sessions: t.Any, file_store: t.Any, clean_pg: None
) -> None:
    scenario = build_scenario(seed=32, runs_per_app=1)
    store_scenario(scenario, relational_side(pg_sessions, file_store))
    run = scenario.runs[0]
    for enabled in (True, False):
        with logstore_app(backend_values, tmp_path / str(enabled), dual_read_enabled=enabled):
            runs = LogStoreAPIWorkflowRunRepository(session_maker=pg_sessions)
            nodes = LogStoreAPIWorkflowNodeExecutionRepository(session_maker=pg_sessions)
            found = runs.get_workflow_run_by_id(run.tenant_id, run.app_id, run.id)
            assert (found is not None) is enabled
            assert (runs.get_workflow_run_by_id_without_tenant(run.id) is not None) is enabled
            listed = nodes.get_executions_by_workflow_run(run.tenant_id, run.app_id, run.id)
            assert bool(listed) is enabled
            assert (nodes.get_execution_by_id(run.nodes[0].id, run.tenant_id) is not None) is enabled


def test_graph_can_be_left_out(backend_values: dict[str, t.Any], tmp_path: t.Any) -> None:
    scenario = build_scenario(seed=33, runs_per_app=1)
    with logstore_app(backend_values, tmp_path, enable_put_graph_field=False):
        drive(
            scenario,
            lambda run: LogStoreWorkflowExecutionRepository(
                user=run.user, app_id=run.app_id, triggered_from=run.triggered_from
            ),
            lambda run: LogStoreWorkflowNodeExecutionRepository(
                user=run.user, app_id=run.app_id, triggered_from=node_triggered_from()
            ),
        )
        run = scenario.runs[0]
        stored = LogStoreAPIWorkflowRunRepository().get_workflow_run_by_id(run.tenant_id, run.app_id, run.id)
        assert stored.graph == "{}" and stored.graph_dict == {} and stored.inputs_dict
