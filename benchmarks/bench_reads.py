"""Console reads: requests and latency per logs-list page, run detail and statistics call.

For each store the same workload is written through the repositories, then the console's reads
are timed and their round trips counted: HTTP requests for the log stores (counted at urllib3,
which both SDKs use), SQL statements for the relational baseline on PostgreSQL.

    python benchmarks/bench_reads.py [--runs 300] [--repeat 5] [--backends relational,aliyun_sls,elasticsearch]

Prints a table and a final JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import tempfile
import threading
import time
import typing as t
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
import urllib3.connectionpool
from sqlalchemy.orm import sessionmaker

from flask_difylogstore.demo_workload import DemoUser, run_workflow
from flask_difylogstore.dify.enums import WorkflowNodeExecutionTriggeredFrom, WorkflowRunTriggeredFrom
from flask_difylogstore.settings import LogStoreSettings
from flask_difylogstore.testing.host_app import create_app

PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


class RoundTrips:
    """Counts HTTP requests made by the calling thread, and SQL statements on one engine."""

    def __init__(self) -> None:
        self.http = 0
        self.sql = 0
        self._thread = threading.get_ident()
        original = urllib3.connectionpool.HTTPConnectionPool.urlopen
        counter = self

        def urlopen(pool: t.Any, *args: t.Any, **kwargs: t.Any) -> t.Any:
            if threading.get_ident() == counter._thread:
                counter.http += 1
            return original(pool, *args, **kwargs)

        urllib3.connectionpool.HTTPConnectionPool.urlopen = urlopen  # type: ignore[method-assign]

    def watch(self, engine: sa.Engine) -> None:
        @sa.event.listens_for(engine, "before_cursor_execute")
        def count(*_: t.Any) -> None:
            if threading.get_ident() == self._thread:
                self.sql += 1

    def total(self) -> int:
        return self.http + self.sql


@contextlib.contextmanager
def backend_settings(name: str, workdir: Path) -> Iterator[LogStoreSettings | None]:
    common: dict[str, t.Any] = {
        "spool_dir": workdir / f"spool-{name}",
        "startup_strict": True,
        "dual_read_enabled": False,  # measure the log store alone
    }
    if name == "relational":
        yield None
    elif name == "aliyun_sls":
        from flask_difylogstore.testing.sls import LocalSLSServer

        with LocalSLSServer() as server:
            yield LogStoreSettings(
                _env_file=None,
                backend="aliyun_sls",
                sls={
                    "access_key_id": server.access_key_id,
                    "access_key_secret": server.access_key_secret,
                    "endpoint": server.endpoint,
                    "region": "cn-local",
                    "project_name": "bench",
                },
                **common,
            )
    elif name == "elasticsearch":
        from flask_difylogstore.testing.es import LocalElasticsearchServer

        with LocalElasticsearchServer() as server:
            yield LogStoreSettings(
                _env_file=None,
                backend="elasticsearch",
                elasticsearch={"hosts": [server.url], "number_of_replicas": 0},
                **common,
            )
    else:
        raise SystemExit(f"unknown backend {name!r}")


def repositories(name: str) -> tuple[t.Any, t.Any, t.Any, t.Any]:
    """(core run repo class, core node repo class, API run repo, API node repo) for ``name``."""
    if name == "relational":
        from flask_difylogstore.repositories.relational import (
            RelationalWorkflowExecutionRepository,
            RelationalWorkflowNodeExecutionRepository,
        )
        from flask_difylogstore.repositories.relational_api import RelationalAPIWorkflowRunRepository
        from flask_difylogstore.repositories.relational_api_node import RelationalAPIWorkflowNodeExecutionRepository

        return (
            RelationalWorkflowExecutionRepository,
            RelationalWorkflowNodeExecutionRepository,
            RelationalAPIWorkflowRunRepository,
            RelationalAPIWorkflowNodeExecutionRepository,
        )
    from flask_difylogstore.repositories import (
        LogStoreAPIWorkflowNodeExecutionRepository,
        LogStoreAPIWorkflowRunRepository,
        LogStoreWorkflowExecutionRepository,
        LogStoreWorkflowNodeExecutionRepository,
    )

    return (
        LogStoreWorkflowExecutionRepository,
        LogStoreWorkflowNodeExecutionRepository,
        LogStoreAPIWorkflowRunRepository,
        LogStoreAPIWorkflowNodeExecutionRepository,
    )


def measure(trips: RoundTrips, repeat: int, call: Callable[[], t.Any]) -> tuple[float, float]:
    """Median milliseconds and round trips per call."""
    call()  # warm caches and connections
    times, counts = [], []
    for _ in range(repeat):
        before = trips.total()
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
        counts.append(trips.total() - before)
    return statistics.median(times), statistics.median(counts)


def bench_backend(name: str, runs: int, repeat: int, trips: RoundTrips) -> dict[str, t.Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-reads-{name}-"))
    with backend_settings(name, workdir) as settings:
        app = create_app(PG_URL, settings=settings)
        with app.app_context():
            engine = app.extensions["sqlalchemy"].engine
            from flask_difylogstore.dify.models import Base

            Base.metadata.drop_all(engine)
            Base.metadata.create_all(engine)
            trips.watch(engine)
            run_cls, node_cls, api_run_cls, api_node_cls = repositories(name)
            rng = random.Random(3)
            tenant, app_id, workflow_id = (str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(3))
            user = DemoUser(str(uuid.UUID(int=rng.getrandbits(128), version=4)), tenant)
            factory = sessionmaker(bind=engine, expire_on_commit=False)
            run_repo = run_cls(
                session_factory=factory, user=user, app_id=app_id, triggered_from=WorkflowRunTriggeredFrom.APP_RUN
            )
            node_repo = node_cls(
                session_factory=factory,
                user=user,
                app_id=app_id,
                triggered_from=WorkflowNodeExecutionTriggeredFrom.WORKFLOW_RUN,
            )
            now = datetime.now(UTC).replace(tzinfo=None)
            run_ids = []
            for i in range(runs):
                outcome = run_workflow(
                    rng,
                    run_repo,
                    node_repo,
                    workflow_id=workflow_id,
                    started_at=now - timedelta(hours=i),
                    payload_bytes=1000,
                )
                run_ids.append(outcome.run_id)
            if settings is not None:
                from flask_difylogstore.state import get_state

                get_state(app).require_sink().flush(120)
                time.sleep(1.2)  # Elasticsearch's refresh interval: data becomes searchable
            api_runs = api_run_cls(session_maker=factory)
            api_nodes = api_node_cls(session_maker=factory)
            page1 = api_runs.get_paginated_workflow_runs(tenant, app_id, "app-run", limit=20)
            cursor = page1.data[-1].id
            start = now - timedelta(days=30)
            ops: dict[str, Callable[[], t.Any]] = {
                "list page 1": lambda: api_runs.get_paginated_workflow_runs(tenant, app_id, "app-run", limit=20),
                "list page 2": lambda: api_runs.get_paginated_workflow_runs(
                    tenant, app_id, "app-run", limit=20, last_id=cursor
                ),
                "run detail (run + nodes)": lambda: (
                    api_runs.get_workflow_run_by_id(tenant, app_id, run_ids[runs // 2]),
                    api_nodes.get_executions_by_workflow_run(tenant, app_id, run_ids[runs // 2]),
                ),
                "status counts": lambda: api_runs.get_workflow_runs_count(tenant, app_id, "app-run"),
                "daily runs stats": lambda: api_runs.get_daily_runs_statistics(
                    tenant, app_id, "app-run", start_date=start, timezone="Asia/Shanghai"
                ),
                "daily token stats": lambda: api_runs.get_daily_token_cost_statistics(
                    tenant, app_id, "app-run", start_date=start, timezone="Asia/Shanghai"
                ),
                "node last run": lambda: api_nodes.get_node_last_execution(tenant, app_id, workflow_id, "llm"),
            }
            results = {op: measure(trips, repeat, call) for op, call in ops.items()}
            if settings is not None:
                from flask_difylogstore.state import get_state

                get_state(app).close(30)
            Base.metadata.drop_all(engine)
    return {op: {"ms": round(ms, 2), "round_trips": rt} for op, (ms, rt) in results.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backends", default="relational,aliyun_sls,elasticsearch")
    args = parser.parse_args()
    trips = RoundTrips()
    results: dict[str, dict[str, t.Any]] = {}
    for name in args.backends.split(","):
        print(f"benchmarking {name} ...", file=sys.stderr)
        results[name] = bench_backend(name.strip(), args.runs, args.repeat, trips)
    ops = list(next(iter(results.values())))
    header = f"{'operation':<26}" + "".join(f"{n + ' ms':>18}{'trips':>7}" for n in results)
    print(header)
    for op in ops:
        row = f"{op:<26}"
        for name in results:
            cell = results[name][op]
            row += f"{cell['ms']:>18.2f}{cell['round_trips']:>7.0f}"
        print(row)
    print(json.dumps({"benchmark": "reads", "runs": args.runs, "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
