"""Every stored field within the backend's limits: the write path's safety net.

Dify's truncation of inputs / outputs / process_data (with the full value kept aside) happens when
records are built (:mod:`flask_difylogstore.payloads`); here any other field — ``error``, ``graph``,
run payloads — is bounded so that one record always fits a backend request.
"""

from __future__ import annotations

import dataclasses
import typing as t

import orjson

from flask_difylogstore.payloads import ELLIPSIS, TruncationLimits, Truncator, dumps
from flask_difylogstore.records import LogRecord

# -- bounding every stored field ----------------------------------------------------------------

#: Fields holding JSON text: cut with the structure-preserving truncation, not as plain text.
JSON_FIELDS = frozenset({"inputs", "outputs", "process_data", "graph", "execution_metadata"})
#: Fields never cut: identifiers, owners, times, statuses (short by construction).
#: ``content`` is a PAYLOAD chunk, bounded by :data:`CHUNK_BYTES` when split (cutting it would corrupt the full value).
_UNBOUNDED = frozenset({"id", "tenant_id", "app_id", "created_at", "node_execution_id", "workflow_run_id", "content"})


def bound_text(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes (with ``...``), on a character boundary."""
    raw = text.encode("utf-8", errors="replace")
    if len(raw) <= max_bytes:
        return text
    end = max(0, max_bytes - len(ELLIPSIS))
    while end > 0 and (raw[end] & 0xC0) == 0x80:
        end -= 1
    return raw[:end].decode("utf-8", errors="replace") + ELLIPSIS


def bound_json_text(text: str, max_bytes: int, truncator: Truncator) -> str:
    """JSON ``text`` within ``max_bytes``: Dify's truncation of the parsed value, plain cutting otherwise."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return bound_text(text, max_bytes)
    limits = dataclasses.replace(truncator.limits, max_size=max(16, max_bytes))
    cutter = Truncator(limits)
    plain = value if isinstance(value, dict) else {"value": value}
    truncated, _ = cutter.truncate_mapping(plain)
    result = truncated if isinstance(value, dict) else truncated.get("value")
    bounded = dumps(result, sort_keys=isinstance(value, dict))
    return bounded if len(bounded.encode("utf-8")) <= max_bytes else bound_text(bounded, max_bytes)


def _text_size(value: str) -> int:
    """UTF-8 size of ``value``, computed only when its length does not already settle it."""
    return len(value) if value.isascii() else len(value.encode("utf-8", errors="replace"))


def bound_record(record: LogRecord, limits: TruncationLimits, record_max_bytes: int) -> LogRecord:
    """``record`` with every text field within ``limits.max_size`` and all of them within ``record_max_bytes``.

    The safety net of the write path (Dify's truncation of inputs / outputs / process_data happens
    when records are built, with the full value offloaded): ``error``, ``graph``, run payloads and
    anything else can be arbitrarily large, and one record must always fit a backend request. JSON
    fields keep their structure (Dify's truncation semantics); other text is cut with ``...``. The
    record is returned unchanged (the same object) when nothing is over its limit.
    """
    data = record.data
    quick = limits.max_size // 4  # a string this short (in characters) is within the limit in bytes
    sizes = {k: _text_size(v) for k, v in data.items() if type(v) is str and len(v) > quick and k not in _UNBOUNDED}
    over = {k: s for k, s in sizes.items() if s > limits.max_size}
    caps = dict.fromkeys(over, limits.max_size)
    total = sum(_text_size(v) for v in data.values() if type(v) is str) + 64 * len(data)
    total -= sum(s - limits.max_size for s in over.values())
    truncator = Truncator(limits)
    while total > record_max_bytes:
        # Halve the largest remaining field until the whole record fits.
        candidates = {k: caps.get(k, s) for k, s in sizes.items()}
        largest = max(candidates, key=lambda k: candidates[k], default=None)
        if largest is None or candidates[largest] <= 1024:
            break
        caps[largest] = candidates[largest] // 2
        total -= candidates[largest] - caps[largest]
    if not caps:
        return record
    bounded = dict(data)
    for key, cap in caps.items():
        text = t.cast(str, data[key])
        bounded[key] = bound_json_text(text, cap, truncator) if key in JSON_FIELDS else bound_text(text, cap)
    return LogRecord(record.kind, bounded, record.log_version)
