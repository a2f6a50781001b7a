"""A record with a 20 MB ``error`` or a 2-million-key ``inputs`` is stored (bounded), not dead-lettered.

Follows Dify's truncation semantics (api/services/variable_truncator.py: strings cut with "...",
objects keep keys while the budget lasts) and the SLS PutLogs request limit (10 MB), which a
single unbounded record exceeded before.
"""

from __future__ import annotations

import typing as t

import orjson
from conftest import Harness, MakePipeline
from pipeline_fakes import make_record

from flask_difylogstore.backends.base import Scope
from flask_difylogstore.payloads import TruncationLimits
from flask_difylogstore.pipeline.lifecycle import wait_until
from flask_difylogstore.records import RecordKind

LIMIT = TruncationLimits().max_size


def test_huge_error_and_many_keys_are_bounded_and_stored(harness: Harness, make_pipeline: MakePipeline) -> None:
    pipeline = make_pipeline(harness.backend)
    huge_error = make_record(1, status="failed")
    huge_error.data["error"] = "Traceback " * 2_000_000  # 20 MB
    many_keys = make_record(2, status="succeeded")
    many_keys.data["inputs"] = orjson.dumps({f"k{i:07d}": i for i in range(2_000_000)}).decode()
    pipeline.submit([huge_error, many_keys])
    assert pipeline.flush(120)
    stats = pipeline.stats()
    assert stats["dead_lettered"] == 0 and stats["written"] == 2

    def read() -> dict[str, t.Any]:
        return harness.backend.get_latest(RecordKind.NODE_EXECUTION, ["node-1", "node-2"], Scope("tenant-1"))

    # Elasticsearch makes a write searchable at its next refresh
    assert wait_until(lambda: len(read()) == 2, 30)
    stored = read()
    error = stored["node-1"].data["error"]
    assert error.startswith("Traceback ") and error.endswith("...") and len(error.encode()) <= LIMIT
    inputs = stored["node-2"].data["inputs"]
    parsed = inputs if isinstance(inputs, dict) else orjson.loads(inputs)
    assert 0 < len(parsed) < 2_000_000 and parsed["k0000000"] == 0
