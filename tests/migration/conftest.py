"""Fixtures: a private PostgreSQL schema per test with Dify's tables, apps on a chosen backend.

Each test gets its own schema (via ``search_path``), so these tests never touch tables other
suites create in the shared ``test`` database, and can run beside them.
"""

from __future__ import annotations

import typing as t
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_difylogstore.backends.base import LogBackend
from flask_difylogstore.extension import get_state
from flask_difylogstore.repositories.relational import LocalFileStore
from flask_difylogstore.settings import LogStoreSettings
from flask_difylogstore.testing.host_app import create_app

#: Where the package's relational repositories keep payload files, under the instance path.
STORE_DIR = "difylogstore-files"


@dataclass
class Env:
    """One test's database URL, app instance path (the payload store lives there) and spool directory."""

    url: str
    engine: sa.Engine
    instance_path: Path
    spool_dir: Path

    @property
    def store(self) -> LocalFileStore:
        """The package's local file store, where its apps keep offloaded payloads."""
        return LocalFileStore(self.instance_path / STORE_DIR)

    @property
    def storage_dir(self) -> Path:
        return self.store.root


@pytest.fixture
def env(pg_url: str, tmp_path: Path) -> Iterator[Env]:
    schema = f"mig_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.make_url(pg_url).update_query_dict({"options": f"-csearch_path={schema}"})
    text_url = url.render_as_string(hide_password=False)
    engine = sa.create_engine(text_url)
    from flask_difylogstore.dify.models import Base

    Base.metadata.create_all(engine)
    try:
        yield Env(text_url, engine, tmp_path / "instance", tmp_path / "spool")
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _importable(name: str) -> bool:
    try:
        from flask_difylogstore.backends import resolve_backend

        resolve_backend(name)
    except Exception:
        return False
    return True


#: Backends every behaviour runs against: the in-process one, and the local SLS / Elasticsearch
#: servers through their real clients once those backends are importable.
BACKENDS = ["memory"] + [name for name in ("aliyun_sls", "elasticsearch") if _importable(name)]


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    return t.cast(str, request.param)


def backend_settings(request: pytest.FixtureRequest, name: str) -> dict[str, t.Any]:
    """Settings pointing ``name`` at its local server (a fresh project / index prefix per test)."""
    suffix = uuid.uuid4().hex[:10]
    if name == "aliyun_sls":
        server = request.getfixturevalue("local_sls_server")
        return {
            "sls": {
                "access_key_id": server.access_key_id,
                "access_key_secret": server.access_key_secret,
                "endpoint": server.endpoint,
                "region": "cn-hangzhou",
                "project_name": f"mig-{suffix}",
            }
        }
    if name == "elasticsearch":
        server = request.getfixturevalue("local_es_server")
        return {"elasticsearch": {"hosts": [server.url], "index_prefix": f"mig-{suffix}"}}
    return {}


MakeApp = Callable[..., Flask]


def _app_factory(request: pytest.FixtureRequest, env: Env, default: str) -> tuple[MakeApp, list[Flask]]:
    apps: list[Flask] = []

    def factory(backend: str | None = None, **values: t.Any) -> Flask:
        name = backend or default
        values = {**backend_settings(request, name), **values}
        settings = LogStoreSettings(
            _env_file=None, backend=name, spool_dir=env.spool_dir, startup_strict=True, **values
        )
        app = create_app(env.url, settings=settings)
        app.instance_path = str(env.instance_path)
        apps.append(app)
        return app

    return factory, apps


def _close(apps: list[Flask]) -> None:
    for app in apps:
        get_state(app).close(1.0)
        with app.app_context():
            app.extensions["sqlalchemy"].engine.dispose()


@pytest.fixture
def make_app(request: pytest.FixtureRequest, env: Env, backend_name: str) -> Iterator[MakeApp]:
    """Apps on the parametrised backend (``make_app(backend=...)`` picks another)."""
    factory, apps = _app_factory(request, env, backend_name)
    yield factory
    _close(apps)


@pytest.fixture
def make_memory_app(request: pytest.FixtureRequest, env: Env) -> Iterator[MakeApp]:
    """Apps on an in-process backend only (tests about process death or swapped backends)."""
    factory, apps = _app_factory(request, env, "memory")
    yield factory
    _close(apps)


@pytest.fixture
def app(make_app: MakeApp) -> Flask:
    return make_app()


def backend_of(app: Flask) -> LogBackend:
    return get_state(app).require_backend()


def cli(app: Flask, *args: str) -> t.Any:
    """Invoke ``flask logstore <args>`` through the test runner."""
    return app.test_cli_runner().invoke(args=["logstore", *args], catch_exceptions=False)


@pytest.fixture
def memory_app(make_memory_app: MakeApp) -> Flask:
    """An app on the in-process backend, for behaviour that does not depend on the backend."""
    return make_memory_app()
