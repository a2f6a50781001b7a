"""``models.workflow``: Dify's workflow-log tables (the package's ORM models) plus a minimal pause table.

Re-exporting the package's models makes ``models.workflow`` importable with
``WorkflowNodeExecutionModel``, which is how the package recognises that it runs inside Dify.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from flask_difylogstore.dify.entities import naive_utc_now
from flask_difylogstore.dify.enums import WorkflowNodeExecutionTriggeredFrom
from flask_difylogstore.dify.models import (
    Base,
    WorkflowAppLog,
    WorkflowNodeExecutionModel,
    WorkflowNodeExecutionOffload,
    WorkflowRun,
)


class WorkflowPause(Base):
    """One pause of a run: the engine state to resume from and why it paused (one row per run)."""

    __tablename__ = "workflow_pauses"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    workflow_id: Mapped[str] = mapped_column(sa.String(255))
    workflow_run_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    state: Mapped[str] = mapped_column(sa.Text)
    reasons: Mapped[str] = mapped_column(sa.Text, default="[]")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=naive_utc_now)
    resumed_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)


__all__ = [
    "WorkflowAppLog",
    "WorkflowNodeExecutionModel",
    "WorkflowNodeExecutionOffload",
    "WorkflowNodeExecutionTriggeredFrom",
    "WorkflowPause",
    "WorkflowRun",
]
