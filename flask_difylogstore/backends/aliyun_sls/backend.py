"""The Aliyun SLS backend: one logstore per record kind, append-only versions, latest wins."""

from __future__ import annotations

import socket
import time
import typing as t
from collections.abc import Sequence

from aliyun.log.logexception import LogException

from flask_difylogstore.backends.aliyun_sls.client import TransportError, endpoint_host, make_client
from flask_difylogstore.backends.aliyun_sls.provisioning import Provisioner
from flask_difylogstore.backends.aliyun_sls.query import (
    MAX_SEARCH_IDS,
    MAX_SQL_OFFSET,
    MAX_SQL_ROWS,
    QueryBuilder,
    plain,
)
from flask_difylogstore.backends.aliyun_sls.reader import Reader, Winner, light_record, sql_value
from flask_difylogstore.backends.aliyun_sls.writer import MAX_LOGS_PER_REQUEST, MAX_REQUEST_BYTES, Writer
from flask_difylogstore.backends.base import (
    AggregateQuery,
    Filter,
    Page,
    PingResult,
    ProvisionReport,
    RecordQuery,
    Scope,
    TimeRange,
    WriteResult,
)
from flask_difylogstore.records import FieldType, LogRecord, RecordKind, VersionClock, compose_version, default_clock
from flask_difylogstore.schemas import RecordSchema, schemas
from flask_difylogstore.settings import AliyunSLSSettings, LogStoreSettings

#: Rows per internal SQL page: pages follow the keyset, so no offset cap is ever reached.
SQL_PAGE = 1000
#: Ids per by-id lookup: small enough to be a search pre-filter, so SLS ranks only their versions.
IDS_PER_QUERY = MAX_SEARCH_IDS
_LIGHT_TYPES = (FieldType.KEYWORD, FieldType.DATETIME, FieldType.LONG, FieldType.DOUBLE, FieldType.BOOL)


class AliyunSLSBackend:
    """Stores records in SLS logstores ``<prefix><kind>`` of one project."""

    name = "aliyun_sls"

    def __init__(
        self,
        settings: AliyunSLSSettings,
        *,
        max_batch_records: int = MAX_LOGS_PER_REQUEST,
        max_batch_bytes: int = MAX_REQUEST_BYTES,
        record_schemas: t.Mapping[RecordKind, RecordSchema] | None = None,
        create_project: bool = True,
        clock: VersionClock | None = None,
    ) -> None:
        self.settings = settings
        self.project = settings.project_name
        self.client = make_client(settings)
        self.schemas = dict(record_schemas or schemas())
        self.logstores = {kind: f"{settings.logstore_prefix}{kind.value}" for kind in self.schemas}
        self.builders = {kind: QueryBuilder(schema) for kind, schema in self.schemas.items()}
        self.writer = Writer(
            self.client,
            self.project,
            max_records=max_batch_records,
            max_bytes=max_batch_bytes,
            retention_days=settings.logstore_ttl,
        )
        self.max_batch_records = self.writer.max_records
        self.max_batch_bytes = self.writer.max_bytes
        self.reader = Reader(self.client, self.project)
        self.create_project = create_project
        self.clock = clock or default_clock

    @classmethod
    def from_settings(cls, settings: LogStoreSettings) -> AliyunSLSBackend:
        return cls(
            settings.sls,
            max_batch_records=settings.pipeline.batch_max_records,
            max_batch_bytes=settings.pipeline.batch_max_bytes,
        )

    # --- provisioning and health -------------------------------------------------------------
    def provision(self, *, dry_run: bool = False) -> ProvisionReport:
        provisioner = Provisioner(
            self.client, self.project, self.logstores, self.schemas,
            ttl=self.settings.logstore_ttl, shard_count=self.settings.shard_count,
            max_text_len=self.settings.max_text_len, create_project=self.create_project,
        )  # fmt: skip
        report = provisioner.run(dry_run=dry_run)
        if not dry_run:
            self.writer.retention_by_logstore.update(provisioner.ttls)
        return report

    def ping(self) -> PingResult:
        timeout = self.settings.check_connectivity_timeout
        started = time.perf_counter()
        try:
            host = endpoint_host(self.settings.endpoint)
            port = _port(self.settings.endpoint)
            with socket.create_connection((host, port), timeout=timeout):
                pass
            probe = make_client(self.settings, timeout=timeout)
            try:
                probe.get_project(self.project)
            finally:
                t.cast(t.Any, probe)._session.close()
        except (OSError, LogException, TransportError) as exc:
            error = f"{exc.get_error_code()}: {exc.get_error_message()}" if isinstance(exc, LogException) else str(exc)
            return PingResult(self.name, False, _ms(started), error)
        return PingResult(self.name, True, _ms(started))

    def close(self) -> None:
        t.cast(t.Any, self.client)._session.close()

    # --- writes ----------------------------------------------------------------------------------
    def write(self, records: Sequence[LogRecord]) -> WriteResult:
        result = WriteResult()
        by_kind: dict[RecordKind, list[LogRecord]] = {}
        for record in records:
            by_kind.setdefault(record.kind, []).append(record)
        for kind, batch in by_kind.items():
            part = self.writer.write(self.logstores[kind], self.schemas[kind], batch)
            result.written += part.written
            result.stale += part.stale
            result.failed.extend(part.failed)
        return result

    # --- reads -----------------------------------------------------------------------------------
    def get_latest(self, kind: RecordKind, ids: Sequence[str], scope: Scope) -> dict[str, LogRecord]:
        unique = list(dict.fromkeys(str(i) for i in ids))
        found: dict[str, LogRecord] = {}
        simple = [i for i in unique if plain(i)]
        for i in range(0, len(simple), IDS_PER_QUERY):
            chunk = simple[i : i + IDS_PER_QUERY]
            found.update(self.reader.latest(self.logstores[kind], self.builders[kind], scope, chunk))
        odd = [i for i in unique if not plain(i)]
        for i in range(0, len(odd), IDS_PER_QUERY):
            chunk = odd[i : i + IDS_PER_QUERY]
            query = RecordQuery(
                kind, scope, filters=(Filter("id", "in", chunk),), order_by=(("id", "asc"),), limit=None
            )
            found.update((r.id, r) for r in self.search(query).records)
        return found

    def search(self, query: RecordQuery) -> Page:
        kind, builder = query.kind, self.builders[query.kind]
        schema = builder.schema
        light_fields = self._light_fields(schema, query.fields)
        keys = builder.order_keys(query.order_by)
        columns = list(dict.fromkeys([*(k for k, _ in keys), *(light_fields or [])]))
        remaining = query.limit if query.limit is not None else None
        after: tuple[t.Any, ...] | None = tuple(query.after) if query.after is not None else None
        records: list[LogRecord] = []
        next_after: tuple[t.Any, ...] | None = None
        while remaining is None or remaining > 0:
            want = SQL_PAGE if remaining is None else min(remaining + 1, SQL_PAGE)
            statement = builder.rows(
                query.scope, query.filters, query.time_range, order_by=query.order_by,
                columns=columns, after=after, count=want, keyword=query.keyword,
            )  # fmt: skip
            rows = self.reader.run(self.logstores[kind], statement)
            more = len(rows) >= want
            if remaining is not None and len(rows) > remaining:
                rows = rows[:remaining]
            if not rows:
                break
            records.extend(self._materialise(kind, schema, query.scope, rows, light_fields, query.fields))
            after = tuple(sql_value(schema, k, rows[-1].get(k)) for k, _ in keys)
            if remaining is not None:
                remaining -= len(rows)
                if remaining == 0:
                    next_after = after if more else None
                    break
            if not more:
                break
        return Page(records, next_after)

    def _light_fields(self, schema: RecordSchema, fields: Sequence[str] | None) -> list[str] | None:
        """The SQL columns that can answer the query alone, or ``None`` when full rows are needed."""
        if fields is None:
            return None
        wanted = list(dict.fromkeys(["id", *sorted(schema.owner_fields), *fields]))
        if all(schema.fields.get(f) in _LIGHT_TYPES for f in wanted):
            return [f for f in wanted if f != "log_version"]
        return None

    def _materialise(
        self,
        kind: RecordKind,
        schema: RecordSchema,
        scope: Scope,
        rows: list[dict[str, str]],
        light_fields: list[str] | None,
        fields: Sequence[str] | None,
    ) -> list[LogRecord]:
        if light_fields is not None:
            return [light_record(kind, schema, row, light_fields) for row in rows]
        winners = [Winner(row["id"], int(row["log_version"]), int(float(row.get("_time") or 0))) for row in rows]
        full = self.reader.fetch(self.logstores[kind], self.builders[kind], scope, winners)
        records = [full[w.id] for w in winners if w.id in full]
        if fields is not None:
            keep = {"id", *schema.owner_fields, *fields}
            for record in records:
                record.data = {k: v for k, v in record.data.items() if k in keep}
        return records

    def count(
        self,
        kind: RecordKind,
        scope: Scope,
        filters: Sequence[Filter] = (),
        time_range: TimeRange | None = None,
    ) -> int:
        statement = self.builders[kind].count(scope, filters, time_range)
        rows = self.reader.run(self.logstores[kind], statement)
        return int(float(rows[0]["n"])) if rows else 0

    def aggregate(self, query: AggregateQuery) -> list[dict[str, t.Any]]:
        builder = self.builders[query.kind]
        schema = builder.schema
        results: list[dict[str, t.Any]] = []
        offset = 0
        while offset < MAX_SQL_OFFSET:
            statement = builder.aggregate(
                query.scope, query.filters, query.time_range, query.group_by, query.metrics,
                offset=offset, count=MAX_SQL_ROWS,
            )  # fmt: skip
            rows = self.reader.run(self.logstores[query.kind], statement)
            for row in rows:
                item: dict[str, t.Any] = {}
                for i, group in enumerate(query.group_by):
                    raw = row.get(f"g{i}")
                    if group.day_in_timezone:
                        item[group.name] = None if raw in (None, "null") else raw
                    else:
                        item[group.name] = sql_value(schema, group.field, raw)
                for i, metric in enumerate(query.metrics):
                    item[metric.name] = _metric_value(schema, metric.function, metric.field, row.get(f"m{i}"))
                results.append(item)
            if len(rows) < MAX_SQL_ROWS or not query.group_by:
                break
            offset += len(rows)
        return results

    def delete(
        self,
        kind: RecordKind,
        scope: Scope,
        filters: Sequence[Filter] = (),
        time_range: TimeRange | None = None,
        *,
        limit: int | None = None,
    ) -> int:
        """Append a tombstone for every matching entity (SLS logs are immutable until their TTL)."""
        schema = self.schemas[kind]
        query = RecordQuery(
            kind, scope, filters=tuple(filters), time_range=time_range or TimeRange(),
            order_by=(("created_at", "asc"),), limit=limit, fields=tuple(sorted(schema.owner_fields)),
        )  # fmt: skip
        targets = self.search(query).records
        tombstones = []
        for record in targets:
            self.clock.observe(record.log_version)
            tombstones.append(record.tombstone(compose_version(self.clock.now(), final=True, deleted=True)))
        result = self.write(tombstones)
        if result.failed:
            reason = result.failed[0][1]
            raise _delete_error(len(result.failed), len(tombstones), reason)
        return result.written


def _delete_error(failed: int, total: int, reason: str) -> Exception:
    from flask_difylogstore.errors import BackendUnavailableError

    return BackendUnavailableError(f"{failed} of {total} deletion markers were not stored: {reason}")


def _metric_value(schema: RecordSchema, function: str, field: str | None, raw: str | None) -> t.Any:
    if function in ("count", "count_distinct"):
        return int(float(raw)) if raw not in (None, "null", "") else 0
    type_ = schema.fields.get(field or "", FieldType.DOUBLE)
    integral = type_ in (FieldType.LONG, FieldType.BOOL)
    if raw in (None, "null", ""):
        return (0 if integral else 0.0) if function == "sum" else None
    if function == "sum":
        return int(float(raw)) if integral else float(raw)
    return sql_value(schema, field or "", raw)


def _port(endpoint: str) -> int:
    from urllib.parse import urlsplit

    text = endpoint.strip()
    parts = urlsplit(text if "://" in text else f"http://{text}")
    return parts.port or (443 if parts.scheme == "https" else 80)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
