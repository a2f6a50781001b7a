"""Fixtures of the pipeline tests.

``harness`` yields a backend together with its fault switches. Today it is the in-memory
:class:`FakeBackend`; a harness for the local SLS / Elasticsearch servers only has to provide the
same methods (``go_down``, ``come_back``, ``fail_next``, ``slow``, ``delivered``) to run every fault
test against them.
"""

from __future__ import annotations

import sys
import typing as t
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from pipeline_fakes import FakeBackend

from flask_difylogstore.pipeline import SpoolingPipeline
from flask_difylogstore.settings import PipelineSettings

FAST = {"flush_interval_ms": 20, "fsync_interval_ms": 20, "max_retry_delay_s": 0.2, "shutdown_timeout_s": 5.0}


@pytest.fixture(params=["fake"])
def harness(request: pytest.FixtureRequest) -> Iterator[FakeBackend]:
    """A backend with fault switches (parametrise here to add the local servers)."""
    backend = FakeBackend()
    yield backend
    backend.close()


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
