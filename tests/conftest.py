"""Shared fixtures: an environment free of the developer's settings, and PostgreSQL access."""

from __future__ import annotations

import os
import typing as t
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from flask_difylogstore.settings import LogStoreSettings, env_names

PG_URL = os.environ.get("DIFYLOGSTORE_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


def _all_env_names() -> set[str]:
    names: set[str] = set()
    for field in LogStoreSettings.model_fields.values():
        names.update(env_names(field))
        annotation = field.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            for sub in annotation.model_fields.values():
                names.update(env_names(sub))
    return names


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never see the developer's LOGSTORE_* / ALIYUN_SLS_* / ELASTICSEARCH_* variables or .env."""
    for name in _all_env_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def make_settings(tmp_path: Path) -> t.Callable[..., LogStoreSettings]:
    """Build settings from keyword arguments only, with the spool under the test's tmp dir."""

    def factory(**values: t.Any) -> LogStoreSettings:
        values.setdefault("spool_dir", tmp_path / "spool")
        return LogStoreSettings(_env_file=None, **values)

    return factory


def _pg_available(url: str) -> str | None:
    try:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # pragma: no cover - depends on the machine
        return f"{type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The PostgreSQL URL; skips when PostgreSQL is not running, but fails in CI (CI=true)."""
    problem = _pg_available(PG_URL)
    if problem:
        message = f"PostgreSQL is not reachable at {PG_URL}: {problem}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return PG_URL


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[sa.Engine]:
    """An engine on the test database with Dify's workflow-log tables freshly created."""
    from flask_difylogstore.dify.models import Base

    engine = sa.create_engine(pg_url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    yield engine
    Base.metadata.drop_all(engine)
    engine.dispose()
