"""JSON encoding of payloads, Dify's truncation semantics, and full payloads split into PAYLOAD records.

Encoding never fails: values orjson cannot serialise natively go through :func:`_default`
(datetimes, decimals, UUIDs, enums, bytes, sets, pydantic models, dataclasses; anything else via
``str()``), NaN / Infinity become ``null``, and inputs orjson still rejects (too deep, lone
surrogates, integers beyond 64 bits) are sanitised first. One bad value therefore never fails a
save or a batch.

Truncation follows Dify's ``VariableTruncator``: a payload whose JSON exceeds the size budget is
replaced by a structure-preserving copy (strings cut to the string limit, arrays to the array
limit, the budget shared among keys) and a flag; the full JSON is kept as PAYLOAD records of at
most :data:`CHUNK_BYTES` each, with ids ``<node_execution_id>:<type>:<chunk>``.
"""

from __future__ import annotations

import dataclasses
import math
import typing as t
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum

import orjson

from flask_difylogstore.records import LogRecord, RecordKind

#: Largest JSON text of one PAYLOAD record, in UTF-8 bytes.
CHUNK_BYTES = 256 * 1024
#: Nesting depth kept when sanitising; deeper values become their ``str()`` (orjson stops at 255).
MAX_DEPTH = 200
ELLIPSIS = "..."
_BASE_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
#: :func:`encode_payload`'s one-pass form: like ``dumps(..., sort_keys=True)``, but string keys only.
_FAST_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS


def _fast_default(value: t.Any) -> t.Any:
    """:func:`_default` for the one-pass form, which declines dataclasses (orjson keeps their field
    order even when sorting keys; the round trip sorts them)."""
    if dataclasses.is_dataclass(value):
        raise TypeError("dataclass: serialised through plain data")
    return _default(value)


def _default(value: t.Any) -> t.Any:
    """orjson's fallback hook: a JSON-friendly stand-in for a value it can't serialise itself."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, set | frozenset):
        items = list(value)
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Enum):
        return value.value
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        return model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | list):
        return list(value)
    try:
        return str(value)
    except Exception:
        return f"<unserialisable {type(value).__name__}>"


def _sanitise(value: t.Any, depth: int = 0) -> t.Any:
    """A plain JSON-compatible copy, for inputs orjson rejects even with the default hook."""
    if depth >= MAX_DEPTH:
        return _safe_str(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value.encode("utf-8", errors="replace").decode("utf-8")
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {_sanitise_key(k): _sanitise(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_sanitise(v, depth + 1) for v in value]
    substitute = _default(value)
    if substitute is value or isinstance(substitute, str):
        return _sanitise(str(substitute), depth + 1)
    return _sanitise(substitute, depth + 1)


def _sanitise_key(key: t.Any) -> str:
    text = key if isinstance(key, str) else _safe_str(key)
    return text.encode("utf-8", errors="replace").decode("utf-8")


def _safe_str(value: t.Any) -> str:
    try:
        return str(value).encode("utf-8", errors="replace").decode("utf-8")
    except Exception:
        return f"<unserialisable {type(value).__name__}>"


def dumps_bytes(value: t.Any, *, sort_keys: bool = False) -> bytes:
    """Serialise ``value`` to JSON bytes; never raises (see the module docstring)."""
    option = _BASE_OPTIONS | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    try:
        return orjson.dumps(value, default=_default, option=option)
    except (orjson.JSONEncodeError, TypeError, ValueError, RecursionError):
        return orjson.dumps(_sanitise(value), option=option)


def dumps(value: t.Any, *, sort_keys: bool = False) -> str:
    """Serialise ``value`` to JSON text; never raises."""
    return dumps_bytes(value, sort_keys=sort_keys).decode("utf-8")


def loads(text: str | bytes | None) -> t.Any:
    """Parse JSON text (``None`` / empty gives ``None``)."""
    if not text:
        return None
    return orjson.loads(text)


def to_jsonable(value: t.Any) -> t.Any:
    """``value`` as plain JSON data (dicts, lists, str, numbers, bool, None)."""
    return orjson.loads(dumps_bytes(value))


def json_size(value: t.Any) -> int:
    """Size of ``value``'s JSON text in bytes."""
    return len(dumps_bytes(value))


@dataclasses.dataclass(frozen=True)
class TruncationLimits:
    """Dify's ``WORKFLOW_VARIABLE_TRUNCATION_*`` limits."""

    max_size: int = 1024_000
    string_length: int = 100_000
    array_length: int = 1000

    @classmethod
    def from_settings(cls, settings: t.Any) -> TruncationLimits:
        return cls(settings.truncation_max_size, settings.truncation_string_length, settings.truncation_array_length)


class Truncator:
    """Structure-preserving truncation of payload mappings, as Dify's ``VariableTruncator``."""

    def __init__(self, limits: TruncationLimits | None = None) -> None:
        self.limits = limits or TruncationLimits()

    def truncate_mapping(self, mapping: Mapping[str, t.Any]) -> tuple[dict[str, t.Any], bool]:
        """A copy of ``mapping`` within the size budget, and whether anything was cut.

        ``mapping`` must already be plain JSON data (see :func:`to_jsonable`).
        """
        data = dict(mapping)
        if json_size(data) <= self.limits.max_size:
            return data, False
        return self._truncate_object(data, self.limits.max_size), True

    def _truncate(self, value: t.Any, budget: int) -> t.Any:
        if isinstance(value, str):
            return self._truncate_string(value, budget)
        if isinstance(value, list):
            return self._truncate_array(value, budget)
        if isinstance(value, dict):
            return self._truncate_object(value, budget)
        return value

    def _truncate_string(self, value: str, budget: int) -> str:
        limit = min(self.limits.string_length, max(budget - len(ELLIPSIS) - 2, 0))
        if len(value) <= limit and json_size(value) <= budget:
            return value
        cut = value[:limit]
        while cut and json_size(cut) + len(ELLIPSIS) > budget:
            cut = cut[: len(cut) * 3 // 4]
        return cut + ELLIPSIS

    def _truncate_array(self, value: list[t.Any], budget: int) -> list[t.Any]:
        result: list[t.Any] = []
        used = 2
        for item in value[: self.limits.array_length]:
            remaining = budget - used
            if remaining <= 0:
                break
            part = self._truncate(item, remaining)
            size = json_size(part) + 1
            if used + size > budget:
                break
            result.append(part)
            used += size
        return result

    def _truncate_object(self, value: dict[str, t.Any], budget: int) -> dict[str, t.Any]:
        """Every key while the budget lasts, values cut to their share; the keys past it are dropped.

        As Dify's ``VariableTruncator._truncate_object``: a mapping of millions of keys is bounded
        by the budget too, not only its values.
        """
        result: dict[str, t.Any] = {}
        used = 2
        keys = list(value)
        for position, key in enumerate(keys):
            key_size = json_size(key) + 2
            remaining = budget - used - key_size
            if remaining <= 0:
                break
            # An even share of what is left; at least a little, so many keys with small values
            # keep the first ones whole instead of leaving an empty object.
            share = max(remaining // (len(keys) - position), min(remaining, 16))
            part = self._truncate(value[key], share)
            pair = key_size + json_size(part)
            if used + pair > budget:
                break
            result[key] = part
            used += pair
        return result


@dataclasses.dataclass
class EncodedPayload:
    """One payload column as stored: the (possibly truncated) JSON text and the full text when cut."""

    text: str | None
    truncated_value: dict[str, t.Any] | None = None
    full_text: str | None = None

    @property
    def truncated(self) -> bool:
        return self.full_text is not None


def encode_payload(value: Mapping[str, t.Any] | None, truncator: Truncator | None) -> EncodedPayload:
    """Encode a node payload like Dify's SQL repository: sorted keys, truncated when too large."""
    if value is None:
        return EncodedPayload(None)
    if type(value) is dict:
        # One serialisation instead of three (to plain data, back, sorted) when that gives the same
        # text: string keys only (non-string keys may collide once made strings, which the
        # round trip would collapse), nothing orjson rejects.
        try:
            raw = orjson.dumps(value, default=_fast_default, option=_FAST_OPTIONS)
        except (orjson.JSONEncodeError, TypeError, ValueError, RecursionError):
            raw = None
        if raw is not None and (truncator is None or len(raw) <= truncator.limits.max_size):
            return EncodedPayload(raw.decode("utf-8"))
    plain = to_jsonable(value)
    if not isinstance(plain, dict):
        plain = {"value": plain}
    full_text = dumps(plain, sort_keys=True)
    if truncator is None or len(full_text.encode("utf-8")) <= truncator.limits.max_size:
        return EncodedPayload(full_text)
    truncated, was_truncated = truncator.truncate_mapping(plain)
    if not was_truncated:
        return EncodedPayload(full_text)
    return EncodedPayload(dumps(truncated, sort_keys=True), truncated, full_text)


def split_chunks(text: str, chunk_bytes: int = CHUNK_BYTES) -> list[str]:
    """Split ``text`` into pieces of at most ``chunk_bytes`` UTF-8 bytes, on character boundaries."""
    raw = text.encode("utf-8")
    if len(raw) <= chunk_bytes:
        return [text]
    chunks: list[str] = []
    start = 0
    while start < len(raw):
        end = min(start + chunk_bytes, len(raw))
        while end < len(raw) and (raw[end] & 0xC0) == 0x80:  # never cut inside a character
            end -= 1
        chunks.append(raw[start:end].decode("utf-8"))
        start = end
    return chunks


def payload_id(node_execution_id: str, payload_type: str, chunk: int) -> str:
    return f"{node_execution_id}:{payload_type}:{chunk}"


def payload_records(
    full_text: str,
    *,
    node_execution_id: str,
    payload_type: str,
    tenant_id: str,
    app_id: str,
    created_at: datetime,
    log_version: int,
) -> list[LogRecord]:
    """The PAYLOAD records holding ``full_text`` (all share the node snapshot's ``log_version``)."""
    chunks = split_chunks(full_text)
    return [
        LogRecord(
            RecordKind.PAYLOAD,
            {
                "id": payload_id(node_execution_id, payload_type, index),
                "tenant_id": tenant_id,
                "app_id": app_id,
                "node_execution_id": node_execution_id,
                "type": payload_type,
                "chunk_index": index,
                "chunk_count": len(chunks),
                "content": chunk,
                "created_at": created_at,
            },
            log_version,
        )
        for index, chunk in enumerate(chunks)
    ]


def assemble_payloads(records: Iterable[LogRecord]) -> dict[tuple[str, str], str]:
    """Full JSON text per ``(node_execution_id, type)`` from PAYLOAD records.

    A set is used only when every chunk of the newest write is present; chunks left over from an
    older, longer write are ignored.
    """
    groups: dict[tuple[str, str], dict[int, LogRecord]] = {}
    for record in records:
        if record.deleted:
            continue
        key = (str(record.data["node_execution_id"]), str(record.data["type"]))
        groups.setdefault(key, {})[int(record.data["chunk_index"])] = record
    result: dict[tuple[str, str], str] = {}
    for key, chunks in groups.items():
        first = chunks.get(0)
        if first is None:
            continue
        count = int(first.data["chunk_count"])
        parts = [chunks.get(i) for i in range(count)]
        if any(p is None or p.log_version != first.log_version for p in parts):
            continue
        result[key] = "".join(str(p.data["content"]) for p in parts if p is not None)
    return result
