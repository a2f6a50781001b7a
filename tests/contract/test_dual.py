"""Dual write composes the relational repository (saves and deletes, failures counted and logged);
dual read falls back to it and never lets a stale relational row win; graph opt-out."""

from __future__ import annotations

import logging
import typing as t
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from flask_difylogstore.dify.entities import WorkflowExecution
from flask_difylogstore.dify.enums import WorkflowExecutionStatus, WorkflowRunTriggeredFrom, WorkflowType
from flask_difylogstore.dify.models import WorkflowAppLog, WorkflowNodeExecutionModel, WorkflowRun
from flask_difylogstore.health import build_health_report
from flask_difylogstore.repositories import (
    LogStoreAPIWorkflowNodeExecutionRepository,
    LogStoreAPIWorkflowRunRepository,
    LogStoreWorkflowAppLogRepository,
    LogStoreWorkflowExecutionRepository,
    LogStoreWorkflowNodeExecutionRepository,
)
from flask_difylogstore.repositories.relational import RelationalWorkflowExecutionRepository
from tests.contract.conftest import flush, logstore_app, reset_tables, state
from tests.contract.scenario import BASE, Account, Scenario, build_scenario, drive, node_triggered_from, uid
from tests.contract.world import relational_side, row_view, store_scenario

pytestmark = pytest.mark.postgres


@pytest.fixture
def clean_pg(pg_schema_engine: t.Any) -> Iterator[None]:
    reset_tables(pg_schema_engine)
    yield


def dual_write(scenario: Scenario, sessions: t.Any) -> None:
    """Drive ``scenario`` through the log-store repositories, the relational side reached via ``sessions``."""
    drive(
        scenario,
        lambda run: LogStoreWorkflowExecutionRepository(
            session_factory=sessions, user=run.user, app_id=run.app_id, triggered_from=run.triggered_from
        ),
        lambda run: LogStoreWorkflowNodeExecutionRepository(
            session_factory=sessions, user=run.user, app_id=run.app_id, triggered_from=node_triggered_from()
        ),
    )
    logs = LogStoreWorkflowAppLogRepository(session_maker=sessions)
    for log in scenario.app_logs:
        logs.save(WorkflowAppLog(**log))


def table_counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            model.__tablename__: int(conn.scalar(sa.select(sa.func.count()).select_from(model)) or 0)
            for model in (WorkflowRun, WorkflowNodeExecutionModel, WorkflowAppLog)
        }


def test_dual_write_stores_both(
    backend_values: dict[str, t.Any], tmp_path: t.Any, pg_sessions: t.Any, clean_pg: None
) -> None:
    scenario = build_scenario(seed=31, runs_per_app=2)
    with logstore_app(backend_values, tmp_path, dual_write_enabled=True):
        dual_write(scenario, pg_sessions)
        flush()
        pg = relational_side(pg_sessions, None)
        runs, nodes, logs = (
            LogStoreAPIWorkflowRunRepository(),
            LogStoreAPIWorkflowNodeExecutionRepository(),
            LogStoreWorkflowAppLogRepository(),
        )
        for run in scenario.runs:
            assert row_view(runs.get_workflow_run_by_id(run.tenant_id, run.app_id, run.id)) == row_view(
                pg.runs.get_workflow_run_by_id(run.tenant_id, run.app_id, run.id)
            )
            assert [row_view(r) for r in nodes.get_executions_by_workflow_run(run.tenant_id, run.app_id, run.id)] == [
                row_view(r) for r in pg.nodes.get_executions_by_workflow_run(run.tenant_id, run.app_id, run.id)
            ]
        for log in scenario.app_logs:
            assert row_view(logs.get_by_id(log["tenant_id"], log["id"])) == row_view(
                pg.app_logs.get_by_id(log["tenant_id"], log["id"])
            )
        assert state().counters.get("dual_write_failures", 0) == 0


@pytest.mark.parametrize("dual_write_enabled", [True, False])
def test_deletes_reach_both_stores(
    backend_values: dict[str, t.Any],
    tmp_path: t.Any,
    pg_schema_engine: t.Any,
    pg_sessions: t.Any,
    file_store: t.Any,
    clean_pg: None,
    dual_write_enabled: bool,
) -> None:
    """Dify's retention loop (list expired, delete them) ends although half the runs are only relational."""
    scenario = build_scenario(seed=34 if dual_write_enabled else 37, runs_per_app=3)
    legacy = Scenario(scenario.tenants, scenario.apps, scenario.runs[::2], [])
    live = Scenario(
        scenario.tenants,
        scenario.apps,
        scenario.runs[1::2],
        [log for log in scenario.app_logs if log["workflow_run_id"] in {r.id for r in scenario.runs[1::2]}],
    )
    store_scenario(legacy, relational_side(pg_sessions, file_store))
    overrides = {"dual_write_enabled": dual_write_enabled, "dual_read_enabled": True}
    with logstore_app(backend_values, tmp_path, **overrides):
        dual_write(live, pg_sessions if dual_write_enabled else None)
        flush()
        runs = LogStoreAPIWorkflowRunRepository(session_maker=pg_sessions)
        nodes = LogStoreAPIWorkflowNodeExecutionRepository(session_maker=pg_sessions)
        deleted = 0
        for tenant in scenario.tenants:
            while batch := runs.get_expired_runs_batch(tenant, BASE + timedelta(days=30), batch_size=4):
                assert len({r.id for r in batch}) == len(batch)
                with pg_sessions() as session:
                    counts = runs.delete_runs_with_related(
                        batch, delete_node_executions=lambda s, rs: nodes.delete_by_runs(s, [r.id for r in rs])
                    )
                    session.commit()
                # Each store reports its own rows; the larger count is returned (exact when one store
                # holds every run of the batch, as with dual write on).
                assert (counts["runs"] == len(batch)) if dual_write_enabled else (0 < counts["runs"] <= len(batch))
                deleted += len(batch)
        assert deleted == len(scenario.runs)
        assert table_counts(pg_schema_engine) == {
            "workflow_runs": 0,
            "workflow_node_executions": 0,
            "workflow_app_logs": 0,
        }
        for run in scenario.runs:
            assert runs.get_workflow_run_by_id_without_tenant(run.id) is None
            assert nodes.get_executions_by_workflow_run(run.tenant_id, run.app_id, run.id) == []


def test_relational_failure_is_counted_and_logged(
    backend_values: dict[str, t.Any], tmp_path: t.Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A relational database without the tables: every save still reaches the log store."""
    broken = sessionmaker(bind=sa.create_engine("sqlite://"))
    scenario = build_scenario(seed=35, runs_per_app=1)
    with logstore_app(backend_values, tmp_path, dual_write_enabled=True, dual_read_enabled=True):
        with caplog.at_level(logging.ERROR, logger="flask_difylogstore"):
            dual_write(scenario, broken)
        flush()
        runs = LogStoreAPIWorkflowRunRepository(session_maker=broken)
        for run in scenario.runs:
            assert runs.get_workflow_run_by_id(run.tenant_id, run.app_id, run.id).status == (
                run.final.value if run.final else "running"
            )
        failures = [r for r in caplog.records if "dual write" in r.getMessage()]
        assert failures and state().counters["dual_write_failures"] == len(failures)
        assert build_health_report(state()).counters["dual_write_failures"] == len(failures)
        for record in failures:
            message = record.getMessage()
            assert "tenant_id=" in message and "no such table" in message
            assert "hello" not in message and "[parameters" not in message and record.exc_info is None
        assert {r.id for r in runs.get_paginated_workflow_runs(run.tenant_id, run.app_id, "app-run", 50).data} >= {
            r.id for r in scenario.runs_of(run.tenant_id, run.app_id) if r.triggered_from.value == "app-run"
        }
        assert state().counters["dual_read_failures"] >= 1  # the list read could not ask the broken side


def _execution(run_id: str, workflow_id: str, started: t.Any, status: WorkflowExecutionStatus) -> WorkflowExecution:
    execution = WorkflowExecution.new(
        id_=run_id,
        workflow_id=workflow_id,
        workflow_type=WorkflowType.WORKFLOW,
        workflow_version="1",
        graph={},
        inputs={"q": run_id[:8]},
        started_at=started,
    )
    execution.status = status
    if status is not WorkflowExecutionStatus.RUNNING:
        execution.finished_at = started + timedelta(seconds=3)
    return execution


def test_stale_relational_rows_never_win(
    backend_values: dict[str, t.Any], tmp_path: t.Any, pg_sessions: t.Any, clean_pg: None
) -> None:
    """Runs still ``running`` in PostgreSQL but finished in the log store (saves that reached only the
    log store) count as finished, and never leave a page empty while more runs follow."""
    import random

    rng = random.Random(36)
    tenant, app, workflow = uid(rng), uid(rng), uid(rng)
    user = Account(uid(rng), tenant)
    ids = {name: uid(rng) for name in "ABCDEFGH"}
    minutes = {"G": 0, "E": 1, "F": 2, "A": 10, "B": 11, "C": 12, "D": 13, "H": 20}
    running, succeeded = WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.SUCCEEDED
    relational = {**dict.fromkeys("ABCDEF", running), "G": succeeded}
    logstore = {**dict.fromkeys("ABCD", succeeded), "H": running}
    args: dict[str, t.Any] = {"user": user, "app_id": app, "triggered_from": WorkflowRunTriggeredFrom.APP_RUN}
    sql = RelationalWorkflowExecutionRepository(session_factory=pg_sessions, **args)
    for name, status in relational.items():
        sql.save(_execution(ids[name], workflow, BASE + timedelta(minutes=minutes[name]), status))
    with logstore_app(backend_values, tmp_path, dual_read_enabled=True):
        store = LogStoreWorkflowExecutionRepository(**args)
        for name, status in logstore.items():
            store.save(_execution(ids[name], workflow, BASE + timedelta(minutes=minutes[name]), status))
        flush()
        runs = LogStoreAPIWorkflowRunRepository(session_maker=pg_sessions)
        for limit in (1, 2, 3):
            walked: list[str] = []
            cursor = None
            while True:
                page = runs.get_paginated_workflow_runs(tenant, app, "app-run", limit, cursor, "running")
                assert page.data or not page.has_more
                walked.extend(r.id for r in page.data)
                if not page.has_more:
                    break
                cursor = page.data[-1].id
            assert walked == [ids["H"], ids["F"], ids["E"]]
        counts = runs.get_workflow_runs_count(tenant, app, "app-run")
        assert (counts["total"], counts["running"], counts["succeeded"]) == (8, 3, 5)
        assert runs.get_workflow_run_by_id(tenant, app, ids["A"]).status == "succeeded"
        everything = runs.get_paginated_workflow_runs(tenant, app, "app-run", 20)
        assert [r.id for r in everything.data] == [ids[n] for n in "HDCBAFEG"] and not everything.has_more


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
            page = runs.get_paginated_workflow_runs(run.tenant_id, run.app_id, run.triggered_from)
            assert [r.id for r in page.data] == ([run.id] if enabled else [])


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
