"""Reading Dify's log tables in keyset order, one short read-only transaction per batch.

Rows are paged on ``(created_at, id)`` with a row-value comparison (never OFFSET), so a batch
costs the same at row 27 million as at row one, nothing is skipped or read twice when rows are
inserted meanwhile, and a stored cursor is all a resumed run needs. Node executions come with
their offload rows and the ``upload_files`` keys those point at.
"""

from __future__ import annotations

import time
import typing as t
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from uuid import UUID

import sqlalchemy as sa

from flask_difylogstore.dify import compat
from flask_difylogstore.dify.models import UploadFile
from flask_difylogstore.errors import DifyLogStoreError
from flask_difylogstore.records import RecordKind

#: ``(created_at, id)`` of the last row of a batch.
Cursor = tuple[datetime, str]

#: Command-line names of the kinds, in the order ``all`` migrates them.
KIND_NAMES = ("runs", "node-executions", "app-logs")

#: How long a batch read waits for a table lock before giving up and retrying (PostgreSQL).
LOCK_TIMEOUT = "2s"
READ_ATTEMPTS = 5


@dataclass(frozen=True)
class KindSpec:
    """One migratable table: its command-line name, record kind and SQLAlchemy table."""

    name: str
    kind: RecordKind
    table: sa.Table

    @property
    def has_offloads(self) -> bool:
        return self.kind is RecordKind.NODE_EXECUTION


def kind_specs() -> dict[str, KindSpec]:
    """The specs by command-line name (Dify's own tables inside Dify)."""
    return {
        "runs": KindSpec("runs", RecordKind.RUN, t.cast(sa.Table, compat.WorkflowRun.__table__)),
        "node-executions": KindSpec(
            "node-executions",
            RecordKind.NODE_EXECUTION,
            t.cast(sa.Table, compat.WorkflowNodeExecutionModel.__table__),
        ),
        "app-logs": KindSpec(
            "app-logs", RecordKind.APP_LOG, t.cast(sa.Table, compat.WorkflowAppLog.__table__)
        ),
    }


def resolve_kinds(name: str) -> list[KindSpec]:
    """``all`` or one command-line kind name."""
    specs = kind_specs()
    if name == "all":
        return [specs[n] for n in KIND_NAMES]
    if name not in specs:
        raise DifyLogStoreError(f"unknown kind {name!r}: use one of {', '.join(KIND_NAMES)} or all")
    return [specs[name]]


def offload_table() -> sa.Table:
    return t.cast(sa.Table, compat.WorkflowNodeExecutionOffload.__table__)


def upload_file_table() -> sa.Table:
    return t.cast(sa.Table, UploadFile.__table__)


# -- the selected window ------------------------------------------------------------------------


def _parse_moment(text: str, *, end: bool) -> datetime:
    """A date (whole UTC day) or an ISO datetime (naive = UTC) as a naive-UTC bound.

    For ``end`` the result is exclusive: the day after a date, or one microsecond (the precision
    of PostgreSQL timestamps) after a datetime, so ``--until`` is inclusive either way.
    """
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = datetime(day.year, day.month, day.day)
            return start + timedelta(days=1) if end else start
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise DifyLogStoreError(
            f"cannot read {text!r} as a date: use YYYY-MM-DD (a whole UTC day) or an ISO datetime"
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment + timedelta(microseconds=1) if end else moment


@dataclass(frozen=True)
class Window:
    """Bounds on ``created_at`` (naive UTC): ``since`` inclusive, ``until`` exclusive."""

    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def parse(cls, since: str | None, until: str | None) -> Window:
        """From ``--since`` / ``--until`` text; both bounds inclusive for the operator."""
        window = cls(
            _parse_moment(since, end=False) if since else None,
            _parse_moment(until, end=True) if until else None,
        )
        if window.since and window.until and window.since >= window.until:
            raise DifyLogStoreError(f"--since {since} is not before --until {until}")
        return window


@dataclass(frozen=True)
class Selection:
    """Which rows a command works on: optional tenant, app and created_at window."""

    tenant_id: str | None = None
    app_id: str | None = None
    window: Window = field(default_factory=Window)

    def key(self) -> str:
        """A canonical text naming the selection (part of checkpoint names)."""
        parts = [
            f"tenant={self.tenant_id or '*'}",
            f"app={self.app_id or '*'}",
            f"since={self.window.since.isoformat() if self.window.since else '*'}",
            f"until={self.window.until.isoformat() if self.window.until else '*'}",
        ]
        return ",".join(parts)

    def where(self, table: sa.FromClause) -> list[sa.ColumnElement[bool]]:
        clauses: list[sa.ColumnElement[bool]] = []
        if self.tenant_id:
            clauses.append(table.c.tenant_id == self.tenant_id)
        if self.app_id:
            clauses.append(table.c.app_id == self.app_id)
        if self.window.since is not None:
            clauses.append(table.c.created_at >= self.window.since)
        if self.window.until is not None:
            clauses.append(table.c.created_at < self.window.until)
        return clauses

    def to_dict(self) -> dict[str, str | None]:
        return {
            "tenant_id": self.tenant_id,
            "app_id": self.app_id,
            "since": self.window.since.isoformat() if self.window.since else None,
            "until_exclusive": self.window.until.isoformat() if self.window.until else None,
        }


# -- rows ---------------------------------------------------------------------------------------


def plain(value: t.Any) -> t.Any:
    """A column value in record form: enums as values, UUIDs as text, datetimes naive UTC."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, Decimal):
        return float(value)
    return value


@dataclass(frozen=True)
class Offload:
    """One offload row of a node execution and the storage object holding the full payload."""

    id: str
    type: str
    file_id: str
    key: str | None
    size: int | None


@dataclass
class SourceRow:
    """A row of a log table (column name -> record-form value) and, for nodes, its offloads."""

    data: dict[str, t.Any]
    offloads: list[Offload] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def cursor(self) -> Cursor:
        return (self.data["created_at"], self.id)


@dataclass
class Batch:
    """Consecutive rows in keyset order; ``last`` is the cursor to continue after them."""

    number: int
    rows: list[SourceRow]

    @property
    def last(self) -> Cursor:
        return self.rows[-1].cursor


def readonly(conn: sa.Connection) -> None:
    """Make the connection's transaction read-only and unwilling to queue behind DDL (PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SET TRANSACTION READ ONLY"))
        conn.execute(sa.text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))


def _after(table: sa.Table, cursor: Cursor) -> sa.ColumnElement[bool]:
    created, id_ = cursor
    return sa.tuple_(table.c.created_at, table.c.id) > sa.tuple_(
        sa.bindparam(None, created, type_=table.c.created_at.type),
        sa.bindparam(None, id_, type_=table.c.id.type),
    )


def with_retries(func: t.Callable[[], t.Any], attempts: int = READ_ATTEMPTS) -> t.Any:
    """Run a database read again after a transient error (lock timeout, dropped connection)."""
    delay = 0.5
    for attempt in range(attempts):
        try:
            return func()
        except sa.exc.OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
    return None  # pragma: no cover


def read_offloads(conn: sa.Connection, ids: list[str]) -> dict[str, list[Offload]]:
    """Offload rows (with their upload_files key and size) of the given node executions."""
    if not ids:
        return {}
    off, files = offload_table(), upload_file_table()
    stmt = (
        sa.select(off.c.node_execution_id, off.c.type, off.c.id, off.c.file_id, files.c.key, files.c.size)
        .select_from(off.outerjoin(files, files.c.id == off.c.file_id))
        .where(off.c.node_execution_id.in_(ids))
        .order_by(off.c.node_execution_id, off.c.type)
    )
    result: dict[str, list[Offload]] = {}
    for node_id, type_, off_id, file_id, key, size in conn.execute(stmt):
        result.setdefault(str(node_id), []).append(
            Offload(str(off_id), str(plain(type_)), str(file_id), key, size)
        )
    return result


_SIMPLE = frozenset({str, int, float, bool, type(None)})


def _is_uuid(column: sa.ColumnElement[t.Any], dialect: sa.Dialect) -> bool:
    type_ = column.type
    impl = type_.load_dialect_impl(dialect) if isinstance(type_, sa.types.TypeDecorator) else type_
    return isinstance(impl, sa.Uuid)


def select_columns(table: sa.FromClause, dialect: sa.Dialect) -> list[sa.ColumnElement[t.Any]]:
    """The table's columns, UUIDs read as text on PostgreSQL (parsing them costs more than the query)."""
    if dialect.name != "postgresql":
        return list(table.c)
    return [sa.cast(c, sa.Text).label(c.name) if _is_uuid(c, dialect) else c for c in table.c]


def row_dicts(result: sa.CursorResult[t.Any]) -> list[dict[str, t.Any]]:
    """Result rows as dicts of record-form values (:func:`plain` only where a value needs it)."""
    keys = list(result.keys())
    return [
        {k: v if type(v) in _SIMPLE else plain(v) for k, v in zip(keys, row, strict=True)}
        for row in result
    ]


def _rows(conn: sa.Connection, spec: KindSpec, stmt: sa.Select[t.Any]) -> list[SourceRow]:
    rows = [SourceRow(data) for data in row_dicts(conn.execute(stmt))]
    if spec.has_offloads and rows:
        offloads = read_offloads(conn, [r.id for r in rows])
        for row in rows:
            row.offloads = offloads.get(row.id, [])
    return rows


def read_batch(
    engine: sa.Engine, spec: KindSpec, selection: Selection, after: Cursor | None, limit: int
) -> list[SourceRow]:
    """The next ``limit`` rows after ``after`` in ``(created_at, id)`` order, in one short read."""
    table = spec.table
    clauses = selection.where(table)
    if after is not None:
        clauses.append(_after(table, after))
    columns = select_columns(table, engine.dialect)
    stmt = sa.select(*columns).where(*clauses).order_by(table.c.created_at, table.c.id).limit(limit)

    def run() -> list[SourceRow]:
        with engine.connect() as conn, conn.begin():
            readonly(conn)
            return _rows(conn, spec, stmt)

    return t.cast(list[SourceRow], with_retries(run))


def read_by_ids(engine: sa.Engine, spec: KindSpec, ids: list[str]) -> list[SourceRow]:
    """Rows with the given ids (those that still exist), in keyset order."""
    table = spec.table
    columns = select_columns(table, engine.dialect)
    stmt = sa.select(*columns).where(table.c.id.in_(ids)).order_by(table.c.created_at, table.c.id)

    def run() -> list[SourceRow]:
        with engine.connect() as conn, conn.begin():
            readonly(conn)
            return _rows(conn, spec, stmt)

    return t.cast(list[SourceRow], with_retries(run))


def iter_batches(
    engine: sa.Engine, spec: KindSpec, selection: Selection, after: Cursor | None, batch_size: int
) -> t.Iterator[Batch]:
    """Every selected row after ``after``, batch by batch."""
    number = 0
    while True:
        rows = read_batch(engine, spec, selection, after, batch_size)
        if not rows:
            return
        number += 1
        batch = Batch(number, rows)
        yield batch
        if len(rows) < batch_size:
            return
        after = batch.last


def count_rows(engine: sa.Engine, spec: KindSpec, selection: Selection, after: Cursor | None = None) -> int:
    """Selected rows (after ``after``)."""
    table = spec.table
    clauses = selection.where(table)
    if after is not None:
        clauses.append(_after(table, after))
    stmt = sa.select(sa.func.count()).select_from(table).where(*clauses)
    with engine.connect() as conn, conn.begin():
        readonly(conn)
        return int(conn.execute(stmt).scalar_one())


def count_offloads(engine: sa.Engine, selection: Selection) -> tuple[int, int]:
    """Offload rows of the selected node executions, and the bytes of their storage objects."""
    nodes = kind_specs()["node-executions"].table
    off, files = offload_table(), upload_file_table()
    stmt = (
        sa.select(sa.func.count(off.c.id), sa.func.coalesce(sa.func.sum(files.c.size), 0))
        .select_from(
            off.join(nodes, nodes.c.id == off.c.node_execution_id).outerjoin(
                files, files.c.id == off.c.file_id
            )
        )
        .where(*selection.where(nodes))
    )
    with engine.connect() as conn, conn.begin():
        readonly(conn)
        count, size = conn.execute(stmt).one()
    return int(count), int(size)


# -- the keyset index ---------------------------------------------------------------------------


def keyset_index_name(table: sa.Table) -> str:
    return f"{table.name}_difylogstore_created_at_id_idx"


def has_keyset_index(engine: sa.Engine, table: sa.Table) -> bool:
    """Whether an index leads with ``(created_at, id)`` (without one every batch scans the table)."""
    for index in sa.inspect(engine).get_indexes(table.name):
        if list(index.get("column_names") or [])[:2] == ["created_at", "id"]:
            return True
    return False


def keyset_index_sql(table: sa.Table, dialect: str) -> str:
    concurrently = " CONCURRENTLY" if dialect == "postgresql" else ""
    return (
        f"CREATE INDEX{concurrently} IF NOT EXISTS {keyset_index_name(table)} "
        f"ON {table.name} (created_at, id)"
    )


def create_keyset_index(engine: sa.Engine, table: sa.Table) -> None:
    """Build the index without blocking writers (``CONCURRENTLY`` on PostgreSQL)."""
    sql = keyset_index_sql(table, engine.dialect.name)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(sql))
