"""Running statements and turning their rows into records.

SQL answers say *which* snapshots win; the snapshots themselves are read as raw logs, because SQL
results cut text at ``max_text_len`` while raw logs come back whole (the upstream plugin returned
truncated payloads from SQL).
"""

from __future__ import annotations

import logging
import time
import typing as t
from collections.abc import Sequence
from dataclasses import dataclass

from aliyun.log import GetLogsRequest
from aliyun.log.logexception import LogException

from flask_difylogstore.backends.aliyun_sls.client import TransportError
from flask_difylogstore.backends.aliyun_sls.query import (
    MAX_RAW_LINES,
    MAX_SEARCH_IDS,
    QueryBuilder,
    Statement,
    plain,
)
from flask_difylogstore.backends.aliyun_sls.writer import NULLS_FIELD
from flask_difylogstore.backends.base import Scope
from flask_difylogstore.errors import BackendUnavailableError
from flask_difylogstore.records import META_FIELDS, FieldType, LogRecord, RecordKind, coerce
from flask_difylogstore.schemas import RecordSchema

logger = logging.getLogger(__name__)

_STRING_TYPES = (FieldType.KEYWORD, FieldType.TEXT, FieldType.JSON)
_ATTEMPTS = 3


@dataclass(frozen=True)
class Winner:
    """The latest visible snapshot of one id, as the SQL step found it."""

    id: str
    log_version: int
    time: int


class Reader:
    """GetLogs for one project, with a small bounded retry on transient failures."""

    def __init__(self, client: t.Any, project: str) -> None:
        self.client = client
        self.project = project

    def run(
        self, logstore: str, statement: Statement, *, line: int = MAX_RAW_LINES, offset: int = 0
    ) -> list[dict[str, str]]:
        request = GetLogsRequest(
            self.project, logstore, statement.from_time, statement.to_time, "", statement.query,
            line=line, offset=offset, reverse=False,
        )  # fmt: skip
        for attempt in range(_ATTEMPTS):
            try:
                response = self.client.get_logs(request)
                break
            except TransportError as exc:
                if attempt == _ATTEMPTS - 1:
                    raise BackendUnavailableError(f"SLS query failed: {exc}") from exc
                time.sleep(0.2 * (attempt + 1))
            except LogException as exc:
                raise BackendUnavailableError(
                    f"SLS query on {logstore} failed: {exc.get_error_code()}: {exc.get_error_message()}"
                ) from exc
        if not response.is_completed():
            # A partial answer would silently drop rows; let the caller retry instead.
            raise BackendUnavailableError(f"SLS query on {logstore} did not complete")
        return [dict(log.get_contents()) for log in response.get_logs()]

    def fetch(
        self, logstore: str, builder: QueryBuilder, scope: Scope, winners: Sequence[Winner]
    ) -> dict[str, LogRecord]:
        """The full snapshots of ``winners``, read as raw logs (never truncated)."""
        found: dict[str, LogRecord] = {}
        for chunk in _chunks(winners):
            wanted = {w.id: w.log_version for w in chunk}
            statement = builder.fetch(scope, [w.id for w in chunk], [w.time for w in chunk])
            offset = 0
            while wanted:
                rows = self.run(logstore, statement, offset=offset)
                for row in rows:
                    rid = row.get("id")
                    if rid in wanted and _int(row.get("log_version")) == wanted[rid] and _owned(row, scope):
                        found[rid] = raw_record(builder.schema, row)
                        del wanted[rid]
                if len(rows) < MAX_RAW_LINES:
                    break
                offset += len(rows)
            if wanted:
                logger.warning("%d winning snapshots in %s were not readable as raw logs", len(wanted), logstore)
        return found

    def latest(self, logstore: str, builder: QueryBuilder, scope: Scope, ids: Sequence[str]) -> dict[str, LogRecord]:
        """Latest visible snapshot of each plain id, from all its raw versions (one request usually)."""
        best: dict[str, dict[str, str]] = {}
        wanted = set(ids)
        statement = builder.lookup(scope, ids)
        offset = 0
        while True:
            rows = self.run(logstore, statement, offset=offset)
            for row in rows:
                rid, version = row.get("id"), _int(row.get("log_version"))
                if rid not in wanted or version is None or not _owned(row, scope):
                    continue
                current = best.get(rid)
                if current is None or version > int(current["log_version"]):
                    best[rid] = row
            if len(rows) < MAX_RAW_LINES:
                break
            offset += len(rows)
        return {
            rid: raw_record(builder.schema, row)
            for rid, row in best.items()
            if row.get("log_deleted", "0") in ("0", "")
        }


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _owned(row: dict[str, str], scope: Scope) -> bool:
    """Exact owner check of a raw row (the search step only pre-filters by tokens)."""
    return all(row.get(f.field) == f.value for f in scope.owner_filters())


def _chunks(winners: Sequence[Winner]) -> list[list[Winner]]:
    """Groups searchable together: plain ids by nearby times, other ids by their exact log second."""
    simple = sorted((w for w in winners if plain(w.id)), key=lambda w: w.time)
    chunks = [simple[i : i + MAX_SEARCH_IDS] for i in range(0, len(simple), MAX_SEARCH_IDS)]
    by_second: dict[int, list[Winner]] = {}
    for w in winners:
        if not plain(w.id):
            by_second.setdefault(w.time, []).append(w)
    return chunks + list(by_second.values())


def raw_record(schema: RecordSchema, row: t.Mapping[str, str]) -> LogRecord:
    """A record from a raw log: strings kept verbatim, other types converted, nulls restored."""
    data: dict[str, t.Any] = {}
    for name, value in row.items():
        type_ = schema.fields.get(name)
        if type_ is None or name in META_FIELDS:
            continue
        data[name] = value if type_ in _STRING_TYPES else coerce(type_, value)
    for name in (row.get(NULLS_FIELD) or "").split(","):
        if name in schema.fields and name not in META_FIELDS:
            data[name] = None
    return LogRecord(schema.kind, data, int(row["log_version"]))


def sql_value(schema: RecordSchema, name: str, value: str | None) -> t.Any:
    """A SQL result value as the field's type; SLS renders NULL as ``null``."""
    if value is None or value == "null":
        return None
    type_ = schema.fields.get(name, FieldType.KEYWORD)
    return value if type_ in _STRING_TYPES else coerce(type_, value)


def light_record(kind: RecordKind, schema: RecordSchema, row: t.Mapping[str, str], fields: Sequence[str]) -> LogRecord:
    """A record built from SQL columns only (used when no text or payload field is asked for)."""
    data = {name: sql_value(schema, name, row.get(name)) for name in fields if name not in META_FIELDS}
    return LogRecord(kind, data, int(row["log_version"]))
