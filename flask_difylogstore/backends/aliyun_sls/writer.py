"""Turning records into ``PutLogs`` requests: encoding, batch splitting and per-record failures.

The log time of every item is the record's ``created_at``, so time-bounded reads can narrow the
SLS ``from``/``to`` window. Batches are split under SLS's 4096-logs / 10 MB-per-request limits;
a request rejected for its content is bisected, so one bad record fails alone instead of taking
its whole batch down.
"""

from __future__ import annotations

import logging
import typing as t
from collections.abc import Sequence
from datetime import datetime
from enum import Enum

import orjson
from aliyun.log import LogItem, PutLogsRequest
from aliyun.log.logexception import LogException

from flask_difylogstore.backends.aliyun_sls.client import TransportError, is_retryable
from flask_difylogstore.backends.aliyun_sls.query import epoch_seconds
from flask_difylogstore.backends.base import WriteResult
from flask_difylogstore.records import FieldType, LogRecord, RecordSchema, format_datetime

logger = logging.getLogger(__name__)

#: SLS limits per PutLogs request.
MAX_LOGS_PER_REQUEST = 4096
HARD_REQUEST_BYTES = 10 * 1024 * 1024
#: Largest raw request this writer sends; leaves room for protobuf framing and the log group.
MAX_REQUEST_BYTES = 9 * 1024 * 1024
#: Meta field listing the fields that were ``None`` (SLS has no null; an absent key reads back absent).
NULLS_FIELD = "log_nulls"
_ITEM_OVERHEAD = 16
_PAIR_OVERHEAD = 6

#: Errors about the target or the credentials: every record of the request would fail the same way.
_REQUEST_WIDE = frozenset(
    {
        "ProjectNotExist",
        "LogStoreNotExist",
        "Unauthorized",
        "SignatureNotMatch",
        "InvalidAccessKeyId",
        "InvalidAccessKeyId.NotFound",
        "WriteQuotaExceed",
        "ShardWriteQuotaExceed",
        "ProjectQuotaExceed",
        "ExceedQuota",
        "ShardNotExist",
        "ReadOnly",
    }
)


def _value(type_: FieldType | None, value: t.Any) -> str:
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return ("1" if value else "0") if type_ in (FieldType.LONG, FieldType.BOOL, None) else str(value).lower()
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return format_datetime(value)
    return orjson.dumps(value, default=str).decode()


def encode(record: LogRecord, schema: RecordSchema) -> tuple[LogItem, int]:
    """A ``LogItem`` (all values strings, time = ``created_at``) and its approximate raw size."""
    contents: list[tuple[str, str]] = []
    nulls: list[str] = []
    size = _ITEM_OVERHEAD
    for key, value in record.to_wire().items():
        if value is None:
            nulls.append(key)
            continue
        text = _value(schema.fields.get(key), value)
        contents.append((key, text))
        size += len(key) + len(text.encode("utf-8", "surrogatepass")) + _PAIR_OVERHEAD
    if nulls:
        text = ",".join(nulls)
        contents.append((NULLS_FIELD, text))
        size += len(NULLS_FIELD) + len(text) + _PAIR_OVERHEAD
    try:
        created = record.created_at
        seconds, micros = epoch_seconds(created), created.microsecond
    except (KeyError, ValueError):
        seconds, micros = 0, 0
    # LogItem treats a falsy time as "now"; anything before 1970 is clamped to the epoch's first second.
    item = LogItem(timestamp=max(1, seconds), time_nano_part=micros * 1000 or 1)
    item.contents = contents  # type: ignore[attr-defined]  # assigned: the constructor and set_contents deep-copy
    return item, size


class Writer:
    """Sends batches of one logstore with ``put_logs``."""

    def __init__(
        self,
        client: t.Any,
        project: str,
        *,
        max_records: int = MAX_LOGS_PER_REQUEST,
        max_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        self.client = client
        self.project = project
        self.max_records = max(1, min(max_records, MAX_LOGS_PER_REQUEST))
        self.max_bytes = max(1024, min(max_bytes, MAX_REQUEST_BYTES))

    def write(self, logstore: str, schema: RecordSchema, records: Sequence[LogRecord]) -> WriteResult:
        result = WriteResult()
        encoded: list[tuple[LogRecord, LogItem, int]] = []
        for record in records:
            try:
                item, size = encode(record, schema)
            except (TypeError, ValueError) as exc:
                result.failed.append((record, f"cannot encode record: {exc}", False))
                continue
            if size > MAX_REQUEST_BYTES:
                reason = f"record of about {size} bytes exceeds the SLS request limit ({MAX_REQUEST_BYTES} bytes)"
                result.failed.append((record, reason, False))
                continue
            encoded.append((record, item, size))
        for batch in self.split(encoded):
            self._send(logstore, batch, result)
        return result

    def split(self, items: list[tuple[LogRecord, LogItem, int]]) -> list[list[tuple[LogRecord, LogItem, int]]]:
        """Consecutive batches within the record and byte limits (an oversized record goes alone)."""
        batches: list[list[tuple[LogRecord, LogItem, int]]] = []
        current: list[tuple[LogRecord, LogItem, int]] = []
        size = 0
        for entry in items:
            if current and (len(current) >= self.max_records or size + entry[2] > self.max_bytes):
                batches.append(current)
                current, size = [], 0
            current.append(entry)
            size += entry[2]
        if current:
            batches.append(current)
        return batches

    def _send(self, logstore: str, batch: list[tuple[LogRecord, LogItem, int]], result: WriteResult) -> None:
        request = PutLogsRequest(self.project, logstore, topic="", logitems=[e[1] for e in batch])
        try:
            self.client.put_logs(request)
        except (LogException, TransportError, OSError) as exc:
            error = exc.error if isinstance(exc, TransportError) else exc
            code = error.get_error_code() if isinstance(error, LogException) else type(error).__name__
            message = f"{code}: {error.get_error_message() if isinstance(error, LogException) else error}"
            retryable = is_retryable(exc)
            if retryable or code in _REQUEST_WIDE or len(batch) == 1:
                result.failed.extend((e[0], message, retryable or code in _REQUEST_WIDE) for e in batch)
                return
            # The content was rejected: find the offending record(s) by halving the request.
            logger.warning("SLS rejected a batch of %d records (%s); isolating the bad ones", len(batch), code)
            middle = len(batch) // 2
            self._send(logstore, batch[:middle], result)
            self._send(logstore, batch[middle:], result)
            return
        result.written += len(batch)
