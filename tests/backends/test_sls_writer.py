"""PutLogs batching: splitting by count and bytes, per-record failures, bounded retries."""

from __future__ import annotations

import calendar
import typing as t

import pytest

from flask_difylogstore.backends.aliyun_sls import AliyunSLSBackend
from flask_difylogstore.backends.aliyun_sls.writer import (
    MAX_LOGS_PER_REQUEST,
    MAX_REQUEST_BYTES,
    Writer,
    encode,
)
from flask_difylogstore.backends.base import RecordQuery, Scope
from flask_difylogstore.errors import BackendUnavailableError
from flask_difylogstore.records import RecordKind
from flask_difylogstore.schemas import schema
from flask_difylogstore.settings import AliyunSLSSettings
from tests.backends.conftest import RunFactory
from tests.backends.records import BASE_TIME
from tests.backends.sls_transport import count_attempts, record_sdk_sleeps, record_sleeps


class _CountingClient:
    """Delegates to the real client and records the size of every PutLogs request."""

    def __init__(self, client: t.Any) -> None:
        self._client = client
        self.batches: list[int] = []

    def put_logs(self, request: t.Any) -> t.Any:
        self.batches.append(len(request.get_log_items()))
        return self._client.put_logs(request)


def test_split_respects_count_and_bytes(make_run: RunFactory) -> None:
    writer = Writer(client=None, project="p", max_records=10_000, max_bytes=50_000)
    assert writer.max_records == MAX_LOGS_PER_REQUEST
    items = [(r, *encode(r, schema(RecordKind.RUN))) for r in (make_run(outputs="x" * 9_000) for _ in range(12))]
    batches = writer.split(items)
    assert all(sum(e[2] for e in b) <= 50_000 for b in batches) and sum(map(len, batches)) == 12
    assert len(batches) == 3
    huge = make_run(outputs="y" * 80_000)
    alone = writer.split([(huge, *encode(huge, schema(RecordKind.RUN))), *items[:2]])
    assert [len(b) for b in alone] == [1, 2]


def test_large_batches_are_split_under_the_request_limits(sls_backend: AliyunSLSBackend, make_run: RunFactory) -> None:
    spy = _CountingClient(sls_backend.client)
    sls_backend.writer.client = spy
    runs = [make_run(offset_s=i % 50, inputs="{}") for i in range(5000)]
    result = sls_backend.write(runs)
    assert result.written == 5000 and result.ok
    assert spy.batches == [4096, 904]
    assert sls_backend.count(RecordKind.RUN, Scope("t1")) == 5000


def test_a_record_too_large_even_alone_fails_alone(sls_backend: AliyunSLSBackend, make_run: RunFactory) -> None:
    too_big = make_run(outputs="z" * (MAX_REQUEST_BYTES + 1))
    fine = [make_run(offset_s=1), make_run(offset_s=2)]
    result = sls_backend.write([fine[0], too_big, fine[1]])
    assert result.written == 2
    assert [(r.id, retry) for r, _, retry in result.failed] == [(too_big.id, False)]
    assert "exceeds" in result.failed[0][1]


def test_a_rejected_request_is_bisected_to_the_bad_record(
    sls_backend: AliyunSLSBackend, sls_server: t.Any, make_run: RunFactory
) -> None:
    runs = [make_run(offset_s=i) for i in range(4)]
    # The whole batch, its first half and then the first record are rejected as invalid.
    sls_server.faults.fail_next(3, status=400, code="PostBodyInvalid", message="bad log", api="PutLogs")
    result = sls_backend.write(runs)
    assert result.written == 3
    assert [(r.id, retry) for r, _, retry in result.failed] == [(runs[0].id, False)]


def test_transient_failures_are_reported_retryable_without_blocking(
    sls_backend: AliyunSLSBackend, sls_server: t.Any, make_run: RunFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK alone would sleep a second and retry up to ten times per call.

    Writes make one attempt and leave the retry to the pipeline; reads make the reader's own short, bounded retry.
    """
    import flask_difylogstore.backends.aliyun_sls.reader as reader_module

    sleeps = record_sdk_sleeps(monkeypatch)
    reader_sleeps = record_sleeps(reader_module, monkeypatch)
    attempts = count_attempts(sls_backend.client, monkeypatch)
    sls_server.faults.fail_next(1, status=503, code="ServerBusy", api="PutLogs")
    result = sls_backend.write([make_run(), make_run()])
    assert result.written == 0 and all(retry for _, _, retry in result.failed)
    assert attempts.puts() == 1 and sleeps.calls == []
    sls_server.faults.fail_next(1, status=503, code="ServerBusy", api="GetLogs")
    assert sls_backend.search(RecordQuery(RecordKind.RUN, Scope("t1"))).records == []
    assert attempts.gets() == 2 and reader_sleeps.calls == [0.2] and sleeps.calls == []
    sls_server.faults.fail_next(3, status=503, code="ServerBusy", api="GetLogs")
    with pytest.raises(BackendUnavailableError):
        sls_backend.search(RecordQuery(RecordKind.RUN, Scope("t1")))
    assert attempts.gets() == 2 + 3 and reader_sleeps.calls == [0.2, 0.2, 0.4] and sleeps.calls == []
    # The failure was the server's one injected answer, not a lasting state: the same write now succeeds.
    assert sls_backend.write([make_run()]).written == 1 and attempts.puts() == 2


def test_log_time_is_the_creation_time(sls_settings: AliyunSLSSettings, make_run: RunFactory) -> None:
    item, _ = encode(make_run(offset_s=1.5), schema(RecordKind.RUN))
    assert item.get_time() == calendar.timegm(BASE_TIME.utctimetuple()) + 1
    contents = dict(item.get_contents())
    assert all(isinstance(v, str) for v in contents.values())
    assert contents["created_at"] == "2026-11-01T08:00:01.500000"
