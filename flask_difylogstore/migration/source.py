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
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from uuid import UUID

import sqlalchemy as sa

from flask_difylogstore.dify import compat
from flask_difylogstore.dify.models import UploadFile
from flask_difylogstore.errors import DifyLogStoreError
from flask_difylogstore.migration.selection import Selection
from flask_difylogstore.records import RecordKind

#: ``(created_at, id)`` of the last row of a batch.
Cursor = tuple[datetime, str]

#: Command-line names of the kinds, in the order ``all`` migrates them.
KIND_NAMES = ("runs", "node-executions", "app-logs")

#: How long a batch read waits for a table lock before giving up and retrying (PostgreSQL).
LOCK_TIMEOUT = "2s"
READ_ATTEMPTS = 5
#: Selections the planner estimates smaller than this are counted exactly.
EXACT_COUNT_BELOW = 1_000_000


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
        "app-logs": KindSpec("app-logs", RecordKind.APP_LOG, t.cast(sa.Table, compat.WorkflowAppLog.__table__)),
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
        result.setdefault(str(node_id), []).append(Offload(str(off_id), str(plain(type_)), str(file_id), key, size))
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
    return [{k: v if type(v) in _SIMPLE else plain(v) for k, v in zip(keys, row, strict=True)} for row in result]


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


def estimate_rows(engine: sa.Engine, spec: KindSpec, selection: Selection, after: Cursor | None = None) -> int:
    """:func:`count_rows` for progress bars: the planner's estimate for big selections on PostgreSQL.

    An exact ``count(*)`` over tens of millions of rows takes minutes; small ones are counted.
    """
    if engine.dialect.name != "postgresql":
        return count_rows(engine, spec, selection, after)
    table = spec.table
    clauses = selection.where(table)
    if after is not None:
        clauses.append(_after(table, after))
    stmt = sa.select(table.c.id).where(*clauses)
    sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        plan = conn.execute(sa.text(f"EXPLAIN (FORMAT JSON) {sql}")).scalar_one()
    estimate = int(plan[0]["Plan"]["Plan Rows"])
    return estimate if estimate >= EXACT_COUNT_BELOW else count_rows(engine, spec, selection, after)


def count_offloads(engine: sa.Engine, selection: Selection) -> tuple[int, int]:
    """Offload rows of the selected node executions, and the bytes of their storage objects."""
    nodes = kind_specs()["node-executions"].table
    off, files = offload_table(), upload_file_table()
    stmt = (
        sa.select(sa.func.count(off.c.id), sa.func.coalesce(sa.func.sum(files.c.size), 0))
        .select_from(
            off.join(nodes, nodes.c.id == off.c.node_execution_id).outerjoin(files, files.c.id == off.c.file_id)
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
    return f"CREATE INDEX{concurrently} IF NOT EXISTS {keyset_index_name(table)} ON {table.name} (created_at, id)"


def create_keyset_index(engine: sa.Engine, table: sa.Table) -> None:
    """Build the index without blocking writers (``CONCURRENTLY`` on PostgreSQL)."""
    sql = keyset_index_sql(table, engine.dialect.name)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(sql))
