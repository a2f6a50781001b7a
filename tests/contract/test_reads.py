"""Every read method answers like the relational baseline on PostgreSQL, for each backend."""

from __future__ import annotations

import typing as t
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from flask_difylogstore.dify.entities import OrderConfig
from flask_difylogstore.dify.enums import WorkflowRunTriggeredFrom
from tests.contract.conftest import flush, logstore_app, reset_tables
from tests.contract.scenario import BASE, Scenario, build_scenario
from tests.contract.world import (
    Side,
    core_node_repo,
    entity_view,
    logstore_side,
    pagination_view,
    relational_side,
    row_view,
    store_scenario,
)

pytestmark = pytest.mark.postgres

TIMEZONES = ("UTC", "Asia/Shanghai", "America/Los_Angeles", "Asia/Kolkata")


@dataclass
class World:
    scenario: Scenario
    ls: Side
    pg: Side

    def scopes(self) -> Iterator[tuple[str, str]]:
        for tenant, apps in self.scenario.apps.items():
            for app in apps:
                yield tenant, app


@pytest.fixture(scope="module")
def world(
    backend_values: dict[str, t.Any],
    pg_schema_engine: t.Any,
    pg_sessions: t.Any,
    file_store: t.Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    scenario = build_scenario()
    reset_tables(pg_schema_engine)
    pg = relational_side(pg_sessions, file_store)
    store_scenario(scenario, pg)
    with logstore_app(backend_values, tmp_path_factory.mktemp("reads")):
        ls = logstore_side()
        store_scenario(scenario, ls)
        flush()
        yield World(scenario, ls, pg)


def both(world: World, method: str, *args: t.Any, **kwargs: t.Any) -> tuple[t.Any, t.Any]:
    """Call ``method`` on the log-store and the relational run repository."""
    return getattr(world.ls.runs, method)(*args, **kwargs), getattr(world.pg.runs, method)(*args, **kwargs)


def test_node_entities_of_each_run(world: World) -> None:
    for run in world.scenario.runs:
        ls = core_node_repo(world.ls, run.tenant_id, run.app_id)
        pg = core_node_repo(world.pg, run.tenant_id, run.app_id)
        expected = [entity_view(e) for e in pg.get_by_workflow_run(run.id)]
        assert [entity_view(e) for e in ls.get_by_workflow_run(run.id)] == expected
        assert len(expected) == len(run.nodes) + sum(n.retries for n in run.nodes)
        order = OrderConfig(order_by=["index", "bogus_column"], order_direction="desc")
        assert [e.id for e in ls.get_by_workflow_execution(run.id, order)] == [
            e.id for e in pg.get_by_workflow_execution(run.id, order)
        ]
        assert ls.get_max_index(run.id) == pg.get_max_index(run.id) == len(run.nodes)


def test_node_list_is_scoped_to_the_repository_tenant_and_app(world: World) -> None:
    run = world.scenario.runs[0]
    other_tenant = world.scenario.tenants[1]
    assert core_node_repo(world.ls, other_tenant, run.app_id).get_by_workflow_run(run.id) == []
    assert (
        core_node_repo(world.ls, run.tenant_id, world.scenario.apps[run.tenant_id][1]).get_by_workflow_run(run.id) == []
    )


def test_truncated_payloads_round_trip(world: World) -> None:
    big = [(run, node) for run in world.scenario.runs for node in run.nodes if node.big and run.final is not None]
    assert big
    for run, node in big:
        entity = next(
            e
            for e in core_node_repo(world.ls, run.tenant_id, run.app_id).get_by_workflow_run(run.id)
            if e.id == node.id
        )
        assert entity.outputs_truncated and not entity.inputs_truncated
        assert len(entity.outputs["items"]) == 3000
        assert len(entity.get_truncated_outputs()["items"]) <= 50
        model = world.ls.nodes.get_execution_by_id(node.id, run.tenant_id)
        assert model.outputs_truncated and [o.type_ for o in model.offload_data] == ["outputs"]
        assert len(model.outputs) <= 4096


@pytest.mark.parametrize(
    "triggered_from",
    [
        "app-run",
        WorkflowRunTriggeredFrom.DEBUGGING,
        ["app-run", "debugging"],
        (WorkflowRunTriggeredFrom.APP_RUN,),
    ],
)
@pytest.mark.parametrize("status", [None, "succeeded", "running"])
def test_paginated_runs(world: World, triggered_from: t.Any, status: str | None) -> None:
    for tenant, app in world.scopes():
        last_ls = last_pg = None
        pages = 0
        while True:
            ls, pg = (
                world.ls.runs.get_paginated_workflow_runs(
                    tenant, app, triggered_from, limit=4, last_id=last_ls, status=status
                ),
                world.pg.runs.get_paginated_workflow_runs(
                    tenant, app, triggered_from, limit=4, last_id=last_pg, status=status
                ),
            )
            assert pagination_view(ls) == pagination_view(pg)
            pages += 1
            if not pg.has_more:
                break
            last_ls, last_pg = ls.data[-1].id, pg.data[-1].id
        assert pages >= 1


def test_unknown_or_foreign_cursor_is_rejected(world: World) -> None:
    tenant, app = next(world.scopes())
    foreign = world.scenario.runs_of(world.scenario.tenants[1], world.scenario.apps[world.scenario.tenants[1]][0])
    for side in (world.ls, world.pg):
        for cursor in ("3b0f5c4e-0000-4000-8000-000000000000", foreign[0].id):
            with pytest.raises(ValueError, match="Last workflow run not exists"):
                side.runs.get_paginated_workflow_runs(tenant, app, "app-run", last_id=cursor)


def test_run_lookups(world: World) -> None:
    for run in world.scenario.runs:
        ls, pg = both(world, "get_workflow_run_by_id", run.tenant_id, run.app_id, run.id)
        assert row_view(ls) == row_view(pg)
        other_app = next(a for a in world.scenario.apps[run.tenant_id] if a != run.app_id)
        assert both(world, "get_workflow_run_by_id", run.tenant_id, other_app, run.id) == (None, None)
        other_tenant = next(t_ for t_ in world.scenario.tenants if t_ != run.tenant_id)
        assert both(world, "get_workflow_run_by_id", other_tenant, run.app_id, run.id) == (None, None)
        ls, pg = both(world, "get_workflow_run_by_id_without_tenant", run.id)
        assert row_view(ls) == row_view(pg)
        assert ls.graph_dict == {"nodes": [n.node_id for n in run.nodes]}


@pytest.mark.parametrize("status", [None, "running", "succeeded", "partial-succeeded"])
@pytest.mark.parametrize("time_range", [None, "36500d", "1s"])
def test_runs_count(world: World, status: str | None, time_range: str | None) -> None:
    for tenant, app in world.scopes():
        for triggered_from in ("app-run", "debugging"):
            ls, pg = both(world, "get_workflow_runs_count", tenant, app, triggered_from, status, time_range)
            assert ls == pg
            assert set(ls) == {"total", "running", "succeeded", "failed", "stopped", "partial-succeeded"}


@pytest.mark.parametrize(
    "method",
    [
        "get_daily_runs_statistics",
        "get_daily_terminals_statistics",
        "get_daily_token_cost_statistics",
        "get_average_app_interaction_statistics",
    ],
)
@pytest.mark.parametrize("timezone", TIMEZONES)
def test_daily_statistics(world: World, method: str, timezone: str) -> None:
    windows = [(None, None), (BASE + timedelta(hours=9), BASE + timedelta(hours=71))]
    for tenant, app in world.scopes():
        for start, end in windows:
            ls, pg = both(world, method, tenant, app, "app-run", start, end, timezone)
            assert ls == pg
            assert all(len(row["date"]) == 10 for row in ls)
    assert len(both(world, method, *next(world.scopes()), "app-run", None, None, timezone)[0]) > 1


def test_expired_runs_batch(world: World) -> None:
    for tenant in world.scenario.tenants:
        for before, size in ((BASE + timedelta(hours=21), 1000), (BASE + timedelta(days=30), 5)):
            ls, pg = both(world, "get_expired_runs_batch", tenant, before, size)
            assert [row_view(r) for r in ls] == [row_view(r) for r in pg]


@pytest.mark.parametrize("tenant_filter", [False, True])
def test_runs_batch_by_time_range(world: World, tenant_filter: bool) -> None:
    tenant_ids = world.scenario.tenants[:1] if tenant_filter else None
    seen: tuple[t.Any, t.Any] = (None, None)
    collected = []
    while True:
        ls, pg = (
            side.runs.get_runs_batch_by_time_range(
                BASE + timedelta(hours=1), BASE + timedelta(days=10), last, 4, tenant_ids=tenant_ids
            )
            for side, last in ((world.ls, seen[0]), (world.pg, seen[1]))
        )
        ls, pg = list(ls), list(pg)
        assert [r.id for r in ls] == [r.id for r in pg]
        if not pg:
            break
        collected.extend(pg)
        seen = ((ls[-1].created_at, ls[-1].id), (pg[-1].created_at, pg[-1].id))
    assert collected and all(r.status != "running" for r in collected)


def test_tracing_panel_and_node_lookups(world: World) -> None:
    for run in world.scenario.runs:
        ls = world.ls.nodes.get_executions_by_workflow_run(run.tenant_id, run.app_id, run.id)
        pg = world.pg.nodes.get_executions_by_workflow_run(run.tenant_id, run.app_id, run.id)
        assert [row_view(r) for r in ls] == [row_view(r) for r in pg]
        for node in run.nodes:
            a = world.ls.nodes.get_execution_by_id(node.id, run.tenant_id)
            b = world.pg.nodes.get_execution_by_id(node.id, run.tenant_id)
            assert row_view(a) == row_view(b)
            assert (
                world.ls.nodes.get_execution_by_id(
                    node.id,
                    world.scenario.tenants[1]
                    if run.tenant_id == world.scenario.tenants[0]
                    else world.scenario.tenants[0],
                )
                is None
            )
            assert row_view(world.ls.nodes.get_execution_by_id(node.id)) == row_view(b)
            last_ls = world.ls.nodes.get_node_last_execution(run.tenant_id, run.app_id, run.workflow_id, node.node_id)
            last_pg = world.pg.nodes.get_node_last_execution(run.tenant_id, run.app_id, run.workflow_id, node.node_id)
            assert row_view(last_ls) == row_view(last_pg)


def test_expired_node_batch(world: World) -> None:
    for tenant in world.scenario.tenants:
        before = BASE + timedelta(hours=34)
        ls = world.ls.nodes.get_expired_executions_batch(tenant, before, 7)
        pg = world.pg.nodes.get_expired_executions_batch(tenant, before, 7)
        assert [row_view(r) for r in ls] == [row_view(r) for r in pg]


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"status": "succeeded"},
        {"status": "failed"},
        {"keyword": "DONE"},
        {"keyword": "hello"},
        {"keyword": "no such text"},
        {"created_from": "web-app"},
        {"created_at_after": BASE + timedelta(hours=9), "created_at_before": BASE + timedelta(hours=48)},
    ],
)
def test_app_log_pages(world: World, filters: dict[str, t.Any]) -> None:
    for tenant, app in world.scopes():
        for page in (1, 2, 3):
            ls = world.ls.app_logs.get_paginated_logs(tenant, app, page=page, limit=2, **filters)
            pg = world.pg.app_logs.get_paginated_logs(tenant, app, page=page, limit=2, **filters)
            assert {**ls, "data": [row_view(r) for r in ls["data"]]} == {
                **pg,
                "data": [row_view(r) for r in pg["data"]],
            }


def test_app_log_by_run_id_keyword_and_lookups(world: World) -> None:
    for log in world.scenario.app_logs:
        page = world.ls.app_logs.get_paginated_logs(log["tenant_id"], log["app_id"], keyword=log["workflow_run_id"])
        assert [r.id for r in page["data"]] == [log["id"]]
        assert row_view(world.ls.app_logs.get_by_id(log["tenant_id"], log["id"])) == row_view(
            world.pg.app_logs.get_by_id(log["tenant_id"], log["id"])
        )
        assert world.ls.app_logs.get_by_workflow_run_id(log["tenant_id"], log["workflow_run_id"]).id == log["id"]
        assert (
            world.ls.app_logs.get_by_id(
                world.scenario.tenants[1]
                if log["tenant_id"] == world.scenario.tenants[0]
                else world.scenario.tenants[0],
                log["id"],
            )
            is None
        )


def test_related_counts(world: World, pg_sessions: t.Any) -> None:
    for tenant, app in world.scopes():
        runs = world.pg.runs.get_expired_runs_batch(tenant, BASE + timedelta(days=30))
        runs = [r for r in runs if r.app_id == app]
        assert world.ls.runs.count_runs_with_related(runs) == world.pg.runs.count_runs_with_related(runs)
        with pg_sessions() as session:
            ids = [r.id for r in runs]
            assert world.ls.nodes.count_by_runs(session, ids) == world.pg.nodes.count_by_runs(session, ids)
