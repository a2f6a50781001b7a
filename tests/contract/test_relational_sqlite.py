"""The relational baseline also runs on SQLite through the app's Flask-SQLAlchemy (the demo's setup)."""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_difylogstore.dify.models import Base
from flask_difylogstore.repositories.relational import LocalFileStore, resolve_session_factory
from tests.contract.conftest import reset_tables
from tests.contract.scenario import build_scenario
from tests.contract.world import relational_side, row_view, store_scenario

pytestmark = pytest.mark.postgres


def test_sqlite_baseline_matches_postgresql(tmp_path: t.Any, pg_schema_engine: t.Any, pg_sessions: t.Any) -> None:
    scenario = build_scenario(seed=41, runs_per_app=5)
    reset_tables(pg_schema_engine)
    pg = relational_side(pg_sessions, LocalFileStore(tmp_path / "pg-files"))
    store_scenario(scenario, pg)
    app = Flask("sqlite-baseline", instance_path=str(tmp_path / "instance"))
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'dify.db'}"
    db = SQLAlchemy()
    db.init_app(app)
    with app.app_context():
        Base.metadata.create_all(db.engine)
        lite = relational_side(resolve_session_factory(None), None)
        store_scenario(scenario, lite)
        for tenant, apps in scenario.apps.items():
            for app_id in apps:
                for tz in ("UTC", "Asia/Shanghai"):
                    for method in ("get_daily_runs_statistics", "get_average_app_interaction_statistics"):
                        assert getattr(lite.runs, method)(tenant, app_id, "app-run", timezone=tz) == getattr(
                            pg.runs, method
                        )(tenant, app_id, "app-run", timezone=tz)
                page = lite.runs.get_paginated_workflow_runs(tenant, app_id, ["app-run", "debugging"], limit=3)
                expected = pg.runs.get_paginated_workflow_runs(tenant, app_id, ["app-run", "debugging"], limit=3)
                assert [row_view(r) for r in page.data] == [row_view(r) for r in expected.data]
        db.engine.dispose()
