"""verify: counts per day and app plus a random sample field by field; tampering is caught and named."""

from __future__ import annotations

import orjson
import pytest
import sqlalchemy as sa
from flask import Flask

from flask_difylogstore.backends.base import Filter, Scope
from flask_difylogstore.dify.models import WorkflowNodeExecutionModel
from flask_difylogstore.migration.selection import Selection
from flask_difylogstore.migration.source import kind_specs
from flask_difylogstore.migration.verify import sample_ids
from flask_difylogstore.records import LogRecord, RecordKind, default_clock
from tests.migration.conftest import Env, backend_of, cli
from tests.migration.seed import Seeded, seed

pytestmark = pytest.mark.postgres


def _migrated(app: Flask, env: Env) -> Seeded:
    data = seed(env.engine, runs=40, nodes_per_run=3, store=env.store, offload_every=15)
    assert cli(app, "migrate").exit_code == 0
    return data


def test_a_faithful_migration_verifies(app: Flask, env: Env) -> None:
    _migrated(app, env)
    result = cli(app, "verify", "--sample", "100")
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.stdout.splitlines()]
    table = {line[0]: line for line in lines if line and line[0] in ("runs", "node-executions", "app-logs")}
    assert table["node-executions"][1:3] == ["120", "120"] and table["node-executions"][-1] == "ok"
    assert table["runs"][5] == "40"  # every run compared

    status = cli(app, "status")
    assert status.exit_code == 0, status.output
    assert "last verify" in status.output and "migrate:node-executions" in status.output


def test_a_tampered_row_is_named_with_its_field(app: Flask, env: Env) -> None:
    data = _migrated(app, env)
    victim = data.node_ids[7]
    with env.engine.begin() as conn:
        conn.execute(
            sa.update(WorkflowNodeExecutionModel)
            .where(WorkflowNodeExecutionModel.id == victim)
            .values(outputs='{"y": -1}')
        )
    result = cli(app, "verify", "--kind", "node-executions", "--sample", "100")
    assert result.exit_code == 1
    assert f"mismatch node-executions {victim}: outputs:" in result.output
    assert f"first mismatching ids: {victim}" in result.output
    status = orjson.loads(cli(app, "status", "--json").stdout)
    assert status["migration"]["verify"]["node-executions"]["status"] == "mismatch"
    assert status["migration"]["verify"]["node-executions"]["first_mismatches"] == [victim]


def test_a_record_missing_from_the_log_store_fails_counts_and_sample(app: Flask, env: Env) -> None:
    data = _migrated(app, env)
    backend = backend_of(app)
    victim = data.run_ids[11]
    record = backend.get_latest(RecordKind.RUN, [victim], Scope.unscoped())[victim]
    assert backend.delete(RecordKind.RUN, Scope(record.tenant_id), [Filter("id", "eq", victim)]) == 1
    result = cli(app, "verify", "--kind", "runs", "--sample", "100", "--json")
    assert result.exit_code == 1
    [runs] = orjson.loads(result.stdout)["kinds"]
    assert runs["short_groups"] == 1 and runs["first_short_groups"][0]["app_id"] == record.data["app_id"]
    assert runs["first_mismatches"] == [
        {
            "id": victim,
            "status": "missing",
            "detail": "not in the log store",
            "relational_hash": runs["first_mismatches"][0]["relational_hash"],
        }
    ]
    table = cli(app, "verify", "--kind", "runs", "--sample", "0", "--groups")
    assert table.exit_code == 1
    short = [line.split() for line in table.stdout.splitlines() if line.endswith("SHORT")]
    assert len(short) == 1 and short[0][1] == record.data["app_id"]
    assert int(short[0][3]) == int(short[0][2]) - 1


def test_a_newer_live_snapshot_is_not_a_mismatch(app: Flask, env: Env) -> None:
    data = _migrated(app, env)
    backend = backend_of(app)
    run = backend.get_latest(RecordKind.RUN, [data.run_ids[3]], Scope.unscoped())[data.run_ids[3]]
    backend.write(
        [
            LogRecord(
                RecordKind.RUN,
                {**run.data, "total_tokens": 5},
                default_clock.version_for(RecordKind.RUN, "succeeded"),
            )
        ]
    )
    result = cli(app, "verify", "--kind", "runs", "--sample", "100", "--json")
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["kinds"][0]["superseded"] == 1


def test_a_changed_storage_object_or_lost_payload_is_caught(app: Flask, env: Env) -> None:
    data = _migrated(app, env)
    (node_a, [(_, key_a), *_]), (node_b, _) = list(data.offloaded.items())[:2]
    (env.storage_dir / key_a).write_text('{"blob": "changed"}')
    backend = backend_of(app)
    tenant = backend.get_latest(RecordKind.NODE_EXECUTION, [node_b], Scope.unscoped())[node_b].tenant_id
    backend.delete(RecordKind.PAYLOAD, Scope(tenant), [Filter("node_execution_id", "eq", node_b)])
    result = cli(app, "verify", "--kind", "node-executions", "--sample", "100")
    assert result.exit_code == 1
    assert f"payload_mismatch node-executions {node_a}" in result.output
    assert f"payload_missing node-executions {node_b}" in result.output


def test_the_sample_is_random_and_about_the_asked_size(env: Env) -> None:
    seed(env.engine, runs=1000, nodes_per_run=0)
    spec = kind_specs()["runs"]
    first = sample_ids(env.engine, spec, Selection(), 10)
    second = sample_ids(env.engine, spec, Selection(), 10)
    assert 50 <= len(first) <= 160 and first != second
    assert sample_ids(env.engine, spec, Selection(), 10, seed=4) == sample_ids(
        env.engine, spec, Selection(), 10, seed=4
    )
