"""Fixtures for the SLS backend tests: one local SLS server, a fresh project per test."""

from __future__ import annotations

import typing as t
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from flask_difylogstore.records import LogRecord, RecordKind, VersionClock

if t.TYPE_CHECKING:
    from flask_difylogstore.backends.aliyun_sls import AliyunSLSBackend
    from flask_difylogstore.settings import AliyunSLSSettings
    from flask_difylogstore.testing.sls import LocalSLSServer

BASE_TIME = datetime(2026, 11, 1, 8, 0, 0)


@pytest.fixture(scope="session")
def sls_server() -> Iterator[LocalSLSServer]:
    """A local SLS server of these tests only (fault injection must not leak into other suites)."""
    from flask_difylogstore.testing.sls import LocalSLSServer

    with LocalSLSServer() as server:
        yield server


@pytest.fixture
def sls_settings(sls_server: LocalSLSServer) -> AliyunSLSSettings:
    from flask_difylogstore.settings import AliyunSLSSettings

    server = sls_server
    server.faults.clear()
    return AliyunSLSSettings(
        access_key_id=server.access_key_id,
        access_key_secret=server.access_key_secret,  # type: ignore[arg-type]
        endpoint=server.endpoint,
        region="cn-hangzhou",
        project_name=f"p-{uuid.uuid4().hex[:12]}",
        max_text_len=2048,
        check_connectivity_timeout=2.0,
    )


@pytest.fixture
def sls_backend(sls_settings: AliyunSLSSettings) -> Iterator[AliyunSLSBackend]:
    """A provisioned backend on a fresh project."""
    from flask_difylogstore.backends.aliyun_sls import AliyunSLSBackend

    backend = AliyunSLSBackend(sls_settings)
    backend.provision()
    yield backend
    backend.close()


class RunFactory:
    """Builds run snapshots with increasing versions."""

    def __init__(self) -> None:
        self.clock = VersionClock(tag=7)

    def __call__(
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
            "total_tokens": 0,
        }
        values.update(data)
        return LogRecord(RecordKind.RUN, values, self.clock.version_for(RecordKind.RUN, status))


@pytest.fixture
def make_run() -> RunFactory:
    return RunFactory()
