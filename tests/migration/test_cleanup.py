"""cleanup-pg: deletes only what the log store proves, with offloads, upload_files and objects."""

from __future__ import annotations

import typing as t
from datetime import timedelta

import orjson
import pytest
import sqlalchemy as sa
from flask import Flask

from flask_difylogstore.backends.base import Filter, Scope
from flask_difylogstore.dify.models import (
    UploadFile,
    WorkflowAppLog,
    WorkflowNodeExecutionModel,
    WorkflowNodeExecutionOffload,
    WorkflowRun,
)
from flask_difylogstore.migration import cleanup, compare
from flask_difylogstore.records import RecordKind
from tests.migration.conftest import Env, backend_of, cli
from tests.migration.seed import START, seed

pytestmark = pytest.mark.postgres


def _ids(env: Env, model: type) -> set[str]:
    with env.engine.connect() as conn:
        return {str(i) for i in conn.execute(sa.select(model.__table__.c.id)).scalars()}  # type: ignore[attr-defined]


def test_refuses_to_delete_before_a_passing_verify(memory_app: Flask, env: Env) -> None:
    seed(env.engine, runs=5, nodes_per_run=1)
    assert cli(memory_app, "migrate").exit_code == 0
    result = cli(memory_app, "cleanup-pg", "--before", "2030-01-01", "--yes")
    assert result.exit_code == 1
    assert "`flask logstore verify --kind node-executions` must pass first (never ran)" in result.output
    assert len(_ids(env, WorkflowRun)) == 5


def test_dry_run_by_default_deletes_nothing(memory_app: Flask, env: Env) -> None:
    seed(env.engine, runs=10, nodes_per_run=2)
    assert cli(memory_app, "migrate").exit_code == 0
    assert cli(memory_app, "verify", "--sample", "100").exit_code == 0
    result = cli(memory_app, "cleanup-pg", "--before", "2030-01-01", "--json")
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert not report["execute"] and sum(k["deleted"] for k in report["kinds"]) == 40
    assert len(_ids(env, WorkflowNodeExecutionModel)) == 20


def test_deletes_verified_rows_with_their_offloads_and_keeps_unproven_ones(app: Flask, env: Env) -> None:
    data = seed(env.engine, runs=30, nodes_per_run=3, store=env.store, offload_every=10)
    assert cli(app, "migrate").exit_code == 0
    assert cli(app, "verify", "--sample", "100").exit_code == 0
    # rows written after the migration (never migrated), and one changed after verification
    late = seed(
        env.engine,
        runs=4,
        nodes_per_run=2,
        store=env.store,
        offload_every=2,
        start=START + timedelta(minutes=5),
        seed_value=99,
    )
    changed = data.node_ids[4]
    with env.engine.begin() as conn:
        conn.execute(
            sa.update(WorkflowNodeExecutionModel)
            .where(WorkflowNodeExecutionModel.id == changed)
            .values(title="renamed")
        )
    files_before = _ids(env, UploadFile)

    result = cli(app, "cleanup-pg", "--before", "2030-01-01", "--yes", "--json")
    assert result.exit_code == 1
    kinds = {k["kind"]: k for k in orjson.loads(result.stdout)["kinds"]}
    nodes = kinds["node-executions"]
    assert nodes["refused"] == 1 + len(late.node_ids)
    assert nodes["first_refused"][changed].startswith("mismatch: title:")
    assert _ids(env, WorkflowNodeExecutionModel) == {changed, *late.node_ids}
    assert _ids(env, WorkflowRun) == set(late.run_ids)
    assert _ids(env, WorkflowAppLog) == set(late.app_log_ids)

    # offload rows, upload_files rows and storage objects went with their (verified) nodes only
    with env.engine.connect() as conn:
        remaining = {
            str(i)
            for i in conn.execute(sa.select(WorkflowNodeExecutionOffload.__table__.c.node_execution_id)).scalars()
        }
    assert remaining == set(late.offloaded) - {changed}
    gone = [key for node, offloads in data.offloaded.items() for _, key in offloads]
    assert gone and not any((env.storage_dir / key).exists() for key in gone)
    assert all((env.storage_dir / key).exists() for offloads in late.offloaded.values() for _, key in offloads)
    assert nodes["offloads_deleted"] == nodes["upload_files_deleted"] == nodes["objects_deleted"] == len(gone)
    assert len(files_before) - len(_ids(env, UploadFile)) == len(gone)
    assert nodes["object_bytes"] == sum(len(data.payloads[(n, t)]) for n, o in data.offloaded.items() for t, _ in o)
    assert nodes["row_bytes"] > 0

    # resuming after a finished run has nothing left to check
    again = cli(app, "cleanup-pg", "--before", "2030-01-01", "--yes", "--resume", "--json")
    assert sum(k["scanned"] for k in orjson.loads(again.stdout)["kinds"]) == 0


def test_rows_on_or_after_before_are_untouched(memory_app: Flask, env: Env) -> None:
    data = seed(env.engine, runs=48, nodes_per_run=0, step=timedelta(hours=1))  # two UTC days from 22:00
    assert cli(memory_app, "migrate", "--kind", "runs").exit_code == 0
    assert cli(memory_app, "verify", "--kind", "runs", "--sample", "100").exit_code == 0
    result = cli(memory_app, "cleanup-pg", "--kind", "runs", "--before", "2026-01-29", "--yes")
    assert result.exit_code == 0, result.output
    assert _ids(env, WorkflowRun) == set(data.run_ids[2:])  # 22:00 and 23:00 on Jan 28 went


def test_a_payload_missing_from_the_log_store_keeps_the_node_and_its_file(app: Flask, env: Env) -> None:
    data = seed(env.engine, runs=10, nodes_per_run=2, store=env.store, offload_every=5)
    node_id, [(_, key), *_] = next(iter(data.offloaded.items()))
    content = (env.storage_dir / key).read_bytes()
    (env.storage_dir / key).unlink()
    assert cli(app, "migrate").exit_code == 3
    (env.storage_dir / key).write_bytes(content)  # storage is back, but the log store never got it
    assert cli(app, "verify", "--kind", "runs", "--sample", "100").exit_code == 0
    assert cli(app, "verify", "--kind", "node-executions", "--sample", "100").exit_code == 1
    result = cli(app, "cleanup-pg", "--kind", "node-executions", "--before", "2030-01-01", "--yes")
    assert result.exit_code == 1 and "must pass first" in result.output
    assert cli(app, "migrate", "--kind", "node-executions").exit_code == 0  # re-run picks the payload up
    assert cli(app, "verify", "--kind", "node-executions", "--sample", "100").exit_code == 0
    assert cli(app, "cleanup-pg", "--kind", "node-executions", "--before", "2030-01-01", "--yes").exit_code == 0
    assert not (env.storage_dir / key).exists() and node_id not in _ids(env, WorkflowNodeExecutionModel)


def test_each_batch_is_checked_again_right_before_deleting(
    app: Flask, env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = seed(env.engine, runs=20, nodes_per_run=2, store=env.store, offload_every=8)
    assert cli(app, "migrate").exit_code == 0
    assert cli(app, "verify", "--sample", "100").exit_code == 0
    # after verify passed: the log store loses one node's full payload ...
    lost, [(_, lost_key), *_] = next(iter(data.offloaded.items()))
    backend = backend_of(app)
    tenant = backend.get_latest(RecordKind.NODE_EXECUTION, [lost], Scope.unscoped())[lost].tenant_id
    backend.delete(RecordKind.PAYLOAD, Scope(tenant), [Filter("node_execution_id", "eq", lost)])
    # ... and another row changes between the backend check and the delete
    racer = data.node_ids[-1]
    real_check = compare.check_rows

    def check_then_change(*args: t.Any, **kwargs: t.Any) -> t.Any:
        verdicts = real_check(*args, **kwargs)
        if racer in verdicts:
            with env.engine.begin() as conn:
                conn.execute(
                    sa.update(WorkflowNodeExecutionModel)
                    .where(WorkflowNodeExecutionModel.id == racer)
                    .values(status="failed")
                )
        return verdicts

    monkeypatch.setattr(cleanup, "check_rows", check_then_change)
    result = cli(app, "cleanup-pg", "--kind", "node-executions", "--before", "2030-01-01", "--yes", "--json")
    assert result.exit_code == 1
    [nodes] = orjson.loads(result.stdout)["kinds"]
    assert nodes["first_refused"] == {
        lost: "payload_missing: full outputs not in the log store",
        racer: "changed or deleted while being checked",
    }
    assert _ids(env, WorkflowNodeExecutionModel) == {lost, racer}
    assert (env.storage_dir / lost_key).exists()
