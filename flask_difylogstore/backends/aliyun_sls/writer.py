"""Turning records into ``PutLogs`` requests: encoding, batch splitting and per-record failures.

The log time of every item is the record's ``created_at``, so time-bounded reads can narrow the
SLS ``from``/``to`` window. Batches are split under SLS's 4096-logs / 10 MB-per-request limits;
a request rejected for its content is bisected, so one bad record fails alone instead of taking
its whole batch down.

SLS accepts a log time only from the logstore's retention back to a day ahead, and silently drops
the others while answering 200: a record whose ``created_at`` lies outside that window is refused
here for good (dead-lettered, with the reason), never counted as written.
"""

from __future__ import annotations

import logging
import os
import struct
import time
import typing as t
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from enum import Enum

import orjson
from aliyun.log import LogClient, LogItem, PutLogsRequest
from aliyun.log.logexception import LogException
from aliyun.log.util import Util

from flask_difylogstore.backends.aliyun_sls.client import TransportError, is_retryable
from flask_difylogstore.backends.base import WriteResult
from flask_difylogstore.records import FieldType, LogRecord, format_datetime
from flask_difylogstore.schemas import RecordSchema

logger = logging.getLogger(__name__)

#: SLS limits per PutLogs request.
MAX_LOGS_PER_REQUEST = 4096
HARD_REQUEST_BYTES = 10 * 1024 * 1024
#: Largest raw request this writer sends; leaves room for protobuf framing and the log group.
MAX_REQUEST_BYTES = 9 * 1024 * 1024
#: Meta field listing the fields that were ``None`` (SLS has no null; an absent key reads back absent).
NULLS_FIELD = "log_nulls"
_ITEM_OVERHEAD = 16
#: Records encoded between two offers of the GIL to other threads.
YIELD_EVERY = 16
_yield: t.Callable[[], None] = getattr(os, "sched_yield", lambda: None)
_PAIR_OVERHEAD = 6
#: SLS drops logs whose time is further ahead than a day; the margin covers the trip to the server.
MAX_AHEAD_S = 86_400 - 300
#: Logs older than the retention are dropped too (and would expire at once); same margin.
RETENTION_MARGIN_S = 300

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


def _contents(record: LogRecord, schema: RecordSchema) -> list[tuple[str, str]]:
    """The ``(key, text)`` pairs of a record as stored: every non-null value, then :data:`NULLS_FIELD`."""
    contents: list[tuple[str, str]] = []
    nulls: list[str] = []
    fields = schema.fields
    for key, value in record.data.items():
        if value is None:
            nulls.append(key)
        elif type(value) is str:
            contents.append((key, value))
        else:
            contents.append((key, _value(fields.get(key), value)))
    contents.append(("log_version", str(record.log_version)))
    contents.append(("log_deleted", "1" if record.deleted else "0"))
    if nulls:
        contents.append((NULLS_FIELD, ",".join(nulls)))
    return contents


def _log_time(record: LogRecord) -> tuple[int, int]:
    """``(seconds, nanoseconds)`` of the log time: ``created_at``, clamped as :class:`LogItem` needs."""
    try:
        created = record.created_at
        if created.tzinfo is not None:
            created = created.astimezone(UTC).replace(tzinfo=None)
        seconds, micros = (created - _EPOCH) // _SECOND, created.microsecond
    except (KeyError, ValueError, OverflowError):
        seconds, micros = 0, 0
    # LogItem treats a falsy time as "now"; anything before 1970 is clamped to the epoch's first second.
    return max(1, seconds), micros * 1000 or 1


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_EPOCH = datetime(1970, 1, 1)
_SECOND = timedelta(seconds=1)
_FIXED32 = struct.Struct("<I")
#: Encoded ``Content.Key`` (tag, length, UTF-8) per field name; field names are few.
_KEY_CACHE: dict[str, tuple[bytes, int, int]] = {}


def _varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative integer."""
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL_VARINTS = [_varint(n) for n in range(1 << 14)]
#: ``Log.Contents`` tag (field 2, length-delimited) and length, for entries shorter than 16 KiB.
_CONTENT_TAG = [b"\x12" + prefix for prefix in _SMALL_VARINTS]


def _len_prefix(size: int) -> bytes:
    return _SMALL_VARINTS[size] if size < 16384 else _varint(size)


def _key_entry(key: str) -> tuple[bytes, int, int]:
    """``Content.Key`` of a field (tag, length, UTF-8) with the ``Value`` tag after it, the length of
    that plus one (a short value's length prefix), and the field's share of the size estimate."""
    entry = _KEY_CACHE.get(key)
    if entry is None:
        raw = key.encode("utf-8")
        head = b"\x0a" + _len_prefix(len(raw)) + raw + b"\x12"
        entry = (head, len(head) + 1, len(key) + _PAIR_OVERHEAD)
        if len(_KEY_CACHE) < 4096:
            _KEY_CACHE[key] = entry
    return entry


def encode_raw(record: LogRecord, schema: RecordSchema) -> tuple[bytes, int]:
    """The record as one protobuf ``Log`` entry of a ``LogGroup`` (field 1, framed), and its raw size.

    Byte for byte what the SDK's ``put_logs`` serialises for the :class:`LogItem` of :func:`encode`
    (``Log``: ``Time`` = 1 varint, ``Contents`` = 2, ``Time_ns`` = 4 fixed32; ``Content``: ``Key`` = 1,
    ``Value`` = 2), built in one pass instead of field by field.
    """
    seconds, nanos = _log_time(record)
    parts: list[bytes] = [b"\x08", _varint(seconds)]
    small = _SMALL_VARINTS
    tags = _CONTENT_TAG
    keys = _KEY_CACHE
    fields = schema.fields
    nulls: list[str] = []
    size = _ITEM_OVERHEAD
    for key, value in record.data.items():
        if value is None:
            nulls.append(key)
            continue
        kind = type(value)
        if kind is str:
            raw = value.encode("utf-8")
        elif kind is int:
            raw = str(value).encode("utf-8")
        elif kind is datetime:
            raw = format_datetime(value).encode("utf-8")
        else:
            raw = _value(fields.get(key), value).encode("utf-8")
        cached = keys.get(key) or _key_entry(key)
        length = len(raw)
        if length < 128 and cached[1] + length < 16384:
            parts += (tags[cached[1] + length], cached[0], small[length], raw)
        else:
            prefix = _len_prefix(length)
            content = cached[1] + len(prefix) - 1 + length
            parts += (tags[content] if content < 16384 else b"\x12" + _varint(content), cached[0], prefix, raw)
        size += cached[2] + length
    tail = [("log_version", str(record.log_version)), ("log_deleted", "1" if record.deleted else "0")]
    if nulls:
        tail.append((NULLS_FIELD, ",".join(nulls)))
    for key, text in tail:
        raw = text.encode("utf-8")
        cached = _key_entry(key)
        prefix = _len_prefix(len(raw))
        parts += (b"\x12" + _len_prefix(cached[1] - 1 + len(prefix) + len(raw)), cached[0], prefix, raw)
        size += cached[2] + len(raw)
    parts.append(b"\x25")
    parts.append(_FIXED32.pack(nanos))
    body = b"".join(parts)
    return b"\x0a" + _len_prefix(len(body)) + body, size


class _RawLogGroup:
    """A serialised ``LogGroup`` handed to ``LogClient.put_log_raw`` (which only calls this method)."""

    __slots__ = ("_body",)

    def __init__(self, body: bytes) -> None:
        self._body = body

    def SerializeToString(self) -> bytes:  # the protobuf name put_log_raw calls
        return self._body


def log_group_bytes(logs: Sequence[bytes], source: str, topic: str = "") -> bytes:
    """A serialised ``LogGroup`` of encoded ``Log`` entries, with ``Topic`` and ``Source`` as ``put_logs`` sets them."""
    topic_raw = topic.encode("utf-8")
    source_raw = source.encode("utf-8")
    return b"".join(
        (
            *logs,
            b"\x1a",
            _len_prefix(len(topic_raw)),
            topic_raw,
            b"\x22",
            _len_prefix(len(source_raw)),
            source_raw,
        )
    )


def encode(record: LogRecord, schema: RecordSchema) -> tuple[LogItem, int]:
    """A ``LogItem`` (all values strings, time = ``created_at``) and its approximate raw size."""
    contents = _contents(record, schema)
    size = _ITEM_OVERHEAD
    for key, text in contents:
        size += len(key) + len(text.encode("utf-8", "surrogatepass")) + _PAIR_OVERHEAD
    seconds, nanos = _log_time(record)
    item = LogItem(timestamp=seconds, time_nano_part=nanos)
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
        retention_days: int | None = None,
        clock: t.Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.project = project
        self.retention_days = retention_days
        #: Retention of logstores whose own differs from ``retention_days`` (found by provisioning).
        self.retention_by_logstore: dict[str, int] = {}
        self._clock = clock
        self.max_records = max(1, min(max_records, MAX_LOGS_PER_REQUEST))
        self.max_bytes = max(1024, min(max_bytes, MAX_REQUEST_BYTES))

    def write(self, logstore: str, schema: RecordSchema, records: Sequence[LogRecord]) -> WriteResult:
        result = WriteResult()
        # A real LogClient gets the LogGroup built in one go (put_log_raw: same request, same signing);
        # anything else (a wrapper, a test double) gets PutLogsRequest objects through put_logs.
        raw = isinstance(self.client, LogClient)
        retention = self.retention_by_logstore.get(logstore, self.retention_days)
        encoder: t.Callable[[LogRecord, RecordSchema], tuple[t.Any, int]] = encode_raw if raw else encode
        encoded: list[tuple[LogRecord, t.Any, int]] = []
        for count, record in enumerate(records, 1):
            if count % YIELD_EVERY == 0:
                # Let a saving thread that waits for the GIL have it now rather than at the
                # interpreter's next forced switch (save() latency, DESIGN decision 2). An OS-level
                # yield: never a gevent switch, whichever thread this runs on.
                _yield()
            outside = self.outside_time_window(record, retention)
            if outside:
                result.failed.append((record, outside, False))
                continue
            try:
                item, size = encoder(record, schema)
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

    def outside_time_window(self, record: LogRecord, retention_days: int | None = None) -> str | None:
        """Why SLS would drop ``record`` for its log time (``created_at``), or ``None`` when it keeps it."""
        seconds, _ = _log_time(record)
        now = self._clock()
        if seconds > now + MAX_AHEAD_S:
            ahead = (seconds - now) / 86_400
            return (
                f"created_at {_iso(seconds)} is {ahead:.1f} days ahead of now; SLS drops logs more than a day "
                "in the future, so it would never be readable (check the clock of the saving host)"
            )
        if retention_days is not None and seconds < now - retention_days * 86_400 + RETENTION_MARGIN_S:
            age = (now - seconds) / 86_400
            return (
                f"created_at {_iso(seconds)} is {age:.0f} days old, beyond the logstore retention of "
                f"{retention_days} days (ALIYUN_SLS_LOGSTORE_TTL); SLS drops such logs, so it would never be "
                "readable (raise the logstore's retention to keep older records)"
            )
        return None

    def split(self, items: list[tuple[LogRecord, t.Any, int]]) -> list[list[tuple[LogRecord, t.Any, int]]]:
        """Consecutive batches within the record and byte limits (an oversized record goes alone)."""
        batches: list[list[tuple[LogRecord, t.Any, int]]] = []
        current: list[tuple[LogRecord, t.Any, int]] = []
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

    def _send(self, logstore: str, batch: list[tuple[LogRecord, t.Any, int]], result: WriteResult) -> None:
        try:
            if isinstance(batch[0][1], bytes):
                body = log_group_bytes([e[1] for e in batch], self._source())
                self.client.put_log_raw(self.project, logstore, _RawLogGroup(body))
            else:
                self.client.put_logs(PutLogsRequest(self.project, logstore, topic="", logitems=[e[1] for e in batch]))
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

    def _source(self) -> str:
        """The ``Source`` of every log group, as ``put_logs`` fills it in (resolved once, like the SDK)."""
        client = t.cast(t.Any, self.client)
        if client._source == "127.0.0.1":
            client._source = t.cast(t.Any, Util).get_host_ip(self.project + "." + client._logHost)
        return str(client._source)
