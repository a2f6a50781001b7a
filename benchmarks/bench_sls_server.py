"""Throughput of the local SLS server through the real ``aliyun-log-python-sdk``.

Measures PutLogs ingest (5 KB records, 1000 per request) and a latest-version query
(``ROW_NUMBER() OVER (PARTITION BY id ORDER BY log_version DESC)`` then a filter) over N rows.
The server runs in a child process, as it would for a test suite, so client and server do not
share one interpreter lock.

    python benchmarks/bench_sls_server.py [--records 20000] [--rows 1000000]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aliyun.log import GetLogsRequest, IndexConfig, IndexKeyConfig, IndexLineConfig, LogItem, PutLogsRequest

from flask_difylogstore.testing.sls import local_log_client

PROJECT = "bench"
TOKENS = [",", " ", ";", "=", "(", ")", "[", "]", "{", "}", "?", "@", "&", "<", ">", "/", ":", "\n", "\t"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "flask_difylogstore.testing.sls", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to express throughput per server core."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return float("nan")


def _index() -> IndexConfig:
    text = {"id", "tenant_id", "app_id", "status", "outputs", "created_at"}
    keys = {k: IndexKeyConfig(token_list=TOKENS, index_type="text", doc_value=True) for k in text}
    keys["log_version"] = IndexKeyConfig(index_type="long", doc_value=True)
    keys["elapsed_time"] = IndexKeyConfig(index_type="double", doc_value=True)
    return IndexConfig(line_config=IndexLineConfig(token_list=TOKENS), key_config_list=keys, scan_index=True)


def _items(start: int, count: int, payload: int, versions: int) -> list[LogItem]:
    now = int(time.time())
    filler = "x" * payload
    items = []
    for i in range(start, start + count):
        run = i // versions
        items.append(
            LogItem(
                now,
                [
                    ("id", f"run-{run:08d}"),
                    ("tenant_id", "tenant-1"),
                    ("app_id", f"app-{run % 10}"),
                    ("status", "succeeded" if i % versions == versions - 1 else "running"),
                    ("log_version", str(i % versions)),
                    ("elapsed_time", str((i % 97) / 10)),
                    ("created_at", "2026-01-01T00:00:00"),
                    ("outputs", filler),
                ],
            )
        )
    return items


def _put(client: Any, logstore: str, total: int, batch: int, payload: int, versions: int, threads: int) -> float:
    batches = [_items(s, min(batch, total - s), payload, versions) for s in range(0, total, batch)]
    requests = [PutLogsRequest(PROJECT, logstore, logitems=b) for b in batches]
    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(client.put_logs, requests))
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000, help="5 KB records for the ingest test")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows for the latest-version query")
    parser.add_argument("--threads", type=int, default=2, help="concurrent client threads")
    args = parser.parse_args()

    port = _free_port()
    proc = _start_server(port)
    try:
        client = local_log_client(f"127.0.0.1:{port}", "local-ak", "local-sk")
        client.create_project(PROJECT, "benchmark")
        for name in ("ingest", "versions"):
            client.create_logstore(PROJECT, name, ttl=3650)
            client.create_index(PROJECT, name, _index())

        cpu_before = _cpu_seconds(proc.pid)
        client_cpu_before = time.process_time()
        ingest_s = _put(client, "ingest", args.records, 1000, 5000, 3, args.threads)
        # Make the ingest measurement include the server's append to DuckDB.
        flush_began = time.perf_counter()
        client.get_logs(GetLogsRequest(PROJECT, "ingest", 0, int(time.time()) + 60, query="* | select count(*)"))
        ingest_s += time.perf_counter() - flush_began
        ingest_cpu = _cpu_seconds(proc.pid) - cpu_before
        client_cpu = time.process_time() - client_cpu_before

        load_s = _put(client, "versions", args.rows, 4000, 100, 3, args.threads)
        sql = (
            "* | select status, count(*) as c from (select id, status, row_number() over "
            "(partition by id order by log_version desc) as rn from log) where rn = 1 group by status"
        )
        timings = []
        rows: list[dict[str, str]] = []
        for _ in range(3):
            began = time.perf_counter()
            resp = client.get_logs(GetLogsRequest(PROJECT, "versions", 0, int(time.time()) + 60, query=sql))
            timings.append(time.perf_counter() - began)
            rows = [log.get_contents() for log in resp.get_logs()]
        page_sql = (
            "tenant_id: tenant-1 | select * from (select *, row_number() over (partition by id order by "
            "log_version desc) as rn from log) where rn = 1 and app_id = 'app-3' order by id desc limit 20"
        )
        began = time.perf_counter()
        client.get_logs(GetLogsRequest(PROJECT, "versions", 0, int(time.time()) + 60, query=page_sql))
        page_s = time.perf_counter() - began
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    result = {
        "ingest_records": args.records,
        "ingest_record_bytes": 5000,
        "ingest_batch": 1000,
        "ingest_client_threads": args.threads,
        "pyarrow": importlib.util.find_spec("pyarrow") is not None,
        "ingest_seconds": round(ingest_s, 3),
        "ingest_records_per_s": round(args.records / ingest_s),
        "ingest_mb_per_s": round(args.records * 5000 / ingest_s / 1e6, 1),
        "ingest_server_cpu_s": round(ingest_cpu, 3),
        "ingest_records_per_server_cpu_s": round(args.records / ingest_cpu) if ingest_cpu > 0 else None,
        "ingest_client_cpu_s": round(client_cpu, 3),
        "query_rows": args.rows,
        "query_load_rows_per_s": round(args.rows / load_s),
        "latest_version_group_s_best": round(min(timings), 3),
        "latest_version_group_s_first": round(timings[0], 3),
        "latest_version_page_s": round(page_s, 3),
        "latest_version_result": rows,
    }
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
