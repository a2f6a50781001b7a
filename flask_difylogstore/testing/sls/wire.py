"""Decoding of PutLogs bodies: compression and the protobuf ``LogGroup`` the SDK sends."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import lz4.block
from aliyun.log.log_logs_pb2 import LogGroup  # type: ignore[attr-defined]
from aliyun.log.log_logs_raw_pb2 import LogGroupRaw  # type: ignore[attr-defined]
from google.protobuf.message import DecodeError

from flask_difylogstore.testing.sls.errors import SLSError, bad_request

#: SLS rejects a PutLogs body larger than 10 MB (after decompression) ...
MAX_RAW_BODY = 10 * 1024 * 1024
#: ... or holding more than 4096 logs.
MAX_LOGS_PER_REQUEST = 4096


@dataclass(slots=True)
class DecodedGroup:
    """The rows of one ``LogGroup``, ready to be appended to a logstore."""

    topic: str
    source: str
    tags: dict[str, str]
    times: list[int] = field(default_factory=list)
    times_ns: list[int] = field(default_factory=list)
    rows: list[dict[str, str]] = field(default_factory=list)
    raw_size: int = 0


def decompress(body: bytes, compress_type: str, raw_size: int | None) -> bytes:
    """Undo the body compression named by ``x-log-compresstype`` (lz4 block, deflate or none)."""
    kind = compress_type.strip().lower()
    if raw_size is not None and raw_size > MAX_RAW_BODY:
        raise bad_request("PostBodyTooLarge", f"body size {raw_size} must little than {MAX_RAW_BODY}")
    try:
        if kind in ("", "none"):
            data = body
        elif kind == "lz4":
            if raw_size is None:
                raise bad_request("InvalidParameter", "x-log-bodyrawsize is required for lz4 bodies")
            data = lz4.block.decompress(body, uncompressed_size=raw_size)
        elif kind == "deflate":
            data = zlib.decompress(body)
        else:
            raise bad_request("InvalidCompressType", f"compress type {compress_type} is not supported")
    except SLSError:
        raise
    except Exception as exc:
        raise bad_request("PostBodyUncompressError", f"failed to decompress body: {exc}") from exc
    if len(data) > MAX_RAW_BODY:
        raise bad_request("PostBodyTooLarge", f"body size {len(data)} must little than {MAX_RAW_BODY}")
    return data


def decode_log_group(data: bytes) -> DecodedGroup:
    """Parse a serialized ``LogGroup``.

    The message with string values decodes UTF-8 in C and is tried first; it hands back bytes for
    values that are not valid UTF-8, and then the bytes variant is used with such values replaced.
    """
    try:
        group = LogGroup()
        group.ParseFromString(data)
        logs = group.Logs
        rows = [{c.Key: c.Value for c in log.Contents} for log in logs]
        if any(type(v) is not str for row in rows for v in row.values()):
            raise ValueError("not UTF-8")
    except (DecodeError, UnicodeDecodeError, ValueError):
        raw = LogGroupRaw()
        try:
            raw.ParseFromString(data)
        except DecodeError as exc:
            raise bad_request("PostBodyInvalid", f"failed to parse log group: {exc}") from exc
        group, logs = raw, raw.Logs
        rows = [{c.Key: c.Value.decode(errors="replace") for c in log.Contents} for log in logs]
    if len(logs) > MAX_LOGS_PER_REQUEST:
        raise bad_request(
            "InvalidLogSize",
            f"logItems' length exceeds maximum limitation: {MAX_LOGS_PER_REQUEST} lines, got {len(logs)}",
        )
    return DecodedGroup(
        topic=group.Topic,
        source=group.Source,
        tags={tag.Key: tag.Value for tag in group.LogTags},
        times=[log.Time for log in logs],
        times_ns=[log.Time_ns for log in logs],
        rows=rows,
        raw_size=len(data),
    )
