"""The main job on the embedded default: the whole mission on one machine with nothing configured.

``python -m flask_difylogstore demo`` starts a Dify-shaped app on SQLite with the local
SLS-compatible server in-process (``--backend elasticsearch`` for the local Elasticsearch one, or
the real endpoints when ``.env`` configures them), seeds historic runs in the relational database,
migrates and verifies them, runs live workflows through Dify's repository contracts (concurrent
threads, out-of-order saves, a failure, a retry, a large payload), reads them back through the
console-facing methods, and prints what moved where and how fast. Any failed check makes the exit
status non-zero.
"""

from __future__ import annotations

import contextlib
import random
import tempfile
import threading
import time
import typing as t
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from flask_difylogstore.backends.base import Scope
from flask_difylogstore.demo_report import BAR as BAR
from flask_difylogstore.demo_report import latency_probe, print_daily_charts, print_latency, print_store_counts
from flask_difylogstore.demo_workload import DemoUser, RunOutcome, SaveTimer, run_workflow
from flask_difylogstore.dify.enums import WorkflowNodeExecutionTriggeredFrom, WorkflowRunTriggeredFrom
from flask_difylogstore.dify.models import WorkflowAppLog, WorkflowRun
from flask_difylogstore.settings import LogStoreSettings
from flask_difylogstore.state import get_state

if t.TYPE_CHECKING:
    from flask_difylogstore.repositories import (
        LogStoreAPIWorkflowNodeExecutionRepository,
        LogStoreAPIWorkflowRunRepository,
    )


@dataclass
class DemoOptions:
    backend: str = "aliyun_sls"
    runs: int = 120
    threads: int = 4
    workdir: Path | None = None
    use_env: bool = True


@dataclass
class Checks:
    """Named pass/fail checks; the exit status is non-zero when any failed."""

    results: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.results.append((name, ok, detail))
        mark = click.style("ok", fg="green") if ok else click.style("FAILED", fg="red")
        click.echo(f"  [{mark}] {name}" + (f" - {detail}" if detail else ""))
        return ok

    @property
    def ok(self) -> bool:
        return all(ok for _, ok, _ in self.results)


def _section(title: str) -> None:
    click.echo("")
    click.echo(click.style(f"== {title}", bold=True))


@contextlib.contextmanager
def _local_backend(options: DemoOptions, workdir: Path) -> Iterator[tuple[LogStoreSettings, str]]:
    """Settings for the backend to use: real endpoints from ``.env`` when configured, else a local server."""
    env = LogStoreSettings.load() if options.use_env else None
    common: dict[str, t.Any] = {"spool_dir": workdir / "spool", "startup_strict": True, "startup_timeout": 30}
    if (
        env is not None
        and env.effective_backend in ("aliyun_sls", "elasticsearch")
        and (options.backend == env.effective_backend)
    ):
        yield env.model_copy(update=common), f"REAL {env.effective_backend} endpoint configured in .env"
        return
    if options.backend == "memory":
        yield LogStoreSettings(_env_file=None, backend="memory", **common), "in-process memory backend"
        return
    if options.backend == "elasticsearch":
        from flask_difylogstore.testing.es import LocalElasticsearchServer

        with LocalElasticsearchServer() as es:
            settings = LogStoreSettings(
                _env_file=None,
                backend="elasticsearch",
                elasticsearch={"hosts": [es.url], "number_of_replicas": 0},
                **common,
            )
            yield settings, f"local Elasticsearch-compatible server at {es.url}"
        return
    from flask_difylogstore.testing.sls import LocalSLSServer

    with LocalSLSServer() as sls:
        settings = LogStoreSettings(
            _env_file=None,
            backend="aliyun_sls",
            sls={
                "access_key_id": sls.access_key_id,
                "access_key_secret": sls.access_key_secret,
                "endpoint": sls.endpoint,
                "region": "cn-local",
                "project_name": "dify-demo",
            },
            **common,
        )
        yield settings, f"local SLS-compatible server at {sls.endpoint}"


def _seed_history(app: t.Any, runs: int, checks: Checks) -> tuple[DemoUser, str, str, SaveTimer]:
    """Historic runs written the way Dify writes them today: the relational SQLAlchemy repositories."""
    from flask_difylogstore.repositories.relational import (
        RelationalWorkflowExecutionRepository,
        RelationalWorkflowNodeExecutionRepository,
    )
    from flask_difylogstore.repositories.relational_app_log import RelationalWorkflowAppLogRepository

    rng = random.Random(7)
    tenant, app_id, workflow_id = (str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(3))
    user = DemoUser(str(uuid.UUID(int=rng.getrandbits(128), version=4)), tenant)
    engine = app.extensions["sqlalchemy"].engine
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    timer = SaveTimer()
    today = datetime.now(UTC).replace(tzinfo=None, hour=9, minute=0, second=0, microsecond=0)
    run_repo = RelationalWorkflowExecutionRepository(factory, user, app_id, WorkflowRunTriggeredFrom.APP_RUN)
    node_repo = RelationalWorkflowNodeExecutionRepository(
        factory, user, app_id, WorkflowNodeExecutionTriggeredFrom.WORKFLOW_RUN
    )
    log_repo = RelationalWorkflowAppLogRepository(factory)
    with click.progressbar(range(runs), label="  seeding historic runs (SQL repository)") as bar:
        for i in bar:
            started = today - timedelta(days=14 - (i % 14), minutes=rng.randint(0, 600))
            outcome = run_workflow(
                rng,
                run_repo,
                node_repo,
                workflow_id=workflow_id,
                started_at=started,
                fail=i % 17 == 0,
                retry=i % 5 == 0,
                timer=timer,
            )
            log_repo.save(
                WorkflowAppLog(
                    id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    tenant_id=tenant,
                    app_id=app_id,
                    workflow_id=workflow_id,
                    workflow_run_id=outcome.run_id,
                    created_from="service-api",
                    created_by_role="account",
                    created_by=user.id,
                    created_at=started,
                )
            )
    with engine.connect() as conn:
        count = conn.scalar(sa.select(sa.func.count()).select_from(WorkflowRun))
    checks.check("historic runs in the relational database", count == runs, f"{count} rows")
    return user, app_id, workflow_id, timer


def _migrate_and_verify(app: t.Any, checks: Checks) -> dict[str, t.Any]:
    from flask_difylogstore.cli_progress import click_progress
    from flask_difylogstore.migration import MigrateOptions, MigrationContext, VerifyOptions

    context = MigrationContext.from_app(app, progress=click_progress)
    started = time.perf_counter()
    report = context.migrator().run(MigrateOptions(kind="all", workers=2, batch_size=500))
    elapsed = time.perf_counter() - started
    migrated = sum(k.migrated for k in report.kinds)
    checks.check(
        "migration finished without failed rows",
        report.exit_code == 0,
        f"{migrated} rows in {elapsed:.1f}s ({migrated / max(elapsed, 1e-9):,.0f} rows/s)",
    )
    verify = context.verifier().run(VerifyOptions(kind="all", sample_percent=10.0, seed=1))
    checks.check(
        "verify: counts per day/app and sampled content match",
        verify.ok,
        ", ".join(verify.first_mismatch_ids()) if not verify.ok else "",
    )
    return {"migrated": migrated, "seconds": elapsed, "verify_ok": verify.ok}


def _live_runs(
    app: t.Any, user: DemoUser, app_id: str, workflow_id: str, runs: int, threads: int
) -> tuple[list[RunOutcome], SaveTimer]:
    """Live runs through the log-store repositories, from several threads at once, as Dify's workers do."""
    from flask_difylogstore.repositories import (
        LogStoreWorkflowExecutionRepository,
        LogStoreWorkflowNodeExecutionRepository,
    )

    engine = app.extensions["sqlalchemy"].engine
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    timer = SaveTimer()
    outcomes: list[RunOutcome] = []
    lock = threading.Lock()
    now = datetime.now(UTC).replace(tzinfo=None)

    def worker(worker_index: int) -> None:
        rng = random.Random(1000 + worker_index)
        with app.app_context():
            for i in range(worker_index, runs, threads):
                run_repo = LogStoreWorkflowExecutionRepository(
                    session_factory=factory, user=user, app_id=app_id, triggered_from=WorkflowRunTriggeredFrom.APP_RUN
                )
                node_repo = LogStoreWorkflowNodeExecutionRepository(
                    session_factory=factory,
                    user=user,
                    app_id=app_id,
                    triggered_from=WorkflowNodeExecutionTriggeredFrom.WORKFLOW_RUN,
                )
                local = SaveTimer()
                outcome = run_workflow(
                    rng,
                    run_repo,
                    node_repo,
                    workflow_id=workflow_id,
                    started_at=now - timedelta(seconds=runs - i),
                    fail=i == 1,
                    retry=i % 3 == 0,
                    shuffle=i % 4 == 0,
                    large_output_bytes=2_000_000 if i == 2 else 0,
                    timer=local,
                )
                with lock:
                    outcomes.append(outcome)
                    timer.samples.extend(local.samples)

    pool = [threading.Thread(target=worker, args=(n,), name=f"demo-worker-{n}") for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return outcomes, timer


def _read_back(
    app: t.Any,
    user: DemoUser,
    app_id: str,
    workflow_id: str,
    live: list[RunOutcome],
    expected_runs: int,
    checks: Checks,
) -> dict[str, t.Any]:
    """The console's reads: logs list (every page), run detail, tracing panel, counts, statistics."""
    from flask_difylogstore.repositories import (
        LogStoreAPIWorkflowNodeExecutionRepository,
        LogStoreAPIWorkflowRunRepository,
    )

    tenant = user.current_tenant_id
    runs_repo = LogStoreAPIWorkflowRunRepository()
    nodes_repo = LogStoreAPIWorkflowNodeExecutionRepository()
    with app.app_context():
        _check_logs_list(runs_repo, tenant, app_id, expected_runs, checks)
        _check_run_and_trace(runs_repo, nodes_repo, tenant, app_id, live, checks)
        counts = runs_repo.get_workflow_runs_count(tenant, app_id, "app-run")
        checks.check(
            "status counts", counts["total"] == expected_runs, ", ".join(f"{k}={v}" for k, v in counts.items() if v)
        )
        last = nodes_repo.get_node_last_execution(tenant, app_id, workflow_id, "llm")
        checks.check("node 'last run'", last is not None)
        start = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=20)
        daily = runs_repo.get_daily_runs_statistics(tenant, app_id, "app-run", start_date=start)
        tokens = runs_repo.get_daily_token_cost_statistics(tenant, app_id, "app-run", start_date=start)
        checks.check(
            "daily statistics cover every run",
            sum(int(d["runs"]) for d in daily) == expected_runs,
            f"{len(daily)} days",
        )
    return {"daily": daily, "tokens": tokens, "counts": counts}


def _check_logs_list(
    runs_repo: LogStoreAPIWorkflowRunRepository, tenant: str, app_id: str, expected_runs: int, checks: Checks
) -> None:
    """The logs list, page after page as the console scrolls, shows every run once."""
    requests = 0
    seen: list[str] = []
    last_id: str | None = None
    while True:
        page = runs_repo.get_paginated_workflow_runs(tenant, app_id, "app-run", limit=50, last_id=last_id)
        requests += 1
        seen.extend(r.id for r in page.data)
        if not page.has_more:
            break
        last_id = page.data[-1].id
    checks.check(
        "logs list pages through every run, newest first",
        len(seen) == len(set(seen)) == expected_runs,
        f"{len(seen)} runs in {requests} pages",
    )


def _check_run_and_trace(
    runs_repo: LogStoreAPIWorkflowRunRepository,
    nodes_repo: LogStoreAPIWorkflowNodeExecutionRepository,
    tenant: str,
    app_id: str,
    live: list[RunOutcome],
    checks: Checks,
) -> None:
    """The failed run's detail page, and the tracing panel of the run with the large LLM output."""
    failed = next(o for o in live if o.status == "failed")
    big = next(o for o in live if o.large_payload)
    detail = runs_repo.get_workflow_run_by_id(tenant, app_id, failed.run_id)
    checks.check("run detail of the failed run", detail is not None and detail.status == "failed")
    trace = nodes_repo.get_executions_by_workflow_run(tenant, app_id, big.run_id)
    statuses = {n.status for n in trace}
    checks.check(
        "tracing panel: every node of a run, none stuck running",
        len(trace) == big.nodes and statuses == {"succeeded"},
        f"{len(trace)} nodes",
    )
    llm = next(n for n in trace if n.node_type == "llm")
    checks.check(
        "large payload stored truncated with the full value recoverable",
        llm.outputs_truncated,
        f"{len(llm.outputs or ''):,} bytes inline",
    )


def run_demo(options: DemoOptions) -> int:
    """Run the demo; return the process exit status (0 when every check passed)."""
    checks = Checks()
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="difylogstore-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    from flask_difylogstore.testing.host_app import create_app

    click.echo(click.style("flask-difylogstore demo", bold=True) + f"  (work dir: {workdir})")
    with _local_backend(options, workdir) as (settings, where):
        click.echo(f"backend: {settings.effective_backend} - {where}")
        app = create_app(f"sqlite:///{workdir / 'dify.db'}", settings=settings)
        context = app.app_context()
        context.push()
        state = get_state(app)
        runs = max(options.runs, 8)
        history = runs
        live_count = max(runs // 2, 8)

        _section("1. Historic data in the relational database (as Dify stores it today)")
        user, app_id, workflow_id, sql_timer = _seed_history(app, history, checks)

        _section("2. Migrate to the log store and verify")
        migration = _migrate_and_verify(app, checks)

        _section(f"3. Live workflows through the repositories ({options.threads} threads)")
        started = time.perf_counter()
        live, store_timer = _live_runs(app, user, app_id, workflow_id, live_count, options.threads)
        flushed = state.require_sink().flush(60)
        elapsed = time.perf_counter() - started
        checks.check(
            "live runs delivered (pipeline flushed)",
            flushed,
            f"{len(live)} runs, {len(store_timer.samples)} saves in {elapsed:.1f}s",
        )

        _section("4. Read back through the console-facing methods")
        reads = _read_back(app, user, app_id, workflow_id, live, history + len(live), checks)

        _section("Summary")
        print_store_counts(app, state.require_backend(), Scope(tenant_id=user.current_tenant_id))
        click.echo(f"  verify: {'ok' if migration['verify_ok'] else 'MISMATCH'}")
        click.echo("")
        print_daily_charts(reads["daily"], reads["tokens"])
        click.echo("")
        sql_probe, store_probe = latency_probe(app, user, app_id, workflow_id)
        print_latency(sql_probe, store_probe, live=store_timer, seeding=sql_timer, threads=options.threads)
        state.close(30)
        context.pop()
    click.echo("")
    passed = sum(1 for _, ok, _ in checks.results if ok)
    summary = f"{passed}/{len(checks.results)} checks passed"
    click.echo(click.style(summary, fg="green" if checks.ok else "red", bold=True))
    return 0 if checks.ok else 1
