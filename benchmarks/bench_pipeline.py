"""Latency of ``save()`` (pipeline ``submit`` of a 5 KB node record) and throughput to acknowledged writes.

For each backend and scenario: submit ``--records`` records (pre-built, so only ``submit`` is
timed) from ``threads`` threads, then flush; report submit p50 / p99 / max and records per second
from the first submit until the backend acknowledged the last record. Backends: ``fake`` (accepts
instantly: the pipeline's own cost), ``memory`` (the package's in-process backend) and, when their
backend modules and local servers are available, ``aliyun_sls`` / ``elasticsearch``.

    python benchmarks/bench_pipeline.py [--records 20000] [--backends fake,memory] [--fsync-ms 50]

Prints a table, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import threading
import time
import typing as t
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

import orjson

from flask_difylogstore.backends.base import LogBackend, PingResult, ProvisionReport, WriteResult
from flask_difylogstore.pipeline import SpoolingPipeline
from flask_difylogstore.records import LogRecord, RecordKind, default_clock
from flask_difylogstore.settings import LogStoreSettings, PipelineSettings

PAYLOAD = orjson.dumps({"text": "x" * 5000}).decode()


def node_record(i: int) -> LogRecord:
    data: dict[str, t.Any] = {
        "id": f"node-{i}",
        "tenant_id": "tenant-1",
        "app_id": "app-1",
        "workflow_id": "wf-1",
        "triggered_from": "workflow-run",
        "workflow_run_id": f"run-{i // 20}",
        "index": i % 20,
        "node_id": f"n{i % 20}",
        "node_type": "llm",
        "title": "LLM",
        "inputs": "{}",
        "outputs": PAYLOAD,
        "status": "succeeded",
        "elapsed_time": 0.5,
        "created_at": datetime(2026, 1, 1, 12),
        "created_by_role": "account",
        "created_by": "user-1",
    }
    return LogRecord(RecordKind.NODE_EXECUTION, data, default_clock.version_for(RecordKind.NODE_EXECUTION, "succeeded"))


class NullBackend:
    """Acknowledges every batch at once: measures the pipeline, not a store."""

    name = "fake"
    max_batch_records = 4096
    max_batch_bytes = 5 * 1024 * 1024

    def __init__(self) -> None:
        self.written = 0

    def write(self, records: Sequence[LogRecord]) -> WriteResult:
        self.written += len(records)
        return WriteResult(written=len(records))

    def provision(self, *, dry_run: bool = False) -> ProvisionReport:
        return ProvisionReport(backend=self.name, dry_run=dry_run)

    def ping(self) -> PingResult:
        return PingResult(self.name, True, 0.0)

    def close(self) -> None:
        return None


@contextlib.contextmanager
def fake_backend() -> Iterator[LogBackend]:
    yield t.cast(LogBackend, NullBackend())


@contextlib.contextmanager
def settings_backend(name: str, **overrides: t.Any) -> Iterator[LogBackend]:
    from flask_difylogstore.backends import create_backend

    backend = create_backend(LogStoreSettings(backend=name, **overrides))
    backend.provision()
    try:
        yield backend
    finally:
        backend.close()


@contextlib.contextmanager
def sls_backend() -> Iterator[LogBackend]:
    from flask_difylogstore.testing import LocalSLSServer  # type: ignore[attr-defined]

    with (
        LocalSLSServer() as server,
        settings_backend(
            "aliyun_sls",
            sls={
                "endpoint": server.endpoint,
                "access_key_id": server.access_key_id,
                "access_key_secret": server.access_key_secret,
                "project_name": "bench",
                "region": "local",
            },
        ) as backend,
    ):
        yield backend


@contextlib.contextmanager
def es_backend() -> Iterator[LogBackend]:
    from flask_difylogstore.testing import LocalElasticsearchServer  # type: ignore[attr-defined]

    with (
        LocalElasticsearchServer() as server,
        settings_backend("elasticsearch", elasticsearch={"hosts": [server.url], "index_prefix": "bench"}) as backend,
    ):
        yield backend


BACKENDS: dict[str, Callable[[], contextlib.AbstractContextManager[LogBackend]]] = {
    "fake": fake_backend,
    "memory": lambda: settings_backend("memory"),
    "aliyun_sls": sls_backend,
    "elasticsearch": es_backend,
}
SCENARIOS = [("1 thread", 1), ("8 threads", 8)]


def run(backend: LogBackend, records: list[LogRecord], threads: int, settings: PipelineSettings) -> dict[str, t.Any]:
    with tempfile.TemporaryDirectory() as directory:
        pipeline = SpoolingPipeline(backend, settings, Path(directory))
        pipeline.start()
        latencies: list[list[float]] = [[] for _ in range(threads)]
        chunks = [records[n::threads] for n in range(threads)]
        barrier = threading.Barrier(threads + 1)

        def save(n: int) -> None:
            own = latencies[n]
            barrier.wait()
            for record in chunks[n]:
                started = time.perf_counter()
                pipeline.submit([record])
                own.append(time.perf_counter() - started)

        workers = [threading.Thread(target=save, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        barrier.wait()
        started = time.perf_counter()
        for worker in workers:
            worker.join()
        submitted = time.perf_counter() - started
        flushed = pipeline.flush(300)
        elapsed = time.perf_counter() - started
        stats = pipeline.stats()
        pipeline.close(5)
    all_latencies = sorted(x for own in latencies for x in own)
    q = statistics.quantiles(all_latencies, n=100)
    return {
        "records": len(records),
        "threads": threads,
        "submit_p50_us": round(q[49] * 1e6, 1),
        "submit_p99_us": round(q[98] * 1e6, 1),
        "submit_max_ms": round(all_latencies[-1] * 1e3, 2),
        "submit_rate": round(len(records) / submitted),
        "acked_rate": round(len(records) / elapsed),
        "all_acked": flushed and stats["unacknowledged"] == 0,
        "batches": stats["batches"],
        "retried": stats["retried"],
        "dropped": stats["dropped"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--backends", default="fake,memory,aliyun_sls,elasticsearch")
    parser.add_argument("--fsync-ms", type=int, default=50, help="spool group-commit interval (0: every save)")
    args = parser.parse_args(argv)
    settings = PipelineSettings(fsync_interval_ms=args.fsync_ms)
    records = [node_record(i) for i in range(args.records)]
    results: list[dict[str, t.Any]] = []
    skipped: dict[str, str] = {}
    columns = ("p50 us", "p99 us", "max ms", "submit/s", "acked/s")
    header = f"{'backend':<14}{'scenario':<11}" + "".join(f"{c:>10}" for c in columns)
    print(header)
    print("-" * len(header))
    for name in [n.strip() for n in args.backends.split(",") if n.strip()]:
        try:
            manager = BACKENDS[name]()
            backend = manager.__enter__()
        except Exception as exc:  # backend module or local server not available here
            skipped[name] = f"{type(exc).__name__}: {exc}"
            print(f"{name:<14}skipped ({skipped[name][:60]})")
            continue
        try:
            for label, threads in SCENARIOS:
                row = run(backend, records, threads, settings) | {"backend": name, "scenario": label}
                results.append(row)
                print(
                    f"{name:<14}{label:<11}{row['submit_p50_us']:>10}{row['submit_p99_us']:>10}"
                    f"{row['submit_max_ms']:>10}{row['submit_rate']:>10}{row['acked_rate']:>10}"
                )
        finally:
            manager.__exit__(None, None, None)
    print(
        json.dumps(
            {
                "benchmark": "pipeline",
                "fsync_interval_ms": args.fsync_ms,
                "results": results,
                "skipped": skipped,
            }
        )
    )
    return 0 if all(r["all_acked"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
