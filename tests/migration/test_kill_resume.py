"""A migrating process is killed with SIGKILL and resumed: 50k node executions, none lost or doubled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from flask_difylogstore.backends.base import Scope
from flask_difylogstore.migration.checkpoint import CheckpointStore
from flask_difylogstore.records import RecordKind
from tests.migration.conftest import Env, MakeApp, backend_of, cli
from tests.migration.journal import DELAY_ENV, JournalBackend, journal_path
from tests.migration.run_cli import JOURNAL
from tests.migration.seed import seed

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
RUNS, NODES_PER_RUN = 5000, 10


def _rows_done(env: Env, kind: str) -> int:
    checkpoints = [c for c in CheckpointStore(env.engine).all(f"migrate:{kind}:")]
    return checkpoints[0].rows_done if checkpoints else 0


@pytest.mark.slow
def test_kill_9_in_the_middle_then_resume_loses_and_doubles_nothing(make_memory_app: MakeApp, env: Env) -> None:
    data = seed(env.engine, runs=RUNS, nodes_per_run=NODES_PER_RUN, store=env.store, offload_every=500)
    total_nodes = RUNS * NODES_PER_RUN
    command = [
        sys.executable,
        "-m",
        "tests.migration.run_cli",
        env.url,
        str(env.spool_dir),
        str(env.instance_path),
        "logstore",
        "migrate",
        "--batch-size",
        "500",
        "--workers",
        "2",
    ]
    process_env = {**os.environ, "PYTHONPATH": str(ROOT), DELAY_ENV: "0.02"}
    process = subprocess.Popen(command, cwd=ROOT, env=process_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while _rows_done(env, "node-executions") < total_nodes // 4:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            assert time.monotonic() < deadline, "the migration did not get going"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    done_at_kill = _rows_done(env, "node-executions")
    assert total_nodes // 4 <= done_at_kill < total_nodes

    # the journal holds what the killed process stored; a new app resumes from the checkpoint
    app = make_memory_app(backend=JOURNAL)
    before = backend_of(app).count(RecordKind.NODE_EXECUTION, Scope.unscoped())
    assert done_at_kill <= before < total_nodes
    resumed = cli(app, "migrate", "--resume", "--batch-size", "2000", "--workers", "4", "--json")
    assert resumed.exit_code == 0, resumed.output
    kinds = {k["kind"]: k for k in orjson.loads(resumed.stdout)["kinds"]}
    assert kinds["node-executions"]["resumed_from"] is not None
    assert kinds["node-executions"]["migrated"] <= total_nodes - done_at_kill
    assert kinds["runs"]["migrated"] == 0  # finished before the kill: nothing left to do

    backend = backend_of(app)
    everything = Scope.unscoped()
    assert backend.count(RecordKind.RUN, everything) == RUNS
    assert backend.count(RecordKind.NODE_EXECUTION, everything) == total_nodes
    assert backend.count(RecordKind.APP_LOG, everything) == RUNS
    assert backend.count(RecordKind.PAYLOAD, everything) == len(data.payloads)

    verified = cli(app, "verify", "--sample", "25")
    assert verified.exit_code == 0, verified.output
    assert "MISMATCH" not in verified.output

    # a full re-run writes nothing new, and readers still see each entity once
    assert isinstance(backend, JournalBackend)
    appended = backend.appended
    again = cli(app, "migrate", "--kind", "node-executions", "--workers", "4", "--batch-size", "5000", "--json")
    assert again.exit_code == 0, again.output
    [report] = orjson.loads(again.stdout)["kinds"]
    assert (report["migrated"], report["written"]) == (total_nodes, 0)
    assert report["already_present"] == total_nodes + len(data.payloads)
    assert backend.count(RecordKind.NODE_EXECUTION, everything) == total_nodes
    assert backend.appended > appended  # re-sent (append-only underneath) yet not duplicated for readers
    assert journal_path(env.spool_dir).exists()
