"""The non-blocking write pipeline: ``save()`` spools locally, a background writer delivers.

:func:`build_pipeline` is what the extension calls; :class:`SpoolingPipeline` can also be built
directly (tests, tools). :func:`read_dead_letters` lists records a backend refused for good.
"""

from __future__ import annotations

from collections.abc import Callable

from flask_difylogstore.backends.base import LogBackend
from flask_difylogstore.payloads import TruncationLimits
from flask_difylogstore.pipeline.base import DirectSink, RecordSink, approximate_size
from flask_difylogstore.pipeline.spooling import SpoolingPipeline
from flask_difylogstore.pipeline.writer import Gate, read_dead_letters
from flask_difylogstore.settings import LogStoreSettings

__all__ = [
    "DirectSink",
    "RecordSink",
    "SpoolingPipeline",
    "approximate_size",
    "build_pipeline",
    "read_dead_letters",
]


def build_pipeline(
    backend: LogBackend,
    settings: LogStoreSettings,
    *,
    gate: Gate | None = None,
    count: Callable[[str, int], None] | None = None,
    start: bool = True,
) -> SpoolingPipeline:
    """The spooling pipeline of an app's backend, spooling under ``<spool_dir>/<backend name>/``.

    The writer waits on ``gate`` (the provisioning gate) before its first write; segments left by
    stopped processes are replayed right away (with ``start=False``: from the first write on).
    ``count`` receives the pipeline's counters (the health report shows them).
    """
    pipeline = SpoolingPipeline(
        backend,
        settings.pipeline,
        settings.spool_dir / backend.name,
        gate=gate,
        count=count,
        limits=TruncationLimits.from_settings(settings),
    )
    if start:
        pipeline.start()
    return pipeline
