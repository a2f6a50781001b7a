"""Cleanup and deletion methods remove the same rows as the relational baseline, and reads agree after."""

from __future__ import annotations

import typing as t
import zlib
from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.contract.conftest import flush, logstore_app, reset_tables
from tests.contract.scenario import BASE, build_scenario
from tests.contract.test_reads import World
from tests.contract.world import logstore_side, relational_side, row_view, store_scenario

pytestmark = pytest.mark.postgres


@pytest.fixture
def small_world(
    backend_values: dict[str, t.Any],
    pg_schema_engine: t.Any,
    pg_sessions: t.Any,
    file_store: t.Any,
    tmp_path: t.Any,
    request: pytest.FixtureRequest,
) -> Iterator[World]:
    # Fresh ids per test: a backend may keep data (and tombstones) for the whole module.
    scenario = build_scenario(seed=zlib.crc32(request.node.name.encode()), runs_per_app=4)
    reset_tables(pg_schema_engine)
    pg = relational_side(pg_sessions, file_store)
    store_scenario(scenario, pg)
    with logstore_app(backend_values, tmp_path):
        ls = logstore_side()
        store_scenario(scenario, ls)
        flush()
        yield World(scenario, ls, pg)


def assert_same_state(world: World) -> None:
    for tenant, app in world.scopes():
        for side_runs in (world.ls.runs, world.pg.runs):
            assert side_runs is not None
        ls = world.ls.runs.get_paginated_workflow_runs(tenant, app, ["app-run", "debugging"], limit=100)
        pg = world.pg.runs.get_paginated_workflow_runs(tenant, app, ["app-run", "debugging"], limit=100)
        assert [r.id for r in ls.data] == [r.id for r in pg.data]
        for run in world.scenario.runs_of(tenant, app):
            assert [row_view(r) for r in world.ls.nodes.get_executions_by_workflow_run(tenant, app, run.id)] == [
                row_view(r) for r in world.pg.nodes.get_executions_by_workflow_run(tenant, app, run.id)
            ]
        assert (
            world.ls.app_logs.get_paginated_logs(tenant, app)["total"]
            == world.pg.app_logs.get_paginated_logs(tenant, app)["total"]
        )


def test_delete_runs_and_nodes_by_ids(small_world: World) -> None:
    w = small_world
    run_ids = [r.id for r in w.scenario.runs[::3]] + ["0b5e1b7e-0000-4000-8000-000000000000"]
    assert w.ls.runs.delete_runs_by_ids(run_ids) == w.pg.runs.delete_runs_by_ids(run_ids) == len(run_ids) - 1
    node_ids = [n.id for r in w.scenario.runs[1::4] for n in r.nodes]
    assert w.ls.nodes.delete_executions_by_ids(node_ids) == w.pg.nodes.delete_executions_by_ids(node_ids)
    assert w.ls.runs.get_workflow_run_by_id_without_tenant(run_ids[0]) is None
    assert_same_state(w)


def test_delete_by_app_and_expired(small_world: World) -> None:
    w = small_world
    tenant = w.scenario.tenants[0]
    app = w.scenario.apps[tenant][0]
    assert w.ls.runs.delete_runs_by_app(tenant, app) == w.pg.runs.delete_runs_by_app(tenant, app)
    assert w.ls.nodes.delete_executions_by_app(tenant, app) == w.pg.nodes.delete_executions_by_app(tenant, app)
    assert w.ls.app_logs.delete_by_app(tenant, app) == w.pg.app_logs.delete_by_app(tenant, app)
    before = BASE + timedelta(hours=10)
    other = w.scenario.tenants[1]
    assert w.ls.nodes.delete_expired_executions(other, before) == w.pg.nodes.delete_expired_executions(other, before)
    assert w.ls.app_logs.delete_expired(other, before) == w.pg.app_logs.delete_expired(other, before)
    assert_same_state(w)


def test_delete_runs_with_related(small_world: World, pg_sessions: t.Any) -> None:
    w = small_world
    tenant = w.scenario.tenants[1]
    runs = w.pg.runs.get_expired_runs_batch(tenant, BASE + timedelta(days=2), 5)
    assert runs
    expected = w.pg.runs.count_runs_with_related(runs)
    assert w.ls.runs.count_runs_with_related(runs) == expected
    assert w.ls.runs.delete_runs_with_related(runs) == w.pg.runs.delete_runs_with_related(runs) == expected
    assert w.ls.runs.count_runs_with_related(runs)["node_executions"] == 0
    with pg_sessions() as session:
        ids = [r.id for r in runs]
        assert w.ls.nodes.count_by_runs(session, ids) == w.pg.nodes.count_by_runs(session, ids) == (0, 0)
    assert_same_state(w)


def test_delete_by_runs_s3(small_world: World, pg_sessions: t.Any) -> None:
    w = small_world
    ids = [r.id for r in w.scenario.runs[:4]]
    with pg_sessions() as session:
        expected = w.pg.nodes.count_by_runs(session, ids)
        offloads = w.ls.nodes.get_offloads_by_execution_ids(
            session, [n.id for r in w.scenario.runs[:4] for n in r.nodes]
        )
        assert (
            len(offloads)
            == len(
                w.pg.nodes.get_offloads_by_execution_ids(session, [n.id for r in w.scenario.runs[:4] for n in r.nodes])
            )
            == expected[1]
        )
        assert w.ls.nodes.delete_by_runs(session, ids) == w.pg.nodes.delete_by_runs(session, ids) == expected
        session.commit()
    assert_same_state(w)
