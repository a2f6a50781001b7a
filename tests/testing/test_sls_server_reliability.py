"""Concurrency, restarts, persistence and fault injection."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from aliyun.log import LogClient, LogException

from flask_difylogstore.testing.sls import LocalSLSServer, local_log_client
from tests.testing.conftest import make_logstore, put, query


def test_concurrent_writers_and_readers(sls_server: LocalSLSServer, project: str) -> None:
    setup = sls_server.client()
    make_logstore(setup, project, "busy", {"writer": "text", "n": "long"})
    errors: list[BaseException] = []
    seen: dict[int, list[int]] = {0: [], 1: []}

    def writer(w: int) -> None:
        client = sls_server.client()
        try:
            for batch in range(10):
                put(
                    client,
                    project,
                    "busy",
                    [{"writer": f"w{w}", "n": str(batch * 50 + i)} for i in range(50)],
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader(r: int) -> None:
        client = sls_server.client()
        try:
            for _ in range(10):
                rows = query(client, project, "busy", "* | select count(*) as c")
                seen[r].append(int(rows[0]["c"]))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    threads += [threading.Thread(target=reader, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    for counts in seen.values():  # each reader sees the logstore only grow, never a partial batch
        assert counts == sorted(counts)
        assert all(c % 50 == 0 and c <= 2000 for c in counts)
    final = query(setup, project, "busy", "* | select writer, count(*) as c group by writer order by writer")
    assert final == [{"writer": f"w{w}", "c": "500"} for w in range(4)]


def test_stop_start_on_same_port_keeps_data(sls_server: LocalSLSServer, project: str) -> None:
    client = sls_server.client()
    make_logstore(client, project, "kept", {"k": "text"})
    put(client, project, "kept", [{"k": "before"}])
    port = sls_server.port
    sls_server.stop()
    sls_server.start()
    assert sls_server.port == port
    put(client, project, "kept", [{"k": "after"}])
    assert sorted(r["k"] for r in query(client, project, "kept", "*")) == ["after", "before"]


def test_data_dir_survives_a_new_server(tmp_path: Path) -> None:
    with LocalSLSServer(data_dir=tmp_path) as first:
        client = first.client()
        client.create_project("durable", "")
        make_logstore(client, "durable", "kept", {"k": "text", "n": "long"})
        put(client, "durable", "kept", [{"k": "one", "n": "1"}, {"k": "two", "n": "2"}])
    with LocalSLSServer(data_dir=tmp_path) as second:
        client = second.client()
        assert client.get_index_config("durable", "kept").get_index_config().key_config_list["n"].index_type == "long"
        assert query(client, "durable", "kept", "n > 1 | select k") == [{"k": "two"}]
        put(client, "durable", "kept", [{"k": "three", "n": "3"}])
        assert query(client, "durable", "kept", "* | select count(*) as c") == [{"c": "3"}]


def test_fail_next_with_a_client_error(sls_server: LocalSLSServer, project: str) -> None:
    client = sls_server.client()
    sls_server.faults.fail_next(1, status=403, code="WriteQuotaExceed", message="quota", api="PutLogs")
    make_logstore(client, project, "faulty", {"k": "text"})  # admin calls are not affected
    with pytest.raises(LogException) as exc:
        put(client, project, "faulty", [{"k": "v"}])
    assert (exc.value.get_error_code(), exc.value.get_resp_status()) == ("WriteQuotaExceed", 403)
    put(client, project, "faulty", [{"k": "v"}])
    assert len(query(client, project, "faulty", "*")) == 1


def test_fail_next_503_is_retried_by_the_sdk(sls_server: LocalSLSServer, project: str) -> None:
    client = sls_server.client()
    make_logstore(client, project, "flaky", {"k": "text"})
    sls_server.faults.fail_next(1, status=503, code="ServerBusy")
    began = time.monotonic()
    put(client, project, "flaky", [{"k": "v"}])  # the SDK sleeps 1 s and tries again
    assert time.monotonic() - began >= 0.9
    assert len(query(client, project, "flaky", "*")) == 1


def test_delay_and_dropped_connections(sls_server: LocalSLSServer, project: str) -> None:
    client = sls_server.client()
    make_logstore(client, project, "slow", {"k": "text"})
    sls_server.faults.delay(0.3, api="GetLogs")
    began = time.monotonic()
    query(client, project, "slow", "*")
    assert time.monotonic() - began >= 0.3
    sls_server.faults.clear()
    sls_server.faults.drop_connections(1, api="PutLogs")
    with pytest.raises(LogException) as exc:
        put(client, project, "slow", [{"k": "lost"}])
    assert exc.value.get_error_code() == "LogRequestError"
    put(client, project, "slow", [{"k": "kept"}])
    assert [r["k"] for r in query(client, project, "slow", "*")] == ["kept"]


def test_refuse_connections_then_recover(sls_server: LocalSLSServer, project: str) -> None:
    client = sls_server.client()
    make_logstore(client, project, "down", {"k": "text"})
    put(client, project, "down", [{"k": "v"}])
    sls_server.faults.refuse_connections()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", sls_server.port), timeout=2).close()
    sls_server.faults.clear()
    assert len(query(client, project, "down", "*")) == 1


def _run_cli(port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    args = ["--port", str(port), "--data-dir", str(data_dir)]
    return subprocess.Popen(
        [sys.executable, "-m", "flask_difylogstore.testing.sls", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def test_module_entry_point_serves_and_persists(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client: LogClient = local_log_client(f"127.0.0.1:{port}", "local-ak", "local-sk")
    for round_ in range(2):
        proc = _run_cli(port, tmp_path)
        try:
            assert proc.stdout is not None
            assert f"127.0.0.1:{port}" in proc.stdout.readline().decode()
            if round_ == 0:
                client.create_project("from-cli", "")
                make_logstore(client, "from-cli", "cli", {"k": "text"})
                put(client, "from-cli", "cli", [{"k": "survives"}])
            else:  # buffered logs were written out on SIGTERM
                assert query(client, "from-cli", "cli", "k: survives")[0]["k"] == "survives"
        finally:
            proc.terminate()
            assert proc.wait(timeout=10) == 0
            if proc.stdout is not None:
                proc.stdout.close()
