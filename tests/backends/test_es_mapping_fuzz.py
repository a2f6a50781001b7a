"""Whatever a workflow puts in its payloads, the mapping never grows and no document is rejected."""

from __future__ import annotations

import random
import typing as t

import orjson

from flask_difylogstore.backends.base import RecordQuery, Scope
from flask_difylogstore.backends.elasticsearch import ElasticsearchBackend
from flask_difylogstore.records import LogRecord, RecordKind
from flask_difylogstore.schemas import schema
from tests.backends import es_fixtures
from tests.backends.records import RecordFactory

es_backend = es_fixtures.es_backend
es_prefix = es_fixtures.es_prefix
es_server = es_fixtures.es_server
es_settings = es_fixtures.es_settings
records = es_fixtures.records

DISTINCT_KEYS = 10_000


def _value(rng: random.Random, depth: int = 0) -> t.Any:
    """Values whose type changes from record to record under the same key (a dynamic-mapping killer)."""
    choice = rng.randrange(7 if depth < 2 else 5)
    if choice == 0:
        return rng.randrange(-(2**62), 2**62)
    if choice == 1:
        return rng.random() * 1e300
    if choice == 2:
        return rng.choice(["2026-11-01T08:00:00Z", "not a date", "", "x" * 40_000])
    if choice == 3:
        return rng.choice([True, False, None])
    if choice == 4:
        return [rng.randrange(9), "mixed", None]
    if choice == 5:
        return {f"k{rng.randrange(50)}": _value(rng, depth + 1) for _ in range(3)}
    return [{"deep": _value(rng, depth + 1)}]


def test_ten_thousand_user_keys_cause_no_mapping_failure(
    es_backend: ElasticsearchBackend, records: RecordFactory
) -> None:
    rng = random.Random(10_000)
    keys = [f"user key {n} .with.dots/and\u00fcnicode" for n in range(DISTINCT_KEYS)]
    nodes: list[LogRecord] = []
    for n in range(0, DISTINCT_KEYS, 25):
        chunk = keys[n : n + 25]
        payload = {key: _value(rng) for key in chunk}
        nodes.append(
            records.node(
                run_id="fuzz",
                index=n,
                inputs=orjson.dumps(payload).decode(),
                outputs=orjson.dumps({"echo": payload}).decode(),
                process_data=orjson.dumps([payload]).decode(),
                execution_metadata=orjson.dumps({"total_tokens": str(n), "stats": payload}).decode(),
            )
        )
    failures = []
    for start in range(0, len(nodes), 100):
        failures += es_backend.write(nodes[start : start + 100]).failed
    assert failures == []
    es_backend.refresh()

    index = es_backend.layout.index_for(RecordKind.NODE_EXECUTION, nodes[0].created_at)
    mapping = es_backend.client.indices.get_mapping(index=index).body[index]["mappings"]
    assert set(mapping["properties"]) == set(schema(RecordKind.NODE_EXECUTION).fields)

    found = es_backend.search(RecordQuery(RecordKind.NODE_EXECUTION, Scope("t1"), limit=None))
    assert len(found.records) == len(nodes)
    by_index = {r.data["index"]: r for r in found.records}
    assert all(by_index[n.data["index"]].data["inputs"] == n.data["inputs"] for n in nodes)  # byte for byte
    hit = es_backend.search(RecordQuery(RecordKind.NODE_EXECUTION, Scope("t1"), keyword="USER KEY 4321 .WITH"))
    assert [r.data["index"] for r in hit.records] == [4300]
