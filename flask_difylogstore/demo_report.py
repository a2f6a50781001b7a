"""What the demo prints at the end: the row counts on both sides, daily charts and save() latency.

Kept apart from :mod:`flask_difylogstore.demo`, which runs the phases and checks: this module
only measures and formats, so the report can change without touching what the demo proves.
"""

from __future__ import annotations

import random
import time
import typing as t
import uuid
from datetime import UTC, datetime

import click
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from flask_difylogstore.backends.base import LogBackend, Scope
from flask_difylogstore.demo_workload import DemoUser, SaveTimer
from flask_difylogstore.dify.enums import WorkflowNodeExecutionTriggeredFrom
from flask_difylogstore.dify.models import WorkflowAppLog, WorkflowNodeExecutionModel, WorkflowRun
from flask_difylogstore.records import RecordKind
from flask_difylogstore.state import get_state

BAR = "█"


def print_store_counts(app: t.Any, backend: LogBackend, scope: Scope) -> None:
    """Rows per kind in the relational database next to entities in the log store."""
    engine = app.extensions["sqlalchemy"].engine
    refresh = getattr(backend, "refresh", None)
    if refresh is not None:  # Elasticsearch: make the last writes searchable before counting
        refresh()
    click.echo(f"  {'kind':<26}{'relational rows':>16}{'log store':>12}")
    for kind, model in (
        (RecordKind.RUN, WorkflowRun),
        (RecordKind.NODE_EXECUTION, WorkflowNodeExecutionModel),
        (RecordKind.APP_LOG, WorkflowAppLog),
    ):
        with engine.connect() as conn:
            sql_rows = conn.scalar(sa.select(sa.func.count()).select_from(model))
        click.echo(f"  {kind.value:<26}{sql_rows:>16,}{backend.count(kind, scope):>12,}")


def print_chart(title: str, rows: list[dict[str, t.Any]], key: str) -> None:
    """One bar per day, scaled to the busiest day, so the shape of the history shows at a glance."""
    click.echo(f"  {title}")
    if not rows:
        click.echo("    (no data)")
        return
    peak = max(int(r[key]) for r in rows) or 1
    for row in rows:
        value = int(row[key])
        click.echo(f"    {row['date']} {BAR * max(1, round(30 * value / peak))} {value:,}")


def print_daily_charts(daily: list[dict[str, t.Any]], tokens: list[dict[str, t.Any]]) -> None:
    """The console's two daily statistics, read back from the log store."""
    print_chart("daily runs", daily, "runs")
    print_chart("daily tokens", tokens, "token_count")


def latency_probe(app: t.Any, user: DemoUser, app_id: str, workflow_id: str) -> tuple[SaveTimer, SaveTimer]:
    """save() latency of both repositories on the same node snapshots, one thread, paced.

    Pacing (1 ms between saves) lets the background writer and the in-process local server run
    between saves, as they would on a real worker where the log store is another machine.
    """
    from flask_difylogstore.repositories import LogStoreWorkflowNodeExecutionRepository
    from flask_difylogstore.repositories.relational import RelationalWorkflowNodeExecutionRepository

    factory = sessionmaker(bind=app.extensions["sqlalchemy"].engine, expire_on_commit=False)
    trigger = WorkflowNodeExecutionTriggeredFrom.WORKFLOW_RUN
    timers = []
    for cls in (RelationalWorkflowNodeExecutionRepository, LogStoreWorkflowNodeExecutionRepository):
        repo = cls(session_factory=factory, user=user, app_id=app_id, triggered_from=trigger)
        timer = SaveTimer()
        rng = random.Random(99)
        run_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        for index in range(1, 301):
            node = _probe_node(rng, workflow_id, run_id, index)
            timer.call(repo.save, node)
            time.sleep(0.001)
        timers.append(timer)
    get_state(app).require_sink().flush(60)
    return timers[0], timers[1]


def _probe_node(rng: random.Random, workflow_id: str, run_id: str, index: int) -> t.Any:
    """A finished LLM node with a 5 KB output: big enough to cost something, small enough not to offload."""
    from flask_difylogstore.demo_workload import payload
    from flask_difylogstore.dify.entities import WorkflowNodeExecution
    from flask_difylogstore.dify.enums import NodeType

    node_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return WorkflowNodeExecution(
        id=node_id,
        node_execution_id=node_id,
        workflow_id=workflow_id,
        workflow_execution_id=run_id,
        index=index,
        node_id="llm",
        node_type=NodeType.LLM,
        title="Answer",
        status="succeeded",
        inputs={"query": "probe"},
        outputs=payload(rng, 5000),
        created_at=datetime.now(UTC).replace(tzinfo=None),
        finished_at=datetime.now(UTC).replace(tzinfo=None),
        elapsed_time=0.1,
    )


def print_latency(
    sql_probe: SaveTimer, store_probe: SaveTimer, *, live: SaveTimer, seeding: SaveTimer, threads: int
) -> None:
    """Compare the paced probe of both repositories, then the busier live and seeding phases for context."""
    click.echo("  save() latency, 5 KB node snapshots, one thread, paced (same workload for both):")
    click.echo(f"  {'':<28}{'p50':>10}{'p99':>10}")
    for label, timer in (("SQL repository (SQLite)", sql_probe), ("log-store repository", store_probe)):
        click.echo(f"  {label:<28}{timer.percentile(0.5) * 1e3:>8.3f}ms{timer.percentile(0.99) * 1e3:>8.3f}ms")
    ratio = sql_probe.percentile(0.99) / max(store_probe.percentile(0.99), 1e-9)
    click.echo(
        f"  p99: the log-store save takes 1/{ratio:,.0f} of the SQL repository's"
        if ratio >= 1
        else f"  p99: the log-store save is {1 / ratio:,.1f}x slower than the SQL repository's"
    )
    busy = live.percentile(0.99) * 1e3
    click.echo(
        f"  (during the {threads}-thread live phase, with the local server in this process: "
        f"p99 {busy:.2f}ms; SQL seeding p99 {seeding.percentile(0.99) * 1e3:.2f}ms)"
    )
