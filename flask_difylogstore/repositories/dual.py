"""Dual write and dual read: the log store and the relational database as one store during a grey migration.

**Dual write** (``LOGSTORE_DUAL_WRITE_ENABLED``): every save goes to the log store (through the
pipeline) and then to the relational repository; deletes go to both whenever dual write *or* dual
read is on (otherwise the fallback would bring deleted data back, and Dify's cleanup tasks would
find the same expired runs forever). A relational failure never fails the caller: it is logged
with the entity's kind, id, tenant and app (never payloads or SQL parameters) and counted as
``dual_write_failures`` in ``flask logstore health``.

**Dual read** (``LOGSTORE_DUAL_READ_ENABLED``) answers every read from both stores: the rules and the
merge are in :mod:`flask_difylogstore.repositories.dual_read`; the repositories reach it through
:class:`RelationalDelegate`, which also runs deletes on both sides.
"""

from __future__ import annotations

import logging
import typing as t

from flask_difylogstore.backends.base import Scope
from flask_difylogstore.records import LogRecord, RecordKind
from flask_difylogstore.repositories._context import StateMixin
from flask_difylogstore.repositories._reads import Reader
from flask_difylogstore.repositories.dual_read import (
    TO_MODEL,
    Merger,
    cutover_of,
    describe,
    relational_sessions,
    report_read_failure,
)
from flask_difylogstore.repositories.dual_sql import Sessions
from flask_difylogstore.repositories.relational_classes import control_rows_required, relational_repositories
from flask_difylogstore.state import LogStoreState

logger = logging.getLogger(__name__)


def report_write_failure(state: LogStoreState, action: str, exc: BaseException, **context: t.Any) -> None:
    """Log and count a relational write that failed; the caller carries on."""
    state.count("dual_write_failures")
    where = ", ".join(f"{k}={v}" for k, v in context.items() if v is not None)
    logger.error(
        "flask-difylogstore: dual write %s to the relational database failed (%s): %s", action, where, describe(exc)
    )


class RelationalDelegate(StateMixin):
    """The relational side of the API repositories: dual read, deletes on both sides, Session-based methods."""

    _session_maker: t.Any = None
    _relational_key = "api_workflow_run"
    _relational_cache: t.Any = None

    def _relational(self) -> t.Any:
        if self._relational_cache is None:
            from flask_difylogstore.repositories.relational import resolve_session_factory

            cls = relational_repositories()[self._relational_key]
            self._relational_cache = cls(session_maker=self._session_maker or resolve_session_factory(None))
        return self._relational_cache

    def _reader(self) -> Reader:
        return Reader(self.backend, self.state.sink)

    def _dual_read_sessions(self) -> Sessions | None:
        if not self.state.settings.dual_read_enabled:
            return None
        try:
            return relational_sessions(self._session_maker)
        except Exception as exc:
            report_read_failure(self.state, "session factory", exc)
            return None

    def _merger(self) -> Merger:
        return Merger(self._reader(), self._dual_read_sessions(), cutover_of(self.state.settings), self.state)

    def _dual_read(self, method: str, *args: t.Any) -> t.Any:
        """The relational repository's own answer, when dual read is on (``None`` on failure)."""
        if self._dual_read_sessions() is None:
            return None
        try:
            return getattr(self._relational(), method)(*args)
        except Exception as exc:
            report_read_failure(self.state, method, exc)
            return None

    def _lookup(self, kind: RecordKind, id_: str, where: Scope, method: str, *args: t.Any) -> t.Any:
        """A by-id read: the log store's entity (see :meth:`_by_id`).

        When the log store cannot answer (unreachable, refusing) and dual read is on, the relational
        repository answers instead — a migration must not turn a log-store outage into missing runs;
        with dual read off the backend's error propagates.
        """
        try:
            record = self._reader().get_one(kind, id_, where)
        except Exception as exc:
            if self._dual_read_sessions() is None:
                raise
            logger.warning(
                "flask-difylogstore: the log store could not answer %s (%s); reading the relational database",
                method,
                describe(exc),
            )
            self.state.count("dual_read_fallbacks")
            return self._dual_read(method, *args)
        return self._by_id(record, method, *args)

    def _by_id(self, record: LogRecord | None, method: str, *args: t.Any) -> t.Any:
        """The by-id rule: the log store's entity unless it predates the cut-over or is missing."""
        cutover = cutover_of(self.state.settings)
        if record is not None and (cutover is None or record.created_at >= cutover):
            return TO_MODEL[record.kind](record)
        row = self._dual_read(method, *args)
        if row is not None and (cutover is None or row.created_at < cutover):
            return row
        return None if record is None else TO_MODEL[record.kind](record)

    def _relational_write(
        self, method: str, *args: t.Any, context: dict[str, t.Any] | None = None, **kwargs: t.Any
    ) -> t.Any:
        """Run a delete on the relational side too (see the module docstring); ``None`` when skipped or failed.

        On a Dify line with control rows (every run has a slim ``workflow_runs`` row, Agent callers a
        ``workflow_node_executions`` row) deletes always reach the relational side, or those rows
        would outlive their runs.
        """
        settings = self.state.settings
        control = control_rows_required()
        if not (settings.dual_write_enabled or settings.dual_read_enabled or control):
            return None
        try:
            if relational_sessions(self._session_maker) is None and not (settings.dual_write_enabled or control):
                return None
            return getattr(self._relational(), method)(*args, **kwargs)
        except Exception as exc:
            report_write_failure(self.state, method, exc, **(context or {}))
            return None


def larger(logstore: int, relational: t.Any) -> int:
    """A delete's count over both stores: an entity deleted from both is one entity."""
    return max(int(logstore or 0), int(relational or 0))
