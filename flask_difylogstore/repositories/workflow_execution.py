"""The run writer (``CORE_WORKFLOW_EXECUTION_REPOSITORY``; Dify's ``create_workflow_execution_repository``).

On the newest Dify line the relational ``workflow_runs`` row is also *control state*: pausing a
run (``create_workflow_pause``), resuming it and the pause record all read that row inside a SQL
transaction. Dify's own SQL repository there offers ``save_control`` (the run's identity and
lifecycle without graph, inputs or outputs), and Dify's own log-store writer calls it before
every log write. This writer does the same whenever the host's SQL repository has
``save_control``: the control row is the one synchronous write of a save, and its failure
propagates to the engine, as Dify requires. Everything else goes through the pipeline.
"""

from __future__ import annotations

import typing as t

from flask_difylogstore import conversions
from flask_difylogstore.records import LogRecord, RecordKind, default_clock
from flask_difylogstore.repositories._context import StateMixin, creator_of, enum_value, scope, tenant_of
from flask_difylogstore.repositories._reads import Reader
from flask_difylogstore.repositories.dual import report_write_failure
from flask_difylogstore.repositories.dual_read import cutover_of, relational_sessions, report_read_failure
from flask_difylogstore.repositories.relational_classes import (
    control_rows_required,
    core_repository,
    relational_repositories,
)


class LogStoreWorkflowExecutionRepository(StateMixin):
    """Saves each state of a run as a full snapshot; the newest (or final) snapshot wins on read.

    Accepts every Dify line's constructor: S2 (``session_factory, user, app_id, triggered_from``),
    S3 and S4 (plus ``tenant_id``). ``session_factory`` is used for control rows, dual write and
    dual read.
    """

    def __init__(
        self,
        session_factory: t.Any = None,
        user: t.Any = None,
        app_id: str | None = None,
        triggered_from: t.Any = None,
        tenant_id: str | None = None,
        **extra: t.Any,
    ) -> None:
        self._session_factory = session_factory
        self._user = user
        self._tenant_id = str(tenant_id) if tenant_id else tenant_of(user)
        self._app_id = app_id
        self._triggered_from = enum_value(triggered_from)
        self._triggered_from_raw = triggered_from
        role, creator = creator_of(user)
        self._owner = conversions.Owner(self._tenant_id, app_id, self._triggered_from, role, creator)
        self._relational: t.Any = None

    def save(self, execution: t.Any) -> None:
        """Write the control row when the host needs one (errors propagate), then hand a full snapshot to
        the write pipeline (no network on this thread). With dual write, the relational copy is complete."""
        state = self.state
        settings = state.settings
        data = conversions.run_data(execution, self._owner, put_graph=settings.enable_put_graph_field)
        if control_rows_required():
            self._save_control(execution, dual_write=settings.dual_write_enabled)
        version = default_clock.version_for(RecordKind.RUN, data["status"])
        state.require_sink().submit([LogRecord(RecordKind.RUN, data, version)])
        if settings.dual_write_enabled and not control_rows_required():
            self._dual_write(execution)

    def _save_control(self, execution: t.Any, *, dual_write: bool) -> None:
        """The run's control row must exist before anything can pause the run: a failure of it stops the save
        here, before the log store sees the run. With dual write, the complete SQL copy is tried first; if
        only that fails, the control row is written instead and the failed copy reported (as Dify does)."""
        repository = self._relational_repository()
        if dual_write:
            try:
                repository.save(execution)
                return
            except Exception as exc:
                context = {"id": execution.id_, "tenant_id": self._tenant_id, "app_id": self._app_id}
                report_write_failure(self.state, "save of run", exc, **context)
        repository.save_control(execution)

    def get(self, execution_id: str) -> t.Any:
        """The run as a ``WorkflowExecution`` (Dify S1 had this method), or ``None``."""
        record = Reader(self.backend, self.sink).get_one(
            RecordKind.RUN, execution_id, scope(self._tenant_id, self._app_id)
        )
        cutover = cutover_of(self.state.settings)
        if record is not None and (cutover is None or record.created_at >= cutover):
            return conversions.run_entity(record.data)
        row = self._dual_read(execution_id)
        if row is not None and (cutover is None or row.created_at < cutover):
            return conversions.run_entity(conversions.model_to_data(row))
        return None if record is None else conversions.run_entity(record.data)

    def _dual_read(self, execution_id: str) -> t.Any:
        if not self.state.settings.dual_read_enabled:
            return None
        try:
            sessions = relational_sessions(self._session_factory)
            if sessions is None:
                return None
            cls = relational_repositories()["api_workflow_run"]
            row = cls(session_maker=sessions).get_workflow_run_by_id_without_tenant(execution_id)
        except Exception as exc:
            report_read_failure(self.state, "get_workflow_run_by_id_without_tenant", exc)
            return None
        if row is None or str(row.tenant_id) != self._tenant_id or (self._app_id and str(row.app_id) != self._app_id):
            return None
        return row

    def _relational_repository(self) -> t.Any:
        """The relational run writer for this owner, built once (Dify's own inside Dify)."""
        if self._relational is None:
            self._relational = core_repository(
                "workflow_execution",
                session_factory=self._session_factory or _app_session_factory(),
                user=self._user,
                app_id=self._app_id,
                triggered_from=self._triggered_from_raw,
                tenant_id=self._tenant_id,
            )
        return self._relational

    def _dual_write(self, execution: t.Any) -> None:
        try:
            self._relational_repository().save(execution)
        except Exception as exc:
            context = {"id": execution.id_, "tenant_id": self._tenant_id, "app_id": self._app_id}
            report_write_failure(self.state, "save of run", exc, **context)


def _app_session_factory() -> t.Any:
    from flask_difylogstore.repositories.relational import resolve_session_factory

    return resolve_session_factory(None)
