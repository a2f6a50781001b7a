"""Run control state the log store does not hold: pauses, archive logs, chat messages.

Pauses and archive logs are rows Dify reads and writes inside its own SQL transactions (several
methods take the caller's ``Session``), and a run's chat message lives in Dify's ``messages``
table. They stay in the relational database: every method here is answered by the relational
repository — Dify's own SQL repository inside Dify. On the newest Dify line a pause needs the run's
``workflow_runs`` control row, which the run writer keeps (see
:mod:`flask_difylogstore.repositories.workflow_execution`).
"""

from __future__ import annotations

import typing as t
from collections.abc import Mapping, Sequence
from datetime import datetime

from flask_difylogstore.repositories.dual import RelationalDelegate
from flask_difylogstore.repositories.dual_read import relational_sessions


class RunControl(RelationalDelegate):
    """The control-state half of the API run repository: answered by the relational repository."""

    def _delegate(self, name: str, *args: t.Any, **kwargs: t.Any) -> t.Any:
        return getattr(self._relational(), name)(*args, **kwargs)

    # -- pauses (S3 / S4) -----------------------------------------------------------------------

    def create_workflow_pause(
        self, workflow_run_id: str, state_owner_user_id: str, state: str, pause_reasons: Sequence[t.Any]
    ) -> t.Any:
        """Pauses are transactional control data on the run's control row: relational."""
        return self._delegate("create_workflow_pause", workflow_run_id, state_owner_user_id, state, pause_reasons)

    def resume_workflow_pause(self, workflow_run_id: str, pause_entity: t.Any) -> t.Any:
        """Relational (pause state)."""
        return self._delegate("resume_workflow_pause", workflow_run_id, pause_entity)

    def delete_workflow_pause(self, pause_entity: t.Any) -> t.Any:
        """Relational (pause state)."""
        return self._delegate("delete_workflow_pause", pause_entity)

    def prune_pauses(self, expiration: datetime, resumption_expiration: datetime, limit: int | None = None) -> t.Any:
        """Relational (pause state)."""
        return self._delegate("prune_pauses", expiration, resumption_expiration, limit)

    def _has_relational(self) -> bool:
        """Whether a relational database exists to hold control state (always inside Dify)."""
        return relational_sessions(self._session_maker) is not None

    def get_workflow_pause(self, workflow_run_id: str) -> t.Any:
        """The run's current pause, or ``None`` (relational, S4; no database means no pause)."""
        if not self._has_relational():
            return None
        return self._delegate("get_workflow_pause", workflow_run_id)

    def get_pause_record(self, *, workspace_id: str, workflow_run_id: str) -> t.Any:
        """The run's status, pause time, reasons and form tokens within ``workspace_id``, or ``None`` (S4).

        Read from the run's control row and pause rows, which resumption updates synchronously; the
        log store's copy of the run may still be behind.
        """
        if not self._has_relational():
            return None
        return self._delegate("get_pause_record", workspace_id=workspace_id, workflow_run_id=workflow_run_id)

    def get_pause_records_by_run_id(self, session: t.Any, run_id: str) -> Sequence[t.Any]:
        """Takes the caller's Session: relational."""
        return t.cast(Sequence[t.Any], self._delegate("get_pause_records_by_run_id", session, run_id))

    def get_pause_reason_records_by_run_id(self, session: t.Any, pause_ids: Sequence[str]) -> Sequence[t.Any]:
        """Takes the caller's Session: relational."""
        return t.cast(Sequence[t.Any], self._delegate("get_pause_reason_records_by_run_id", session, pause_ids))

    # -- chat messages (S4) ---------------------------------------------------------------------

    def get_message_refs(self, *, app_id: str, workflow_run_ids: Sequence[str]) -> Mapping[str, t.Any]:
        """Run id -> ``WorkflowRunMessageRef`` of the chat message each run answered (Dify's ``messages``)."""
        if not workflow_run_ids or not self._has_relational():
            return {}
        return t.cast(
            Mapping[str, t.Any],
            self._delegate("get_message_refs", app_id=app_id, workflow_run_ids=list(workflow_run_ids)),
        )

    # -- archive logs (S3 / S4) -----------------------------------------------------------------

    def get_archived_run_ids(self, session: t.Any, run_ids: Sequence[str]) -> set[str]:
        """Archive logs are a relational table read in the caller's Session."""
        return t.cast(set[str], self._delegate("get_archived_run_ids", session, run_ids))

    def get_archived_logs_by_time_range(
        self, session: t.Any, tenant_ids: Sequence[str] | None, start_date: datetime, end_date: datetime, limit: int
    ) -> Sequence[t.Any]:
        """Archive logs: relational."""
        return t.cast(
            Sequence[t.Any],
            self._delegate("get_archived_logs_by_time_range", session, tenant_ids, start_date, end_date, limit),
        )

    def get_archived_log_by_run_id(self, run_id: str) -> t.Any:
        """Archive logs: relational."""
        return self._delegate("get_archived_log_by_run_id", run_id)

    def delete_archive_log_by_run_id(self, session: t.Any, run_id: str) -> int:
        """Archive logs: relational."""
        return int(self._delegate("delete_archive_log_by_run_id", session, run_id) or 0)

    def get_archived_runs_by_time_range(
        self, session: t.Any, tenant_ids: Sequence[str] | None, start_date: datetime, end_date: datetime, limit: int
    ) -> Sequence[t.Any]:
        """Joins runs with archive logs in the caller's Session: relational."""
        return t.cast(
            Sequence[t.Any],
            self._delegate("get_archived_runs_by_time_range", session, tenant_ids, start_date, end_date, limit),
        )

    def create_archive_logs(
        self, session: t.Any, run: t.Any, app_logs: Sequence[t.Any], trigger_metadata: str | None
    ) -> int:
        """Writes archive rows in the caller's transaction: relational."""
        return int(self._delegate("create_archive_logs", session, run, app_logs, trigger_metadata) or 0)

    def get_app_logs_by_run_id(self, session: t.Any, run_id: str) -> Sequence[t.Any]:
        """Dify writes app logs with its ORM in the caller's Session: relational."""
        return t.cast(Sequence[t.Any], self._delegate("get_app_logs_by_run_id", session, run_id))
