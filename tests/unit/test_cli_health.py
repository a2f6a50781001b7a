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
