"""Dual read on every read path, with the data split between PostgreSQL and the log store.

The scenario is stored whole in an "oracle" PostgreSQL schema (the relational baseline, as if
nothing had moved) and split between the relational side and the log store by creation time
around the cut-over: before it, *legacy* runs only in PostgreSQL and *migrated* runs in both;
from it on, *new* runs only in the log store and *dual-written* runs in both. Every read of the
log-store repositories, with ``LOGSTORE_CUTOVER_AT`` set and unset, must answer exactly like the
oracle: same rows, order, ``has_more``, cursors, totals and statistics, nothing counted twice.
"""

from __future__ import annotations

import functools
import typing as t
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from flask_difylogstore.dify.entities import OrderConfig
from flask_difylogstore.repositories import (
    LogStoreAPIWorkflowNodeExecutionRepository,
    LogStoreAPIWorkflowRunRepository,
    LogStoreWorkflowAppLogRepository,
    LogStoreWorkflowExecutionRepository,
    LogStoreWorkflowNodeExecutionRepository,
)
from flask_difylogstore.repositories.relational import LocalFileStore
from tests.contract.conftest import flush, logstore_app, reset_tables, state
from tests.contract.scenario import BASE, RunSpec, Scenario, build_scenario, scenario_with
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

CUTOVER = BASE + timedelta(hours=40)
PLACEMENTS = ("legacy", "migrated", "new", "dual")


@dataclass
class SplitWorld:
    scenario: Scenario
    placement: dict[str, str]
    ls: Side
    oracle: Side

    def scopes(self) -> Iterator[tuple[str, str]]:
        for tenant, apps in self.scenario.apps.items():
            for app in apps:
                yield tenant, app

    def sample(self) -> list[RunSpec]:
        """Two runs of each placement per tenant (the per-run reads are slow on remote backends)."""
        picked: dict[tuple[str, str], list[RunSpec]] = {}
        for run in self.scenario.runs:
            group = picked.setdefault((run.tenant_id, self.placement[run.id]), [])
            if len(group) < 2:
                group.append(run)
        return [run for group in picked.values() for run in group]


def _subset(scenario: Scenario, run_ids: set[str]) -> Scenario:
    runs = [r for r in scenario.runs if r.id in run_ids]
    logs = [log for log in scenario.app_logs if log["workflow_run_id"] in run_ids]
    return scenario_with(scenario.tenants, scenario.apps, runs, logs)


@pytest.fixture(scope="module")
def oracle_sessions(pg_url: str) -> Iterator[sessionmaker[Session]]:
    """The whole scenario in a private schema: what a merged read must return."""
    from flask_difylogstore.dify.models import Base

    schema = f"dual_oracle_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = sa.create_engine(pg_url, connect_args={"options": f"-csearch_path={schema}"})
    Base.metadata.create_all(engine)
    yield sessionmaker(bind=engine, expire_on_commit=False)
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="module")
def world(
    backend_values: dict[str, t.Any],
    pg_schema_engine: t.Any,
    pg_sessions: t.Any,
    oracle_sessions: t.Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SplitWorld]:
    scenario = build_scenario(seed=41)
    placement = {}
    for i, run in enumerate(scenario.runs):
        before = run.started_at < CUTOVER
        placement[run.id] = ("legacy" if i % 2 else "migrated") if before else ("new" if i % 2 else "dual")
    assert set(placement.values()) == set(PLACEMENTS)
    relational_ids = {r for r, p in placement.items() if p != "new"}
    logstore_ids = {r for r, p in placement.items() if p != "legacy"}
    tmp = tmp_path_factory.mktemp("dual-reads")
    reset_tables(pg_schema_engine)
    reset_tables(oracle_sessions.kw["bind"])
    with logstore_app(backend_values, tmp, dual_read_enabled=True) as app:
        # The relational side's payload objects live where its repositories look by default.
        store = LocalFileStore(Path(app.instance_path) / "difylogstore-files")
        store_scenario(_subset(scenario, relational_ids), relational_side(pg_sessions, store))
        store_scenario(_subset(scenario, logstore_ids), logstore_side())
        store_scenario(scenario, relational_side(oracle_sessions, LocalFileStore(tmp / "oracle-files")))
        flush()
        ls = Side(
            LogStoreAPIWorkflowRunRepository(session_maker=pg_sessions),
            LogStoreAPIWorkflowNodeExecutionRepository(session_maker=pg_sessions),
            LogStoreWorkflowAppLogRepository(session_maker=pg_sessions),
            functools.partial(LogStoreWorkflowExecutionRepository, session_factory=pg_sessions),
            functools.partial(LogStoreWorkflowNodeExecutionRepository, session_factory=pg_sessions),
        )
        yield SplitWorld(
            scenario, placement, ls, relational_side(oracle_sessions, LocalFileStore(tmp / "oracle-files"))
        )


@pytest.fixture(params=["per-entity", "cutover"])
def mode(request: pytest.FixtureRequest, world: SplitWorld) -> Iterator[str]:
    """Run the test once without and once with ``LOGSTORE_CUTOVER_AT``."""
    current = state()
    original = current.settings
    cutover = CUTOVER if request.param == "cutover" else None
    current.settings = original.model_copy(update={"cutover_at": cutover})
    yield str(request.param)
    current.settings = original


def both(world: SplitWorld, method: str, *args: t.Any, **kwargs: t.Any) -> tuple[t.Any, t.Any]:
    return getattr(world.ls.runs, method)(*args, **kwargs), getattr(world.oracle.runs, method)(*args, **kwargs)


@pytest.mark.parametrize("status", [None, "succeeded", "running"])
@pytest.mark.parametrize("triggered_from", ["app-run", ("app-run", "debugging")])
def test_paginated_runs(world: SplitWorld, mode: str, triggered_from: t.Any, status: str | None) -> None:
    seen: set[str] = set()
    for tenant, app in world.scopes():
        for limit in (1, 4) if status is None and triggered_from == "app-run" else (3,):
            cursor: str | None = None
            while True:
                ls = world.ls.runs.get_paginated_workflow_runs(tenant, app, triggered_from, limit, cursor, status)
                pg = world.oracle.runs.get_paginated_workflow_runs(tenant, app, triggered_from, limit, cursor, status)
                assert pagination_view(ls) == pagination_view(pg)
                seen.update(world.placement[r.id] for r in ls.data)
                if not pg.has_more:
                    break
                cursor = pg.data[-1].id
    if status is None:
        assert seen == set(PLACEMENTS)


def test_unknown_or_foreign_cursor_is_rejected(world: SplitWorld, mode: str) -> None:
    tenant, app = next(world.scopes())
    foreign = [r for r in world.scenario.runs if r.tenant_id != tenant]
    for cursor in ("3b0f5c4e-0000-4000-8000-000000000000", foreign[0].id, foreign[1].id):
        with pytest.raises(ValueError, match="Last workflow run not exists"):
            world.ls.runs.get_paginated_workflow_runs(tenant, app, "app-run", last_id=cursor)


def test_run_lookups(world: SplitWorld, mode: str) -> None:
    for run in world.scenario.runs:
        ls, pg = both(world, "get_workflow_run_by_id", run.tenant_id, run.app_id, run.id)
        assert row_view(ls) == row_view(pg)
        other_app = next(a for a in world.scenario.apps[run.tenant_id] if a != run.app_id)
        assert world.ls.runs.get_workflow_run_by_id(run.tenant_id, other_app, run.id) is None
        ls, pg = both(world, "get_workflow_run_by_id_without_tenant", run.id)
        assert row_view(ls) == row_view(pg)
        core = world.ls.core_exec(user=run.user, app_id=run.app_id, triggered_from=run.triggered_from)
        assert core.get(run.id).status == pg.status


@pytest.mark.parametrize("status", [None, "running", "succeeded"])
@pytest.mark.parametrize("time_range", [None, "36500d"])
def test_runs_count(world: SplitWorld, mode: str, status: str | None, time_range: str | None) -> None:
    for tenant, app in world.scopes():
        for triggered_from in ("app-run", "debugging"):
            ls, pg = both(world, "get_workflow_runs_count", tenant, app, triggered_from, status, time_range)
            assert ls == pg


@pytest.mark.parametrize(
    "method",
    [
        "get_daily_runs_statistics",
        "get_daily_terminals_statistics",
        "get_daily_token_cost_statistics",
        "get_average_app_interaction_statistics",
    ],
)
def test_daily_statistics(world: SplitWorld, mode: str, method: str) -> None:
    spanning = (BASE + timedelta(hours=9), BASE + timedelta(hours=71), "Asia/Shanghai")
    cases = [(None, None, "UTC"), (CUTOVER, None, "UTC"), (None, CUTOVER, "UTC"), spanning]
    for tenant, app in world.scopes():
        for start, end, timezone in cases:
            ls, pg = both(world, method, tenant, app, "app-run", start, end, timezone)
            assert ls == pg, (start, end, timezone)


def test_expired_runs_batch(world: SplitWorld, mode: str) -> None:
    for tenant in world.scenario.tenants:
        for before in (BASE + timedelta(hours=21), BASE + timedelta(hours=72), BASE + timedelta(days=30)):
            for size in (1000, 5, 1):
                ls, pg = both(world, "get_expired_runs_batch", tenant, before, size)
                assert [row_view(r) for r in ls] == [row_view(r) for r in pg]


@pytest.mark.parametrize("tenant_filter", [False, True])
def test_runs_batch_by_time_range(world: SplitWorld, mode: str, tenant_filter: bool) -> None:
    tenant_ids = world.scenario.tenants[:1] if tenant_filter else None
    last: t.Any = None
    collected: list[str] = []
    while True:
        ls, pg = both(
            world, "get_runs_batch_by_time_range", BASE + timedelta(hours=1), BASE + timedelta(days=10), last, 3,
            tenant_ids=tenant_ids,
        )  # fmt: skip
        assert [row_view(r) for r in ls] == [row_view(r) for r in pg]
        if not pg:
            break
        collected.extend(r.id for r in pg)
        last = (pg[-1].created_at, pg[-1].id)
    assert {world.placement[r] for r in collected} == set(PLACEMENTS)


def test_node_reads(world: SplitWorld, mode: str) -> None:
    order = OrderConfig(order_by=["index"], order_direction="desc")
    lasts: set[tuple[str, str, str, str]] = set()
    for run in world.sample():
        ls = world.ls.nodes.get_executions_by_workflow_run(run.tenant_id, run.app_id, run.id)
        pg = world.oracle.nodes.get_executions_by_workflow_run(run.tenant_id, run.app_id, run.id)
        assert [row_view(r) for r in ls] == [row_view(r) for r in pg]
        core_ls = core_node_repo(world.ls, run.tenant_id, run.app_id)
        core_pg = core_node_repo(world.oracle, run.tenant_id, run.app_id)
        assert [entity_view(e) for e in core_ls.get_by_workflow_run(run.id)] == [
            entity_view(e) for e in core_pg.get_by_workflow_run(run.id)
        ]
        assert [e.id for e in core_ls.get_by_workflow_execution(run.id, order)] == [
            e.id for e in core_pg.get_by_workflow_execution(run.id, order)
        ]
        assert core_ls.get_max_index(run.id) == len(run.nodes)
        for node in run.nodes:
            a = world.ls.nodes.get_execution_by_id(node.id, run.tenant_id)
            b = world.oracle.nodes.get_execution_by_id(node.id, run.tenant_id)
            assert row_view(a) == row_view(b)
            assert [o.type_ for o in a.offload_data] == [o.type_ for o in b.offload_data]
            lasts.add((run.tenant_id, run.app_id, run.workflow_id, node.node_id))
    for last in sorted(lasts):
        assert row_view(world.ls.nodes.get_node_last_execution(*last)) == row_view(
            world.oracle.nodes.get_node_last_execution(*last)
        )


def test_expired_node_batch(world: SplitWorld, mode: str) -> None:
    for tenant in world.scenario.tenants:
        for before in (BASE + timedelta(hours=34), BASE + timedelta(hours=72)):
            for size in (7, 1000):
                ls = world.ls.nodes.get_expired_executions_batch(tenant, before, size)
                pg = world.oracle.nodes.get_expired_executions_batch(tenant, before, size)
                assert [row_view(r) for r in ls] == [row_view(r) for r in pg]


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"status": "succeeded"},
        {"status": "failed"},
        {"keyword": "DONE"},
        {"created_from": "web-app"},
        {"created_at_after": BASE + timedelta(hours=9), "created_at_before": BASE + timedelta(hours=72)},
    ],
)
def test_app_log_pages(world: SplitWorld, mode: str, filters: dict[str, t.Any]) -> None:
    for tenant, app in world.scopes():
        for page in (1, 3):
            ls = world.ls.app_logs.get_paginated_logs(tenant, app, page=page, limit=2, **filters)
            pg = world.oracle.app_logs.get_paginated_logs(tenant, app, page=page, limit=2, **filters)
            assert {**ls, "data": [row_view(r) for r in ls["data"]]} == {
                **pg,
                "data": [row_view(r) for r in pg["data"]],
            }


def test_app_log_lookups(world: SplitWorld, mode: str) -> None:
    sampled = {run.id for run in world.sample()}
    for log in (log for log in world.scenario.app_logs if log["workflow_run_id"] in sampled):
        tenant = log["tenant_id"]
        page = world.ls.app_logs.get_paginated_logs(tenant, log["app_id"], keyword=log["workflow_run_id"])
        assert [r.id for r in page["data"]] == [log["id"]] and page["total"] == 1
        assert row_view(world.ls.app_logs.get_by_id(tenant, log["id"])) == row_view(
            world.oracle.app_logs.get_by_id(tenant, log["id"])
        )
        assert world.ls.app_logs.get_by_workflow_run_id(tenant, log["workflow_run_id"]).id == log["id"]
