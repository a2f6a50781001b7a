"""Relational rows to log records, with versions that let live writes win.

A migrated snapshot's ``log_version`` is built from the row's own timestamps (``finished_at``,
else ``created_at``), not from the clock at migration time. Live writes are stamped when they
happen, which is never earlier than the timestamps they carry, so a live snapshot always
outranks the migrated copy of the same entity, and migrating a row twice produces the identical
record (idempotent for every backend: equal versions are no-ops in Elasticsearch and the memory
backend, and readers collapse SLS's append-only copies to one).
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from flask_difylogstore import payloads
from flask_difylogstore.conversions import PAYLOAD_TYPES
from flask_difylogstore.migration.source import KindSpec, SourceRow
from flask_difylogstore.migration.storage import PayloadStore
from flask_difylogstore.records import (
    LogRecord,
    RecordKind,
    clock_at,
    compose_version,
    is_final_status,
)


def migrated_version(kind: RecordKind, data: t.Mapping[str, t.Any]) -> int:
    """The ``log_version`` of a migrated snapshot (see the module docstring)."""
    moment = data.get("finished_at") or data["created_at"]
    return compose_version(clock_at(moment), final=is_final_status(kind, data.get("status")))


def record_data(spec: KindSpec, row: SourceRow) -> dict[str, t.Any]:
    """The record data of a row: its columns, plus truncation flags for node executions."""
    data = dict(row.data)
    if spec.has_offloads:
        offloaded = {o.type for o in row.offloads}
        for name in PAYLOAD_TYPES:
            data[f"{name}_truncated"] = 1 if name in offloaded else 0
    return data


@dataclass
class LoadedPayloads:
    """Full payload texts of one node by type, and the ones that could not be read (with why)."""

    texts: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)


def load_payloads(row: SourceRow, store: PayloadStore | None) -> LoadedPayloads:
    """Read the full payloads of a node's offload rows; failures are recorded, never raised."""
    loaded = LoadedPayloads()
    for offload in row.offloads:
        if offload.key is None:
            loaded.missing[offload.type] = f"upload_files row {offload.file_id} does not exist"
        elif store is None:
            loaded.missing[offload.type] = "no payload storage configured"
        else:
            try:
                loaded.texts[offload.type] = store.load(offload.key).decode("utf-8")
            except Exception as exc:
                loaded.missing[offload.type] = f"{offload.key}: {type(exc).__name__}: {exc}"
    return loaded


def row_records(spec: KindSpec, row: SourceRow, loaded: LoadedPayloads | None = None) -> list[LogRecord]:
    """The entity record of a row followed by the PAYLOAD records of its full payloads."""
    data = record_data(spec, row)
    version = migrated_version(spec.kind, data)
    records = [LogRecord(spec.kind, data, version)]
    if loaded is not None:
        for payload_type, text in sorted(loaded.texts.items()):
            records.extend(
                payloads.payload_records(
                    text,
                    node_execution_id=row.id,
                    payload_type=payload_type,
                    tenant_id=str(data["tenant_id"]),
                    app_id=str(data["app_id"]),
                    created_at=data["created_at"],
                    log_version=version,
                )
            )
    return records


def owner_id(rec: LogRecord) -> str:
    """The id of the row a record came from (a PAYLOAD record belongs to its node execution)."""
    if rec.kind is RecordKind.PAYLOAD:
        return str(rec.data["node_execution_id"])
    return rec.id
