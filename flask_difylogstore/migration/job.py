"""What every migration job works on, set up in one place.

``migrate``, ``verify`` and ``cleanup-pg`` all read the relational database, talk to the log
store, follow offloaded payloads, keep checkpoints and report progress; they differ only in what
they do with those, so the wiring is shared here and each job adds its own steps.
"""

from __future__ import annotations

import sqlalchemy as sa

from flask_difylogstore.backends.base import LogBackend
from flask_difylogstore.migration.checkpoint import CheckpointStore
from flask_difylogstore.migration.progress import ProgressFactory, null_progress
from flask_difylogstore.migration.storage import PayloadStore


class MigrationJob:
    """The relational engine, the log backend, the payload store, checkpoints and progress of one job."""

    def __init__(
        self,
        engine: sa.Engine,
        backend: LogBackend,
        *,
        store: PayloadStore | None,
        checkpoints: CheckpointStore | None = None,
        progress: ProgressFactory = null_progress,
    ) -> None:
        self.engine = engine
        self.backend = backend
        self.store = store
        self.checkpoints = checkpoints or CheckpointStore(engine)
        self.progress = progress
