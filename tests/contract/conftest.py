"""Fixtures of the contract suite: one entry per backend, a Flask app per backend, PostgreSQL baseline.

Adding a backend is one entry in :data:`BACKENDS`: a context manager that yields the
:class:`LogStoreSettings` for that backend (starting whatever local server it needs).
"""

from __future__ import annotations

import contextlib
import os
import typing as t
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from flask_difylogstore import DifyLogStore, LogStoreSettings
from flask_difylogstore.extension import LogStoreState, get_state
from flask_difylogstore.repositories.relational import LocalFileStore

SettingsFactory = Callable[[Path], t.ContextManager[dict[str, t.Any]]]


@contextlib.contextmanager
def memory_backend(tmp: Path) -> Iterator[dict[str, t.Any]]:
    yield {"backend": "memory"}


@contextlib.contextmanager
def aliyun_sls_backend(tmp: Path) -> Iterator[dict[str, t.Any]]:
    """The SLS backend against a LocalSLSServer of its own, over the real SDK."""
    from flask_difylogstore.testing.sls import LocalSLSServer

    with LocalSLSServer(data_dir=tmp / "sls") as server:
        yield {
            "backend": "aliyun_sls",
            "sls": {
                "access_key_id": server.access_key_id,
                "access_key_secret": server.access_key_secret,
                "endpoint": server.endpoint,
                "region": "cn-hangzhou",
                "project_name": f"p-{uuid.uuid4().hex[:12]}",
                "check_connectivity_timeout": 5.0,
            },
        }


@contextlib.contextmanager
def elasticsearch_backend(tmp: Path) -> Iterator[dict[str, t.Any]]:
    """The Elasticsearch backend against a LocalElasticsearchServer of its own, over the real client.

    The server refreshes every second like Elasticsearch, so read-your-writes is exercised for real.
    """
    from flask_difylogstore.testing.es import LocalElasticsearchServer

    with LocalElasticsearchServer(data_dir=tmp / "es") as server:
        yield {
            "backend": "elasticsearch",
            "elasticsearch": {
                "hosts": [server.url],
                "index_prefix": f"c{uuid.uuid4().hex[:10]}",
                "number_of_replicas": 0,
                "max_retries": 1,
            },
        }


#: backend name -> context manager yielding the backend's settings values (a local server may run inside).
BACKENDS: dict[str, SettingsFactory] = {
    "memory": memory_backend,
    "aliyun_sls": aliyun_sls_backend,
    "elasticsearch": elasticsearch_backend,
}
#: Backends outside the default run, added with ``DIFYLOGSTORE_CONTRACT_BACKENDS=name,...``.
EXTRA_BACKENDS: dict[str, SettingsFactory] = {}


def selected_backends() -> list[str]:
    extra = [n.strip() for n in os.environ.get("DIFYLOGSTORE_CONTRACT_BACKENDS", "").split(",")]
    return sorted(BACKENDS) + [n for n in extra if n in EXTRA_BACKENDS]


#: Small truncation limits, so ordinary test payloads exercise truncation + offload on both sides.
TRUNCATION = {"truncation_max_size": 4096, "truncation_string_length": 1000, "truncation_array_length": 50}


def make_settings(values: dict[str, t.Any], tmp: Path, **overrides: t.Any) -> LogStoreSettings:
    """Settings passed explicitly (never the developer's environment), spool under ``tmp``."""
    merged = {
        "spool_dir": tmp / "spool",
        "dual_read_enabled": False,
        "startup_strict": True,
        **TRUNCATION,
        **values,
        **overrides,
    }
    return LogStoreSettings(_env_file=None, **merged)


@pytest.fixture(scope="module", params=selected_backends())
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def backend_values(backend_name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, t.Any]]:
    with {**BACKENDS, **EXTRA_BACKENDS}[backend_name](tmp_path_factory.mktemp(backend_name)) as values:
        yield values


@contextlib.contextmanager
def logstore_app(values: dict[str, t.Any], tmp: Path, **overrides: t.Any) -> Iterator[Flask]:
    """A Flask app with the extension initialised and an app context pushed."""
    app = Flask(f"contract-{uuid.uuid4().hex[:8]}", instance_path=str(tmp / "instance"))
    DifyLogStore(app, settings=make_settings(values, tmp, **overrides))
    with app.app_context():
        try:
            yield app
        finally:
            DifyLogStore.close(app, timeout=10)


def flush() -> None:
    sink = get_state().require_sink()
    assert sink.flush(30), "the write pipeline did not deliver in time"


def state() -> LogStoreState:
    return get_state()


@pytest.fixture(scope="session")
def pg_schema_engine(pg_url: str) -> Iterator[sa.Engine]:
    """An engine on a private PostgreSQL schema (other suites may use the same database concurrently)."""
    from flask_difylogstore.dify.models import Base

    schema = f"contract_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = sa.create_engine(pg_url, connect_args={"options": f"-csearch_path={schema}"})
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_sessions(pg_schema_engine: sa.Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=pg_schema_engine, expire_on_commit=False)


def reset_tables(engine: sa.Engine) -> None:
    from flask_difylogstore.dify.models import WORKFLOW_LOG_TABLES

    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE " + ", ".join(table.name for table in WORKFLOW_LOG_TABLES)))


@pytest.fixture(scope="session")
def file_store(tmp_path_factory: pytest.TempPathFactory) -> LocalFileStore:
    return LocalFileStore(tmp_path_factory.mktemp("offload-files"))
