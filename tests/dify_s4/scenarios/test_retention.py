"""Retention scans and deletes through the S4 API factory: Dify's clean-up filters applied exactly.

Follows Dify's ``services/workflow/run_repository.py`` contract for ``get_runs_batch_by_time_range``
(``tenant_prefixes``, ``workflow_ids``, ``run_shard_index`` / ``run_shard_total``),
``get_cleanup_refs_batch_by_time_range`` (inclusive ``upper_bound``) and
``delete_runs_with_related_by_ids`` / ``count_runs_with_related_by_ids`` (langgenius/dify 7b95e300),
and the ``WorkflowRunCleanupRef`` DTO of ``services/workflow/run_entities.py`` (ab1d0626).
"""

from __future__ import annotations

import typing as t
from datetime import timedelta

import pytest
from models.workflow import WorkflowRun

from .conftest import HostFactory
from .harness import START, S4Storage, node, run

TENANT_A = "a1000000-0000-4000-8000-00000000000a"
TENANT_B = "b2000000-0000-4000-8000-00000000000b"
APP = "c3000000-0000-4000-8000-00000000000c"
WORKFLOW_1 = "d4000000-0000-4000-8000-000000000001"
WORKFLOW_2 = "d4000000-0000-4000-8000-000000000002"
BASE = START - timedelta(days=3)


def run_id(i: int) -> str:
    """Run ``i``: its id ends in the hexadecimal digit ``i`` (Dify's shard is the last hex digit)."""
    return f"e5000000-0000-4000-8000-00000000000{i:x}"


@pytest.fixture
def runs_of_two_tenants(storage: S4Storage) -> list[str]:
    return seed(storage)


def seed(storage: S4Storage) -> list[str]:
    """Eight ended runs a minute apart: even ones of tenant A, odd ones of B; 0–3 of workflow 1, 4–7 of 2."""
    ids = []
    for i in range(8):
        tenant = TENANT_A if i % 2 == 0 else TENANT_B
        workflow = WORKFLOW_1 if i < 4 else WORKFLOW_2
        storage.run_writer(tenant=tenant, app=APP).save(
            run(run_id(i), start=BASE + timedelta(minutes=i), workflow_id=workflow)
        )
        ids.append(run_id(i))
    storage.run_writer(tenant=TENANT_A, app=APP).save(
        run(run_id(9), start=BASE + timedelta(minutes=9)).model_copy(update={"status": "running", "finished_at": None})
    )
    storage.settle()
    return ids


def scan(storage: S4Storage, **filters: t.Any) -> list[str]:
    found = storage.runs().get_runs_batch_by_time_range(
        start_from=BASE - timedelta(hours=1),
        end_before=BASE + timedelta(hours=1),
        last_seen=filters.pop("last_seen", None),
        batch_size=filters.pop("batch_size", 100),
        **filters,
    )
    return [str(r.id) for r in found]


def test_runs_batch_honours_every_filter(storage: S4Storage, runs_of_two_tenants: list[str]) -> None:
    ids = runs_of_two_tenants
    assert scan(storage) == ids, "ended runs only (run 9 is still running), by (created_at, id)"
    assert scan(storage, workflow_ids=[WORKFLOW_2]) == ids[4:]
    assert scan(storage, tenant_prefixes=["b"]) == ids[1::2]
    assert scan(storage, tenant_prefixes=["a1", "b2"]) == ids
    assert scan(storage, tenant_prefixes=["f"]) == []
    assert scan(storage, tenant_ids=[TENANT_A], workflow_ids=[WORKFLOW_1]) == [ids[0], ids[2]]
    assert scan(storage, run_shard_index=1, run_shard_total=2) == ids[1::2]
    assert scan(storage, run_shard_index=0, run_shard_total=4) == [ids[0], ids[4]]
    first = storage.runs().get_runs_batch_by_time_range(
        BASE - timedelta(hours=1), BASE + timedelta(hours=1), None, 3, workflow_ids=[WORKFLOW_1, WORKFLOW_2]
    )
    assert [r.id for r in first] == ids[:3]
    assert scan(storage, last_seen=(first[-1].created_at, first[-1].id), batch_size=3) == ids[3:6]


def test_a_lone_shard_index_is_refused(storage: S4Storage, runs_of_two_tenants: list[str]) -> None:
    with pytest.raises(ValueError, match="run_shard_index and run_shard_total"):
        scan(storage, run_shard_index=1)


def test_cleanup_refs_stop_at_the_inclusive_upper_bound(storage: S4Storage, runs_of_two_tenants: list[str]) -> None:
    ids = runs_of_two_tenants
    bound = (BASE + timedelta(minutes=4), ids[4])
    refs = storage.runs().get_cleanup_refs_batch_by_time_range(
        BASE - timedelta(hours=1), BASE + timedelta(hours=1), None, 100, upper_bound=bound
    )
    assert [(r.id, r.tenant_id, r.created_at) for r in refs] == [
        (ids[i], TENANT_A if i % 2 == 0 else TENANT_B, BASE + timedelta(minutes=i)) for i in range(5)
    ]
    only_b = storage.runs().get_cleanup_refs_batch_by_time_range(
        BASE - timedelta(hours=1), BASE + timedelta(hours=1), None, 100, tenant_ids=[TENANT_B], upper_bound=bound
    )
    assert [r.id for r in only_b] == [ids[1], ids[3]]


def test_runs_with_related_are_counted_then_deleted_by_ids(storage: S4Storage, runs_of_two_tenants: list[str]) -> None:
    ids = runs_of_two_tenants
    writer = storage.node_writer(tenant=TENANT_A, app=APP)
    for index in (1, 2):
        writer.save(node(f"node-of-run-0-{index}", index=index).model_copy(update={"workflow_execution_id": ids[0]}))
    storage.settle()
    runs = storage.runs()
    counts = runs.count_runs_with_related_by_ids([ids[0], ids[1]])
    assert (counts["runs"], counts["node_executions"]) == (2, 2)
    deleted = runs.delete_runs_with_related_by_ids([ids[0], ids[1]])
    assert (deleted["runs"], deleted["node_executions"]) == (2, 2)
    assert runs.get_workflow_run_by_id(TENANT_A, APP, ids[0]) is None
    assert list(storage.nodes().get_executions_by_workflow_run(TENANT_A, APP, ids[0])) == []
    assert scan(storage) == ids[2:]
    assert runs.count_runs_with_related_by_ids([ids[0], ids[1]])["runs"] == 0


@pytest.mark.parametrize(
    "dual_read",
    [False, True],
    ids=["dual-read-off", "dual-read-on"],
)
def test_deleting_runs_also_deletes_their_control_rows(make_host: HostFactory, dual_read: bool) -> None:
    """The control rows ``save()`` wrote must not outlive their runs: Dify's S4 log-store run repository
    inherits its clean-up from the SQL repository, which deletes the ``workflow_runs`` rows. Without it,
    every run ever executed keeps a row in PostgreSQL."""
    host = make_host(run_mode="logstore", node_mode="logstore", LOGSTORE_DUAL_READ_ENABLED=str(dual_read).lower())
    with host.app.app_context():
        ids = seed(host)
        with host.sessions() as session:
            assert session.get(WorkflowRun, ids[0]) is not None, "precondition: save() wrote the control row"
        host.runs().delete_runs_with_related_by_ids([ids[0]])
        assert host.runs().get_workflow_run_by_id(TENANT_A, APP, ids[0]) is None
        with host.sessions() as session:
            assert session.get(WorkflowRun, ids[0]) is None
