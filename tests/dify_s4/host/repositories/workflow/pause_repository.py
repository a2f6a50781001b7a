"""Pause, resume and the pause record: SQL transactions on the run's ``workflow_runs`` control row.

As on the newest Dify line, a pause needs the run's row (``ValueError`` when it is missing), sets
the run's status to ``paused`` in the same transaction, and resuming sets it back to ``running``.
The engine state is kept in the pause row (Dify keeps it in object storage).
"""

from __future__ import annotations

import dataclasses
import json
import typing as t
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from models.workflow import WorkflowPause, WorkflowRun
from sqlalchemy.orm import Session, sessionmaker

from flask_difylogstore.dify.entities import naive_utc_now
from flask_difylogstore.dify.enums import WorkflowExecutionStatus


@dataclass(frozen=True)
class SchedulingPause:
    """The engine paused for capacity."""

    message: str


@dataclass(frozen=True)
class HumanInputRequired:
    """A human-input node waits for a form."""

    form_id: str
    node_id: str
    node_title: str = "Human Input"
    form_content: str = ""


REASON_TYPES: dict[str, type[t.Any]] = {"scheduling": SchedulingPause, "human_input_required": HumanInputRequired}


class WorkflowRunPauseRecord(t.NamedTuple):
    status: str
    paused_at: datetime | None
    reasons: tuple[t.Any, ...]
    form_tokens: Mapping[str, str]


@dataclass(frozen=True)
class WorkflowPauseEntity:
    id: str
    workflow_run_id: str
    paused_at: datetime
    resumed_at: datetime | None
    reasons: tuple[t.Any, ...]
    state: bytes

    def get_state(self) -> bytes:
        return self.state


class WorkflowPauseError(RuntimeError):
    """The run is not in a state the operation accepts."""


def _dump_reasons(reasons: Sequence[t.Any]) -> str:
    names = {cls: name for name, cls in REASON_TYPES.items()}
    items = []
    for reason in reasons:
        if type(reason) not in names:
            raise AssertionError(f"unknown reason type: {type(reason)}")
        items.append({"type": names[type(reason)], **dataclasses.asdict(reason)})
    return json.dumps(items)


def _load_reasons(text: str) -> tuple[t.Any, ...]:
    return tuple(REASON_TYPES[item.pop("type")](**item) for item in json.loads(text or "[]"))


def _entity(row: WorkflowPause) -> WorkflowPauseEntity:
    return WorkflowPauseEntity(
        row.id, row.workflow_run_id, row.created_at, row.resumed_at, _load_reasons(row.reasons), row.state.encode()
    )


class WorkflowPauseRepository:
    """The pause half of the newest line's SQL run repository."""

    _session_factory: sessionmaker[Session]

    def create_workflow_pause(
        self, workflow_run_id: str, state_owner_user_id: str, state: str, pause_reasons: Sequence[t.Any]
    ) -> WorkflowPauseEntity:
        with self._session_factory() as session, session.begin():
            run = session.get(WorkflowRun, workflow_run_id)
            if run is None:
                raise ValueError(f"WorkflowRun not found: {workflow_run_id}")
            if run.status not in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.PAUSED):
                raise WorkflowPauseError(f"Only running or paused runs can be paused, status={run.status}")
            session.execute(sa.delete(WorkflowPause).where(WorkflowPause.workflow_run_id == workflow_run_id))
            row = WorkflowPause(
                workflow_id=run.workflow_id,
                workflow_run_id=run.id,
                state=state,
                reasons=_dump_reasons(pause_reasons),
                created_at=naive_utc_now(),
            )
            session.add(row)
            run.status = WorkflowExecutionStatus.PAUSED.value
            session.flush()
            return _entity(row)

    def _pause_row(self, session: Session, workflow_run_id: str) -> WorkflowPause | None:
        return session.scalar(sa.select(WorkflowPause).where(WorkflowPause.workflow_run_id == workflow_run_id))

    def get_workflow_pause(self, workflow_run_id: str) -> WorkflowPauseEntity | None:
        with self._session_factory() as session:
            if session.get(WorkflowRun, workflow_run_id) is None:
                raise ValueError(f"WorkflowRun not found: {workflow_run_id}")
            row = self._pause_row(session, workflow_run_id)
            return _entity(row) if row is not None else None

    def get_pause_record(self, *, workspace_id: str, workflow_run_id: str) -> WorkflowRunPauseRecord | None:
        with self._session_factory() as session:
            run = session.scalar(
                sa.select(WorkflowRun).where(WorkflowRun.tenant_id == workspace_id, WorkflowRun.id == workflow_run_id)
            )
            if run is None:
                return None
            status = WorkflowExecutionStatus(run.status)
            if status != WorkflowExecutionStatus.PAUSED:
                return WorkflowRunPauseRecord(status, None, (), {})
            row = self._pause_row(session, workflow_run_id)
            if row is None:
                return WorkflowRunPauseRecord(status, None, (), {})
            reasons = _load_reasons(row.reasons)
            # The host keeps no form recipients, so no form has a token to hand out.
            return WorkflowRunPauseRecord(status, row.created_at, reasons, {})

    def resume_workflow_pause(self, workflow_run_id: str, pause_entity: WorkflowPauseEntity) -> WorkflowPauseEntity:
        with self._session_factory() as session, session.begin():
            run = session.get(WorkflowRun, workflow_run_id)
            if run is None:
                raise ValueError(f"WorkflowRun not found: {workflow_run_id}")
            if run.status != WorkflowExecutionStatus.PAUSED:
                raise WorkflowPauseError(f"WorkflowRun is not paused, status={run.status}")
            row = self._pause_row(session, workflow_run_id)
            if row is None or row.id != pause_entity.id:
                raise WorkflowPauseError(f"No such pause of workflow run {workflow_run_id}")
            if row.resumed_at is not None:
                raise WorkflowPauseError(f"Cannot resume an already resumed pause, pause_id={row.id}")
            row.resumed_at = naive_utc_now()
            run.status = WorkflowExecutionStatus.RUNNING.value
            session.flush()
            return _entity(row)

    def delete_workflow_pause(self, pause_entity: WorkflowPauseEntity) -> None:
        with self._session_factory() as session, session.begin():
            session.execute(sa.delete(WorkflowPause).where(WorkflowPause.id == pause_entity.id))

    def prune_pauses(
        self, expiration: datetime, resumption_expiration: datetime, limit: int | None = None
    ) -> Sequence[str]:
        stmt = sa.select(WorkflowPause.id).where(
            sa.or_(
                WorkflowPause.created_at < expiration,
                sa.and_(WorkflowPause.resumed_at.is_not(None), WorkflowPause.resumed_at < resumption_expiration),
            )
        )
        with self._session_factory() as session, session.begin():
            ids = list(session.scalars(stmt.limit(limit) if limit else stmt))
            if ids:
                session.execute(sa.delete(WorkflowPause).where(WorkflowPause.id.in_(ids)))
            return ids
