"""Fixtures of the pipeline tests.

``harness`` yields a backend together with its fault switches, once per backend: the in-memory
:class:`FakeBackend`, the ``aliyun_sls`` backend on a LocalSLSServer and the ``elasticsearch``
backend on a LocalElasticsearchServer (faults injected by the servers, see ``pipeline_servers``).
Every fault test therefore runs against the real SDKs and wire protocols too.
"""

from __future__ import annotations

import sys
import typing as t
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from pipeline_fakes import FakeBackend

from flask_difylogstore.backends.base import LogBackend
from flask_difylogstore.pipeline import SpoolingPipeline
from flask_difylogstore.records import LogRecord
from flask_difylogstore.settings import PipelineSettings

if t.TYPE_CHECKING:
    from flask_difylogstore.testing.es import LocalElasticsearchServer
    from flask_difylogstore.testing.sls import LocalSLSServer

FAST = {"flush_interval_ms": 20, "fsync_interval_ms": 20, "max_retry_delay_s": 0.2, "shutdown_timeout_s": 5.0}
HARNESSES = ["fake", "aliyun_sls", "elasticsearch"]


class Harness(t.Protocol):
    """A backend (``backend``, what the pipeline writes to) with fault switches and a way to read back."""

    name: str
    backend: LogBackend
    calls: int
    batches: list[int]

    def go_down(self) -> None: ...
    def come_back(self) -> None: ...
    def fail_next(self, n: int, status: int = 503) -> None: ...
    def slow(self, seconds: float) -> None: ...
    def fail_some(self) -> None: ...
    def bad_record(self, i: int) -> LogRecord: ...
    def error_text(self, status: int) -> str: ...
    def delivered(self) -> set[tuple[str, int]]: ...
    def raw_count(self) -> int: ...
    def close(self) -> None: ...


@pytest.fixture(scope="session")
def pipeline_sls_server() -> Iterator[LocalSLSServer]:
    """A LocalSLSServer of the pipeline tests only (their faults must not reach other suites)."""
    from flask_difylogstore.testing.sls import LocalSLSServer

    with LocalSLSServer() as server:
        yield server


@pytest.fixture(scope="session")
def pipeline_es_server() -> Iterator[LocalElasticsearchServer]:
    from flask_difylogstore.testing.es import LocalElasticsearchServer

    with LocalElasticsearchServer() as server:
        yield server


@pytest.fixture(params=HARNESSES)
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """A backend with fault switches: the fake, or a real backend on its local server."""
    if request.param == "fake":
        fake = FakeBackend()
        yield t.cast(Harness, fake)
        fake.close()
        return
    from pipeline_servers import make_harness

    fixture = "pipeline_sls_server" if request.param == "aliyun_sls" else "pipeline_es_server"
    server = request.getfixturevalue(fixture)
    built = t.cast(Harness, make_harness(request.param, {request.param: server}))
    try:
        yield built
    finally:
        built.close()


MakePipeline = Callable[..., SpoolingPipeline]


@pytest.fixture
def make_pipeline(tmp_path: Path) -> Iterator[MakePipeline]:
    """Build started pipelines spooling under ``tmp_path``; every one is closed at teardown."""
    built: list[SpoolingPipeline] = []

    def make(backend: t.Any, *, directory: Path | None = None, **overrides: t.Any) -> SpoolingPipeline:
        extra = {k: overrides.pop(k) for k in ("gate", "segment_bytes", "segment_age_s") if k in overrides}
        settings = PipelineSettings(**{**FAST, **overrides})
        pipeline = SpoolingPipeline(backend, settings, directory or tmp_path / "spool", **extra)
        pipeline.start()
        built.append(pipeline)
        return pipeline

    yield make
    for pipeline in built:
        pipeline.close(2.0)
