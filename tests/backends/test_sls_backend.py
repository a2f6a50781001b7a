"""The SLS backend end to end over the real SDK against the local SLS server."""

from __future__ import annotations

import socket
import time
import typing as t
import uuid
from datetime import timedelta

import pytest

from flask_difylogstore.backends.aliyun_sls import AliyunSLSBackend
from flask_difylogstore.backends.aliyun_sls.client import make_client
from flask_difylogstore.backends.base import (
    AggregateQuery,
    Filter,
    GroupBy,
    Metric,
    RecordQuery,
    Scope,
    TimeRange,
)
from flask_difylogstore.records import RecordKind
from tests.backends.conftest import RunFactory
from tests.backends.records import BASE_TIME
from tests.backends.sls_transport import Attempts, count_attempts, record_sdk_sleeps


def _ids(records: list) -> list[str]:  # type: ignore[type-arg]
    return [r.id for r in records]


def test_round_trip_keeps_types_empty_strings_and_nulls(sls_backend: AliyunSLSBackend, make_run: RunFactory) -> None:
    run = make_run(status="succeeded", error="", finished_at=None, elapsed_time=1.25, total_tokens=42, app_id="")
    assert sls_backend.write([run]).written == 1
    got = sls_backend.get_latest(RecordKind.RUN, [run.id], Scope("t1"))[run.id]
    assert got.data == run.data and got.log_version == run.log_version


def test_latest_version_is_picked_before_filtering(sls_backend: AliyunSLSBackend, make_run: RunFactory) -> None:
    run_id = str(uuid.uuid4())
    first = make_run(id=run_id, status="running")
    final = make_run(id=run_id, status="succeeded")
    late_running = make_run(id=run_id, status="running")  # a stale, reordered write
    sls_backend.write([final, first, late_running])
    scope = Scope("t1", "a1")
    assert sls_backend.count(RecordKind.RUN, scope, [Filter("status", "eq", "running")]) == 0
    page = sls_backend.search(RecordQuery(RecordKind.RUN, scope, filters=(Filter("status", "eq", "succeeded"),)))
    assert _ids(page.records) == [run_id] and page.records[0].data["status"] == "succeeded"


def test_deleted_entities_are_hidden(sls_backend: AliyunSLSBackend, make_run: RunFactory) -> None:
    keep, gone = make_run(offset_s=1), make_run(offset_s=2, total_tokens=5)
    sls_backend.write([keep, gone])
    assert sls_backend.delete(RecordKind.RUN, Scope("t1"), [Filter("total_tokens", "eq", 5)]) == 1
    assert sls_backend.get_latest(RecordKind.RUN, [keep.id, gone.id], Scope("t1")).keys() == {keep.id}
    assert sls_backend.count(RecordKind.RUN, Scope("t1")) == 1
    assert _ids(sls_backend.search(RecordQuery(RecordKind.RUN, Scope("t1"))).records) == [keep.id]


def test_paging_past_100_rows_and_past_the_sql_page(
    sls_backend: AliyunSLSBackend, make_run: RunFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flask_difylogstore.backends.aliyun_sls.backend as backend_module

    monkeypatch.setattr(backend_module, "SQL_PAGE", 70)  # force several internal pages
    runs = [make_run(offset_s=i // 3) for i in range(260)]  # ties on created_at: id breaks them
    runs += [make_run(id=r.id, status="succeeded", offset_s=i // 3) for i, r in enumerate(runs[:40])]
    assert sls_backend.write(runs).ok
    expected = sorted({r.id: r for r in runs}.values(), key=lambda r: (r.data["created_at"], r.id), reverse=True)

    everything = sls_backend.search(RecordQuery(RecordKind.RUN, Scope("t1"), limit=None))
    assert _ids(everything.records) == [r.id for r in expected] and everything.next_after is None

    seen: list[str] = []
    after = None
    while True:
        page = sls_backend.search(RecordQuery(RecordKind.RUN, Scope("t1"), limit=100, after=after))
        seen += _ids(page.records)
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == [r.id for r in expected]
    assert sls_backend.count(RecordKind.RUN, Scope("t1")) == 260
    assert len(sls_backend.get_latest(RecordKind.RUN, [r.id for r in runs], Scope("t1"))) == 260


def test_payloads_longer_than_max_text_len_come_back_whole(sls_backend: AliyunSLSBackend, make_run: RunFactory) -> None:
    big = '{"text": "' + "é" * 50_000 + '"}'
    run = make_run(outputs=big, graph='{"nodes": [' + ",".join(["{}"] * 5000) + "]}")
    sls_backend.write([run])
    page = sls_backend.search(RecordQuery(RecordKind.RUN, Scope("t1")))
    assert page.records[0].data["outputs"] == big
    assert sls_backend.get_latest(RecordKind.RUN, [run.id], Scope("t1"))[run.id].data["graph"] == run.data["graph"]
    # SQL alone would have cut it at max_text_len (2048 in these tests).
    rows = sls_backend.reader.run("workflow_execution", _sql(sls_backend, "SELECT outputs FROM log LIMIT 1"))
    assert len(rows[0]["outputs"]) < len(big)


def _sql(backend: AliyunSLSBackend, sql: str):  # type: ignore[no-untyped-def]
    from flask_difylogstore.backends.aliyun_sls.query import Statement

    return Statement("*", sql, 0, int(time.time()) + 86400)


def test_time_window_prunes_and_is_exact(sls_backend: AliyunSLSBackend, make_run: RunFactory) -> None:
    runs = [make_run(offset_s=h * 3600 + 0.5) for h in range(5)]
    sls_backend.write(runs)
    window = TimeRange(BASE_TIME + timedelta(hours=1), BASE_TIME + timedelta(hours=3, seconds=0.5))
    page = sls_backend.search(RecordQuery(RecordKind.RUN, Scope("t1"), time_range=window))
    assert set(_ids(page.records)) == {runs[1].id, runs[2].id}
    statement = sls_backend.builders[RecordKind.RUN].count(Scope("t1"), [], window)
    assert statement.to_time - statement.from_time == 2 * 3600 + 1


def test_aggregate_by_day_in_timezone(sls_backend: AliyunSLSBackend, make_run: RunFactory) -> None:
    # 2026-11-01 08:00 UTC + 17h = 01:00 next day in Shanghai (UTC+8).
    sls_backend.write(
        [
            make_run(offset_s=0, total_tokens=3),
            make_run(offset_s=17 * 3600, total_tokens=4),
            make_run(offset_s=17 * 3600, total_tokens=5, created_by="user-2"),
        ]
    )
    query = AggregateQuery(
        RecordKind.RUN,
        Scope("t1"),
        metrics=(Metric("count"), Metric("sum", "total_tokens"), Metric("count_distinct", "created_by")),
        group_by=(GroupBy("created_at", day_in_timezone="Asia/Shanghai"),),
    )
    assert sls_backend.aggregate(query) == [
        {"created_at_day": "2026-11-01", "count": 1, "sum_total_tokens": 3, "count_distinct_created_by": 1},
        {"created_at_day": "2026-11-02", "count": 2, "sum_total_tokens": 9, "count_distinct_created_by": 2},
    ]
    empty = AggregateQuery(RecordKind.RUN, Scope("nobody"), metrics=(Metric("count"), Metric("sum", "total_tokens")))
    assert sls_backend.aggregate(empty) == [{"count": 0, "sum_total_tokens": 0}]


def test_keyword_matches_the_latest_payload(sls_backend: AliyunSLSBackend, make_run: RunFactory) -> None:
    run = make_run(inputs='{"q": "Needle"}')
    sls_backend.write([run, make_run(id=run.id, status="succeeded", inputs='{"q": "other"}')])
    other = make_run(outputs='{"a": "haystack NEEDLE"}')
    sls_backend.write([other])
    page = sls_backend.search(RecordQuery(RecordKind.RUN, Scope("t1"), keyword="needle"))
    assert _ids(page.records) == [other.id]


def test_fields_restrict_the_answer(sls_backend: AliyunSLSBackend, make_run: RunFactory) -> None:
    run = make_run(status="succeeded", total_tokens=9)
    sls_backend.write([run])
    light = sls_backend.search(RecordQuery(RecordKind.RUN, Scope("t1"), fields=("status", "total_tokens")))
    assert light.records[0].data["total_tokens"] == 9 and "inputs" not in light.records[0].data
    assert light.records[0].data["tenant_id"] == "t1"
    heavy = sls_backend.search(RecordQuery(RecordKind.RUN, Scope("t1"), fields=("inputs",)))
    assert heavy.records[0].data["inputs"] == run.data["inputs"] and "status" not in heavy.records[0].data


def test_unscoped_lookup_by_id(sls_backend: AliyunSLSBackend, make_run: RunFactory) -> None:
    run = make_run(tenant="t9")
    sls_backend.write([run])
    assert sls_backend.get_latest(RecordKind.RUN, [run.id], Scope.unscoped())[run.id].tenant_id == "t9"
    assert sls_backend.get_latest(RecordKind.RUN, [run.id], Scope("t1")) == {}


def test_odd_ids_are_found_by_their_log_second(sls_backend: AliyunSLSBackend, make_run: RunFactory) -> None:
    odd = ['a "quoted" id', "x\\y", "tab\tand space", "* or tenant_id:*", "中文-id"]
    runs = [make_run(id=i, offset_s=n) for n, i in enumerate(odd)]
    assert sls_backend.write(runs).ok
    got = sls_backend.get_latest(RecordKind.RUN, odd, Scope("t1"))
    assert {k: v.data for k, v in got.items()} == {r.id: r.data for r in runs}


def test_ping_reports_reachability(
    sls_backend: AliyunSLSBackend, sls_server: t.Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A health check answers within its configured budget: the budget is passed down and nothing is retried."""
    import flask_difylogstore.backends.aliyun_sls.backend as backend_module

    budget = sls_backend.settings.check_connectivity_timeout
    real_connect = socket.create_connection
    connects: list[float | None] = []
    probes: list[tuple[t.Any, Attempts]] = []  # each probe client ping builds, with its HTTP attempts
    sleeps = record_sdk_sleeps(monkeypatch)

    def connect(address: tuple[str, int], timeout: float | None = None) -> socket.socket:
        connects.append(timeout)
        return real_connect(address, timeout=timeout)

    def probe_client(*args: t.Any, **kwargs: t.Any) -> t.Any:
        client = make_client(*args, **kwargs)
        probes.append((client, count_attempts(client, monkeypatch)))
        return client

    monkeypatch.setattr(socket, "create_connection", connect)  # the backend module calls socket.create_connection
    monkeypatch.setattr(backend_module, "make_client", probe_client)
    assert sls_backend.ping().ok
    assert connects == [budget] and [client.timeout for client, _ in probes] == [budget]

    sls_server.faults.refuse_connections()
    try:
        result = sls_backend.ping()
        assert not result.ok and result.error
        assert connects == [budget, budget] and len(probes) == 1  # refused at connect: no SDK request at all
    finally:
        sls_server.faults.accept_connections()

    # Reachable but failing: one SDK attempt, no retry sleep (the stock SDK would retry ten times, 1 s apart).
    sls_server.faults.fail_next(1, status=503, code="ServerBusy")
    result = sls_backend.ping()
    assert not result.ok and "ServerBusy" in (result.error or "")
    client, attempts = probes[-1]
    assert len(probes) == 2 and client.timeout == budget
    assert len(attempts.calls) == 1 and sleeps.calls == []


def test_ip_port_endpoint_reaches_the_server(sls_settings, sls_server) -> None:  # type: ignore[no-untyped-def]
    from flask_difylogstore.backends.aliyun_sls.client import make_client

    client = make_client(sls_settings)
    assert client._isRowIp is True and client._source != "127.0.0.1"
    assert "flask-difylogstore/" in client._user_agent and client.timeout <= 30
    client.create_project(sls_settings.project_name, "x")
    assert client.get_project(sls_settings.project_name).get_projectname() == sls_settings.project_name
    named = make_client(sls_settings.model_copy(update={"endpoint": "cn-hangzhou.log.aliyuncs.com"}))
    assert named._isRowIp is False
    assert make_client(sls_settings.model_copy(update={"endpoint": f"http://{sls_server.endpoint}"}))._isRowIp
