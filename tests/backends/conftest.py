"""Fixtures for the SLS backend tests: one local SLS server, a fresh project per test."""

from __future__ import annotations

import typing as t
import uuid
from collections.abc import Iterator

import pytest

from flask_difylogstore.records import LogRecord
from tests.backends.records import RecordFactory

if t.TYPE_CHECKING:
    from flask_difylogstore.backends.aliyun_sls import AliyunSLSBackend
    from flask_difylogstore.settings import AliyunSLSSettings
    from flask_difylogstore.testing.sls import LocalSLSServer


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


class RunFactory(RecordFactory):
    """``make_run(...)``: run snapshots, the same as ``RecordFactory().run(...)``."""

    def __call__(self, **data: t.Any) -> LogRecord:
        return self.run(**data)


@pytest.fixture
def make_run() -> RunFactory:
    return RunFactory()
