"""Migration throughput, PostgreSQL -> log store, against the prior one-request-per-row design.

Seeds node executions in a private PostgreSQL schema, then migrates them with
:class:`~flask_difylogstore.migration.Migrator` (keyset batches, bulk writes) with 1 and with 4
workers, into each available backend: the in-process memory backend, and the local SLS and
Elasticsearch servers (each run in a child process, as a real store is another machine, so client
and server do not share one interpreter lock). In the same run it measures the prior proposal's
design on the same rows: ``OFFSET`` pages without ``ORDER BY`` and one write request per row.
The prior design is timed on its first ``--prior-rows`` rows only; its rate is a ceiling, because
``OFFSET`` makes every later page slower (its scan cost is measured and added to the 28M figure).
The Elasticsearch proposal also writes each row with ``refresh=wait_for``, so each request waits for
the index's next refresh (1 s by default here; its own templates set 5 s); for Elasticsearch that
variant is timed as well, on ``--prior-wait-rows`` rows.

    python benchmarks/bench_migration.py [--rows 50000] [--prior-rows 3000] [--prior-wait-rows 10]
        [--backends memory,aliyun_sls,elasticsearch]

Prints a table, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import typing as t
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flask_difylogstore.backends import create_backend
from flask_difylogstore.backends.base import LogBackend, Scope
from flask_difylogstore.dify.models import Base
from flask_difylogstore.migration import (
    CheckpointStore,
    MigrateOptions,
    Migrator,
    source,
)
from flask_difylogstore.migration.convert import row_records
from flask_difylogstore.records import RecordKind
from flask_difylogstore.settings import LogStoreSettings
from tests.migration.seed import seed

PG_URL = os.environ.get("DIFYLOGSTORE_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
TARGET_ROWS = 28_000_000
PRIOR_PAGE = 1000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(module: str, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{module} did not start")


class Target:
    """A backend to measure; ``fresh()`` gives an empty, provisioned one."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        if name == "aliyun_sls":
            self.port = _free_port()
            self.proc = _start("flask_difylogstore.testing.sls", self.port)
        elif name == "elasticsearch":
            self.port = _free_port()
            self.proc = _start("flask_difylogstore.testing.es", self.port)

    def fresh(self) -> LogBackend:
        suffix = uuid.uuid4().hex[:8]
        values: dict[str, t.Any] = {"backend": self.name}
        if self.name == "aliyun_sls":
            values["sls"] = {
                "access_key_id": "local-ak",
                "access_key_secret": "local-sk",
                "endpoint": f"127.0.0.1:{self.port}",
                "region": "cn-hangzhou",
                "project_name": f"bench-{suffix}",
            }
        elif self.name == "elasticsearch":
            values["elasticsearch"] = {"hosts": [f"http://127.0.0.1:{self.port}"], "index_prefix": f"bench-{suffix}"}
        backend = create_backend(LogStoreSettings(_env_file=None, **values))
        backend.provision()
        return backend

    def close(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


def migrate_rate(engine: sa.Engine, backend: LogBackend, workers: int, batch_size: int) -> tuple[float, int]:
    """Rows per second of the package's migration (a fresh checkpoint each time)."""
    checkpoints = CheckpointStore(engine)
    for checkpoint in checkpoints.all("migrate:"):
        checkpoints.delete(checkpoint.job)
    migrator = Migrator(engine, backend, store=None, checkpoints=checkpoints)
    began = time.perf_counter()
    report = migrator.run(MigrateOptions(kind="node-executions", workers=workers, batch_size=batch_size))
    elapsed = time.perf_counter() - began
    [kind] = report.kinds
    assert not kind.failed, kind.failed
    return kind.migrated / elapsed, kind.migrated


def prior_rate(engine: sa.Engine, backend: LogBackend, rows: int, *, refresh: str | None = None) -> float:
    """Rows per second of OFFSET pages without ORDER BY and one write request per row.

    ``refresh`` is passed with each write (Elasticsearch only: the proposal's ``wait_for``).
    """
    write: t.Callable[[t.Any], t.Any] = backend.write
    if refresh is not None:
        writer = t.cast(t.Any, backend).writer
        write = lambda records: writer.write(records, refresh=refresh)  # noqa: E731
    spec = source.kind_specs()["node-executions"]
    columns = source.select_columns(spec.table, engine.dialect)
    done, offset = 0, 0
    began = time.perf_counter()
    while done < rows:
        with engine.connect() as conn:
            stmt = sa.select(*columns).offset(offset).limit(min(PRIOR_PAGE, rows - done))
            page = source.row_dicts(conn.execute(stmt))
        if not page:
            break
        for data in page:
            for rec in row_records(spec, source.SourceRow(data)):
                write([rec])
        done += len(page)
        offset += len(page)
    return done / (time.perf_counter() - began)


def offset_skip_rate(engine: sa.Engine, total: int) -> float:
    """Rows per second PostgreSQL skips for an OFFSET (what every later prior-design page pays)."""
    spec = source.kind_specs()["node-executions"]
    columns = source.select_columns(spec.table, engine.dialect)
    with engine.connect() as conn:
        began = time.perf_counter()
        conn.execute(sa.select(*columns).offset(total - 1).limit(1)).all()
        return (total - 1) / (time.perf_counter() - began)


def hours(rows: int, rate: float) -> float:
    return rows / rate / 3600 if rate else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50_000, help="node executions to seed and migrate")
    parser.add_argument("--prior-rows", type=int, default=3000, help="rows the prior design is timed on")
    parser.add_argument(
        "--prior-wait-rows", type=int, default=10, help="rows the prior design with refresh=wait_for is timed on"
    )
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--backends", default="memory,aliyun_sls,elasticsearch")
    args = parser.parse_args()

    schema = f"bench_migration_{os.getpid()}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    engine = sa.create_engine(url)
    results: list[dict[str, t.Any]] = []
    try:
        Base.metadata.create_all(engine)
        seed(engine, runs=args.rows // 10, nodes_per_run=10)
        spec = source.kind_specs()["node-executions"]
        source.create_keyset_index(engine, spec.table)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE"))
        skip_rate = offset_skip_rate(engine, args.rows)
        for name in args.backends.split(","):
            try:
                target = Target(name)
            except Exception as exc:  # a backend or local server not available here
                print(f"skipping {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
                continue
            try:
                one, migrated = migrate_rate(engine, target.fresh(), 1, args.batch_size)
                backend = target.fresh()
                four, _ = migrate_rate(engine, backend, 4, args.batch_size)
                stored = backend.count(RecordKind.NODE_EXECUTION, Scope.unscoped())
                prior = prior_rate(engine, target.fresh(), args.prior_rows)
                waiting = (
                    prior_rate(engine, target.fresh(), args.prior_wait_rows, refresh="wait_for")
                    if name == "elasticsearch"
                    else None
                )
            finally:
                target.close()
            # prior design at 28M rows: per-row requests plus N^2/(2*page) rows skipped by OFFSET
            offset_hours = TARGET_ROWS**2 / (2 * PRIOR_PAGE) / skip_rate / 3600
            prior_hours = hours(TARGET_ROWS, prior) + offset_hours
            results.append(
                {
                    "backend": name,
                    "rows": migrated,
                    "stored": stored,
                    "rows_per_s_1_worker": round(one),
                    "rows_per_s_4_workers": round(four),
                    "prior_rows_per_s": round(prior),
                    "speedup_4_workers_vs_prior": round(four / prior, 1),
                    "hours_28m_1_worker": round(hours(TARGET_ROWS, one), 2),
                    "hours_28m_4_workers": round(hours(TARGET_ROWS, four), 2),
                    "hours_28m_prior": round(prior_hours, 1),
                    "prior_wait_for_rows_per_s": None if waiting is None else round(waiting, 2),
                    "days_28m_prior_wait_for": (
                        None if waiting is None else round((hours(TARGET_ROWS, waiting) + offset_hours) / 24)
                    ),
                }
            )
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    header = ("backend", "rows/s 1w", "rows/s 4w", "prior rows/s", "4w vs prior", "28M 1w h", "28M 4w h", "28M prior h")
    print(f"{header[0]:<14}" + "".join(f"{h:>14}" for h in header[1:]))
    for r in results:
        values = (
            r["rows_per_s_1_worker"],
            r["rows_per_s_4_workers"],
            r["prior_rows_per_s"],
            f"{r['speedup_4_workers_vs_prior']}x",
            r["hours_28m_1_worker"],
            r["hours_28m_4_workers"],
            r["hours_28m_prior"],
        )
        print(f"{r['backend']:<14}" + "".join(f"{v:>14}" for v in values))
    for r in results:
        if r["prior_wait_for_rows_per_s"] is not None:
            print(
                f"{r['backend']}: the prior design with its per-row refresh=wait_for: "
                f"{r['prior_wait_for_rows_per_s']} rows/s, {r['days_28m_prior_wait_for']} days for 28M rows "
                f"({r['rows_per_s_4_workers'] / r['prior_wait_for_rows_per_s']:,.0f}x slower than 4 workers)"
            )
    print(
        json.dumps(
            {
                "benchmark": "migration",
                "rows": args.rows,
                "offset_skip_rows_per_s": round(skip_rate),
                "cpus": os.cpu_count(),
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
