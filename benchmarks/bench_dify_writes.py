"""PostgreSQL statements per workflow run: Dify's SQL storage, Dify's own log store, and this package.

    python benchmarks/bench_dify_writes.py [--runs 200] [--nodes 8] [--pg-url postgresql://...]

On the newest Dify line a run's ``workflow_runs`` row is control state (pause / resume read it in a
SQL transaction), so a log-store writer must keep a slim copy of it; Dify's own log-store writer
calls ``save_control`` before every log write. This counts, per workflow run of ``--nodes`` nodes
saved in the order of Dify's persistence layer (run running; per node: save running, save final +
save_execution_data; run final), the statements each setup sends to PostgreSQL:

* ``dify rdbms``: Dify's SQL repositories (the newest line's shape, from the test host under
  ``tests/dify_s4/host``) — every save is SQL;
* ``dify logstore``: the SQL side of Dify's own log-store writer — ``save_control`` per run save,
  nothing per node (its log writes go to SLS);
* ``package, newest line``: this package wired into that host by ``ext_logstore.init_app`` (the log
  store is the in-process backend, so only PostgreSQL traffic is counted);
* ``package, 1.9–1.13``: the same package where Dify has no control rows (standalone process).

Each setup runs in its own process. Prints a table and a final JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import typing as t
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = ROOT / "tests" / "dify_s4" / "host"
SETUPS = ("dify-rdbms", "dify-logstore", "package-newest", "package-classpaths")


def _engine(pg_url: str | None, tmp: Path) -> t.Any:
    import sqlalchemy as sa

    if pg_url:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(pg_url)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        return sa.create_engine(pg_url, connect_args={"options": f"-csearch_path={schema}"}), schema
    return sa.create_engine(f"sqlite:///{tmp / 'bench.db'}"), None


def _drop(pg_url: str | None, schema: str | None) -> None:
    if pg_url and schema:
        import sqlalchemy as sa

        admin = sa.create_engine(pg_url)
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class Counter:
    """Statements by verb, from SQLAlchemy's cursor events."""

    def __init__(self) -> None:
        self.by_verb: dict[str, int] = {}
        self.seconds = 0.0
        self._started: float | None = None

    def attach(self, engine: t.Any) -> None:
        import sqlalchemy as sa

        @sa.event.listens_for(engine, "before_cursor_execute")
        def before(*_args: t.Any) -> None:
            self._started = time.perf_counter()

        @sa.event.listens_for(engine, "after_cursor_execute")
        def after(_conn: t.Any, _cursor: t.Any, statement: str, *_rest: t.Any) -> None:
            verb = statement.lstrip().split(None, 1)[0].upper()
            self.by_verb[verb] = self.by_verb.get(verb, 0) + 1
            if self._started is not None:
                self.seconds += time.perf_counter() - self._started

        @sa.event.listens_for(engine, "commit")
        def commit(_conn: t.Any) -> None:
            self.by_verb["COMMIT"] = self.by_verb.get("COMMIT", 0) + 1


def _workload(run_writer: t.Callable[[], t.Any], node_writer: t.Callable[[], t.Any], runs: int, nodes: int) -> None:
    from flask_difylogstore.dify import compat

    start = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    workflow_id = str(uuid.uuid4())
    for _ in range(runs):
        run_id = str(uuid.uuid4())
        execution = compat.WorkflowExecution(
            id_=run_id, workflow_id=workflow_id, workflow_type=compat.WorkflowType("workflow"), workflow_version="1",
            graph={"nodes": [{"id": f"n{i}"} for i in range(nodes)]}, inputs={"q": "hello"},
            status=compat.WorkflowExecutionStatus("running"), started_at=start,
        )  # fmt: skip
        runs_repo, nodes_repo = run_writer(), node_writer()
        runs_repo.save(execution)
        for index in range(1, nodes + 1):
            node = compat.WorkflowNodeExecution(
                id=str(uuid.uuid4()), node_execution_id=f"n{index}", workflow_id=workflow_id,
                workflow_execution_id=run_id, index=index, node_id=f"n{index}", node_type=compat.node_type("code"),
                title=f"Node {index}",
                status=compat.WorkflowNodeExecutionStatus("running"), created_at=start,
            )  # fmt: skip
            nodes_repo.save(node)
            node.status = compat.WorkflowNodeExecutionStatus("succeeded")
            node.inputs, node.outputs, node.process_data = {"x": index}, {"y": "z" * 200}, {"p": 1}
            node.finished_at = start + timedelta(seconds=1)
            nodes_repo.save(node)
            nodes_repo.save_execution_data(node)
        execution.status = compat.WorkflowExecutionStatus("succeeded")
        execution.outputs = {"answer": "ok"}
        execution.finished_at = start + timedelta(seconds=nodes)
        runs_repo.save(execution)


class _User:
    id = "00000000-0000-4000-8000-000000000001"


def inner(setup: str, runs: int, nodes: int, pg_url: str | None) -> dict[str, t.Any]:
    """One setup, in this process (the host's modules are on ``sys.path`` for the newest-line setups)."""
    from flask import Flask
    from sqlalchemy.orm import sessionmaker

    from flask_difylogstore.dify.models import Base

    tmp = Path(tempfile.mkdtemp())
    engine, schema = _engine(pg_url, tmp)
    Base.metadata.create_all(engine)
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    counter = Counter()
    tenant, app = str(uuid.uuid4()), str(uuid.uuid4())
    flask_app = Flask("bench", instance_path=str(tmp / "instance"))
    flask_app.config["TESTING"] = True
    kwargs = {"session_factory": sessions, "tenant_id": tenant, "user": _User(), "app_id": app}
    try:
        with flask_app.app_context():
            if setup in ("dify-rdbms", "dify-logstore"):
                from repositories.workflow.execution_writer import (  # type: ignore[import-not-found]
                    SQLAlchemyWorkflowExecutionRepository,
                )
                from repositories.workflow.node_execution_writer import (  # type: ignore[import-not-found]
                    SQLAlchemyWorkflowNodeExecutionRepository,
                )

                if setup == "dify-rdbms":
                    run_writer = lambda: SQLAlchemyWorkflowExecutionRepository(triggered_from="app-run", **kwargs)  # noqa: E731
                    node_writer = lambda: SQLAlchemyWorkflowNodeExecutionRepository(  # noqa: E731
                        triggered_from="workflow-run", upload_file=lambda **_: None, **kwargs
                    )
                else:

                    class ControlOnly:
                        def __init__(self) -> None:
                            self.sql = SQLAlchemyWorkflowExecutionRepository(triggered_from="app-run", **kwargs)

                        def save(self, execution: t.Any) -> None:
                            self.sql.save_control(execution)  # then the SLS put, not counted here

                    class LogOnly:
                        def save(self, execution: t.Any) -> None: ...

                        def save_execution_data(self, execution: t.Any) -> None: ...

                    run_writer, node_writer = ControlOnly, LogOnly
            else:
                from flask_difylogstore import DifyLogStore, LogStoreSettings
                from flask_difylogstore.repositories import (
                    LogStoreWorkflowExecutionRepository,
                    LogStoreWorkflowNodeExecutionRepository,
                )

                DifyLogStore(flask_app, settings=LogStoreSettings(_env_file=None, backend="memory", spool_dir=tmp))
                run_writer = lambda: LogStoreWorkflowExecutionRepository(triggered_from="app-run", **kwargs)  # noqa: E731
                node_writer = lambda: LogStoreWorkflowNodeExecutionRepository(  # noqa: E731
                    triggered_from="workflow-run", upload_file=lambda **_: None, **kwargs
                )
            counter.attach(engine)
            started = time.perf_counter()
            _workload(run_writer, node_writer, runs, nodes)
            wall = time.perf_counter() - started
            if setup.startswith("package"):
                DifyLogStore.close(flask_app, timeout=30)
    finally:
        engine.dispose()
        _drop(pg_url, schema)
    statements = sum(v for k, v in counter.by_verb.items() if k != "COMMIT")
    return {
        "setup": setup,
        "statements_per_run": statements / runs,
        "writes_per_run": sum(counter.by_verb.get(v, 0) for v in ("INSERT", "UPDATE", "DELETE")) / runs,
        "commits_per_run": counter.by_verb.get("COMMIT", 0) / runs,
        "sql_ms_per_run": counter.seconds * 1000 / runs,
        "wall_ms_per_run": wall * 1000 / runs,
        "by_verb": counter.by_verb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--nodes", type=int, default=8)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("DIFYLOGSTORE_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--sqlite", action="store_true", help="use SQLite instead of PostgreSQL")
    parser.add_argument("--inner", choices=SETUPS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    pg_url = None if args.sqlite else args.pg_url
    if args.inner:
        print(json.dumps(inner(args.inner, args.runs, args.nodes, pg_url)))
        return
    results = []
    for setup in SETUPS:
        env = dict(os.environ)
        if setup != "package-classpaths":
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HOST), str(ROOT), env.get("PYTHONPATH", "")]))
        else:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
        cmd = [sys.executable, __file__, "--inner", setup, "--runs", str(args.runs), "--nodes", str(args.nodes)]
        if args.sqlite:
            cmd.append("--sqlite")
        else:
            cmd += ["--pg-url", args.pg_url]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"{setup} failed:\n{proc.stdout}\n{proc.stderr}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    base = results[0]
    database = "SQLite" if args.sqlite else "PostgreSQL"
    print(f"{database} statements per workflow run ({args.runs} runs x {args.nodes} nodes)")
    print(f"{'setup':<20} {'statements':>10} {'writes':>8} {'commits':>8} {'SQL ms':>8} {'vs rdbms':>9}")
    for r in results:
        share = r["statements_per_run"] / base["statements_per_run"] if base["statements_per_run"] else 0.0
        print(
            f"{r['setup']:<20} {r['statements_per_run']:>10.1f} {r['writes_per_run']:>8.1f} "
            f"{r['commits_per_run']:>8.1f} {r['sql_ms_per_run']:>8.2f} {share:>8.1%}"
        )
    by_setup = {r["setup"]: r for r in results}
    summary = {
        "benchmark": "dify_writes",
        "runs": args.runs,
        "nodes": args.nodes,
        "results": results,
        "met": {
            "package_newest_equals_dify_logstore_writes": by_setup["package-newest"]["writes_per_run"]
            <= by_setup["dify-logstore"]["writes_per_run"],
        },
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
