"""The same jobs on SQLite, the relational database of the standalone demo and local development."""

from __future__ import annotations

from pathlib import Path

import orjson
import sqlalchemy as sa

from flask_difylogstore.backends.base import Scope
from flask_difylogstore.dify.models import WorkflowNodeExecutionModel
from flask_difylogstore.extension import get_state
from flask_difylogstore.records import RecordKind
from flask_difylogstore.repositories.relational import LocalFileStore
from flask_difylogstore.settings import LogStoreSettings
from flask_difylogstore.testing.host_app import create_app
from tests.migration.conftest import STORE_DIR, cli
from tests.migration.seed import seed


def test_migrate_verify_cleanup_on_sqlite(tmp_path: Path) -> None:
    settings = LogStoreSettings(_env_file=None, backend="memory", spool_dir=tmp_path / "spool")
    app = create_app(f"sqlite:///{tmp_path / 'dify.db'}", settings=settings)
    app.instance_path = str(tmp_path)
    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine
    store = LocalFileStore(tmp_path / STORE_DIR)
    data = seed(engine, runs=30, nodes_per_run=3, store=store, offload_every=10)

    migrated = cli(app, "migrate", "--workers", "3", "--batch-size", "16", "--create-index", "--json")
    assert migrated.exit_code == 0, migrated.output
    kinds = {k["kind"]: k for k in orjson.loads(migrated.stdout)["kinds"]}
    assert kinds["node-executions"]["migrated"] == 90 and kinds["node-executions"]["payload_records"] > 0
    backend = get_state(app).require_backend()
    assert backend.count(RecordKind.NODE_EXECUTION, Scope.unscoped()) == 90

    assert cli(app, "verify", "--sample", "100").exit_code == 0
    sampled = orjson.loads(cli(app, "verify", "--sample", "50", "--json").stdout)["kinds"]
    assert all(k["ok"] and k["sampled"] < k["relational_rows"] for k in sampled)

    victim = data.node_ids[0]
    with engine.begin() as conn:
        conn.execute(
            sa.update(WorkflowNodeExecutionModel).where(WorkflowNodeExecutionModel.id == victim).values(title="changed")
        )
    cleaned = cli(app, "cleanup-pg", "--before", "2030-01-01", "--yes", "--json")
    assert cleaned.exit_code == 1
    nodes = {k["kind"]: k for k in orjson.loads(cleaned.stdout)["kinds"]}["node-executions"]
    assert nodes["deleted"] == 89 and list(nodes["first_refused"]) == [victim]
    with engine.connect() as conn:
        left = conn.execute(sa.select(sa.func.count()).select_from(WorkflowNodeExecutionModel.__table__)).scalar()
    assert left == 1
    get_state(app).close(1.0)
