"""Fixtures of the S4 scenarios: a backend per session, and a host app wired by the package's ``init_app``.

These run only in a fresh interpreter with ``tests/dify_s4/host`` first on ``sys.path`` (see
``tests/dify_s4/test_s4_host.py``): the package must decide at import time that it runs inside Dify.
Backends follow ``tests/contract/conftest.py`` — in-process memory, a LocalSLSServer over the real
SLS SDK, a LocalElasticsearchServer over the real Elasticsearch client — but the settings come from
the environment, as ``flask_difylogstore.ext_logstore.init_app`` reads them inside Dify.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import typing as t
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from configs import dify_config
from extensions import ext_logstore as difys_ext_logstore
from extensions.application_services import workflow_storage, workflow_writers
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from models.base import Base
from sqlalchemy.orm import sessionmaker

from flask_difylogstore import ext_logstore
from flask_difylogstore.dify import compat
from flask_difylogstore.extension import DifyLogStore
from flask_difylogstore.wiring import IN_CODE_FACTORIES

from .harness import S4Storage

if not compat.DIFY_AVAILABLE:  # pragma: no cover - a wrong PYTHONPATH, not a test failure to hide
    raise RuntimeError("the S4 scenarios need tests/dify_s4/host first on PYTHONPATH (see test_s4_host.py)")

BACKENDS = ("memory", "aliyun_sls", "elasticsearch")
DIFY_SETTINGS = (
    "WORKFLOW_RUN_STORAGE_BACKEND",
    "WORKFLOW_NODE_EXECUTION_STORAGE_BACKEND",
    "ALIYUN_SLS_ACCESS_KEY_ID",
    "ALIYUN_SLS_ACCESS_KEY_SECRET",
    "ALIYUN_SLS_ENDPOINT",
    "ALIYUN_SLS_REGION",
    "ALIYUN_SLS_PROJECT_NAME",
)


@dataclass
class Backend:
    name: str
    server: t.Any = None

    def env(self) -> dict[str, str]:
        """The environment an operator sets for this backend (a fresh project / index prefix each time)."""
        if self.name == "memory":
            return {"LOGSTORE_BACKEND": "memory"}
        if self.name == "aliyun_sls":
            return {
                "LOGSTORE_BACKEND": "aliyun_sls",
                "ALIYUN_SLS_ACCESS_KEY_ID": self.server.access_key_id,
                "ALIYUN_SLS_ACCESS_KEY_SECRET": self.server.access_key_secret,
                "ALIYUN_SLS_ENDPOINT": self.server.endpoint,
                "ALIYUN_SLS_REGION": "cn-hangzhou",
                "ALIYUN_SLS_PROJECT_NAME": f"p-{uuid.uuid4().hex[:12]}",
                "ALIYUN_SLS_CHECK_CONNECTIVITY_TIMEOUT": "5",
            }
        return {
            "LOGSTORE_BACKEND": "elasticsearch",
            "ELASTICSEARCH_HOSTS": json.dumps([self.server.url]),
            "ELASTICSEARCH_INDEX_PREFIX": f"s4{uuid.uuid4().hex[:10]}",
            "LOGSTORE_ES_NUMBER_OF_REPLICAS": "0",
            "LOGSTORE_ES_MAX_RETRIES": "1",
        }

    @contextlib.contextmanager
    def unavailable(self, state: t.Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        """The log store cannot answer: the local server refuses connections (memory: every call raises)."""
        if self.name == "memory":
            with monkeypatch.context() as patch:

                def refuse(*args: t.Any, **kwargs: t.Any) -> t.NoReturn:
                    raise RuntimeError("LogStore unavailable")

                for method in ("get_latest", "search", "count", "aggregate", "write", "ping"):
                    if hasattr(state.backend, method):
                        patch.setattr(state.backend, method, refuse)
                yield
            return
        if self.name == "aliyun_sls":
            self.server.faults.refuse_connections()
            try:
                yield
            finally:
                self.server.faults.accept_connections()
            return
        self.server.faults.refuse_connections(True)
        try:
            yield
        finally:
            self.server.faults.refuse_connections(False)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    name = str(request.param)
    if name == "memory":
        yield Backend(name)
    elif name == "aliyun_sls":
        from flask_difylogstore.testing import LocalSLSServer

        with LocalSLSServer(data_dir=tmp_path_factory.mktemp("sls")) as server:
            yield Backend(name, server)
    else:
        from flask_difylogstore.testing import LocalElasticsearchServer

        with LocalElasticsearchServer(data_dir=tmp_path_factory.mktemp("es")) as server:
            yield Backend(name, server)


@pytest.fixture
def pristine_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Undo, after the test, whatever ``init_app`` rebinds in the host (factory globals, Dify's ext_logstore)."""
    for factory in IN_CODE_FACTORIES:
        module = workflow_writers if factory.module.endswith("workflow_writers") else workflow_storage
        for name in (factory.rdbms, factory.logstore, factory.function):
            monkeypatch.setattr(module, name, getattr(module, name))
    for name in ("is_enabled", "init_app"):
        monkeypatch.setattr(difys_ext_logstore, name, getattr(difys_ext_logstore, name))
    for name in DIFY_SETTINGS:
        monkeypatch.setattr(dify_config, name, getattr(dify_config, name))


HostFactory = Callable[..., S4Storage]
_app_numbers = itertools.count()


def new_app(tmp_path: Path, database: str | None = None) -> tuple[Flask, SQLAlchemy]:
    """Dify's app with ``ext_database``: Flask-SQLAlchemy on a SQLite file (``database``: another app's),
    the host's tables created."""
    app = Flask(f"dify-s4-{next(_app_numbers)}", instance_path=str(tmp_path / "instance"))
    app.config["SQLALCHEMY_DATABASE_URI"] = database or f"sqlite:///{tmp_path / f'dify-{uuid.uuid4().hex[:8]}.db'}"
    db = SQLAlchemy()
    db.init_app(app)
    with app.app_context():
        Base.metadata.create_all(db.engine)
    return app, db


@pytest.fixture
def make_host(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pristine_host: None
) -> Iterator[HostFactory]:
    """``make_host(run_mode=, node_mode=, **env)``: a wired host app (``ext_logstore.init_app`` ran)."""
    made: list[tuple[Flask, SQLAlchemy]] = []

    def make(
        *,
        run_mode: str = "rdbms",
        node_mode: str = "rdbms",
        database: str | None = None,
        before_init: Callable[[Flask], None] | None = None,
        **env: str,
    ) -> S4Storage:
        monkeypatch.setattr(dify_config, "WORKFLOW_RUN_STORAGE_BACKEND", run_mode)
        monkeypatch.setattr(dify_config, "WORKFLOW_NODE_EXECUTION_STORAGE_BACKEND", node_mode)
        values = {
            "LOGSTORE_SPOOL_DIR": str(tmp_path / f"spool-{len(made)}"),
            "LOGSTORE_DUAL_READ_ENABLED": "false",
            "LOGSTORE_DUAL_WRITE_ENABLED": "false",
            "LOGSTORE_STARTUP_STRICT": "true",
            **backend.env(),
            **env,
        }
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        app, db = new_app(tmp_path, database)
        made.append((app, db))
        if before_init is not None:
            before_init(app)
        ext_logstore.init_app(app)
        with app.app_context():
            sessions = sessionmaker(bind=db.engine, expire_on_commit=False)
        return S4Storage(app, sessions, backend.name, backend.server, app.config["SQLALCHEMY_DATABASE_URI"])

    yield make
    for app, db in made:
        DifyLogStore.close(app, timeout=10)
        with app.app_context():
            db.engine.dispose()


@pytest.fixture(
    params=[("rdbms", "false"), ("logstore", "true")], ids=["mode=rdbms-dual-read-off", "mode=logstore-dual-read-on"]
)
def storage(request: pytest.FixtureRequest, make_host: HostFactory) -> Iterator[S4Storage]:
    """A wired host inside its app context, in either S4 mode (the package takes over both).

    Dify's harness turns dual read off; the package's default is on, and on the newest line every run
    also has a SQL control row, so the second variant checks the contract holds with both stores read.
    """
    mode, dual_read = request.param
    host = make_host(run_mode=mode, node_mode=mode, LOGSTORE_DUAL_READ_ENABLED=dual_read)
    with host.app.app_context():
        yield host
