"""The Elasticsearch backend: one document per entity, external versioning, time-partitioned indices."""

from __future__ import annotations

import contextlib
import logging
import time
import typing as t
from collections.abc import Iterator, Sequence

from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout
from elasticsearch import ApiError, Elasticsearch

from flask_difylogstore.backends.base import (
    AggregateQuery,
    Filter,
    Page,
    PingResult,
    ProvisionChange,
    ProvisionReport,
    RecordQuery,
    Scope,
    TimeRange,
    WriteResult,
)
from flask_difylogstore.backends.elasticsearch import results
from flask_difylogstore.backends.elasticsearch.client import (
    CLIENT_MAJOR,
    PING_TIMEOUT,
    ServerInfo,
    build_client,
    compatibility_problem,
    probe_server,
)
from flask_difylogstore.backends.elasticsearch.indices import IndexLayout
from flask_difylogstore.backends.elasticsearch.lifecycle import Provisioner
from flask_difylogstore.backends.elasticsearch.query import QueryBuilder
from flask_difylogstore.backends.elasticsearch.writer import BulkWriter, IndexCreator
from flask_difylogstore.backends.evaluate import full_order, row_key
from flask_difylogstore.errors import BackendUnavailableError, ProvisioningError
from flask_difylogstore.records import LogRecord, RecordKind, VersionClock, compose_version, default_clock
from flask_difylogstore.schemas import RecordSchema, schemas

if t.TYPE_CHECKING:
    from flask_difylogstore.settings import LogStoreSettings

logger = logging.getLogger(__name__)

#: Hits per search request when paging (well under ``index.max_result_window``); full documents
#: may carry large payloads (a run's graph), so pages of whole documents are smaller.
SEARCH_PAGE = 2000
PROJECTED_PAGE = 5000
#: Groups per composite-aggregation page.
GROUP_PAGE = 1000
#: Ids per by-id lookup (one ``terms`` clause).
IDS_PER_QUERY = 1000


@contextlib.contextmanager
def _reading(what: str) -> Iterator[None]:
    """Client failures during a read surface as :class:`BackendUnavailableError`."""
    try:
        yield
    except ApiError as exc:
        raise BackendUnavailableError(f"Elasticsearch {what} failed: {exc}") from exc
    except (TransportConnectionError, ConnectionTimeout) as exc:
        raise BackendUnavailableError(f"Elasticsearch unreachable during {what}: {exc}") from exc


class ElasticsearchBackend:
    """Stores records in ``<prefix>-<kind>-<partition>`` indices shared by all tenants."""

    name = "elasticsearch"
    max_batch_records = 2000
    #: Well under ``http.max_content_length`` (100 MB) and typical proxy limits.
    max_batch_bytes = 8 * 1024 * 1024
    #: Seconds an acknowledged write may stay invisible to searches; read-your-writes must cover
    #: this window after acknowledgement, not only before. Twice the default refresh interval
    #: (1 s): a busy node runs its periodic refresh late.
    visibility_delay_s = 2.0

    def __init__(
        self,
        client: Elasticsearch,
        *,
        index_prefix: str = "dify",
        index_period: t.Literal["day", "week", "month"] = "month",
        retention_days: int = 365,
        number_of_shards: int = 1,
        number_of_replicas: int = 1,
        record_schemas: t.Mapping[RecordKind, RecordSchema] | None = None,
        clock: VersionClock | None = None,
    ) -> None:
        self.client = client
        self.layout = IndexLayout(index_prefix, index_period)
        self.schemas = dict(record_schemas or schemas())
        self.queries = QueryBuilder(self.schemas)
        self.provisioner = Provisioner(
            client, self.layout, self.schemas,
            retention_days=retention_days, shards=number_of_shards, replicas=number_of_replicas,
        )  # fmt: skip
        self.creator = IndexCreator(
            client, self.layout, self.schemas,
            shards=number_of_shards, replicas=number_of_replicas, policy=lambda: self.provisioner.policy_name,
        )  # fmt: skip
        self.writer = BulkWriter(client, self.layout, self.creator)
        self.clock = clock or default_clock
        self.server: ServerInfo | None = None
        self._settled: dict[str, float] = {}

    @classmethod
    def from_settings(cls, settings: LogStoreSettings) -> ElasticsearchBackend:
        """Build the client (no network I/O: an unreachable cluster is reported by ``ping``/``provision``)."""
        es = settings.elasticsearch
        return cls(
            build_client(es),
            index_prefix=es.index_prefix,
            index_period=es.index_period,
            retention_days=es.retention_days,
            number_of_shards=es.number_of_shards,
            number_of_replicas=es.number_of_replicas,
        )

    # ---- provisioning and health ----------------------------------------------------------------
    def check_server(self, timeout: float = PING_TIMEOUT) -> str | None:
        """Probe the cluster's version; raise when this client cannot work with it, else return a warning."""
        info = probe_server(self.client, timeout)
        fatal, message = compatibility_problem(info)
        if fatal:
            raise BackendUnavailableError(message)
        if message and self.server != info:
            logger.warning("flask-difylogstore: %s", message)
        self.server = info
        return message

    def provision(self, *, dry_run: bool = False) -> ProvisionReport:
        try:
            warning = self.check_server()
        except BackendUnavailableError as exc:
            raise ProvisioningError(str(exc)) from exc
        assert self.server is not None
        report = self.provisioner.run(dry_run=dry_run)
        detail = warning or f"Elasticsearch {self.server.version}, client {CLIENT_MAJOR}.x"
        report.changes.insert(0, ProvisionChange("cluster", "keep", detail))
        self.creator.remember(self.provisioner.existing_indices)
        return report

    def ping(self) -> PingResult:
        started = time.perf_counter()
        try:
            self.check_server()
        except BackendUnavailableError as exc:
            return PingResult(self.name, False, _ms(started), str(exc))
        return PingResult(self.name, True, _ms(started))

    def close(self) -> None:
        self.client.close()

    def refresh(self, kind: RecordKind | None = None) -> None:
        """Make every acknowledged write searchable now (tests and admin commands; never the hot path)."""
        kinds = [kind] if kind is not None else list(self.schemas)
        target = ",".join(self.layout.pattern(k) for k in kinds)
        with _reading("refresh"):
            self.client.indices.refresh(index=target, ignore_unavailable=True, allow_no_indices=True)

    def settle(self, kind: RecordKind) -> None:
        """Refresh the partitions this process wrote to since its last refresh, within the visibility delay.

        Aggregations cannot merge the pipeline's pending records, so the repositories flush and then
        aggregate; this makes that flush visible without refreshing on the write path.
        """
        now = time.monotonic()
        dirty = [
            index
            for index, written in list(self.writer.last_write.items())
            if now - written < self.visibility_delay_s * 2
            and written >= self._settled.get(index, 0.0)
            and self.layout.kind_of(index) is kind
        ]
        if not dirty:
            return
        try:
            self.client.indices.refresh(index=",".join(dirty), ignore_unavailable=True, allow_no_indices=True)
        except (ApiError, TransportConnectionError, ConnectionTimeout) as exc:
            logger.debug("refresh before aggregation failed: %s", exc)
            return
        for index in dirty:
            self._settled[index] = now

    # ---- writes ---------------------------------------------------------------------------------
    def write(self, records: Sequence[LogRecord]) -> WriteResult:
        return self.writer.write(records)

    def delete(
        self,
        kind: RecordKind,
        scope: Scope,
        filters: Sequence[Filter] = (),
        time_range: TimeRange | None = None,
        *,
        limit: int | None = None,
    ) -> int:
        """Write a tombstone snapshot for every matching entity (oldest first up to ``limit``).

        Deletion is maintenance, not the write path: it refreshes before choosing its targets and
        refreshes the partitions the tombstones went to, so the caller's next read agrees with it.
        That refresh is forced (``refresh=true``) rather than awaited (``wait_for``, up to a
        ``refresh_interval`` per call): deletes are rare, and a console action or a retention job
        working in batches should not wait a second per batch.
        """
        self.refresh(kind)
        schema = self.schemas[kind]
        query = RecordQuery(
            kind, scope, filters=tuple(filters), time_range=time_range or TimeRange(),
            order_by=(("created_at", "asc"),), limit=limit,
            fields=tuple(sorted({*schema.owner_fields, "status"} & set(schema.fields))),
        )  # fmt: skip
        tombstones = []
        for record in self.search(query).records:
            self.clock.observe(record.log_version)
            tombstones.append(record.tombstone(compose_version(self.clock.now(), final=True, deleted=True)))
        result = self.writer.write(tombstones, refresh="true")
        if result.failed:
            reason = result.failed[0][1]
            raise BackendUnavailableError(
                f"{len(result.failed)} of {len(tombstones)} deletion markers were not stored: {reason}"
            )
        return result.written

    # ---- reads ----------------------------------------------------------------------------------
    def _search(self, target: str, body: dict[str, t.Any]) -> t.Any:
        """A search over partitions that may not exist (nothing was written in them)."""
        return self.client.search(index=target, body=body, ignore_unavailable=True, allow_no_indices=True)

    def get_latest(self, kind: RecordKind, ids: Sequence[str], scope: Scope) -> dict[str, LogRecord]:
        unique = list(dict.fromkeys(str(i) for i in ids))
        found: dict[str, LogRecord] = {}
        for start in range(0, len(unique), IDS_PER_QUERY):
            chunk = tuple(unique[start : start + IDS_PER_QUERY])
            query = RecordQuery(
                kind, scope, filters=(Filter("id", "in", chunk),), order_by=(("id", "asc"),), limit=None
            )
            for record in self.search(query).records:
                current = found.get(record.id)
                if current is None or record.log_version > current.log_version:
                    found[record.id] = record
        return found

    def search(self, query: RecordQuery) -> Page:
        body = self.queries.search_body(query)
        target = self.layout.read_target(query.kind, query.time_range)
        schema = self.schemas[query.kind]
        wanted = None if query.limit is None else query.limit + 1
        page = SEARCH_PAGE if query.fields is None else PROJECTED_PAGE
        records: list[LogRecord] = []
        search_after: list[t.Any] | None = None
        while wanted is None or len(records) < wanted:
            size = page if wanted is None else min(page, wanted - len(records))
            page_body = {**body, "size": size}
            if search_after is not None:
                page_body["search_after"] = search_after
            with _reading("search"):
                hits = self._search(target, page_body)["hits"]["hits"]
            records += [results.record_from_hit(query.kind, hit, schema) for hit in hits]
            if len(hits) < size:
                break
            search_after = hits[-1]["sort"]
        more = query.limit is not None and len(records) > query.limit
        if query.limit is not None:
            records = records[: query.limit]
        next_after = row_key(records[-1], full_order(query.order_by)) if more and records else None
        return Page(records, next_after)

    def count(
        self,
        kind: RecordKind,
        scope: Scope,
        filters: Sequence[Filter] = (),
        time_range: TimeRange | None = None,
    ) -> int:
        body = self.queries.count_body(kind, scope, filters, time_range)
        with _reading("count"):
            response = self.client.count(
                index=self.layout.read_target(kind, time_range),
                body=body,
                ignore_unavailable=True,
                allow_no_indices=True,
            )
        return int(response["count"])

    def aggregate(self, query: AggregateQuery) -> list[dict[str, t.Any]]:
        schema = self.schemas[query.kind]
        target = self.layout.read_target(query.kind, query.time_range)
        self.settle(query.kind)
        if not query.group_by:
            body = self.queries.aggregate_body(query, page_size=0)
            with _reading("aggregation"):
                response = self._search(target, body)
            return [results.plain_row(schema, query, response)]
        return results.sort_rows(query, self._composite(query, target))

    def _composite(self, query: AggregateQuery, target: str) -> list[dict[str, t.Any]]:
        """Every group, page by page (``after_key``), so no bucket limit ever truncates the answer."""
        schema = self.schemas[query.kind]
        rows: list[dict[str, t.Any]] = []
        after: dict[str, t.Any] | None = None
        while True:
            body = self.queries.aggregate_body(query, page_size=GROUP_PAGE, after_key=after)
            with _reading("aggregation"):
                response = self._search(target, body)
            groups = (response.get("aggregations") or {}).get("groups") or {}
            buckets = groups.get("buckets") or []
            rows += results.composite_rows(schema, query, buckets)
            after = groups.get("after_key")
            if not buckets or not after or len(buckets) < GROUP_PAGE:
                return rows


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
