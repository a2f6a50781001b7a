"""Benchmark the local Elasticsearch server through the real ``elasticsearch`` client.

Runs the server in a child process (so client and server do not share one interpreter lock) and
measures ``_bulk`` ingest of ~5 KB documents, 1000 per request, and a filtered ``terms``
aggregation over many small documents.

``bulk_docs_per_s`` is end to end (pre-encoded NDJSON sent with ``es.bulk``);
``helpers_bulk_docs_per_s`` includes the client's own JSON encoding in ``helpers.bulk``;
``bulk_server_side_docs_per_s`` counts only the server's handling time (the ``took`` of each reply).

    python benchmarks/bench_es_server.py [--docs 50000] [--agg-docs 1000000]
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import subprocess
import sys
import time
import typing as t

import orjson
from elasticsearch import Elasticsearch, helpers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "flask_difylogstore.testing.es", "--port", str(port)], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    return proc


def big_doc(i: int, rnd: random.Random) -> dict[str, t.Any]:
    return {
        "id": f"run-{i}",
        "tenant_id": f"tenant-{i % 50}",
        "app_id": f"app-{i % 200}",
        "status": rnd.choice(["succeeded", "failed", "running", "stopped"]),
        "elapsed_time": rnd.random() * 10,
        "total_tokens": rnd.randint(0, 100_000),
        "created_at": 1_700_000_000_000 + i * 1000,
        "inputs": {"query": "x" * 1500},
        "outputs": {"answer": "y" * 2500},
        "process_data": "z" * 900,
    }


def bench_bulk(es: Elasticsearch, docs: int, batch: int) -> dict[str, t.Any]:
    rnd = random.Random(1)
    es.indices.create(index="bench-bulk", settings={"index": {"refresh_interval": "1s"}})
    bodies = []
    doc_bytes = 0
    for start in range(0, docs, batch):
        lines = []
        for i in range(start, min(start + batch, docs)):
            source = orjson.dumps(big_doc(i, rnd))
            doc_bytes += len(source)
            lines.append(b'{"index":{"_index":"bench-bulk","_id":"%d"}}\n%s\n' % (i, source))
        bodies.append(b"".join(lines))
    started = time.perf_counter()
    took_ms = 0
    for body in bodies:
        res = es.bulk(operations=t.cast(t.Any, body))
        assert not res["errors"]
        took_ms += res["took"]
    raw_elapsed = time.perf_counter() - started
    es.indices.delete(index="bench-bulk")
    actions = ({"_index": "bench-helpers", "_id": str(i), "_source": big_doc(i, rnd)} for i in range(docs))
    started = time.perf_counter()
    helpers.bulk(es, actions, chunk_size=batch, max_chunk_bytes=100 * 1024 * 1024)
    helper_elapsed = time.perf_counter() - started
    es.indices.delete(index="bench-helpers")
    return {
        "docs": docs,
        "avg_doc_bytes": doc_bytes // docs,
        "docs_per_request": batch,
        "bulk_docs_per_s": round(docs / raw_elapsed),
        "bulk_server_side_docs_per_s": round(docs / max(took_ms / 1000, 1e-9)),
        "helpers_bulk_docs_per_s": round(docs / helper_elapsed),
    }


def bench_agg(es: Elasticsearch, docs: int) -> dict[str, t.Any]:
    rnd = random.Random(2)
    es.indices.create(
        index="bench-agg",
        settings={"index": {"refresh_interval": "-1"}},
        mappings={
            "properties": {
                "app_id": {"type": "keyword"},
                "status": {"type": "keyword"},
                "created_at": {"type": "date"},
                "elapsed": {"type": "double"},
            }
        },
    )
    statuses = ["succeeded", "failed", "running", "stopped"]
    started = time.perf_counter()
    batch = 10_000
    for start in range(0, docs, batch):
        lines = []
        for i in range(start, min(start + batch, docs)):
            lines.append(
                b'{"index":{}}\n'
                + orjson.dumps(
                    {
                        "app_id": f"app-{rnd.randrange(500)}",
                        "status": statuses[i % 4],
                        "created_at": 1_700_000_000_000 + i * 1000,
                        "elapsed": rnd.random(),
                    }
                )
                + b"\n"
            )
        es.options(request_timeout=600).bulk(index="bench-agg", operations=t.cast(t.Any, b"".join(lines)))
    es.indices.refresh(index="bench-agg")
    load_elapsed = time.perf_counter() - started
    body: dict[str, t.Any] = {
        "size": 0,
        "query": {
            "bool": {
                "filter": [
                    {"term": {"status": "succeeded"}},
                    {"range": {"created_at": {"gte": 1_700_000_000_000 + docs * 250}}},
                ]
            }
        },
        "aggs": {"apps": {"terms": {"field": "app_id", "size": 20}}},
    }
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        res = es.options(request_timeout=600).search(index="bench-agg", **body)
        timings.append(time.perf_counter() - started)
    expected = sum(
        1 for i in range(docs) if i % 4 == 0 and 1_700_000_000_000 + i * 1000 >= 1_700_000_000_000 + docs * 250
    )
    assert res["hits"]["total"]["value"] == min(expected, 10_000)
    return {
        "agg_docs": docs,
        "agg_load_docs_per_s": round(docs / load_elapsed),
        "filtered_terms_agg_s": round(min(timings), 3),
        "matched": expected,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=50_000, help="5 KB documents for the _bulk test")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--agg-docs", type=int, default=1_000_000, help="small documents for the aggregation")
    args = parser.parse_args()
    port = free_port()
    proc = start_server(port)
    try:
        es = Elasticsearch(f"http://127.0.0.1:{port}", request_timeout=120)
        result = {**bench_bulk(es, args.docs, args.batch), **bench_agg(es, args.agg_docs)}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"{'metric':<28} value")
    for key, value in result.items():
        print(f"{key:<28} {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
