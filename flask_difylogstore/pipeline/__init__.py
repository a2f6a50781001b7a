"""The non-blocking write pipeline: ``save()`` spools locally, a background writer delivers.

:func:`build_pipeline` is what the extension calls; :class:`SpoolingPipeline` can also be built
directly (tests, tools). :func:`read_dead_letters` lists records a backend refused for good.
"""

from __future__ import annotations

import typing as t

from flask_difylogstore.payloads import TruncationLimits
from flask_difylogstore.pipeline.base import DirectSink, RecordSink, approximate_size
from flask_difylogstore.pipeline.spooling import SpoolingPipeline
from flask_difylogstore.pipeline.writer import read_dead_letters

if t.TYPE_CHECKING:
    from flask_difylogstore.extension import LogStoreState

__all__ = [
    "DirectSink",
    "RecordSink",
    "SpoolingPipeline",
    "approximate_size",
    "build_pipeline",
    "read_dead_letters",
]


def build_pipeline(state: LogStoreState, *, start: bool = True) -> SpoolingPipeline:
    """The spooling pipeline of an app's backend, spooling under ``<spool_dir>/<backend name>/``.

    The writer waits on the provisioning gate before its first write; segments left by stopped
    processes are replayed right away (with ``start=False``: from the first write on).
    """
    backend = state.require_backend()
    settings = state.settings
    pipeline = SpoolingPipeline(
        backend,
        settings.pipeline,
        settings.spool_dir / backend.name,
        gate=state.gate,
        count=state.count,
        limits=TruncationLimits.from_settings(settings),
    )
    if start:
        pipeline.start()
    return pipeline
