"""Fixtures of the Elasticsearch backend tests: one local server per module, a fresh index prefix per test.

Test modules bind the fixtures they use at module level (``es_backend = es_fixtures.es_backend``).
"""

from __future__ import annotations

import typing as t
import uuid
from collections.abc import Iterator

import pytest

from flask_difylogstore.backends.elasticsearch import ElasticsearchBackend
from flask_difylogstore.records import LogRecord
from flask_difylogstore.settings import LogStoreSettings
from flask_difylogstore.testing.es import LocalElasticsearchServer
from tests.backends.records import RecordFactory


@pytest.fixture(scope="module")
def es_server() -> Iterator[LocalElasticsearchServer]:
    """A local server for one test module (its fault injection never leaks into other modules)."""
    with LocalElasticsearchServer(refresh_interval=1.0) as server:
        yield server


@pytest.fixture
def es_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def es_settings(
    es_server: LocalElasticsearchServer, es_prefix: str, make_settings: t.Callable[..., LogStoreSettings]
) -> LogStoreSettings:
    es_server.faults.clear()
    return make_settings(
        backend="elasticsearch",
        elasticsearch={
            "hosts": [es_server.url],
            "index_prefix": es_prefix,
            "number_of_replicas": 0,
            "max_retries": 1,
            "request_timeout": 30,
        },
    )


@pytest.fixture
def es_backend(es_settings: LogStoreSettings) -> Iterator[ElasticsearchBackend]:
    """A provisioned backend under a fresh index prefix."""
    backend = ElasticsearchBackend.from_settings(es_settings)
    backend.provision()
    yield backend
    backend.close()


def store(backend: ElasticsearchBackend, records: t.Sequence[LogRecord]) -> None:
    """Write and make searchable at once (the hot path never refreshes; tests do, explicitly)."""
    result = backend.write(records)
    assert result.ok, result.failed[:3]
    backend.refresh()


@pytest.fixture
def records() -> RecordFactory:
    return RecordFactory()
