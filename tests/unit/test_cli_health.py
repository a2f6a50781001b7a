from __future__ import annotations

import typing as t

import orjson
import pytest
from flask import Flask

from flask_difylogstore import DifyLogStore
from flask_difylogstore.extension import get_state
from flask_difylogstore.health import create_health_blueprint
from flask_difylogstore.settings import LogStoreSettings
from flask_difylogstore.testing.host_app import create_app
from tests.unit.fakes import FakeBackend

MakeSettings = t.Callable[..., LogStoreSettings]
FAKE = "tests.unit.fakes.FakeBackend"


@pytest.fixture
def app(make_settings: MakeSettings) -> Flask:
    settings = make_settings(backend=FAKE, sls={"access_key_secret": "hidden-secret"})
    return create_app(settings=settings)


def test_status_masks_secrets_and_shows_state(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["logstore", "status"])
    assert result.exit_code == 0, result.output
    assert "hidden-secret" not in result.output
    assert "sls.access_key_secret" in result.output and "**********" in result.output
    assert "reachable     yes" in result.output
    assert "provisioning  done" in result.output


def test_status_json(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["logstore", "status", "--json"])
    data = orjson.loads(result.output)
    assert data["backend"] == FAKE and data["reachable"] is True
    # No Dify in this process: the package's classes are used directly (the newest-line host is in tests/dify_s4).
    assert data["dify"]["line"] == "standalone"
    assert (
        data["dify"]["classes"]["api_workflow_run"]
        == "flask_difylogstore.repositories.LogStoreAPIWorkflowRunRepository"
    )


def test_status_shows_the_dify_line_and_the_classes_dify_builds(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["logstore", "status"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("dify          no Dify in this process")
    assert "workflow_node_execution      flask_difylogstore.repositories.LogStoreWorkflowNodeExecutionRepository" in (
        result.output
    )


def test_health_ok_then_unhealthy(app: Flask) -> None:
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["logstore", "health"])
    assert ok.exit_code == 0 and "fake: ok" in ok.output
    t.cast(FakeBackend, get_state(app).backend).reachable = False
    bad = runner.invoke(args=["logstore", "health", "--json"])
    assert bad.exit_code == 1
    assert orjson.loads(bad.output)["backend"]["error"] == "connection refused"


def test_init_dry_run_prints_the_diff(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["logstore", "init", "--dry-run"])
    assert result.exit_code == 0
    assert "= store: the only store" in result.output
    assert "would change 0 item(s)" in result.output


def test_cli_errors_are_one_line_and_non_zero(make_settings: MakeSettings) -> None:
    app = Flask(__name__)
    DifyLogStore(app, settings=make_settings())
    result = app.test_cli_runner().invoke(args=["logstore", "init"])
    assert result.exit_code == 1
    assert result.output.strip().startswith("Error: no log-store backend is configured")
    assert len(result.output.strip().splitlines()) == 1


def test_health_blueprint_serves_200_and_503(make_settings: MakeSettings) -> None:
    app = create_app(settings=make_settings(backend=FAKE, health_url_prefix="/logstore"))
    client = app.test_client()
    response = client.get("/logstore/health")
    assert response.status_code == 200 and response.get_json()["ok"] is True
    t.cast(FakeBackend, get_state(app).backend).reachable = False
    assert client.get("/logstore/health").status_code == 503


def test_blueprint_can_be_registered_by_hand(make_settings: MakeSettings) -> None:
    app = Flask(__name__)
    DifyLogStore(app, settings=make_settings(backend=FAKE))
    app.register_blueprint(create_health_blueprint(), url_prefix="/ops")
    assert app.test_client().get("/ops/health").status_code == 200


def test_host_app_without_a_backend_skips_the_extension(make_settings: MakeSettings) -> None:
    app = create_app(settings=make_settings())
    assert "difylogstore" not in app.extensions
    assert "sqlalchemy" in app.extensions


def test_host_app_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGSTORE_BACKEND", FAKE)
    app = create_app()
    assert get_state(app).settings.effective_backend == FAKE


@pytest.mark.postgres
def test_host_app_on_postgresql(pg_url: str, make_settings: MakeSettings) -> None:
    app = create_app(pg_url, settings=make_settings(backend=FAKE))
    with app.app_context():
        from sqlalchemy import inspect

        engine = app.extensions["sqlalchemy"].engine
        assert "workflow_runs" in inspect(engine).get_table_names()


def test_ext_logstore_is_a_drop_in(monkeypatch: pytest.MonkeyPatch) -> None:
    from flask_difylogstore import ext_logstore

    assert ext_logstore.is_enabled() is False
    monkeypatch.setenv("ELASTICSEARCH_ENABLED", "true")
    assert ext_logstore.is_enabled() is True
    monkeypatch.setenv("LOGSTORE_BACKEND", "bogus name")
    assert ext_logstore.is_enabled() is True


# Health tells the truth about the write pipeline (docs/operations.md, "Health checks"): a backend
# that answers pings but refuses writes, a dead writer, records waiting too long.


def _run_record() -> t.Any:
    from datetime import datetime

    from flask_difylogstore.records import LogRecord, RecordKind, default_clock

    data = {"id": "run-1", "tenant_id": "t1", "app_id": "a1", "status": "running", "created_at": datetime(2026, 1, 1)}
    return LogRecord(RecordKind.RUN, data, default_clock.version_for(RecordKind.RUN, "running"))


def _refuse_writes(app: Flask) -> None:
    backend = t.cast(FakeBackend, get_state(app).backend)

    def refuse(records: t.Any) -> t.Any:
        raise PermissionError("403 Unauthorized: no write permission")

    backend.write = refuse  # type: ignore[method-assign]


def test_open_breaker_turns_health_unhealthy_and_names_the_check(make_settings: MakeSettings) -> None:
    settings = make_settings(
        backend=FAKE,
        health_url_prefix="/logstore",
        health_breaker_open_max_s=0,
        pipeline={"max_retry_delay_s": 0.05, "flush_interval_ms": 5},
    )
    app = create_app(settings=settings)
    _refuse_writes(app)
    from flask_difylogstore.pipeline.lifecycle import wait_until

    state = get_state(app)
    assert state.sink is not None
    state.sink.submit([_run_record()])
    assert wait_until(lambda: state.sink is not None and state.sink.stats()["breaker"]["state"] != "closed", 20)
    response = app.test_client().get("/logstore/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["backend"]["ok"] is True  # the ping passes, the writes do not
    assert "breaker" in body["failed"]
    assert "no write permission" in body["checks"]["breaker"]["detail"]
    result = app.test_cli_runner().invoke(args=["logstore", "health"])
    assert result.exit_code == 1
    assert "breaker: FAILED" in result.output and "LOGSTORE_HEALTH_BREAKER_OPEN_MAX" in result.output
    DifyLogStore.close(app, 0.2)


def test_old_unacknowledged_records_turn_health_unhealthy(make_settings: MakeSettings) -> None:
    settings = make_settings(backend=FAKE, health_pending_age_max_s=0.01, pipeline={"max_retry_delay_s": 0.05})
    app = create_app(settings=settings)
    _refuse_writes(app)
    from flask_difylogstore.health import build_health_report
    from flask_difylogstore.pipeline.lifecycle import wait_until

    state = get_state(app)
    assert state.sink is not None
    state.sink.submit([_run_record()])
    assert wait_until(lambda: "pending_age" in build_health_report(state).failed, 10)
    result = app.test_cli_runner().invoke(args=["logstore", "health", "--json"])
    assert result.exit_code == 1
    assert "LOGSTORE_HEALTH_MAX_PENDING_AGE" in orjson.loads(result.output)["checks"]["pending_age"]["detail"]
    DifyLogStore.close(app, 0.2)


def test_pipeline_checks_from_figures(make_settings: MakeSettings) -> None:
    from flask_difylogstore.health import pipeline_checks

    settings = make_settings(health_breaker_open_max_s=60, health_pending_age_max_s=300)
    healthy = {
        "mode": "spooling",
        "writers": 2,
        "writers_started": True,
        "writers_alive": 2,
        "breaker": {"state": "open", "open_for_s": 59.0},
        "oldest_pending_age_s": 299.0,
        "undeliverable": 0,
    }
    assert all(c.ok for c in pipeline_checks(healthy, settings).values())
    dead_writer = {**healthy, "writers_alive": 1}
    assert not pipeline_checks(dead_writer, settings)["writer"].ok
    long_open = {**healthy, "breaker": {"state": "half_open", "open_for_s": 61.0}}
    assert not pipeline_checks(long_open, settings)["breaker"].ok
    stuck = {**healthy, "undeliverable": 3, "dead_letter_error": "OSError: [Errno 28] No space left on device"}
    assert "No space left" in pipeline_checks(stuck, settings)["undeliverable"].detail
    not_started = {**healthy, "writers_started": False, "writers_alive": 0}
    assert pipeline_checks(not_started, settings)["writer"].ok
    assert pipeline_checks({"mode": "direct"}, settings) == {}


def test_deferred_provisioning_is_checked_by_a_dry_run_only_when_reachable(
    make_settings: MakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`flask logstore health` in a process that did not provision (docs/operations.md, `flask logstore health`)."""
    from flask_difylogstore import extension
    from flask_difylogstore.health import build_health_report

    monkeypatch.setattr(extension, "runs_cli_group", lambda group: True)  # as under `flask logstore health`
    app = Flask(__name__)
    DifyLogStore(app, settings=make_settings(backend=FAKE))
    state = get_state(app)
    assert state.gate is not None and state.gate.deferred
    backend = t.cast(FakeBackend, state.backend)
    calls = backend.provision_calls
    backend.reachable = False
    report = build_health_report(state)
    assert backend.provision_calls == calls  # unreachable: no dry run that would only time out
    assert "backend" in report.failed
    backend.reachable = True
    report = build_health_report(state)
    assert backend.provision_calls == calls + 1  # a dry run
    assert report.provisioning["state"] == "pending"  # the fake's first provisioning creates its store
    assert "run `flask logstore init`" in report.provisioning["last_error"] and not report.ok
    state.gate.run_now()  # what `flask logstore init` does
    assert build_health_report(state).ok
    DifyLogStore.close(app, 0.2)
