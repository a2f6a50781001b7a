"""Ordering, read-your-writes, tenant isolation and hostile payloads, for each backend."""

from __future__ import annotations

import math
import random
import typing as t
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_difylogstore.dify.entities import WorkflowNodeExecution
from flask_difylogstore.dify.enums import NodeType, WorkflowNodeExecutionStatus
from flask_difylogstore.extension import get_state
from flask_difylogstore.records import LogRecord, RecordKind, latest_by_id
from tests.contract.conftest import flush, logstore_app
from tests.contract.scenario import BASE, Account, build_scenario, drive, node_triggered_from
from tests.contract.world import core_node_repo, logstore_side, store_scenario


def make_searchable(backend: t.Any) -> None:
    """Records written straight to the backend (bypassing the pipeline) become searchable now.

    The pipeline serves delivered records until a store such as Elasticsearch makes them
    searchable; a test that writes behind its back refreshes instead.
    """
    refresh = getattr(backend, "refresh", None)
    if refresh is not None:
        refresh()


class CapturingSink:
    """Keeps submitted records instead of delivering them (pending = held, flush = deliver)."""

    def __init__(self, backend: t.Any) -> None:
        self.backend = backend
        self.records: list[LogRecord] = []

    def submit(self, records: Sequence[LogRecord]) -> None:
        self.records.extend(records)

    def pending(self, kind: RecordKind) -> Iterable[LogRecord]:
        return [r for r in self.records if r.kind is kind]

    def flush(self, timeout: float | None = None) -> bool:
        self.backend.write(self.records)
        self.records = []
        make_searchable(self.backend)
        return True

    def forget_delivered(self, kind: RecordKind) -> None:
        return None

    def close(self, timeout: float | None = None) -> None:
        return None

    def stats(self) -> dict[str, t.Any]:
        return {"held": len(self.records)}


@pytest.fixture
def app_ctx(backend_values: dict[str, t.Any], tmp_path: t.Any) -> Iterator[None]:
    with logstore_app(backend_values, tmp_path):
        yield


@pytest.fixture
def capturing(app_ctx: None) -> Iterator[CapturingSink]:
    state = get_state()
    original = state.sink
    sink = CapturingSink(state.require_backend())
    state.sink = sink
    try:
        yield sink
    finally:
        state.sink = original


def test_shuffled_and_duplicated_saves_converge_to_the_final_state(capturing: CapturingSink) -> None:
    scenario = build_scenario(seed=3, runs_per_app=120)
    for run in scenario.runs:
        run.final = run.final or "succeeded"  # type: ignore[assignment]
    store_scenario(scenario, logstore_side())
    records = capturing.records
    assert len(records) >= 5000
    shuffled = records + random.Random(5).sample(records, len(records))
    random.Random(9).shuffle(shuffled)
    capturing.records = []
    backend = get_state().require_backend()
    for start in range(0, len(shuffled), 1000):
        backend.write(shuffled[start : start + 1000])
    make_searchable(backend)
    runs = logstore_side().runs
    nodes = logstore_side().nodes
    expected = latest_by_id(r for r in records if r.kind is RecordKind.RUN)
    for tenant, apps in scenario.apps.items():
        for app in apps:
            counts = runs.get_workflow_runs_count(tenant, app, ["app-run", "debugging"])
            assert counts["running"] == 0 and counts["total"] == len(scenario.runs_of(tenant, app))
            page = runs.get_paginated_workflow_runs(tenant, app, ["app-run", "debugging"], limit=1000)
            assert {r.id: r.status for r in page.data} == {
                r.id: expected[r.id].data["status"] for r in scenario.runs_of(tenant, app)
            }
            assert all(r.finished_at is not None and r.outputs_dict for r in page.data)
    for run in random.Random(1).sample(scenario.runs, 30):
        for node in nodes.get_executions_by_workflow_run(run.tenant_id, run.app_id, run.id):
            assert node.status in ("succeeded", "failed", "retry")
            assert node.outputs_dict is not None or node.status == "retry"


def test_reads_see_pending_writes_once(capturing: CapturingSink) -> None:
    scenario = build_scenario(seed=4, runs_per_app=3)
    half = len(scenario.runs) // 2
    side = logstore_side()
    store_scenario(type(scenario)(scenario.tenants, scenario.apps, scenario.runs[:half], []), side)
    capturing.flush()
    store_scenario(type(scenario)(scenario.tenants, scenario.apps, scenario.runs[half:], []), side)
    assert capturing.records  # the second half is only pending
    for tenant, apps in scenario.apps.items():
        for app in apps:
            expected = scenario.runs_of(tenant, app)
            page = side.runs.get_paginated_workflow_runs(tenant, app, ["app-run", "debugging"], limit=100)
            assert sorted(r.id for r in page.data) == sorted(r.id for r in expected)
            counts = side.runs.get_workflow_runs_count(tenant, app, ["app-run", "debugging"])
            assert counts["total"] == len(expected)
            for run in expected:
                listed = side.nodes.get_executions_by_workflow_run(tenant, app, run.id)
                assert len({n.id for n in listed}) == len(listed) == len(run.nodes) + sum(n.retries for n in run.nodes)
                entities = core_node_repo(side, tenant, app).get_by_workflow_run(run.id)
                assert [e.id for e in entities] == [n.id for n in listed]


INJECTION = [
    "'",
    "''",
    '"',
    "\\",
    "\\'",
    "' OR '1'='1",
    '" or "1"="1',
    "* | select *",
    "*",
    "|",
    "a|b",
    "x and y",
    "not x",
    "x or *",
    "1; DROP TABLE workflow_runs; --",
    "/* c */",
    "-- c",
    "%",
    "_",
    "%_%",
    "tenant_id:*",
    "__time__ > 0",
    "() [] {}",
    "é漢字🙂",
    "\u0000",
    "\n\r\t",
    "a" * 300,
    "",
    " ",
]


@pytest.fixture(scope="module")
def isolation_world(backend_values: dict[str, t.Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[t.Any]:
    scenario = build_scenario(seed=21, runs_per_app=3)
    with logstore_app(backend_values, tmp_path_factory.mktemp("isolation")):
        store_scenario(scenario, logstore_side())
        flush()
        yield scenario


hostile = st.one_of(st.sampled_from(INJECTION), st.text(max_size=40))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=hostile, glue=st.sampled_from(["", "' OR tenant_id != '", "\\' or 1=1 or '", "*"]))
def test_hostile_values_never_leak_or_fail(isolation_world: t.Any, value: str, glue: str) -> None:
    scenario = isolation_world
    victim = scenario.tenants[1]
    attacker = scenario.tenants[0]
    victim_ids = {r.id for r in scenario.runs if r.tenant_id == victim}
    victim_nodes = {n.id for r in scenario.runs if r.tenant_id == victim for n in r.nodes}
    side = logstore_side()
    for tenant in {value, attacker + glue + value, value + victim} - {attacker, victim}:
        app = scenario.apps[attacker][0]
        runs = side.runs.get_paginated_workflow_runs(tenant, app, ["app-run", value], limit=50, status=value or None)
        assert not {r.id for r in runs.data} & victim_ids
        assert side.runs.get_workflow_run_by_id(tenant, value, value) is None
        assert sum(side.runs.get_workflow_runs_count(tenant, value, value, value or None).values()) == 0
        for method in ("get_daily_runs_statistics", "get_daily_terminals_statistics"):
            assert getattr(side.runs, method)(tenant, app, value) == []
        assert not {n.id for n in side.nodes.get_executions_by_workflow_run(tenant, value, value)} & victim_nodes
        assert side.nodes.get_node_last_execution(tenant, value, value, value) is None
        assert side.nodes.get_execution_by_id(value, tenant) is None
        logs = side.app_logs.get_paginated_logs(tenant, value, keyword=value or None, status=value or None)
        assert logs["total"] == 0
    own_app = scenario.apps[attacker][0]
    logs = side.app_logs.get_paginated_logs(attacker, own_app, keyword=value or None)
    assert not {log.workflow_run_id for log in logs["data"]} & victim_ids
    nodes = core_node_repo(side, attacker, own_app).get_by_workflow_run(value)
    assert nodes == []


class Weird:
    def __str__(self) -> str:
        return "weird-object"


def test_large_and_malformed_payloads_are_stored(app_ctx: None) -> None:
    tenant, app = str(uuid.uuid4()), str(uuid.uuid4())
    user = Account(str(uuid.uuid4()), tenant)
    repo = core_node_repo(logstore_side(), tenant, app)
    run_id = str(uuid.uuid4())
    deep: dict[str, t.Any] = {}
    cursor = deep
    for _ in range(600):
        cursor["d"] = {}
        cursor = cursor["d"]
    huge = "x" * (5 * 1024 * 1024)
    entity = WorkflowNodeExecution(
        id=str(uuid.uuid4()),
        workflow_id=str(uuid.uuid4()),
        workflow_execution_id=run_id,
        index=1,
        node_id="n",
        node_type=NodeType.CODE,
        title="t",
        created_at=BASE,
        status=WorkflowNodeExecutionStatus.SUCCEEDED,
        inputs={"huge": huge},
        outputs={
            "nan": math.nan,
            "inf": -math.inf,
            "bytes": b"\xff\xfeok",
            "obj": Weird(),
            "deep": deep,
            "set": {3, 1},
            "when": datetime(2026, 1, 1),
            "surrogate": "\ud800x",
            "big": 2**80,
        },
        process_data={"ok": 1},
    )
    repo.save(entity)
    repo.save_execution_data(entity)
    assert entity.inputs_truncated
    flush()
    [stored] = repo.get_by_workflow_run(run_id)
    assert stored.inputs == {"huge": huge} and stored.inputs_truncated
    assert len(stored.get_truncated_inputs()["huge"]) <= 1003
    out = stored.outputs
    assert out["nan"] is None and out["inf"] is None and out["obj"] == "weird-object"
    assert out["bytes"] == "\ufffd\ufffdok" and out["set"] == [1, 3] and out["when"].startswith("2026-01-01")
    assert out["big"] == str(2**80) and out["surrogate"].endswith("x")
    depth, node = 0, out["deep"]
    while isinstance(node, dict) and "d" in node:
        node, depth = node["d"], depth + 1
    assert depth > 100
    model = logstore_side().nodes.get_execution_by_id(entity.id, tenant)
    assert model.inputs_truncated and not model.process_data_truncated and len(model.inputs) <= 4096
    assert user.current_tenant_id == tenant


def test_retry_then_save_execution_data_keeps_payloads(app_ctx: None) -> None:
    scenario = build_scenario(seed=5, runs_per_app=2)
    side = logstore_side()
    drive(
        scenario,
        lambda run: side.core_exec(user=run.user, app_id=run.app_id, triggered_from=run.triggered_from),
        lambda run: side.core_node(user=run.user, app_id=run.app_id, triggered_from=node_triggered_from()),
    )
    run = scenario.runs[0]
    repo = core_node_repo(side, run.tenant_id, run.app_id)
    [first, *_] = repo.get_by_workflow_run(run.id)
    first.status = WorkflowNodeExecutionStatus.FAILED
    first.inputs = None
    first.outputs = None
    first.process_data = None
    fresh = core_node_repo(side, run.tenant_id, run.app_id)
    fresh.save_execution_data(first)  # a new repository instance: None fields come from the store
    again = next(e for e in fresh.get_by_workflow_run(run.id) if e.id == first.id)
    assert again.inputs is not None and again.outputs is not None
    assert again.finished_at is None or again.finished_at >= BASE - timedelta(days=1)


def test_pending_and_stored_copies_of_one_snapshot_count_once(capturing: CapturingSink) -> None:
    scenario = build_scenario(seed=6, runs_per_app=2)
    side = logstore_side()
    store_scenario(scenario, side)
    held = list(capturing.records)
    capturing.flush()
    capturing.records = held  # delivered, but still reported as pending
    for tenant, apps in scenario.apps.items():
        for app in apps:
            expected = sorted(r.id for r in scenario.runs_of(tenant, app))
            page = side.runs.get_paginated_workflow_runs(tenant, app, ["app-run", "debugging"], limit=100)
            assert sorted(r.id for r in page.data) == expected
            assert side.runs.get_workflow_runs_count(tenant, app, ["app-run", "debugging"])["total"] == len(expected)


def test_node_lists_are_not_capped(app_ctx: None) -> None:
    tenant, app, run_id = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    side = logstore_side()
    repo = core_node_repo(side, tenant, app)
    for index in range(1, 1201):
        repo.save(
            WorkflowNodeExecution(
                id=str(uuid.uuid4()),
                workflow_id=str(uuid.uuid4()),
                workflow_execution_id=run_id,
                index=index,
                node_id=f"loop-{index}",
                node_type=NodeType.LOOP,
                title="step",
                created_at=BASE + timedelta(milliseconds=index),
                status=WorkflowNodeExecutionStatus.SUCCEEDED,
                outputs={"i": index},
            )
        )
    flush()
    assert [e.index for e in core_node_repo(side, tenant, app).get_by_workflow_run(run_id)] == list(range(1, 1201))
    assert len(side.nodes.get_executions_by_workflow_run(tenant, app, run_id)) == 1200
    assert core_node_repo(side, tenant, app).get_max_index(run_id) == 1200
