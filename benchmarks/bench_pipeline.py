"""The save path: ``save()`` latency against SQL, throughput to acknowledged writes, drain after an outage.

Everything goes through the real stack: a Flask app from ``testing.host_app.create_app`` on
PostgreSQL, ``LogStoreWorkflowNodeExecutionRepository.save()`` of a node execution with a 5 KB
output, the write pipeline with its default settings, the ``aliyun_sls`` / ``elasticsearch``
backend and its SDK over HTTP to the local server. The server runs in a child process (this
script with ``--serve``), so it does not share the interpreter lock with the saving process, and
takes fault commands on its standard input (``refuse`` / ``accept``: the server's ``faults`` API).

Per backend:

* **latency**: ``save()`` p50 / p99 / max at a steady ``--rate`` (a busy Dify: saves arrive, they
  are not a tight loop), beside ``RelationalWorkflowNodeExecutionRepository.save()`` (one merge +
  commit) on the same PostgreSQL; once with the backend up, once while it refuses connections,
  once while it drains; and a floor: the same saves with the records discarded (the repository's
  conversion alone, no pipeline), which shows what the machine charges before ``submit()``.
* **throughput**: ``--records`` saves in a tight loop from one thread, records per second from
  the first ``save()`` until the backend acknowledged the last one; beside it the same saves with
  one synchronous backend write each, and the ceiling of client + server (batches of the backend's
  maximum size written directly, no repository, no pipeline) with the server's CPU time per record;
  and the acknowledged run per core: CPU time per record of the saving process (all its threads,
  and the saving thread alone) and of the server, and records acknowledged per CPU-second of each.
* **drain**: saves at ``--rate`` while the server refuses connections for ``--outage-s`` seconds;
  when it accepts again (saves continuing), the records per second acknowledged until everything
  saved before is stored, against the ingest rate (and the recovery time before that: until the
  circuit breaker's next probe).

And the pipeline alone: ``submit()`` of prebuilt records from 1 and 8 threads in a tight loop
with a backend that acknowledges at once, beside a control doing the same CPU work per call
without the pipeline (what the interpreter's 5 ms GIL slices alone do to a p99).

    python benchmarks/bench_pipeline.py [--records 20000] [--rate 1000] [--latency-saves 3000]
        [--outage-s 5] [--submit-records 20000] [--backends aliyun_sls,elasticsearch] [--pg URL]

Prints a table, then one JSON line with every figure and whether each target was met
(p99 <= 1/20 of SQL's, >= 15k records/s into SLS, >= 8k/s into Elasticsearch, drain >= 5x ingest).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
TARGETS = {"p99_fraction_of_sql": 1 / 20, "aliyun_sls_rps": 15_000, "elasticsearch_rps": 8_000, "drain_ratio": 5.0}
NODES_PER_RUN = 10  # a repository per run, as Dify builds them


# -- the server child process ----------------------------------------------------------------------


def serve(kind: str) -> int:
    """Run a local server; print how to reach it; apply fault commands read from stdin."""
    if kind == "aliyun_sls":
        from flask_difylogstore.testing.sls import LocalSLSServer

        sls = LocalSLSServer().start()
        info = {"endpoint": sls.endpoint, "key": sls.access_key_id, "secret": sls.access_key_secret}
        refuse: Callable[[], None] = sls.faults.refuse_connections
        accept: Callable[[], None] = sls.faults.accept_connections
        stop: Callable[[], None] = sls.stop
    else:
        from flask_difylogstore.testing.es import LocalElasticsearchServer

        es = LocalElasticsearchServer().start()
        info = {"url": es.url}
        refuse = es.faults.refuse_connections
        accept = lambda: es.faults.refuse_connections(False)  # noqa: E731
        stop = es.stop
    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "refuse":
            refuse()
        elif command == "accept":
            accept()
        elif command == "quit":
            break
        print("ok", flush=True)
    stop()
    return 0


class ServerProcess:
    """A local server in a child process, with its fault switch and CPU clock."""

    def __init__(self, kind: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.info: dict[str, str] = json.loads(self.proc.stdout.readline())

    def command(self, text: str) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        self.proc.stdout.readline()

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self.command("quit")
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def settings_for(kind: str, server: ServerProcess, spool: Path) -> t.Any:
    from flask_difylogstore.settings import LogStoreSettings

    common: dict[str, t.Any] = {"_env_file": None, "spool_dir": spool, "startup_strict": True}
    if kind == "aliyun_sls":
        sls = {
            "endpoint": server.info["endpoint"],
            "access_key_id": server.info["key"],
            "access_key_secret": server.info["secret"],
            "region": "cn-local",
            "project_name": "bench",
        }
        return LogStoreSettings(backend="aliyun_sls", sls=sls, **common)
    es = {"hosts": [server.info["url"]], "number_of_replicas": 0, "index_prefix": "bench"}
    return LogStoreSettings(backend="elasticsearch", elasticsearch=es, **common)


# -- the workload ----------------------------------------------------------------------------------


class Workload:
    """Node executions of a 5 KB output, saved through fresh repositories of ``NODES_PER_RUN`` nodes."""

    def __init__(self, repository_class: t.Any, factory: t.Any, seed: int = 7) -> None:
        from flask_difylogstore.demo_workload import DemoUser

        self.rng = random.Random(seed)
        self.repository_class = repository_class
        self.factory = factory
        self.tenant = str(uuid.uuid4())
        self.app_id = str(uuid.uuid4())
        self.workflow_id = str(uuid.uuid4())
        self.user = DemoUser(str(uuid.uuid4()), self.tenant)
        self.started = datetime(2026, 11, 1, 8, 0, 0)
        self.made = 0

    def repository(self) -> t.Any:
        from flask_difylogstore.dify.enums import WorkflowNodeExecutionTriggeredFrom

        return self.repository_class(
            session_factory=self.factory,
            user=self.user,
            app_id=self.app_id,
            triggered_from=WorkflowNodeExecutionTriggeredFrom.WORKFLOW_RUN,
        )

    def entities(self, count: int) -> list[tuple[bool, t.Any]]:
        """``(new run, node execution)`` pairs, built ahead so only ``save()`` is timed."""
        from flask_difylogstore.demo_workload import payload
        from flask_difylogstore.dify.entities import WorkflowNodeExecution
        from flask_difylogstore.dify.enums import NodeType, WorkflowNodeExecutionStatus

        made: list[tuple[bool, t.Any]] = []
        run_id = str(uuid.uuid4())
        for _ in range(count):
            n = self.made
            self.made += 1
            if n % NODES_PER_RUN == 0:
                run_id = str(uuid.uuid4())
            created = self.started + timedelta(milliseconds=n)
            node = WorkflowNodeExecution(
                id=str(uuid.uuid4()),
                workflow_id=self.workflow_id,
                workflow_execution_id=run_id,
                index=n % NODES_PER_RUN + 1,
                node_id=f"llm-{n % NODES_PER_RUN}",
                node_type=NodeType.LLM,
                title="LLM",
                created_at=created,
            )
            node.node_execution_id = node.id
            node.status = WorkflowNodeExecutionStatus.SUCCEEDED
            node.finished_at = created + timedelta(milliseconds=400)
            node.elapsed_time = 0.4
            node.update_from_mapping(inputs={"query": "q"}, process_data=None, outputs=payload(self.rng, 5000))
            made.append((n % NODES_PER_RUN == 0, node))
        return made

    def save(self, items: list[tuple[bool, t.Any]], *, rate: float | None) -> list[float]:
        """Save ``items`` (paced at ``rate`` per second, or as fast as possible); return each call's seconds."""
        took: list[float] = []
        repository = self.repository()
        interval = 1.0 / rate if rate else 0.0
        next_at = time.perf_counter()
        for new_run, node in items:
            if new_run:
                repository = self.repository()
            if interval:
                delay = next_at - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                next_at += interval
            started = time.perf_counter()
            repository.save(node)
            took.append(time.perf_counter() - started)
        return took


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=100)
    return {
        "p50_us": round(q[49] * 1e6, 1),
        "p99_us": round(q[98] * 1e6, 1),
        "max_ms": round(ordered[-1] * 1e3, 2),
        "saves": len(ordered),
    }


# -- the measurements --------------------------------------------------------------------------------


def relational_latency(pg_url: str, saves: int, rate: float) -> dict[str, float]:
    from sqlalchemy.orm import sessionmaker

    from flask_difylogstore.dify.models import WorkflowNodeExecutionModel
    from flask_difylogstore.repositories.relational import RelationalWorkflowNodeExecutionRepository
    from flask_difylogstore.testing.host_app import create_app

    app = create_app(pg_url, settings=None)  # creates the tables if missing; other data is left alone
    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine
        work = Workload(RelationalWorkflowNodeExecutionRepository, sessionmaker(bind=engine, expire_on_commit=False))
        try:
            work.save(work.entities(200), rate=rate)  # warm the pool and the statement cache
            figures = percentiles(work.save(work.entities(saves), rate=rate))
        finally:
            table = t.cast(t.Any, WorkflowNodeExecutionModel.__table__)
            with engine.begin() as conn:
                conn.execute(table.delete().where(table.c.tenant_id == work.tenant))
    return figures


def wait_idle(sink: t.Any, timeout: float) -> bool:
    return bool(sink.flush(timeout))


def bench_backend(kind: str, args: argparse.Namespace, workdir: Path) -> dict[str, t.Any]:
    from sqlalchemy.orm import sessionmaker

    from flask_difylogstore.pipeline import DirectSink
    from flask_difylogstore.repositories import LogStoreWorkflowNodeExecutionRepository
    from flask_difylogstore.state import get_state
    from flask_difylogstore.testing.host_app import create_app

    server = ServerProcess(kind)
    result: dict[str, t.Any] = {}
    try:
        app = create_app(args.pg, settings=settings_for(kind, server, workdir / f"spool-{kind}"))
        with app.app_context():
            engine = app.extensions["sqlalchemy"].engine
            state = get_state(app)
            sink, backend = state.require_sink(), state.require_backend()
            work = Workload(LogStoreWorkflowNodeExecutionRepository, sessionmaker(bind=engine))

            # latency, backend up
            work.save(work.entities(200), rate=args.rate)
            assert wait_idle(sink, 60)
            result["latency_up"] = percentiles(work.save(work.entities(args.latency_saves), rate=args.rate))
            assert wait_idle(sink, 60)

            # the floor: the same paced saves with the records discarded (the repository's own
            # conversion, no pipeline): what this machine charges for the code before submit()
            original = state.sink
            state.sink = t.cast(t.Any, Discard())
            try:
                result["latency_floor"] = percentiles(work.save(work.entities(args.latency_saves), rate=args.rate))
            finally:
                state.sink = original

            # throughput: tight loop, then until acknowledged; CPU of this process (the saving
            # thread and the pipeline's threads) and of the server, per record
            items = work.entities(args.records)
            cpu_before = server.cpu_seconds()
            client_before, saver_before = _process_cpu(), _thread_cpu()
            started = time.perf_counter()
            took = work.save(items, rate=None)
            saved = time.perf_counter() - started
            saver_cpu = _thread_cpu() - saver_before
            all_acked = wait_idle(sink, 600)
            elapsed = time.perf_counter() - started
            client_cpu = _process_cpu() - client_before
            server_cpu = server.cpu_seconds() - cpu_before
            stats = sink.stats()
            result["throughput"] = {
                "records": args.records,
                "acked_rps": round(args.records / elapsed),
                "save_rps": round(args.records / saved),
                "all_acked": all_acked and stats["dropped"] == 0,
                "batches": stats["batches"],
                "client_cpu_us_per_record": round(client_cpu / args.records * 1e6, 1),
                "saving_thread_cpu_us_per_record": round(saver_cpu / args.records * 1e6, 1),
                "acked_per_client_core_s": round(args.records / max(client_cpu, 1e-9)),
                "server_cpu_us_per_record": round(server_cpu / args.records * 1e6, 1),
                "server_records_per_core_s": round(args.records / max(server_cpu, 1e-9)),
                "closed_loop_save": percentiles(took),
            }

            # one synchronous backend write per save (same repository, sink swapped)
            state.sink = DirectSink(backend)
            try:
                sync_items = work.entities(args.sync_records)
                started = time.perf_counter()
                work.save(sync_items, rate=None)
                result["sync_per_save_rps"] = round(args.sync_records / (time.perf_counter() - started))
            finally:
                state.sink = sink

            # ceiling of client + server: the backend's largest batches, written directly
            records = records_of(work, args.records)
            batch = backend.max_batch_records
            cpu_before, client_before = server.cpu_seconds(), time.process_time()
            started = time.perf_counter()
            for at in range(0, len(records), batch):
                outcome = backend.write(records[at : at + batch])
                assert not outcome.failed, outcome.failed[:1]
            direct = time.perf_counter() - started
            result["ceiling"] = {
                "direct_batched_rps": round(len(records) / direct),
                "batch": batch,
                "client_cpu_us_per_record": round((time.process_time() - client_before) / len(records) * 1e6, 1),
                "server_cpu_us_per_record": round((server.cpu_seconds() - cpu_before) / len(records) * 1e6, 1),
            }

            # outage: saves at the ingest rate while the server refuses, then the drain with saves continuing
            outage_items = work.entities(int(args.rate * args.outage_s))
            after = work.entities(int(args.rate * args.outage_s))  # saved in turn (new versions) while draining
            spilled_before = sink.stats()["spilled"]
            server.command("refuse")
            down = work.save(outage_items, rate=args.rate)
            before = sink.stats()
            backlog, target, acked_before = before["unacknowledged"], before["accepted"], _acked(before)
            server.command("accept")
            came_back = time.perf_counter()
            first_ack: float | None = None
            during: list[float] = []
            interval = 1.0 / args.rate
            repository = work.repository()
            next_at = came_back
            saved_after = 0
            while time.perf_counter() - came_back < 300:
                if saved_after % 10 == 0:
                    acked = _acked(sink.stats())
                    if first_ack is None and acked > acked_before:
                        first_ack = time.perf_counter()
                    if acked >= target:  # everything saved before the server came back is stored
                        break
                delay = next_at - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                next_at += interval
                new_run, node = after[saved_after % len(after)]
                if new_run:
                    repository = work.repository()
                began = time.perf_counter()
                repository.save(node)
                during.append(time.perf_counter() - began)
                saved_after += 1
            ended = time.perf_counter()
            moved = acked - acked_before
            first_ack = first_ack or ended
            pumping = max(ended - first_ack, 1e-9)
            result["outage"] = {
                "outage_s": args.outage_s,
                "ingest_rps": args.rate,
                "backlog": backlog,
                "spilled_to_disk": sink.stats()["spilled"] - spilled_before,
                "breaker_opens": before["breaker"]["opens"],
                "recovery_s": round(first_ack - came_back, 2),
                "drain_s": round(ended - came_back, 2),
                "drain_rps": round(moved / pumping),
                "drain_ratio": round(moved / pumping / args.rate, 1),
                "drain_ratio_incl_recovery": round(moved / (ended - came_back) / args.rate, 1),
                "all_acked": wait_idle(sink, 120),
            }
            result["latency_down"] = percentiles(down)
            result["latency_draining"] = percentiles(during) if len(during) > 1 else None
            state.close(30)
    finally:
        server.close()
    return result


class GcPauses:
    """Records how long CPython's garbage collections pause the process (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.full: list[float] = []
        self.young: list[float] = []
        self._started = 0.0
        gc.callbacks.append(self._on)

    def _on(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            (self.full if info["generation"] == 2 else self.young).append(time.perf_counter() - self._started)

    def summary(self) -> dict[str, t.Any]:
        return {
            "full": len(self.full),
            "full_max_ms": round(max(self.full, default=0.0) * 1e3, 1),
            "young": len(self.young),
            "young_max_ms": round(max(self.young, default=0.0) * 1e3, 1),
        }


class Discard:
    """A sink that drops what it is given: ``save()`` without the pipeline."""

    def submit(self, records: t.Any) -> None:
        pass

    def pending(self, kind: t.Any) -> tuple[()]:
        return ()


def _process_cpu() -> float:
    """User + system CPU seconds of this process, every thread."""
    times = os.times()
    return times.user + times.system


def _thread_cpu() -> float:
    """User + system CPU seconds of the calling thread."""
    return time.thread_time()


class NullBackend:
    """Acknowledges every batch at once: what is left is the pipeline's own cost."""

    name = "null"
    max_batch_records = 4096
    max_batch_bytes = 9 * 1024 * 1024

    def write(self, records: t.Any) -> t.Any:
        from flask_difylogstore.backends.base import WriteResult

        return WriteResult(written=len(records))


def node_record(i: int) -> t.Any:
    from flask_difylogstore.records import LogRecord, RecordKind, default_clock

    data = {
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
        "outputs": '{"text": "' + "x" * 5000 + '"}',
        "status": "succeeded",
        "elapsed_time": 0.5,
        "created_at": datetime(2026, 1, 1, 12),
        "created_by_role": "account",
        "created_by": "user-1",
    }
    return LogRecord(RecordKind.NODE_EXECUTION, data, default_clock.version_for(RecordKind.NODE_EXECUTION, "succeeded"))


def submit_contention(count: int, threads: int, *, pipeline: bool, repeat: int = 1) -> dict[str, float]:
    """``submit`` of prebuilt 5 KB records from ``threads`` threads in a tight loop (null backend).

    With ``pipeline=False`` the threads only serialise each record ``repeat`` times (no lock, no
    spool, no writer): the interpreter's own scheduling floor for that much CPU work per call.
    """
    import threading

    import orjson

    from flask_difylogstore.pipeline import SpoolingPipeline
    from flask_difylogstore.settings import PipelineSettings

    records = [node_record(i) for i in range(count)]
    with tempfile.TemporaryDirectory() as directory:
        sink = SpoolingPipeline(t.cast(t.Any, NullBackend()), PipelineSettings(), Path(directory))
        sink.start()

        def call(record: t.Any) -> None:
            if pipeline:
                sink.submit([record])
            else:
                for _ in range(repeat):
                    orjson.dumps([record.kind.value, record.data, record.log_version], default=str)

        took: list[list[float]] = [[] for _ in range(threads)]
        barrier = threading.Barrier(threads + 1)

        def work(n: int) -> None:
            own = took[n]
            barrier.wait()
            for record in records[n::threads]:
                started = time.perf_counter()
                call(record)
                own.append(time.perf_counter() - started)

        workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        barrier.wait()
        started = time.perf_counter()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
        assert sink.flush(120)
        sink.close(10)
    ordered = sorted(x for own in took for x in own)
    q = statistics.quantiles(ordered, n=1000)
    return {
        "p50_us": round(q[499] * 1e6, 1),
        "p99_us": round(q[989] * 1e6, 1),
        "p999_us": round(q[998] * 1e6, 1),
        "per_s": round(count / elapsed),
    }


def records_of(work: Workload, count: int) -> list[t.Any]:
    """``count`` records of fresh node executions as the repository hands them to its sink."""
    from flask_difylogstore.state import get_state

    captured: list[t.Any] = []

    class Capture:
        def submit(self, records: t.Any) -> None:
            captured.extend(records)

        def pending(self, kind: t.Any) -> tuple[()]:
            return ()

    state = get_state()
    original = state.sink
    state.sink = t.cast(t.Any, Capture())
    try:
        work.save(work.entities(count), rate=None)
    finally:
        state.sink = original
    return captured


def _acked(stats: dict[str, t.Any]) -> int:
    return int(stats["written"]) + int(stats["stale"]) + int(stats["dead_lettered"])


# -- report --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=20_000, help="saves of the throughput run")
    parser.add_argument("--sync-records", type=int, default=2_000, help="saves of the synchronous baseline")
    parser.add_argument("--latency-saves", type=int, default=3_000)
    parser.add_argument("--rate", type=float, default=1_000, help="saves per second (latency, ingest)")
    parser.add_argument("--outage-s", type=float, default=5.0)
    parser.add_argument("--submit-records", type=int, default=20_000, help="records of the submit() contention run")
    parser.add_argument("--backends", default="aliyun_sls,elasticsearch")
    parser.add_argument("--pg", default=os.environ.get("DIFYLOGSTORE_TEST_PG_URL", PG_URL))
    parser.add_argument("--serve", choices=["aliyun_sls", "elasticsearch"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.serve)

    workdir = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    pauses = GcPauses()
    # the control does as much CPU work per call as submit() does on one thread
    alone = submit_contention(2000, 1, pipeline=True)["p50_us"]
    repeat = max(1, round(alone / submit_contention(2000, 1, pipeline=False)["p50_us"]))
    contention = {
        f"{threads} threads{'' if pipeline else f' (control x{repeat})'}": submit_contention(
            args.submit_records, threads, pipeline=pipeline, repeat=repeat
        )
        for threads in (1, 8)
        for pipeline in (True, False)
    }
    sql = relational_latency(args.pg, args.latency_saves, args.rate)
    results: dict[str, t.Any] = {}
    for kind in [k.strip() for k in args.backends.split(",") if k.strip()]:
        print(f"benchmarking {kind} ...", file=sys.stderr, flush=True)
        results[kind] = bench_backend(kind, args, workdir)

    lines = [
        f"save() of a 5 KB node execution at {args.rate:.0f}/s ({args.latency_saves} saves), microseconds;",
        "floor: the same saves with the records discarded (the repository's conversion, no pipeline)",
        f"{'store':<34}{'p50':>10}{'p99':>10}{'max ms':>10}{'p99 vs SQL':>12}",
        f"{'PostgreSQL (relational repository)':<34}{sql['p50_us']:>10}{sql['p99_us']:>10}{sql['max_ms']:>10}{'1':>12}",
    ]
    for kind, r in results.items():
        keys = (("up", "latency_up"), ("down", "latency_down"), ("draining", "latency_draining"))
        for label, key in (*keys, ("floor", "latency_floor")):
            fig = r.get(key)
            if fig:
                ratio = f"1/{sql['p99_us'] / fig['p99_us']:.0f}" if fig["p99_us"] else "-"
                name = f"{kind} ({label})"
                lines.append(f"{name:<34}{fig['p50_us']:>10}{fig['p99_us']:>10}{fig['max_ms']:>10}{ratio:>12}")
    lines += [
        "",
        f"throughput, records/s ({args.records} saves, one thread; server in its own process)",
        "acked: first save() to last acknowledgement; sync/save: one synchronous backend write per save();",
        "ceiling: the backend's largest batches written directly (client + server), CPU per record of each",
        f"{'backend':<16}{'acked':>9}{'saves':>9}{'sync/save':>11}{'ratio':>8}{'ceiling':>9}{'of ceiling':>12}"
        f"{'client us':>11}{'server us':>11}",
    ]
    for kind, r in results.items():
        tp, ceiling = r["throughput"], r["ceiling"]
        ratio = tp["acked_rps"] / r["sync_per_save_rps"]
        share = tp["acked_rps"] / ceiling["direct_batched_rps"]
        lines.append(
            f"{kind:<16}{tp['acked_rps']:>9}{tp['save_rps']:>9}{r['sync_per_save_rps']:>11}{ratio:>7.1f}x"
            f"{ceiling['direct_batched_rps']:>9}{share:>11.0%}{ceiling['client_cpu_us_per_record']:>11}"
            f"{ceiling['server_cpu_us_per_record']:>11}"
        )
    lines += [
        "",
        "the same acked run per core: CPU microseconds per record of the saving process (all threads) and",
        "of its saving thread alone, of the server process; records acknowledged per CPU-second of each",
        f"{'backend':<16}{'client us':>11}{'saving us':>11}{'server us':>11}{'per client core':>17}"
        f"{'per server core':>17}",
    ]
    for kind, r in results.items():
        tp = r["throughput"]
        lines.append(
            f"{kind:<16}{tp['client_cpu_us_per_record']:>11}{tp['saving_thread_cpu_us_per_record']:>11}"
            f"{tp['server_cpu_us_per_record']:>11}{tp['acked_per_client_core_s']:>17}{tp['server_records_per_core_s']:>17}"
        )
    lines += [
        "",
        f"outage of {args.outage_s:.0f} s at {args.rate:.0f} saves/s, then the drain (saves continuing);",
        "recovery: until the circuit breaker's next probe finds the server back",
        f"{'backend':<16}{'backlog':>9}{'spilled':>9}{'recovery s':>12}{'drain s':>9}{'drain/s':>9}"
        f"{'vs ingest':>11}{'incl. recovery':>16}",
    ]
    for kind, r in results.items():
        o = r["outage"]
        lines.append(
            f"{kind:<16}{o['backlog']:>9}{o['spilled_to_disk']:>9}{o['recovery_s']:>12}{o['drain_s']:>9}"
            f"{o['drain_rps']:>9}{o['drain_ratio']:>10}x{o['drain_ratio_incl_recovery']:>15}x"
        )
    lines += [
        "",
        "the pipeline alone: submit() of a prebuilt 5 KB record in a tight loop, null backend, microseconds;",
        "control: the same threads only serialising the record (the interpreter's scheduling floor)",
        f"{'threads':<22}{'p50':>9}{'p99':>9}{'p99.9':>9}{'per s':>9}",
    ]
    for label, fig in contention.items():
        lines.append(f"{label:<22}{fig['p50_us']:>9}{fig['p99_us']:>9}{fig['p999_us']:>9}{fig['per_s']:>9}")
    collections = pauses.summary()
    lines += [
        "",
        f"full garbage collections in this process: {collections['full']}, longest {collections['full_max_ms']} ms "
        f"(young: {collections['young']}, longest {collections['young_max_ms']} ms); a collection stops every",
        "thread, so a save() it falls into takes at least that long (the max column of the first table)",
    ]
    print("\n".join(lines))

    met: dict[str, bool] = {}
    for kind, r in results.items():
        met[f"{kind}_p99_up"] = r["latency_up"]["p99_us"] <= sql["p99_us"] * TARGETS["p99_fraction_of_sql"]
        met[f"{kind}_p99_down"] = r["latency_down"]["p99_us"] <= sql["p99_us"] * TARGETS["p99_fraction_of_sql"]
        met[f"{kind}_throughput"] = r["throughput"]["acked_rps"] >= TARGETS[f"{kind}_rps"]
        met[f"{kind}_throughput_per_client_core"] = r["throughput"]["acked_per_client_core_s"] >= TARGETS[f"{kind}_rps"]
        met[f"{kind}_drain"] = (r["outage"]["drain_ratio"] or 0) >= TARGETS["drain_ratio"]
    ok = all(r["throughput"]["all_acked"] and r["outage"]["all_acked"] for r in results.values())
    print(
        json.dumps(
            {
                "benchmark": "pipeline",
                "rate": args.rate,
                "cpus": os.cpu_count(),
                "relational": sql,
                "results": results,
                "submit_contention": contention,
                "targets": TARGETS,
                "met": met,
                "all_acked": ok,
                "garbage_collections": collections,
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
