"""JSON encoding that never fails, Dify's truncation semantics, and payload chunking."""

from __future__ import annotations

import dataclasses
import enum
import math
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_difylogstore import payloads, record_bounds
from flask_difylogstore.records import RecordKind


class Color(enum.Enum):
    RED = "red"


class Model(pydantic.BaseModel):
    a: int
    when: datetime


@dataclasses.dataclass
class Point:
    x: int
    y: float


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


def test_default_hook_covers_common_types() -> None:
    value = {
        "dt": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "dec": Decimal("1.50"),
        "int_dec": Decimal("3"),
        "nan_dec": Decimal("NaN"),
        "uuid": uuid.UUID(int=1),
        "enum": Color.RED,
        "bytes": b"caf\xc3\xa9",
        "bad_bytes": b"\xff",
        "set": {2, 1},
        "mixed_set": frozenset({1}),
        "model": Model(a=1, when=datetime(2026, 1, 1)),
        "dc": Point(1, 2.5),
        "td": timedelta(seconds=90),
        "nan": math.nan,
        "inf": math.inf,
        "obj": object(),
        "unprintable": Unprintable(),
        1: "int key",
    }
    decoded = orjson.loads(payloads.dumps(value))
    assert decoded["dt"] == "2026-01-02T03:04:05+00:00"
    assert decoded["dec"] == 1.5 and decoded["int_dec"] == 3 and decoded["nan_dec"] is None
    assert decoded["uuid"] == str(uuid.UUID(int=1)) and decoded["enum"] == "red"
    assert decoded["bytes"] == "café" and decoded["bad_bytes"] == "\ufffd"
    assert decoded["set"] == [1, 2] and decoded["mixed_set"] == [1]
    assert decoded["model"] == {"a": 1, "when": "2026-01-01T00:00:00"}
    assert decoded["dc"] == {"x": 1, "y": 2.5} and decoded["td"] == 90.0
    assert decoded["nan"] is None and decoded["inf"] is None
    assert decoded["obj"].startswith("<object") and decoded["unprintable"] == "<unserialisable Unprintable>"
    assert decoded["1"] == "int key"


def test_values_orjson_rejects_are_sanitised() -> None:
    deep: list[object] = []
    cursor = deep
    for _ in range(1000):
        inner: list[object] = []
        cursor.append(inner)
        cursor = inner
    decoded = orjson.loads(payloads.dumps({"deep": deep, "surrogate": "a\udc80b", "huge": 10**30, "key\ud800": 1}))
    assert decoded["huge"] == str(10**30)
    assert decoded["surrogate"] == "a\ufffdb" or decoded["surrogate"].startswith("a")
    assert "key\ufffd" in decoded or "key?" in decoded
    depth, node = 0, decoded["deep"]
    while isinstance(node, list) and node:
        node, depth = node[0], depth + 1
    assert payloads.MAX_DEPTH - 2 <= depth <= payloads.MAX_DEPTH


@settings(max_examples=60, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text() | st.binary(),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
        max_leaves=20,
    )
)
def test_dumps_never_raises(value: object) -> None:
    orjson.loads(payloads.dumps(value, sort_keys=True))


def test_small_mapping_is_not_truncated() -> None:
    truncator = payloads.Truncator(payloads.TruncationLimits(max_size=1024, string_length=10, array_length=2))
    data = {"a": "short", "b": [1, 2, 3]}
    assert truncator.truncate_mapping(data) == (data, False)


def test_large_mapping_keeps_structure_within_budget() -> None:
    limits = payloads.TruncationLimits(max_size=2000, string_length=100, array_length=10)
    truncator = payloads.Truncator(limits)
    data = {
        "text": "x" * 5000,
        "items": list(range(1000)),
        "nested": {"inner": "y" * 3000, "n": 1},
        "flag": True,
    }
    truncated, was = truncator.truncate_mapping(data)
    assert was
    assert set(truncated) == set(data)
    assert truncated["text"].endswith("...") and len(truncated["text"]) <= 103
    assert truncated["items"] == list(range(10))
    assert truncated["nested"]["n"] == 1 and truncated["flag"] is True
    assert payloads.json_size(truncated) <= limits.max_size


def test_encode_payload_offloads_the_full_value() -> None:
    truncator = payloads.Truncator(payloads.TruncationLimits(max_size=1024, string_length=50, array_length=5))
    encoded = payloads.encode_payload({"b": "z" * 4000, "a": 1}, truncator)
    assert encoded.truncated and encoded.truncated_value is not None
    assert orjson.loads(encoded.full_text or "") == {"a": 1, "b": "z" * 4000}
    assert encoded.text is not None and encoded.text.startswith('{"a":1')  # sorted keys, like Dify
    assert payloads.encode_payload(None, truncator).text is None
    assert not payloads.encode_payload({"a": 1}, truncator).truncated
    assert payloads.encode_payload({"a": 1}, None).text == '{"a":1}'


@pytest.mark.parametrize("text", ["", "abc", "é" * 300_000, "🙂" * 100_000 + "tail", "x" * (256 * 1024 * 3 + 7)])
def test_chunks_respect_the_byte_limit_and_reassemble(text: str) -> None:
    records = payloads.payload_records(
        text,
        node_execution_id="n1",
        payload_type="outputs",
        tenant_id="t",
        app_id="a",
        created_at=datetime(2026, 1, 1),
        log_version=5,
    )
    assert all(len(r.data["content"].encode()) <= payloads.CHUNK_BYTES for r in records)
    assert [r.id for r in records] == [f"n1:outputs:{i}" for i in range(len(records))]
    assert all(r.kind is RecordKind.PAYLOAD and r.data["chunk_count"] == len(records) for r in records)
    assert payloads.assemble_payloads(reversed(records)) == {("n1", "outputs"): text}


def test_reassembly_ignores_incomplete_or_mixed_writes() -> None:
    old = payloads.payload_records(
        "a" * 600_000,
        node_execution_id="n",
        payload_type="inputs",
        tenant_id="t",
        app_id="a",
        created_at=datetime(2026, 1, 1),
        log_version=1,
    )
    new = payloads.payload_records(
        "b" * 10,
        node_execution_id="n",
        payload_type="inputs",
        tenant_id="t",
        app_id="a",
        created_at=datetime(2026, 1, 1),
        log_version=2,
    )
    assert payloads.assemble_payloads(new + old[1:]) == {("n", "inputs"): "b" * 10}
    assert payloads.assemble_payloads(old[:1] + old[2:]) == {}
    assert payloads.assemble_payloads([old[0], new[0].tombstone(3)]) == {}


# Every stored field is bounded (Dify's VariableTruncator, api/services/variable_truncator.py:
# ``_truncate_object`` drops the keys past the budget, ``_truncate_string`` cuts with "...").


def test_a_mapping_of_many_keys_is_bounded_by_dropping_keys() -> None:
    limits = payloads.TruncationLimits(max_size=10_000, string_length=100, array_length=10)
    many = {f"k{i:07d}": i for i in range(200_000)}
    truncated, was = payloads.Truncator(limits).truncate_mapping(many)
    assert was and 0 < len(truncated) < len(many)
    assert payloads.json_size(truncated) <= limits.max_size
    assert all(truncated[k] == many[k] for k in truncated)  # kept keys keep their values


def test_bound_record_cuts_oversized_text_and_json_fields() -> None:
    from datetime import datetime

    from flask_difylogstore.records import LogRecord, RecordKind

    limits = payloads.TruncationLimits(max_size=50_000, string_length=1_000, array_length=10)
    inputs = payloads.dumps({f"k{i}": "v" * 10 for i in range(20_000)})
    data = {
        "id": "n1",
        "tenant_id": "t1",
        "created_at": datetime(2026, 1, 1),
        "error": "E" * 3_000_000,
        "inputs": inputs,
        "graph": "not json " * 100_000,
        "title": "short",
    }
    record = LogRecord(RecordKind.NODE_EXECUTION, data, 7)
    bounded = record_bounds.bound_record(record, limits, record_max_bytes=4_000_000)
    assert bounded is not record and bounded.log_version == 7 and bounded.data["title"] == "short"
    assert len(bounded.data["error"].encode()) <= limits.max_size and bounded.data["error"].endswith("...")
    parsed = orjson.loads(bounded.data["inputs"])  # still JSON, fewer keys, Dify's semantics
    assert isinstance(parsed, dict) and 0 < len(parsed) < 20_000
    assert len(bounded.data["inputs"].encode()) <= limits.max_size
    assert len(bounded.data["graph"].encode()) <= limits.max_size
    assert record.data["error"] == "E" * 3_000_000  # the caller's record is not changed
    small = LogRecord(RecordKind.NODE_EXECUTION, {"id": "n2", "error": "boom"}, 1)
    assert record_bounds.bound_record(small, limits, 4_000_000) is small


def test_bound_record_keeps_the_whole_record_within_the_request_limit() -> None:
    from flask_difylogstore.records import LogRecord, RecordKind

    limits = payloads.TruncationLimits(max_size=1_000_000, string_length=100_000, array_length=10)
    data = {"id": "r1", **{f"f{i}": "x" * 900_000 for i in range(8)}}
    bounded = record_bounds.bound_record(LogRecord(RecordKind.RUN, data, 1), limits, record_max_bytes=2_000_000)
    assert sum(len(v) for k, v in bounded.data.items() if k != "id") <= 2_000_000


def test_payload_chunks_are_never_cut() -> None:
    from flask_difylogstore.records import LogRecord, RecordKind

    limits = payloads.TruncationLimits(max_size=2048, string_length=100, array_length=10)
    chunk = LogRecord(RecordKind.PAYLOAD, {"id": "n1:outputs:0", "content": "c" * payloads.CHUNK_BYTES}, 1)
    assert record_bounds.bound_record(chunk, limits, 4_000_000) is chunk
