"""The one-pass LogGroup encoder: the same bytes as the SDK's ``put_logs``, sent through ``put_log_raw``."""

from __future__ import annotations

import typing as t
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum

from aliyun.log.log_logs_pb2 import LogGroup

from flask_difylogstore.backends.aliyun_sls import AliyunSLSBackend
from flask_difylogstore.backends.aliyun_sls.writer import encode, encode_raw, log_group_bytes
from flask_difylogstore.backends.base import Scope
from flask_difylogstore.records import LogRecord, RecordKind, format_datetime
from flask_difylogstore.schemas import schema
from tests.backends.conftest import RunFactory


class _Colour(Enum):
    RED = "red"


def _sdk_bytes(records: list[LogRecord], source: str) -> bytes:
    """What ``LogClient.put_logs`` serialises for the ``LogItem`` of each record."""
    group = LogGroup()
    group.Topic = ""
    group.Source = source
    for record in records:
        item, _ = encode(record, schema(record.kind))
        log = group.Logs.add()
        log.Time = item.get_time()
        log.Time_ns = item.get_time_nano_part()
        for key, value in item.get_contents():
            content = log.Contents.add()
            content.Key = key
            content.Value = value.encode("utf-8")
    return group.SerializeToString()


def _odd_records(make_run: RunFactory) -> list[LogRecord]:
    return [
        make_run(),
        make_run(offset_s=1.25, outputs="x" * 20_000, error=None, total_tokens=2**40),
        make_run(title="标题 — ünïcode " * 50, elapsed_time=0.1, exceptions_count=True),
        make_run(created_at=datetime(1969, 5, 1, 1, 2, 3, 4)),
        make_run(created_at=datetime(2026, 1, 1, 8, tzinfo=timezone(timedelta(hours=8)))),
        make_run(created_at=datetime(2026, 1, 1, 0, 0, 0), status="succeeded", type=_Colour.RED),
        make_run(inputs="", graph=None, finished_at=datetime(2026, 1, 1, 0, 0, 1, 999_999)),
    ]


def test_raw_log_group_is_byte_identical_to_the_sdk(make_run: RunFactory) -> None:
    records = _odd_records(make_run)
    raw = log_group_bytes([encode_raw(r, schema(r.kind))[0] for r in records], "10.1.2.3")
    assert raw == _sdk_bytes(records, "10.1.2.3")
    assert [encode_raw(r, schema(r.kind))[1] for r in records] == [encode(r, schema(r.kind))[1] for r in records]


def test_raw_path_stores_what_put_logs_stored(sls_backend: AliyunSLSBackend, make_run: RunFactory) -> None:
    records = [make_run(offset_s=i, error="ünï — 错误", finished_at=None, elapsed_time=0.5) for i in range(30)]
    calls: list[str] = []
    client = sls_backend.client
    original = client.put_log_raw

    def spy(*args: t.Any, **kwargs: t.Any) -> t.Any:
        calls.append("raw")
        return original(*args, **kwargs)

    client.put_log_raw = spy  # type: ignore[method-assign]
    result = sls_backend.write(records)
    assert result.ok and result.written == 30 and calls == ["raw"]
    found = sls_backend.get_latest(RecordKind.RUN, [r.id for r in records], Scope("t1"))
    for record in records:
        stored = found[record.id]
        assert stored.log_version == record.log_version
        assert {k: stored.data.get(k) for k in record.data} == record.data, set(stored.data) ^ set(record.data)


def test_format_datetime_is_the_strftime_form() -> None:
    moments = [
        datetime(2026, 11, 1, 8, 0, 0),
        datetime(2026, 11, 1, 8, 0, 0, 1),
        datetime(1000, 1, 1),
        datetime(999, 12, 31, 23, 59, 59, 999_999),
        datetime(2026, 11, 1, 8, tzinfo=UTC),
    ]
    for moment in moments:
        naive = moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
        assert format_datetime(moment) == naive.strftime("%Y-%m-%dT%H:%M:%S.%f")
