"""Bulk writes with external versioning: one document per entity, the highest ``log_version`` wins.

Each snapshot is an ``index`` action with ``version_type=external`` and ``version=log_version``,
so Elasticsearch itself discards stale or reordered snapshots (a 409 on an item means a newer
snapshot is already stored: counted as ``stale``, which is success). Deletions are tombstone
snapshots written the same way (the deleted bit makes their version the highest): a late stale
write then still 409s, where a real delete would only remember the version for
``index.gc_deletes`` (60 s) and let it resurrect the entity. Queries hide tombstones.

The hot path never asks for a refresh. Indices are created explicitly before their first write,
with the full mapping and an ILM origination date at the end of their time partition, so a
missing template can never lead to dynamically mapped documents and retention counts from the
newest data an index can hold.
"""

from __future__ import annotations

import logging
import threading
import time
import typing as t
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC

import orjson
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout
from elasticsearch import ApiError, Elasticsearch

from flask_difylogstore.backends.base import WriteResult
from flask_difylogstore.backends.elasticsearch.client import is_retryable, is_retryable_status
from flask_difylogstore.backends.elasticsearch.indices import IndexLayout
from flask_difylogstore.backends.elasticsearch.mappings import desired_mappings, index_settings
from flask_difylogstore.records import LogRecord, RecordKind
from flask_difylogstore.schemas import RecordSchema

logger = logging.getLogger(__name__)

#: Seconds an "index exists" fact is trusted before being checked again (ILM may delete indices).
KNOWN_INDEX_TTL = 600.0


def _reason(error: t.Any) -> str:
    if isinstance(error, dict):
        text = f"{error.get('type', 'error')}: {error.get('reason', '')}"
        cause = error.get("caused_by")
        return f"{text} (caused by {_reason(cause)})" if isinstance(cause, dict) else text
    return str(error)


class IndexCreator:
    """Creates each time partition once per process; concurrent creation elsewhere is success."""

    def __init__(
        self,
        client: Elasticsearch,
        layout: IndexLayout,
        schemas: Mapping[RecordKind, RecordSchema],
        *,
        shards: int,
        replicas: int,
        policy: Callable[[], str | None],
    ) -> None:
        self.client = client
        self.layout = layout
        self.schemas = schemas
        self.shards = shards
        self.replicas = replicas
        self.policy = policy
        self._known: dict[str, float] = {}
        self._lock = threading.Lock()

    def remember(self, names: Sequence[str]) -> None:
        now = time.monotonic()
        with self._lock:
            self._known.update(dict.fromkeys(names, now))

    def body(self, kind: RecordKind, record: LogRecord) -> dict[str, t.Any]:
        settings = index_settings(shards=self.shards, replicas=self.replicas, policy=self.policy())
        if "lifecycle" in settings["index"]:
            end = self.layout.partition_end(record.created_at).replace(tzinfo=UTC)
            settings["index"]["lifecycle"]["origination_date"] = int(end.timestamp() * 1000)
        return {"settings": settings, "mappings": desired_mappings(self.schemas[kind])}

    def ensure(self, name: str, kind: RecordKind, sample: LogRecord) -> None:
        """Make sure ``name`` exists; raises the client's error when it cannot be created."""
        now = time.monotonic()
        with self._lock:
            seen = self._known.get(name)
        if seen is not None and now - seen < KNOWN_INDEX_TTL:
            return
        body = self.body(kind, sample)
        try:
            self.client.indices.create(index=name, settings=body["settings"], mappings=body["mappings"])
        except ApiError as exc:
            if exc.error != "resource_already_exists_exception":
                raise
        self.remember([name])


@dataclass(frozen=True)
class _Entry:
    record: LogRecord
    index: str
    action: bytes
    source: bytes


def document_id(record: LogRecord) -> str:
    """The Elasticsearch ``_id`` of an entity: its id within its owner (tenant and app).

    Dify's ids are unique in SQL, but a log store must not let a write by another tenant or app that
    reuses an id replace the first owner's document; each owner's entity is its own document, and
    reads are always scoped by owner. (``_id`` is at most 512 bytes; three UUIDs need 110.)
    """
    data = record.data
    return f"{data.get('tenant_id') or ''}/{data.get('app_id') or ''}/{record.id}"


class BulkWriter:
    """Writes batches of records as one ``_bulk`` request, reporting every item's fate."""

    def __init__(self, client: Elasticsearch, layout: IndexLayout, creator: IndexCreator) -> None:
        self.client = client
        self.layout = layout
        self.creator = creator
        #: index -> monotonic time of this process's last stored write there (see ``settle``).
        self.last_write: dict[str, float] = {}

    def _document(self, record: LogRecord) -> dict[str, t.Any]:
        schema = self.creator.schemas[record.kind]
        wire = record.to_wire()
        # Strict mappings reject even a null for an unknown field; nulls carry no information.
        return {k: v for k, v in wire.items() if v is not None or k in schema.fields}

    def write(self, records: Sequence[LogRecord], *, refresh: str | None = None) -> WriteResult:
        result = WriteResult()
        entries: list[_Entry] = []
        for record in records:
            try:
                index = self.layout.index_for(record.kind, record.created_at)
                source = orjson.dumps(self._document(record))
            except (KeyError, ValueError, TypeError, orjson.JSONEncodeError) as exc:
                result.failed.append((record, f"record cannot be stored: {type(exc).__name__}: {exc}", False))
                continue
            action = {
                "index": {
                    "_index": index,
                    "_id": document_id(record),
                    "version": record.log_version,
                    "version_type": "external",
                }
            }
            entries.append(_Entry(record, index, orjson.dumps(action), source))
        blocked = self._ensure_indices({e.index: e.record for e in reversed(entries)})
        ready = []
        for entry in entries:
            if entry.index in blocked:
                reason, retryable = blocked[entry.index]
                result.failed.append((entry.record, reason, retryable))
            else:
                ready.append(entry)
        if ready:
            self._send(ready, result, refresh)
        return result

    def _ensure_indices(self, samples: Mapping[str, LogRecord]) -> dict[str, tuple[str, bool]]:
        blocked: dict[str, tuple[str, bool]] = {}
        for name, sample in samples.items():
            try:
                self.creator.ensure(name, sample.kind, sample)
            except Exception as exc:  # every failure is reported per record, never raised from write()
                blocked[name] = (
                    f"cannot create index {name}: {type(exc).__name__}: {exc}",
                    is_retryable(exc),
                )
        return blocked

    def _send(self, entries: list[_Entry], result: WriteResult, refresh: str | None) -> None:
        sent = [e.record for e in entries]
        lines = [line for e in entries for line in (e.action, e.source)]
        try:
            params: dict[str, t.Any] = {"refresh": refresh} if refresh else {}
            # Pre-encoded NDJSON lines: exact sizes, one serialisation per record.
            response = self.client.bulk(operations=t.cast(t.Any, lines), **params)
        except ApiError as exc:
            if exc.meta.status == 413 and len(entries) > 1:
                half = len(entries) // 2
                self._send(entries[:half], result, refresh)
                self._send(entries[half:], result, refresh)
                return
            reason = f"bulk request failed: {exc}"
            result.failed += [(r, reason, is_retryable_status(exc.meta.status)) for r in sent]
            return
        except (TransportConnectionError, ConnectionTimeout) as exc:
            result.failed += [(r, f"Elasticsearch unreachable: {exc}", True) for r in sent]
            return
        items = response.get("items") or []
        if len(items) != len(sent):
            reason = f"bulk response has {len(items)} items for {len(sent)} actions"
            result.failed += [(r, reason, True) for r in sent]
            return
        now = time.monotonic()
        for entry, item in zip(entries, items, strict=True):
            record = entry.record
            outcome = next(iter(item.values()))
            status = int(outcome.get("status", 500))
            if 200 <= status < 300:
                result.written += 1
                self.last_write[entry.index] = now
            elif status == 409:
                result.stale += 1
            else:
                result.failed.append((record, _reason(outcome.get("error")), is_retryable_status(status)))
