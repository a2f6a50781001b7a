"""``flask logstore init --dry-run`` on a fresh store prints the diff and creates nothing.

Follows docs/operations.md (``flask logstore init``: "``--dry-run`` only prints what it would do")
and Flask's CLI documentation (the app is loaded by ``flask --app`` while the command is resolved),
run as an operator does: ``flask`` in a process of its own, against the local servers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import typing as t
import uuid
from pathlib import Path

import pytest

from flask_difylogstore.backends import create_backend
from flask_difylogstore.extension import runs_cli_group
from flask_difylogstore.settings import LogStoreSettings

if t.TYPE_CHECKING:
    from flask_difylogstore.testing.es import LocalElasticsearchServer
    from flask_difylogstore.testing.sls import LocalSLSServer

APP = "flask_difylogstore.testing.host_app:create_app()"


def _environment(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGSTORE_", "ALIYUN_SLS_", "ELASTICSEARCH_"))}
    env["LOGSTORE_BACKEND"] = backend
    env["LOGSTORE_SPOOL_DIR"] = str(tmp_path / "spool")
    if backend == "aliyun_sls":
        sls: LocalSLSServer = request.getfixturevalue("local_sls_server")
        env.update(
            ALIYUN_SLS_ACCESS_KEY_ID=sls.access_key_id,
            ALIYUN_SLS_ACCESS_KEY_SECRET=sls.access_key_secret,
            ALIYUN_SLS_ENDPOINT=sls.endpoint,
            ALIYUN_SLS_REGION="cn-hangzhou",
            ALIYUN_SLS_PROJECT_NAME=f"p-{uuid.uuid4().hex[:12]}",
        )
    else:
        es: LocalElasticsearchServer = request.getfixturevalue("local_es_server")
        env.update(ELASTICSEARCH_HOSTS=es.url, ELASTICSEARCH_INDEX_PREFIX=f"t{uuid.uuid4().hex[:10]}")
    return env


def _flask(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", APP, "logstore", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _pending(env: dict[str, str]) -> int:
    """Items a dry run from this process would create or update."""
    names = {k: v for k, v in env.items() if k.startswith(("LOGSTORE_", "ALIYUN_SLS_", "ELASTICSEARCH_"))}
    backend = create_backend(LogStoreSettings(_env_file=None, **_as_fields(names)))
    try:
        report = backend.provision(dry_run=True)
    finally:
        backend.close()
    return sum(1 for c in report.changes if c.action != "keep")


def _as_fields(names: dict[str, str]) -> dict[str, t.Any]:
    from flask_difylogstore._settings_sources import _FlatEnvSource

    return _FlatEnvSource(LogStoreSettings, names)()


@pytest.mark.parametrize("backend", ["aliyun_sls", "elasticsearch"])
def test_dry_run_on_a_fresh_store_shows_the_diff_and_creates_nothing(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    env = _environment(backend, request, tmp_path)
    before = _pending(env)
    assert before > 0  # a fresh project / index prefix
    dry = _flask(env, "init", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would change {before} item(s)" in dry.stdout
    assert sum(1 for line in dry.stdout.splitlines() if line.startswith("+ ")) >= 1
    assert _pending(env) == before, "the dry run created something"
    assert not (tmp_path / "spool").exists(), "the dry run started the writer"
    status = _flask(env, "health")
    assert status.returncode == 1 and "run `flask logstore init`" in status.stdout
    assert _pending(env) == before, "health provisioned"
    real = _flask(env, "init")
    assert real.returncode == 0, real.stderr
    assert f"did change {before} item(s)" in real.stdout
    again = _flask(env, "init", "--dry-run")
    assert "would change 0 item(s)" in again.stdout
    assert _flask(env, "health").returncode == 0


def test_command_line_detection() -> None:
    assert runs_cli_group("logstore", ["logstore", "init", "--dry-run"])
    assert runs_cli_group("logstore", ["--app", "app:create_app()", "-e", ".env", "logstore", "status"])
    assert runs_cli_group("logstore", ["--app=app", "logstore", "health"])
    assert not runs_cli_group("logstore", ["run", "--port", "5001"])
    assert not runs_cli_group("logstore", ["db", "upgrade"])
    assert not runs_cli_group("logstore")  # no click context: gunicorn, Celery, tests
