"""The canonical stored form of each record kind, and the version clock that orders its snapshots.

A record is a full snapshot of one entity: the columns of its Dify table (payload columns as JSON
text, exactly as Dify's relational repositories store them) plus ``log_version`` and the deletion
marker. Backends store records, the pipeline spools them, repositories convert them from and to
Dify's entities and ORM rows (see :mod:`flask_difylogstore.conversions`).

Ordering (DESIGN decision 1): ``log_version`` is a 63-bit integer built so that plain numeric
comparison implements every rule at once::

    bit 62       deleted   - a tombstone outranks every other snapshot
    bit 61       final     - a final status (succeeded, failed, ...) outranks any non-final one
    bits 0..60   hybrid logical clock: milliseconds (42 bits), counter (11 bits), process tag (8 bits)

So "latest wins" is ``max(log_version)`` in every backend: a SQL ``ORDER BY log_version DESC`` in
SLS, external versioning in Elasticsearch, and :func:`supersedes` in Python.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

DELETED_BIT = 1 << 62
FINAL_BIT = 1 << 61
CLOCK_MASK = FINAL_BIT - 1
_COUNTER_BITS = 11
_TAG_BITS = 8
_LOW_BITS = _COUNTER_BITS + _TAG_BITS
_COUNTER_MAX = (1 << _COUNTER_BITS) - 1
_EPOCH = datetime(1970, 1, 1)


class RecordKind(StrEnum):
    """The kinds of records, named after the logstore / index family that holds them."""

    RUN = "workflow_execution"
    NODE_EXECUTION = "workflow_node_execution"
    APP_LOG = "workflow_app_log"
    PAYLOAD = "workflow_payload"


class FieldType(StrEnum):
    """Storage type of a record field; each backend maps these to its own index types."""

    KEYWORD = "keyword"
    TEXT = "text"
    JSON = "json"
    LONG = "long"
    DOUBLE = "double"
    BOOL = "bool"
    DATETIME = "datetime"


FINAL_RUN_STATUSES = frozenset({"succeeded", "failed", "stopped", "partial-succeeded"})
FINAL_NODE_STATUSES = frozenset({"succeeded", "failed", "exception", "stopped"})

#: Columns holding JSON documents (never exploded into index fields).
PAYLOAD_COLUMNS = frozenset({"graph", "inputs", "outputs", "process_data", "execution_metadata"})
#: Columns holding free text.
TEXT_COLUMNS = frozenset({"error", "title"})
#: Fields every record carries besides its table's columns.
META_FIELDS: Mapping[str, FieldType] = {"log_version": FieldType.LONG, "log_deleted": FieldType.LONG}
#: Node-execution fields telling which payloads were truncated (full value in a payload record).
TRUNCATION_FLAGS: Mapping[str, FieldType] = {
    "inputs_truncated": FieldType.LONG,
    "outputs_truncated": FieldType.LONG,
    "process_data_truncated": FieldType.LONG,
}
PAYLOAD_RECORD_FIELDS: Mapping[str, FieldType] = {
    "id": FieldType.KEYWORD,
    "tenant_id": FieldType.KEYWORD,
    "app_id": FieldType.KEYWORD,
    "node_execution_id": FieldType.KEYWORD,
    "type": FieldType.KEYWORD,
    "chunk_index": FieldType.LONG,
    "chunk_count": FieldType.LONG,
    "content": FieldType.TEXT,
    "created_at": FieldType.DATETIME,
}


class FieldTypes(Protocol):
    """What :meth:`LogRecord.from_wire` needs of a schema: the storage type of each field.

    :class:`~flask_difylogstore.schemas.RecordSchema` provides it; schemas are built on this
    module, so it names the shape here rather than importing them.
    """

    @property
    def fields(self) -> Mapping[str, FieldType]: ...


def is_final_status(kind: RecordKind, status: str | None) -> bool:
    """Whether ``status`` ends the entity's life (so no non-final snapshot may overshadow it)."""
    if status is None:
        return False
    if kind is RecordKind.RUN:
        return status in FINAL_RUN_STATUSES
    if kind is RecordKind.NODE_EXECUTION:
        return status in FINAL_NODE_STATUSES
    return True


def compose_version(clock_value: int, *, final: bool, deleted: bool = False) -> int:
    """Build a ``log_version`` from a clock reading and the entity's state (see module docstring)."""
    return (clock_value & CLOCK_MASK) | (FINAL_BIT if final else 0) | (DELETED_BIT if deleted else 0)


def supersedes(candidate: int, current: int | None) -> bool:
    """The final-state-wins rule as a pure function: does ``candidate`` replace ``current``?"""
    return current is None or candidate > current


def clock_part(version: int) -> int:
    """The hybrid-logical-clock bits of a ``log_version``."""
    return version & CLOCK_MASK


def clock_at(moment: datetime) -> int:
    """The clock reading of ``moment`` (naive UTC) with counter and process tag zero.

    Used for snapshots rebuilt from history (migration): any live write, made later, is newer.
    """
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return ((moment - _EPOCH) // timedelta(milliseconds=1)) << _LOW_BITS


def version_time_ms(version: int) -> int:
    """The wall-clock milliseconds encoded in a ``log_version``."""
    return clock_part(version) >> _LOW_BITS


class VersionClock:
    """A hybrid logical clock: strictly increasing per process, close to wall time across hosts.

    Readings combine milliseconds, a counter for readings within one millisecond, and a random
    per-process tag in the low bits, so two processes never produce the same value by accident and
    ties between hosts are broken deterministically by the tag. :meth:`observe` pulls the clock
    forward past a version read from the store, so a host whose clock lags still writes newer
    versions than the ones it has seen.
    """

    def __init__(self, *, wall: Any = None, tag: int | None = None) -> None:
        self._wall = wall or (lambda: time.time_ns() // 1_000_000)
        self._lock = threading.Lock()
        self._fixed_tag = tag
        self._reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._ms = 0
        self._counter = 0
        self.tag = self._fixed_tag if self._fixed_tag is not None else random.SystemRandom().randrange(256)

    def now(self) -> int:
        """A new reading, greater than every earlier one of this process."""
        with self._lock:
            wall = int(self._wall())
            if wall > self._ms:
                self._ms, self._counter = wall, 0
            elif self._counter < _COUNTER_MAX:
                self._counter += 1
            else:
                self._ms, self._counter = self._ms + 1, 0
            return (self._ms << _LOW_BITS) | (self._counter << _TAG_BITS) | (self.tag & 0xFF)

    def observe(self, version: int) -> None:
        """Make later readings greater than the clock part of ``version``."""
        value = clock_part(version)
        ms, counter = value >> _LOW_BITS, (value >> _TAG_BITS) & _COUNTER_MAX
        with self._lock:
            if (ms, counter) > (self._ms, self._counter):
                self._ms, self._counter = ms, counter

    def version_for(self, kind: RecordKind, status: str | None, *, deleted: bool = False) -> int:
        """A ``log_version`` for a new snapshot of an entity of ``kind`` in ``status``."""
        return compose_version(self.now(), final=is_final_status(kind, status), deleted=deleted)


#: The process-wide clock every repository uses.
default_clock = VersionClock()


#: Fields fixed when an entity is created (safe to filter on before picking the latest version).
OWNER_FIELDS: Mapping[RecordKind, frozenset[str]] = {
    RecordKind.RUN: frozenset(
        {
            "id",
            "tenant_id",
            "app_id",
            "workflow_id",
            "type",
            "triggered_from",
            "version",
            "created_by_role",
            "created_by",
            "created_at",
        }
    ),
    RecordKind.NODE_EXECUTION: frozenset(
        {
            "id",
            "tenant_id",
            "app_id",
            "workflow_id",
            "triggered_from",
            "workflow_run_id",
            "node_id",
            "node_type",
            "node_execution_id",
            "created_by_role",
            "created_by",
            "created_at",
        }
    ),
    RecordKind.APP_LOG: frozenset(
        {
            "id",
            "tenant_id",
            "app_id",
            "workflow_id",
            "workflow_run_id",
            "created_from",
            "created_by_role",
            "created_by",
            "created_at",
        }
    ),
    RecordKind.PAYLOAD: frozenset({"id", "tenant_id", "app_id", "node_execution_id", "type", "created_at"}),
}


@dataclass(slots=True)
class LogRecord:
    """One snapshot of one entity, ready to store.

    ``data`` maps field names to ``str``, ``int``, ``float``, ``bool``, naive-UTC ``datetime`` or
    ``None``; payload fields hold JSON text. ``log_version`` and ``log_deleted`` live outside
    ``data`` and are added by :meth:`to_wire`.
    """

    kind: RecordKind
    data: dict[str, Any]
    log_version: int

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def tenant_id(self) -> str:
        return str(self.data.get("tenant_id") or "")

    @property
    def created_at(self) -> datetime:
        value = self.data["created_at"]
        return value if isinstance(value, datetime) else parse_datetime(str(value))

    @property
    def deleted(self) -> bool:
        return bool(self.log_version & DELETED_BIT)

    @property
    def final(self) -> bool:
        return bool(self.log_version & FINAL_BIT)

    def to_wire(self) -> dict[str, Any]:
        """A flat dict with JSON-friendly values (datetimes as ISO-8601) and the meta fields."""
        wire = {k: (format_datetime(v) if isinstance(v, datetime) else v) for k, v in self.data.items()}
        wire["log_version"] = self.log_version
        wire["log_deleted"] = 1 if self.deleted else 0
        return wire

    @classmethod
    def from_wire(cls, kind: RecordKind, wire: Mapping[str, Any], schema: FieldTypes) -> LogRecord:
        """Rebuild a record from :meth:`to_wire` output or from a backend row (values may be strings)."""
        data: dict[str, Any] = {}
        for name, value in wire.items():
            if name in META_FIELDS:
                continue
            data[name] = coerce(schema.fields.get(name, FieldType.KEYWORD), value)
        return cls(kind, data, int(wire["log_version"]))

    @property
    def entity_key(self) -> tuple[str, str, str]:
        """The entity's identity in a log store: its id within its owner (tenant, app).

        Another tenant or app reusing an id is another entity: it never replaces or hides this one.
        """
        data = self.data
        return (str(data.get("tenant_id") or ""), str(data.get("app_id") or ""), self.id)

    def tombstone(self, version: int) -> LogRecord:
        """A deletion snapshot of this entity with the owner fields kept (for scoping and routing)."""
        schema_owner = OWNER_FIELDS[self.kind]
        data = {k: v for k, v in self.data.items() if k in schema_owner}
        return LogRecord(self.kind, data, version | DELETED_BIT)


def format_datetime(value: datetime) -> str:
    """ISO-8601 with microseconds, naive UTC (the form every backend and the spool use)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    if type(value) is datetime and value.year >= 1000:
        # The same text as the strftime below (a plain naive datetime), without parsing a format.
        return value.isoformat(timespec="microseconds")
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")


def parse_datetime(value: str) -> datetime:
    """Parse the ISO forms backends return (``T`` or space, optional ``Z`` / offset) to naive UTC."""
    text = value.strip().replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


_NULLS = ("", "null", "None")


def coerce(type_: FieldType, value: Any) -> Any:
    """Convert a stored value (backends such as SLS return every value as a string) to its type."""
    if value is None or (isinstance(value, str) and value in _NULLS and type_ is not FieldType.TEXT):
        return None
    if type_ is FieldType.LONG:
        return int(value) if not isinstance(value, str) else int(float(value)) if "." in value else int(value)
    if type_ is FieldType.DOUBLE:
        return float(value)
    if type_ is FieldType.BOOL:
        return value in (True, 1, "1", "true", "True")
    if type_ is FieldType.DATETIME:
        return value if isinstance(value, datetime) else parse_datetime(str(value))
    return value if isinstance(value, str) else str(value)


def latest_by_id(records: Iterable[LogRecord]) -> dict[str, LogRecord]:
    """The winning snapshot per entity id among ``records`` (deleted ones included)."""
    winners: dict[str, LogRecord] = {}
    for record in records:
        current = winners.get(record.id)
        if current is None or supersedes(record.log_version, current.log_version):
            winners[record.id] = record
    return winners
