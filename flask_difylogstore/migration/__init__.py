"""PostgreSQL -> log store: ``migrate``, ``verify`` and ``cleanup-pg`` as library functions.

The ``flask logstore`` commands are thin wrappers over :mod:`~flask_difylogstore.migration.run`
(one call per command, returning what it prints); code can call either directly::

    ctx = MigrationContext.from_app(app)
    report = ctx.migrator().run(MigrateOptions(kind="all", workers=4))
    output = run.verify(ctx, sample=5.0)  # output.data, output.exit_code
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from flask import Flask, current_app

from flask_difylogstore.backends.base import LogBackend
from flask_difylogstore.errors import DifyLogStoreError, ProvisioningError
from flask_difylogstore.migration.checkpoint import Checkpoint, CheckpointStore
from flask_difylogstore.migration.cleanup import Cleaner, CleanupOptions, CleanupReport
from flask_difylogstore.migration.migrate import MigrateOptions, MigrateReport, Migrator
from flask_difylogstore.migration.progress import ProgressFactory, null_progress
from flask_difylogstore.migration.selection import Selection, Window
from flask_difylogstore.migration.storage import PayloadStore, default_payload_store
from flask_difylogstore.migration.verify import Verifier, VerifyOptions, VerifyReport
from flask_difylogstore.state import get_state

__all__ = [
    "Checkpoint",
    "CheckpointStore",
    "Cleaner",
    "CleanupOptions",
    "CleanupReport",
    "MigrateOptions",
    "MigrateReport",
    "MigrationContext",
    "Migrator",
    "PayloadStore",
    "Selection",
    "VerifyOptions",
    "VerifyReport",
    "Verifier",
    "Window",
    "relational_engine",
]


def relational_engine(app: Flask) -> sa.Engine:
    """The engine of the app's Flask-SQLAlchemy (Dify's ``db``)."""
    ext = app.extensions.get("sqlalchemy")
    if ext is None:
        raise DifyLogStoreError(
            "the app has no Flask-SQLAlchemy: migration reads Dify's tables through app.extensions['sqlalchemy']"
        )
    return t.cast(sa.Engine, ext.engine)


@dataclass
class MigrationContext:
    """What the jobs need from the app: the relational engine, the backend and payload storage."""

    engine: sa.Engine
    backend: LogBackend
    store: PayloadStore | None
    checkpoints: CheckpointStore
    before_write: t.Callable[[], None] | None = None
    progress: ProgressFactory = null_progress

    @classmethod
    def from_app(
        cls,
        app: Flask | None = None,
        *,
        storage_dir: str | Path | None = None,
        progress: ProgressFactory = null_progress,
    ) -> MigrationContext:
        app = app or t.cast(Flask, current_app._get_current_object())  # type: ignore[attr-defined]
        state = get_state(app)
        backend = state.require_backend()
        engine = relational_engine(app)
        gate = state.gate

        def provisioned() -> None:
            """SLS never indexes data written before its index exists: provision first, or stop."""
            if gate is None or gate.wait(state.settings.startup_timeout):
                return
            try:
                gate.run_now()
            except Exception as exc:
                raise ProvisioningError(f"the {backend.name} backend is not provisioned: {exc}") from exc

        return cls(
            engine,
            backend,
            default_payload_store(app, storage_dir),
            CheckpointStore(engine),
            provisioned,
            progress,
        )

    def migrator(self) -> Migrator:
        return Migrator(
            self.engine,
            self.backend,
            store=self.store,
            checkpoints=self.checkpoints,
            progress=self.progress,
            before_write=self.before_write,
        )

    def verifier(self) -> Verifier:
        return Verifier(
            self.engine, self.backend, store=self.store, checkpoints=self.checkpoints, progress=self.progress
        )

    def cleaner(self) -> Cleaner:
        return Cleaner(
            self.engine, self.backend, store=self.store, checkpoints=self.checkpoints, progress=self.progress
        )
