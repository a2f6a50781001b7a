"""Checkpoints of migration and clean-up jobs, and the last verification result.

They live in a small table of the relational database itself, ``difylogstore_migration_checkpoints``,
rather than in a file in the instance path: the database outlives API containers (whose
filesystem is usually thrown away on redeploy), is shared by every host that may run the
command, and is already backed up with the data being migrated. One row per job; a job's name
is its kind plus the canonical selection (tenant, app, window), so a different selection is a
different job. The table is created on first use and is not part of Dify's own schema.

On PostgreSQL a job also holds a session-level advisory lock while it runs, so two processes
never advance the same checkpoint; the lock goes away with the process, even after ``kill -9``.
"""

from __future__ import annotations

import contextlib
import hashlib
import typing as t
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import orjson
import sqlalchemy as sa

from flask_difylogstore.dify.entities import naive_utc_now
from flask_difylogstore.errors import DifyLogStoreError
from flask_difylogstore.migration.source import Cursor

TABLE_NAME = "difylogstore_migration_checkpoints"

_metadata = sa.MetaData()
checkpoints_table = sa.Table(
    TABLE_NAME,
    _metadata,
    sa.Column("job", sa.String(512), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("cursor_created_at", sa.DateTime, nullable=True),
    sa.Column("cursor_id", sa.String(64), nullable=True),
    sa.Column("rows_done", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("rows_failed", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("failures", sa.Text, nullable=True),
    sa.Column("details", sa.Text, nullable=True),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)


@dataclass
class Checkpoint:
    """Where a job stands: its cursor, totals, ids that failed and free-form details."""

    job: str
    kind: str
    status: str = "running"
    cursor: Cursor | None = None
    rows_done: int = 0
    rows_failed: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    details: dict[str, t.Any] = field(default_factory=dict)
    started_at: datetime = field(default_factory=naive_utc_now)
    updated_at: datetime = field(default_factory=naive_utc_now)

    def to_dict(self) -> dict[str, t.Any]:
        return {
            "job": self.job,
            "kind": self.kind,
            "status": self.status,
            "cursor": None if self.cursor is None else [self.cursor[0].isoformat(), self.cursor[1]],
            "rows_done": self.rows_done,
            "rows_failed": self.rows_failed,
            "failures": dict(list(self.failures.items())[:20]),
            "details": self.details,
            "started_at": self.started_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def _dumps(value: t.Any) -> str:
    return orjson.dumps(value, default=str).decode()


class CheckpointStore:
    """Reads and writes checkpoints in the relational database (each call its own transaction)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._ready = False

    def ensure_table(self) -> None:
        if not self._ready:
            _metadata.create_all(self.engine, checkfirst=True)
            self._ready = True

    def exists(self) -> bool:
        return self._ready or sa.inspect(self.engine).has_table(TABLE_NAME)

    def load(self, job: str) -> Checkpoint | None:
        if not self.exists():
            return None
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(checkpoints_table).where(checkpoints_table.c.job == job)).first()
        return None if row is None else _from_row(row._mapping)

    def all(self, prefix: str = "") -> list[Checkpoint]:
        if not self.exists():
            return []
        stmt = sa.select(checkpoints_table).order_by(checkpoints_table.c.updated_at)
        if prefix:
            stmt = stmt.where(checkpoints_table.c.job.startswith(prefix, autoescape=True))
        with self.engine.connect() as conn:
            return [_from_row(row._mapping) for row in conn.execute(stmt)]

    def save(self, checkpoint: Checkpoint) -> None:
        """Insert or update ``checkpoint`` (stamping ``updated_at``) in one short transaction."""
        self.ensure_table()
        checkpoint.updated_at = naive_utc_now()
        values = {
            "kind": checkpoint.kind,
            "status": checkpoint.status,
            "cursor_created_at": checkpoint.cursor[0] if checkpoint.cursor else None,
            "cursor_id": checkpoint.cursor[1] if checkpoint.cursor else None,
            "rows_done": checkpoint.rows_done,
            "rows_failed": checkpoint.rows_failed,
            "failures": _dumps(checkpoint.failures),
            "details": _dumps(checkpoint.details),
            "started_at": checkpoint.started_at,
            "updated_at": checkpoint.updated_at,
        }
        table = checkpoints_table
        with self.engine.begin() as conn:
            updated = conn.execute(sa.update(table).where(table.c.job == checkpoint.job).values(**values))
            if updated.rowcount == 0:
                conn.execute(sa.insert(table).values(job=checkpoint.job, **values))

    def delete(self, job: str) -> None:
        if self.exists():
            with self.engine.begin() as conn:
                conn.execute(sa.delete(checkpoints_table).where(checkpoints_table.c.job == job))

    @contextlib.contextmanager
    def lock(self, job: str) -> Iterator[None]:
        """Hold the job's advisory lock (PostgreSQL) for the block; fail fast when another run has it."""
        if self.engine.dialect.name != "postgresql":
            yield
            return
        key = int.from_bytes(hashlib.sha256(job.encode()).digest()[:8], "big", signed=True)
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar_one()
            if not got:
                raise DifyLogStoreError(f"another process is running job {job!r}; wait for it or stop it first")
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})


def _from_row(row: sa.RowMapping) -> Checkpoint:
    cursor = None
    if row["cursor_created_at"] is not None and row["cursor_id"] is not None:
        cursor = (row["cursor_created_at"], str(row["cursor_id"]))
    return Checkpoint(
        job=row["job"],
        kind=row["kind"],
        status=row["status"],
        cursor=cursor,
        rows_done=int(row["rows_done"] or 0),
        rows_failed=int(row["rows_failed"] or 0),
        failures=orjson.loads(row["failures"]) if row["failures"] else {},
        details=orjson.loads(row["details"]) if row["details"] else {},
        started_at=row["started_at"],
        updated_at=row["updated_at"],
    )
