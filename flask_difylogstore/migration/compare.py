"""Is a relational row present and equal in the log store? Shared by ``verify`` and ``cleanup-pg``.

A row is compared with the latest snapshot of its entity field by field, after both sides are
put in one canonical form (datetimes as naive-UTC ISO text, numbers as numbers, JSON payloads
parsed, empty text equal to NULL since some stores do not keep the difference). A snapshot that
differs but carries a *newer* version than the migrated copy would is a live write made after
the row was last updated: the log store is ahead, which is not a loss. Offloaded payloads must
be present in full as PAYLOAD records (and equal to the storage object when it can be read).
"""

from __future__ import annotations

import hashlib
import math
import typing as t
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson

from flask_difylogstore import payloads
from flask_difylogstore.backends.base import Filter, LogBackend, RecordQuery, Scope
from flask_difylogstore.migration.convert import migrated_version, record_data
from flask_difylogstore.migration.source import KindSpec, SourceRow
from flask_difylogstore.migration.storage import PayloadStore
from flask_difylogstore.records import PAYLOAD_COLUMNS, LogRecord, RecordKind, format_datetime

Status = t.Literal["ok", "superseded", "missing", "mismatch", "payload_missing", "payload_mismatch"]
GOOD: frozenset[str] = frozenset({"ok", "superseded"})


@dataclass(frozen=True)
class Check:
    """The verdict on one row."""

    id: str
    status: Status
    detail: str = ""

    @property
    def good(self) -> bool:
        return self.status in GOOD


def canonical(name: str, value: t.Any) -> t.Any:
    """One field in comparable form."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, bool):
        return int(value)
    if name in PAYLOAD_COLUMNS and isinstance(value, str | bytes):
        try:
            return payloads.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _equal(left: t.Any, right: t.Any) -> bool:
    if isinstance(left, float) or isinstance(right, float):
        try:
            return math.isclose(float(left), float(right), rel_tol=1e-9, abs_tol=1e-9)
        except (TypeError, ValueError):
            return False
    return bool(left == right)


def _short(value: t.Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def first_difference(expected: Mapping[str, t.Any], actual: Mapping[str, t.Any]) -> str | None:
    """The first field (in the row's column order) whose values differ, described; ``None`` if equal."""
    for name, value in expected.items():
        left, right = canonical(name, value), canonical(name, actual.get(name))
        if not _equal(left, right):
            return f"{name}: relational {_short(left)} != log store {_short(right)}"
    return None


def content_hash(data: Mapping[str, t.Any], fields: Sequence[str] | None = None) -> str:
    """A SHA-256 of the canonical form of ``data`` (restricted to ``fields``)."""
    names = list(fields) if fields is not None else sorted(data)
    canon = {name: canonical(name, data.get(name)) for name in names}
    return hashlib.sha256(orjson.dumps(canon, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()


def make_searchable(backend: LogBackend) -> None:
    """Ask a near-real-time store (Elasticsearch) to expose recent writes to searches and counts."""
    refresh = getattr(backend, "refresh", None)
    if callable(refresh):
        refresh()


def _by_tenant(rows: Sequence[SourceRow]) -> dict[str, list[SourceRow]]:
    groups: dict[str, list[SourceRow]] = {}
    for row in rows:
        groups.setdefault(str(row.data["tenant_id"]), []).append(row)
    return groups


def fetch_latest(backend: LogBackend, kind: RecordKind, rows: Sequence[SourceRow]) -> dict[str, LogRecord]:
    """The latest snapshot of each row's entity, asked tenant by tenant."""
    found: dict[str, LogRecord] = {}
    for tenant, group in _by_tenant(rows).items():
        found.update(backend.get_latest(kind, [r.id for r in group], Scope(tenant)))
    return found


def fetch_payloads(backend: LogBackend, rows: Sequence[SourceRow]) -> dict[tuple[str, str], str]:
    """Full payload texts stored for the given node executions, by ``(node id, type)``."""
    texts: dict[tuple[str, str], str] = {}
    for tenant, group in _by_tenant([r for r in rows if r.offloads]).items():
        ids = [r.id for r in group]
        query = RecordQuery(
            RecordKind.PAYLOAD,
            Scope(tenant),
            filters=(Filter("node_execution_id", "in", ids),),
            order_by=(("id", "asc"),),
            limit=None,
        )
        texts.update(payloads.assemble_payloads(backend.search(query).records))
    return texts


def _payload_check(row: SourceRow, stored: Mapping[tuple[str, str], str], store: PayloadStore | None) -> Check | None:
    for offload in row.offloads:
        text = stored.get((row.id, offload.type))
        if text is None:
            return Check(row.id, "payload_missing", f"full {offload.type} not in the log store")
        if store is None or offload.key is None:
            continue
        try:
            original = store.load(offload.key).decode("utf-8")
        except Exception:
            continue
        if original != text and payloads.loads(original) != payloads.loads(text):
            return Check(row.id, "payload_mismatch", f"full {offload.type} differs from {offload.key}")
    return None


def check_rows(
    backend: LogBackend, spec: KindSpec, rows: Sequence[SourceRow], store: PayloadStore | None = None
) -> dict[str, Check]:
    """The verdict on every row (see the module docstring for the rules)."""
    found = fetch_latest(backend, spec.kind, rows)
    results: dict[str, Check] = {}
    current: list[SourceRow] = []
    for row in rows:
        actual = found.get(row.id)
        if actual is None:
            results[row.id] = Check(row.id, "missing", "not in the log store")
            continue
        expected = record_data(spec, row)
        difference = first_difference(expected, actual.data)
        if difference is None:
            results[row.id] = Check(row.id, "ok")
            current.append(row)
        elif actual.log_version > migrated_version(spec.kind, expected):
            results[row.id] = Check(row.id, "superseded", difference)
        else:
            results[row.id] = Check(row.id, "mismatch", difference)
    if spec.has_offloads and any(r.offloads for r in current):
        stored = fetch_payloads(backend, current)
        for row in current:
            problem = _payload_check(row, stored, store)
            if problem is not None:
                results[row.id] = problem
    return results
