"""Fixtures of the Elasticsearch backend tests: one local server per module, a fresh index prefix per test.

Test modules bind the fixtures they use at module level (``es_backend = es_fixtures.es_backend``).
"""

from __future__ import annotations

import typing as t
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from flask_difylogstore.backends.elasticsearch import ElasticsearchBackend
from flask_difylogstore.records import LogRecord, RecordKind, VersionClock
from flask_difylogstore.settings import LogStoreSettings
from flask_difylogstore.testing.es import LocalElasticsearchServer

BASE_TIME = datetime(2026, 11, 1, 8, 0, 0)


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


class RecordFactory:
    """Builds run and node snapshots with increasing versions from one clock."""

    def __init__(self) -> None:
        self.clock = VersionClock(tag=9)

    def run(
        self,
        *,
        id: str | None = None,
        tenant: str = "t1",
        app: str = "a1",
        status: str = "running",
        offset_s: float = 0,
        **data: t.Any,
    ) -> LogRecord:
        values: dict[str, t.Any] = {
            "id": id or str(uuid.uuid4()),
            "tenant_id": tenant,
            "app_id": app,
            "workflow_id": "wf-1",
            "triggered_from": "app-run",
            "type": "workflow",
            "version": "draft",
            "status": status,
            "created_by_role": "account",
            "created_by": "user-1",
            "created_at": BASE_TIME + timedelta(seconds=offset_s),
            "inputs": '{"q": "hello"}',
            "outputs": "{}",
            "graph": '{"nodes": []}',
            "total_tokens": 0,
        }
        values.update(data)
        return LogRecord(RecordKind.RUN, values, self.clock.version_for(RecordKind.RUN, status))

    def node(
        self,
        *,
        run_id: str,
        index: int,
        id: str | None = None,
        tenant: str = "t1",
        app: str = "a1",
        status: str = "succeeded",
        offset_s: float = 0,
        **data: t.Any,
    ) -> LogRecord:
        values: dict[str, t.Any] = {
            "id": id or str(uuid.uuid4()),
            "tenant_id": tenant,
            "app_id": app,
            "workflow_id": "wf-1",
            "triggered_from": "workflow-run",
            "workflow_run_id": run_id,
            "index": index,
            "node_id": f"node-{index}",
            "node_type": "llm",
            "title": f"Step {index}",
            "inputs": "{}",
            "outputs": "{}",
            "process_data": "{}",
            "execution_metadata": "{}",
            "status": status,
            "created_by_role": "account",
            "created_by": "user-1",
            "created_at": BASE_TIME + timedelta(seconds=offset_s),
        }
        values.update(data)
        kind = RecordKind.NODE_EXECUTION
        return LogRecord(kind, values, self.clock.version_for(kind, status))


@pytest.fixture
def records() -> RecordFactory:
    return RecordFactory()
