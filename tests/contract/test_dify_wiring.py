"""A Dify-shaped host app wired the way an operator wires Dify: the four class paths from ``.env``.

The repositories are loaded by dotted path and constructed with exactly the keyword arguments
Dify's factories pass (S2: four keywords; S3: plus ``tenant_id``; the API factory with
``session_maker`` or nothing at all). The same workload is written through the SQL baseline on
PostgreSQL, and the console-facing reads of both must agree.
"""

from __future__ import annotations

import random
import typing as t
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import sessionmaker
from werkzeug.utils import import_string

from flask_difylogstore.demo_workload import DemoUser, run_workflow
from flask_difylogstore.dify.enums import WorkflowNodeExecutionTriggeredFrom, WorkflowRunTriggeredFrom
from flask_difylogstore.dify.models import Base
from flask_difylogstore.extension import get_state
from flask_difylogstore.settings import LogStoreSettings
from flask_difylogstore.testing.host_app import create_app

from .conftest import BACKENDS

PKG = "flask_difylogstore.repositories"
DIFY_ENV = {
    "CORE_WORKFLOW_EXECUTION_REPOSITORY": f"{PKG}.LogStoreWorkflowExecutionRepository",
    "CORE_WORKFLOW_NODE_EXECUTION_REPOSITORY": f"{PKG}.LogStoreWorkflowNodeExecutionRepository",
    "API_WORKFLOW_RUN_REPOSITORY": f"{PKG}.LogStoreAPIWorkflowRunRepository",
    "API_WORKFLOW_NODE_EXECUTION_REPOSITORY": f"{PKG}.LogStoreAPIWorkflowNodeExecutionRepository",
}
SQL_PATHS = {
    "CORE_WORKFLOW_EXECUTION_REPOSITORY": f"{PKG}.relational.RelationalWorkflowExecutionRepository",
    "CORE_WORKFLOW_NODE_EXECUTION_REPOSITORY": f"{PKG}.relational.RelationalWorkflowNodeExecutionRepository",
    "API_WORKFLOW_RUN_REPOSITORY": f"{PKG}.relational_api.RelationalAPIWorkflowRunRepository",
    "API_WORKFLOW_NODE_EXECUTION_REPOSITORY": f"{PKG}.relational_api_node.RelationalAPIWorkflowNodeExecutionRepository",
}
NOW = datetime(2026, 6, 1, 12, 0)


class Factory:
    """What Dify's ``DifyCoreRepositoryFactory`` / ``DifyAPIRepositoryFactory`` do with the config keys."""

    def __init__(self, config: dict[str, str], session_factory: sessionmaker[t.Any], s3: bool) -> None:
        self.config, self.session_factory, self.s3 = config, session_factory, s3

    def core(self, key: str, user: DemoUser, app_id: str, triggered_from: t.Any) -> t.Any:
        kwargs: dict[str, t.Any] = {
            "session_factory": self.session_factory,
            "user": user,
            "app_id": app_id,
            "triggered_from": triggered_from,
        }
        if self.s3:
            kwargs["tenant_id"] = user.current_tenant_id
        return import_string(self.config[key])(**kwargs)

    def api(self, key: str, *, no_arguments: bool = False) -> t.Any:
        cls = import_string(self.config[key])
        return cls() if no_arguments else cls(session_maker=self.session_factory)


def drive(factory: Factory, user: DemoUser, app_id: str, workflow_id: str) -> list[str]:
    rng = random.Random(11)
    runs = []
    for i in range(24):
        run_repo = factory.core("CORE_WORKFLOW_EXECUTION_REPOSITORY", user, app_id, WorkflowRunTriggeredFrom.APP_RUN)
        node_repo = factory.core(
            "CORE_WORKFLOW_NODE_EXECUTION_REPOSITORY", user, app_id, WorkflowNodeExecutionTriggeredFrom.WORKFLOW_RUN
        )
        outcome = run_workflow(
            rng,
            run_repo,
            node_repo,
            workflow_id=workflow_id,
            started_at=NOW - timedelta(hours=7 * i),
            fail=i % 7 == 3,
            retry=i % 4 == 0,
            payload_bytes=300,
        )
        runs.append(outcome.run_id)
    return runs


def console_reads(factory: Factory, tenant: str, app_id: str, workflow_id: str, run_id: str) -> dict[str, t.Any]:
    runs = factory.api("API_WORKFLOW_RUN_REPOSITORY", no_arguments=factory.s3)
    nodes = factory.api("API_WORKFLOW_NODE_EXECUTION_REPOSITORY")
    pages, last_id = [], None
    while True:
        page = runs.get_paginated_workflow_runs(tenant, app_id, "app-run", limit=10, last_id=last_id)
        pages.append([(r.id, r.status, r.total_tokens) for r in page.data])
        if not page.has_more:
            break
        last_id = page.data[-1].id
    detail = runs.get_workflow_run_by_id(tenant, app_id, run_id)
    trace = nodes.get_executions_by_workflow_run(tenant, app_id, run_id)
    last = nodes.get_node_last_execution(tenant, app_id, workflow_id, "llm")
    start = NOW - timedelta(days=30)
    return {
        "pages": pages,
        "detail": (detail.id, detail.status, detail.inputs_dict, detail.outputs_dict, detail.elapsed_time),
        "trace": [(n.id, n.index, n.node_id, n.status, n.inputs_dict, n.outputs_dict) for n in trace],
        "last_run": (last.id, last.status) if last else None,
        "counts": runs.get_workflow_runs_count(tenant, app_id, "app-run"),
        "daily": runs.get_daily_runs_statistics(tenant, app_id, "app-run", start_date=start, timezone="Asia/Shanghai"),
        "tokens": runs.get_daily_token_cost_statistics(tenant, app_id, "app-run", start_date=start),
        "terminals": runs.get_daily_terminals_statistics(tenant, app_id, "app-run", start_date=start),
        "interactions": runs.get_average_app_interaction_statistics(tenant, app_id, "app-run", start_date=start),
    }


@pytest.fixture
def pg_app_factory(pg_url: str, tmp_path: Path) -> Iterator[t.Callable[[dict[str, t.Any] | None], Flask]]:
    """Host apps on a private PostgreSQL schema (Dify's tables created there)."""
    schema = f"wiring_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    apps: list[Flask] = []

    def make(values: dict[str, t.Any] | None) -> Flask:
        settings = None
        if values is not None:
            settings = LogStoreSettings(
                _env_file=None, spool_dir=tmp_path / "spool", dual_read_enabled=False, startup_strict=True, **values
            )
        app = create_app(
            pg_url,
            settings=settings,
            config={"SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"options": f"-csearch_path={schema}"}}},
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            if "difylogstore" in app.extensions:
                get_state(app).close(10)
            Base.metadata.drop_all(app.extensions["sqlalchemy"].engine)
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("s3", [False, True], ids=["dify-1.9-1.11", "dify-1.12-1.13"])
def test_class_paths_from_env_serve_the_console_like_postgresql(
    backend: str, s3: bool, pg_app_factory: t.Callable[[dict[str, t.Any] | None], Flask], tmp_path: Path
) -> None:
    rng = random.Random(5)
    tenant, app_id, workflow_id = (str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(3))
    user = DemoUser(str(uuid.UUID(int=rng.getrandbits(128), version=4)), tenant)

    sql_app = pg_app_factory(None)
    with sql_app.app_context():
        engine = sql_app.extensions["sqlalchemy"].engine
        sql = Factory(SQL_PATHS, sessionmaker(bind=engine, expire_on_commit=False), s3=False)
        sql_runs = drive(sql, user, app_id, workflow_id)
        expected = console_reads(sql, tenant, app_id, workflow_id, sql_runs[3])
        with engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())

    with BACKENDS[backend](tmp_path / backend) as values:
        app = pg_app_factory(values)
        with app.app_context():
            engine = app.extensions["sqlalchemy"].engine
            factory = Factory(DIFY_ENV, sessionmaker(bind=engine, expire_on_commit=False), s3=s3)
            runs = drive(factory, user, app_id, workflow_id)
            assert runs == sql_runs
            get_state(app).require_sink().flush(30)
            actual = console_reads(factory, tenant, app_id, workflow_id, runs[3])
            with engine.connect() as conn:
                assert conn.scalar(sa.text("select count(*) from workflow_runs")) == 0, "runs must not reach SQL"

    assert actual == expected
    assert sum(len(p) for p in expected["pages"]) == 24 and len(expected["pages"]) == 3
    assert len(expected["trace"]) == 3 and expected["trace"][-1][3] == "failed" and expected["last_run"] is not None
    assert expected["counts"]["total"] == 24 and expected["counts"]["failed"] > 0
    assert sum(d["runs"] for d in expected["daily"]) == 24


def test_the_compared_reads_are_not_trivial() -> None:
    """Guards the comparison above against passing on empty answers."""
    assert len(DIFY_ENV) == 4 and all(import_string(path) for path in DIFY_ENV.values())
