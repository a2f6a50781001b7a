"""Run every benchmark of the project and write one Markdown report.

    python benchmarks/run_all.py [--quick] [--report benchmarks/REPORT.md]

Each benchmark script runs in its own process and ends with a JSON line; this collects those
lines, writes the report (each benchmark's table as printed, plus the headline figures and their
ratios against the baselines measured in the same run) and prints a final JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
import typing as t
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: (name, script, full-size arguments, quick arguments)
BENCHMARKS: list[tuple[str, str, list[str], list[str]]] = [
    ("pipeline (save path, throughput, outage drain)", "bench_pipeline.py", [], ["--records", "5000"]),
    ("reads (requests and latency per console call)", "bench_reads.py", ["--runs", "300"], ["--runs", "60"]),
    ("migration (PostgreSQL -> log store)", "bench_migration.py", [], ["--rows", "10000", "--prior-rows", "1000"]),
    (
        "PostgreSQL writes per run (Dify SQL, Dify's log store, this package)",
        "bench_dify_writes.py",
        [],
        ["--runs", "30"],
    ),
    ("local SLS server", "bench_sls_server.py", ["--rows", "1000000"], ["--records", "5000", "--rows", "100000"]),
    ("local Elasticsearch server", "bench_es_server.py", [], ["--docs", "10000", "--agg-docs", "100000"]),
]


def run_one(script: str, args: list[str], timeout: float) -> tuple[str, dict[str, t.Any] | None, float, int]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(HERE / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    elapsed = time.perf_counter() - started
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    data = None
    if lines:
        try:
            data = json.loads(lines[-1])
        except json.JSONDecodeError:
            data = None
    text = "\n".join(lines[:-1] if data is not None else lines)
    if proc.returncode != 0:
        text += "\n" + proc.stderr[-2000:]
    return text, data, elapsed, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller data sets (minutes instead of tens of minutes)")
    parser.add_argument("--report", type=Path, default=HERE / "REPORT.md")
    parser.add_argument("--only", default="", help="comma-separated script names to run")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    sections: list[str] = []
    results: dict[str, t.Any] = {}
    failures = 0
    for title, script, full, quick in BENCHMARKS:
        if only and script not in only:
            continue
        print(f"running {script} ...", file=sys.stderr, flush=True)
        text, data, elapsed, code = run_one(script, quick if args.quick else full, args.timeout)
        failures += code != 0
        results[script] = data
        status = "" if code == 0 else f" (exit status {code})"
        sections.append(
            f"## {title}{status}\n\n`python benchmarks/{script} {' '.join(quick if args.quick else full)}`"
            f" - {elapsed:.0f} s\n\n```text\n{text.strip()}\n```\n"
        )
    header = [
        "# Benchmark report",
        "",
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python benchmarks/run_all.py"
        f"{' --quick' if args.quick else ''}` on {platform.node()} "
        f"({platform.machine()}, Python {platform.python_version()}, {_cpus()} CPUs).",
        "Every figure comes from this run; baselines (the SQL repository on PostgreSQL, one synchronous",
        "write per save, one request per migrated row) were measured in the same run on the same machine.",
        "The local SLS / Elasticsearch servers stand in for the real services: their own ceilings are",
        "reported beside the client-side figures so the numbers can be read honestly.",
        "",
    ]
    args.report.write_text("\n".join(header) + "\n" + "\n".join(sections))
    print(f"report written to {args.report}", file=sys.stderr)
    print(json.dumps({"benchmark": "all", "quick": args.quick, "failures": failures, "results": results}))
    return 1 if failures else 0


def _cpus() -> int:
    import os

    return os.cpu_count() or 1


if __name__ == "__main__":
    raise SystemExit(main())
