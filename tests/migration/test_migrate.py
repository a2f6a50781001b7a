"""migrate: every row lands once, payloads are restored, failures are reported and retried."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import pytest
import sqlalchemy as sa
from flask import Flask

from flask_difylogstore import payloads
from flask_difylogstore.backends.base import Scope, WriteResult
from flask_difylogstore.backends.memory import MemoryBackend
from flask_difylogstore.dify.models import WorkflowNodeExecutionModel, WorkflowRun
from flask_difylogstore.extension import get_state
from flask_difylogstore.migration.checkpoint import CheckpointStore
from flask_difylogstore.records import LogRecord, RecordKind, default_clock
from tests.migration.conftest import Env, MakeApp, backend_of, cli
from tests.migration.seed import seed

pytestmark = pytest.mark.postgres

ALL = Scope.unscoped()


def _count(app: Flask, kind: RecordKind) -> int:
    return backend_of(app).count(kind, ALL)


def test_migrates_every_kind_with_full_payloads(app: Flask, env: Env) -> None:
    data = seed(env.engine, runs=120, nodes_per_run=4, store=env.store, offload_every=25, big_payload_bytes=600_000)
    result = cli(app, "migrate", "--batch-size", "50", "--workers", "3")
    assert result.exit_code == 0, result.output
    assert _count(app, RecordKind.RUN) == 120
    assert _count(app, RecordKind.NODE_EXECUTION) == 480
    assert _count(app, RecordKind.APP_LOG) == 120
    assert "node-executions" in result.output and "rows/s" in result.output

    backend = backend_of(app)
    node_id, offloads = next(iter(data.offloaded.items()))
    tenant = data.apps[str(backend.get_latest(RecordKind.NODE_EXECUTION, [node_id], ALL)[node_id].data["app_id"])]
    node = backend.get_latest(RecordKind.NODE_EXECUTION, [node_id], Scope(tenant))[node_id]
    from flask_difylogstore.backends.base import Filter, RecordQuery

    stored = payloads.assemble_payloads(
        backend.search(
            RecordQuery(
                RecordKind.PAYLOAD,
                Scope(tenant),
                filters=(Filter("node_execution_id", "eq", node_id),),
                limit=None,
            )
        ).records
    )
    for payload_type, _key in offloads:
        assert node.data[f"{payload_type}_truncated"] == 1
        assert stored[(node_id, payload_type)] == data.payloads[(node_id, payload_type)]
    assert len(data.payloads[(node_id, offloads[0][0])]) > 2 * payloads.CHUNK_BYTES  # split into chunks
    # the entity keeps Dify's truncated column; the original created_at is the log time
    with env.engine.connect() as conn:
        row = (
            conn.execute(
                sa.select(WorkflowNodeExecutionModel.__table__).where(WorkflowNodeExecutionModel.id == node_id)
            )
            .one()
            ._mapping
        )
    assert node.data["outputs"] == row["outputs"] and node.data["created_at"] == row["created_at"]


def test_rerun_is_idempotent_and_live_writes_win(app: Flask, env: Env, backend_name: str) -> None:
    data = seed(env.engine, runs=40, nodes_per_run=2)
    assert cli(app, "migrate").exit_code == 0
    backend = backend_of(app)
    # a live save after the migration: newer clock, must never be overwritten by a re-run
    run = backend.get_latest(RecordKind.RUN, [data.run_ids[5]], ALL)[data.run_ids[5]]
    live = LogRecord(
        RecordKind.RUN,
        {**run.data, "total_tokens": 999_999},
        default_clock.version_for(RecordKind.RUN, str(run.data["status"])),
    )
    backend.write([live])

    again = cli(app, "migrate", "--json")
    assert again.exit_code == 0, again.output
    report = orjson.loads(again.stdout)
    written = sum(k["written"] for k in report["kinds"])
    present = sum(k["already_present"] for k in report["kinds"])
    if backend_name == "aliyun_sls":  # append-only: the copy is stored again, readers still see one
        assert written + present == 40 + 80 + 40
    else:
        assert (written, present) == (0, 40 + 80 + 40)
    assert _count(app, RecordKind.RUN) == 40 and _count(app, RecordKind.NODE_EXECUTION) == 80
    assert backend.get_latest(RecordKind.RUN, [data.run_ids[5]], ALL)[data.run_ids[5]].data["total_tokens"] == 999_999


def test_keyset_paging_with_equal_timestamps_skips_nothing(memory_app: Flask, env: Env) -> None:
    from datetime import timedelta

    seed(env.engine, runs=53, nodes_per_run=3, step=timedelta(0))  # every run at the same instant
    result = cli(memory_app, "migrate", "--kind", "runs", "--batch-size", "7", "--workers", "4")
    assert result.exit_code == 0, result.output
    assert _count(memory_app, RecordKind.RUN) == 53
    assert _count(memory_app, RecordKind.NODE_EXECUTION) == 0


def test_dry_run_counts_and_writes_nothing(memory_app: Flask, env: Env) -> None:
    seed(env.engine, runs=30, nodes_per_run=2, store=env.store, offload_every=10)
    result = cli(memory_app, "migrate", "--dry-run")
    assert result.exit_code == 0, result.output
    assert _count(memory_app, RecordKind.RUN) == 0
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.strip()}
    assert lines["runs"][1] == "30" and lines["node-executions"][1] == "60"
    assert lines["node-executions"][2] == "9"  # 6 nodes offloaded, every second one twice


class RejectingBackend(MemoryBackend):
    """Refuses the records of chosen ids (not retryable) until told otherwise."""

    def __init__(self, reject: set[str]) -> None:
        super().__init__()
        self.reject = reject

    def write(self, records: Sequence[LogRecord]) -> WriteResult:
        bad = [r for r in records if r.id in self.reject]
        result = super().write([r for r in records if r.id not in self.reject])
        result.failed.extend((r, "rejected: mapping conflict", False) for r in bad)
        return result


def test_failed_rows_exit_non_zero_and_resume_retries_them(make_memory_app: MakeApp, env: Env) -> None:
    app = make_memory_app()
    data = seed(env.engine, runs=25, nodes_per_run=1)
    bad = {data.run_ids[3], data.run_ids[17]}
    state = get_state(app)
    state.backend = RejectingBackend(bad)
    result = cli(app, "migrate", "--kind", "runs", "--batch-size", "10")
    assert result.exit_code == 1
    assert "2 row(s) not migrated" in result.output
    assert all(f"failed runs {i}" in result.output for i in bad)
    [checkpoint] = [c for c in CheckpointStore(env.engine).all("migrate:runs")]
    assert set(checkpoint.failures) == bad and checkpoint.status == "failed"

    state.backend.reject = set()
    resumed = cli(app, "migrate", "--kind", "runs", "--resume", "--json")
    assert resumed.exit_code == 0, resumed.output
    assert orjson.loads(resumed.stdout)["kinds"][0]["migrated"] == 2  # only the retried rows
    assert state.backend.count(RecordKind.RUN, ALL) == 25


def test_unreadable_payload_is_reported_and_the_row_still_migrates(memory_app: Flask, env: Env) -> None:
    data = seed(env.engine, runs=20, nodes_per_run=2, store=env.store, offload_every=10)
    node_id, [(payload_type, key), *_] = next(iter(data.offloaded.items()))
    (env.storage_dir / key).unlink()
    result = cli(memory_app, "migrate", "--kind", "node-executions")
    assert result.exit_code == 3, result.output
    assert f"payload not readable {node_id}:{payload_type}" in result.output
    assert _count(memory_app, RecordKind.NODE_EXECUTION) == 40


def test_conversion_keeps_values_exactly(app: Flask, env: Env) -> None:
    data = seed(env.engine, runs=3, nodes_per_run=1)
    assert cli(app, "migrate", "--kind", "runs").exit_code == 0
    with env.engine.connect() as conn:
        rows = {str(r.id): r._mapping for r in conn.execute(sa.select(WorkflowRun.__table__))}
    stored = backend_of(app).get_latest(RecordKind.RUN, data.run_ids, ALL)
    for id_, row in rows.items():
        for column, value in row.items():
            assert stored[id_].data[column] == (
                str(value) if column.endswith("id") or column == "created_by" else value
            ), column


@pytest.mark.parametrize("workers", [1, 4])
def test_workers_give_the_same_result(make_app: MakeApp, env: Env, workers: int) -> None:
    seed(env.engine, runs=60, nodes_per_run=5)
    app = make_app()
    result = cli(app, "migrate", "--workers", str(workers), "--batch-size", "13", "--json")
    assert result.exit_code == 0, result.output
    kinds = {k["kind"]: k for k in orjson.loads(result.stdout)["kinds"]}
    assert kinds["node-executions"]["migrated"] == kinds["node-executions"]["written"] == 300
    assert _count(app, RecordKind.NODE_EXECUTION) == 300


def test_create_index_builds_the_keyset_index_once(memory_app: Flask, env: Env) -> None:
    from flask_difylogstore.migration import source

    seed(env.engine, runs=3, nodes_per_run=1)
    table = source.kind_specs()["node-executions"].table
    assert not source.has_keyset_index(env.engine, table)
    warned = cli(memory_app, "migrate", "--kind", "node-executions", "--dry-run")
    assert "has no (created_at, id) index" in warned.output and "CREATE INDEX CONCURRENTLY" in warned.output
    result = cli(memory_app, "migrate", "--kind", "node-executions", "--create-index")
    assert result.exit_code == 0, result.output
    assert source.has_keyset_index(env.engine, table)
    assert "has no (created_at, id) index" not in cli(memory_app, "migrate", "--kind", "node-executions").output


def test_one_job_runs_in_one_process_at_a_time(env: Env) -> None:
    from flask_difylogstore.errors import DifyLogStoreError

    store = CheckpointStore(env.engine)
    with (
        store.lock("migrate:runs:x"),
        pytest.raises(DifyLogStoreError, match="another process is running"),
        store.lock("migrate:runs:x"),
    ):
        pass
    with store.lock("migrate:runs:x"):  # released again
        pass


def test_status_shows_rows_on_both_sides_and_the_checkpoints(app: Flask, env: Env) -> None:
    seed(env.engine, runs=12, nodes_per_run=2)
    assert cli(app, "migrate", "--kind", "runs").exit_code == 0
    status = cli(app, "status", "--json", "--exact")
    assert status.exit_code == 0, status.output
    migration = orjson.loads(status.stdout)["migration"]
    assert migration["rows"]["runs"] == {"relational": 12, "relational_exact": True, "log_store": 12}
    assert migration["rows"]["node-executions"]["log_store"] == 0
    [job] = migration["jobs"]
    assert job["job"].startswith("migrate:runs:") and job["status"] == "done" and job["rows_done"] == 12
    table = cli(app, "status").output
    assert "rows             relational  log store" in table and "runs                     12         12" in table
