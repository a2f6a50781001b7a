"""SQLAlchemy models of Dify's workflow-log tables, for standalone use.

Table and column names and types are Dify's (``api/models/workflow.py``, ``api/models/model.py``),
so these models read and write a real Dify database. They use their own declarative base, so they
bind to whichever engine the host app's Flask-SQLAlchemy holds.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator, TypeEngine

from flask_difylogstore.dify.entities import naive_utc_now


class StringUUID(TypeDecorator[str]):
    """A UUID kept as a string in Python: native ``uuid`` on PostgreSQL, ``CHAR(36)`` elsewhere."""

    impl = sa.CHAR
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(PG_UUID())
        return dialect.type_descriptor(sa.CHAR(36))

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(value)


LongText = sa.Text


def _uuid() -> str:
    return str(uuid.uuid4())


def _json_dict(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    value = orjson.loads(text)
    return value if isinstance(value, dict) else {}


class Base(DeclarativeBase):
    """Declarative base of the package's copies of Dify's tables."""


class WorkflowRun(Base):
    __tablename__ = "workflow_runs"
    __table_args__ = (
        sa.PrimaryKeyConstraint("id", name="workflow_run_pkey"),
        sa.Index("workflow_run_triggerd_from_idx", "tenant_id", "app_id", "triggered_from"),
        sa.Index("workflow_run_created_at_id_idx", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(StringUUID, default=_uuid)
    tenant_id: Mapped[str] = mapped_column(StringUUID)
    app_id: Mapped[str] = mapped_column(StringUUID)
    workflow_id: Mapped[str] = mapped_column(StringUUID)
    type: Mapped[str] = mapped_column(sa.String(255))
    triggered_from: Mapped[str] = mapped_column(sa.String(255))
    version: Mapped[str] = mapped_column(sa.String(255))
    graph: Mapped[str | None] = mapped_column(LongText)
    inputs: Mapped[str | None] = mapped_column(LongText)
    status: Mapped[str] = mapped_column(sa.String(255))
    outputs: Mapped[str | None] = mapped_column(LongText, default="{}")
    error: Mapped[str | None] = mapped_column(LongText)
    elapsed_time: Mapped[float] = mapped_column(sa.Float, nullable=False, server_default=sa.text("0"))
    total_tokens: Mapped[int] = mapped_column(sa.BigInteger, server_default=sa.text("0"))
    total_steps: Mapped[int | None] = mapped_column(sa.Integer, server_default=sa.text("0"))
    created_by_role: Mapped[str] = mapped_column(sa.String(255))
    created_by: Mapped[str] = mapped_column(StringUUID, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime, nullable=False, server_default=sa.func.current_timestamp()
    )
    finished_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    exceptions_count: Mapped[int | None] = mapped_column(sa.Integer, server_default=sa.text("0"))

    @property
    def graph_dict(self) -> dict[str, Any]:
        return _json_dict(self.graph)

    @property
    def inputs_dict(self) -> dict[str, Any]:
        return _json_dict(self.inputs)

    @property
    def outputs_dict(self) -> dict[str, Any]:
        return _json_dict(self.outputs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "app_id": self.app_id,
            "workflow_id": self.workflow_id,
            "type": self.type,
            "triggered_from": self.triggered_from,
            "version": self.version,
            "graph": self.graph_dict,
            "inputs": self.inputs_dict,
            "status": self.status,
            "outputs": self.outputs_dict,
            "error": self.error,
            "elapsed_time": self.elapsed_time,
            "total_tokens": self.total_tokens,
            "total_steps": self.total_steps,
            "created_by_role": self.created_by_role,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "exceptions_count": self.exceptions_count,
        }


class WorkflowNodeExecutionModel(Base):
    __tablename__ = "workflow_node_executions"
    __table_args__ = (
        sa.PrimaryKeyConstraint("id", name="workflow_node_execution_pkey"),
        sa.Index("workflow_node_execution_workflow_run_id_idx", "workflow_run_id"),
        sa.Index(
            "workflow_node_execution_node_run_idx", "tenant_id", "app_id", "workflow_id", "triggered_from", "node_id"
        ),
        sa.Index(
            "workflow_node_execution_id_idx",
            "tenant_id",
            "app_id",
            "workflow_id",
            "triggered_from",
            "node_execution_id",
        ),
        sa.Index(
            "workflow_node_executions_tenant_id_idx",
            "tenant_id",
            "workflow_id",
            "node_id",
            sa.desc("created_at"),
        ),
    )

    id: Mapped[str] = mapped_column(StringUUID, default=_uuid)
    tenant_id: Mapped[str] = mapped_column(StringUUID)
    app_id: Mapped[str] = mapped_column(StringUUID)
    workflow_id: Mapped[str] = mapped_column(StringUUID)
    triggered_from: Mapped[str] = mapped_column(sa.String(255))
    workflow_run_id: Mapped[str | None] = mapped_column(StringUUID)
    index: Mapped[int] = mapped_column(sa.Integer)
    predecessor_node_id: Mapped[str | None] = mapped_column(sa.String(255))
    node_execution_id: Mapped[str | None] = mapped_column(sa.String(255))
    node_id: Mapped[str] = mapped_column(sa.String(255))
    node_type: Mapped[str] = mapped_column(sa.String(255))
    title: Mapped[str] = mapped_column(sa.String(255))
    inputs: Mapped[str | None] = mapped_column(LongText)
    process_data: Mapped[str | None] = mapped_column(LongText)
    outputs: Mapped[str | None] = mapped_column(LongText)
    status: Mapped[str] = mapped_column(sa.String(255))
    error: Mapped[str | None] = mapped_column(LongText)
    elapsed_time: Mapped[float] = mapped_column(sa.Float, server_default=sa.text("0"))
    execution_metadata: Mapped[str | None] = mapped_column(LongText)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, server_default=sa.func.current_timestamp())
    created_by_role: Mapped[str] = mapped_column(sa.String(255))
    created_by: Mapped[str] = mapped_column(StringUUID)
    finished_at: Mapped[datetime | None] = mapped_column(sa.DateTime)

    offload_data: Mapped[list[WorkflowNodeExecutionOffload]] = relationship(
        "WorkflowNodeExecutionOffload",
        primaryjoin="WorkflowNodeExecutionModel.id == foreign(WorkflowNodeExecutionOffload.node_execution_id)",
        uselist=True,
        lazy="raise",
        back_populates="execution",
    )

    @property
    def inputs_dict(self) -> dict[str, Any] | None:
        return _json_dict(self.inputs) if self.inputs else None

    @property
    def outputs_dict(self) -> dict[str, Any] | None:
        return _json_dict(self.outputs) if self.outputs else None

    @property
    def process_data_dict(self) -> dict[str, Any] | None:
        return _json_dict(self.process_data) if self.process_data else None

    @property
    def execution_metadata_dict(self) -> dict[str, Any]:
        return _json_dict(self.execution_metadata)

    def _offloaded(self, kind: str) -> bool:
        return any(o.type_ == kind for o in self.offload_data)

    @property
    def inputs_truncated(self) -> bool:
        return self._offloaded("inputs")

    @property
    def outputs_truncated(self) -> bool:
        return self._offloaded("outputs")

    @property
    def process_data_truncated(self) -> bool:
        return self._offloaded("process_data")


class WorkflowNodeExecutionOffload(Base):
    __tablename__ = "workflow_node_execution_offload"
    __table_args__ = (
        sa.PrimaryKeyConstraint("id", name="workflow_node_execution_offload_pkey"),
        sa.UniqueConstraint("node_execution_id", "type", name="workflow_node_execution_offload_node_execution_id_key"),
    )

    id: Mapped[str] = mapped_column(StringUUID, default=_uuid)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime, default=naive_utc_now, server_default=sa.func.current_timestamp()
    )
    tenant_id: Mapped[str] = mapped_column(StringUUID)
    app_id: Mapped[str] = mapped_column(StringUUID)
    node_execution_id: Mapped[str | None] = mapped_column(StringUUID, nullable=True)
    type_: Mapped[str] = mapped_column("type", sa.String(255))
    file_id: Mapped[str] = mapped_column(StringUUID)

    execution: Mapped[WorkflowNodeExecutionModel | None] = relationship(
        "WorkflowNodeExecutionModel",
        primaryjoin="WorkflowNodeExecutionModel.id == foreign(WorkflowNodeExecutionOffload.node_execution_id)",
        uselist=False,
        lazy="raise",
        back_populates="offload_data",
    )
    file: Mapped[UploadFile | None] = relationship(
        "UploadFile",
        primaryjoin="foreign(WorkflowNodeExecutionOffload.file_id) == UploadFile.id",
        lazy="raise",
        uselist=False,
    )


class WorkflowAppLog(Base):
    __tablename__ = "workflow_app_logs"
    __table_args__ = (
        sa.PrimaryKeyConstraint("id", name="workflow_app_log_pkey"),
        sa.Index("workflow_app_log_app_idx", "tenant_id", "app_id"),
        sa.Index("workflow_app_log_workflow_run_id_idx", "workflow_run_id"),
    )

    id: Mapped[str] = mapped_column(StringUUID, default=_uuid)
    tenant_id: Mapped[str] = mapped_column(StringUUID)
    app_id: Mapped[str] = mapped_column(StringUUID)
    workflow_id: Mapped[str] = mapped_column(StringUUID, nullable=False)
    workflow_run_id: Mapped[str] = mapped_column(StringUUID)
    created_from: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    created_by_role: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    created_by: Mapped[str] = mapped_column(StringUUID, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime, nullable=False, server_default=sa.func.current_timestamp()
    )


class UploadFile(Base):
    """The rows of Dify's ``upload_files`` that offloaded payloads point at (``key`` is the object)."""

    __tablename__ = "upload_files"
    __table_args__ = (sa.PrimaryKeyConstraint("id", name="upload_file_pkey"),)

    id: Mapped[str] = mapped_column(StringUUID, default=_uuid)
    tenant_id: Mapped[str] = mapped_column(StringUUID, nullable=False)
    storage_type: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    key: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    name: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    size: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    extension: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    mime_type: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    created_by_role: Mapped[str] = mapped_column(sa.String(255), nullable=False, server_default="account")
    created_by: Mapped[str] = mapped_column(StringUUID, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime, nullable=False, server_default=sa.func.current_timestamp()
    )
    used: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, server_default=sa.text("false"))
    used_by: Mapped[str | None] = mapped_column(StringUUID, nullable=True)
    used_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    hash: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    source_url: Mapped[str] = mapped_column(LongText, default="")


WORKFLOW_LOG_TABLES = (
    WorkflowRun.__table__,
    WorkflowNodeExecutionModel.__table__,
    WorkflowNodeExecutionOffload.__table__,
    WorkflowAppLog.__table__,
    UploadFile.__table__,
)
