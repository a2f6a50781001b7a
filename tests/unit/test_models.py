from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from flask_difylogstore.dify.models import (
    Base,
    WorkflowAppLog,
    WorkflowNodeExecutionModel,
    WorkflowNodeExecutionOffload,
    WorkflowRun,
)

TENANT = "0e1c8a56-2f1d-4a55-9a0d-6b3e2d1c0f11"
APP = "5b8f3c2e-1d4a-4f6b-8c7e-9a0b1c2d3e4f"
USER = "9d8c7b6a-5e4f-4a3b-2c1d-0e9f8a7b6c5d"


def _populate(engine: sa.Engine) -> None:
    with Session(engine) as session:
        run = WorkflowRun(
            id="11111111-1111-4111-8111-111111111111",
            tenant_id=TENANT,
            app_id=APP,
            workflow_id=APP,
            type="workflow",
            triggered_from="app-run",
            version="draft",
            graph="{}",
            inputs='{"q": "hi"}',
            status="succeeded",
            outputs='{"a": 1}',
            elapsed_time=1.5,
            total_tokens=12,
            total_steps=3,
            created_by_role="account",
            created_by=USER,
            created_at=datetime(2026, 1, 1, 8, 0),
        )
        node = WorkflowNodeExecutionModel(
            id="22222222-2222-4222-8222-222222222222",
            tenant_id=TENANT,
            app_id=APP,
            workflow_id=APP,
            triggered_from="workflow-run",
            workflow_run_id=run.id,
            index=1,
            node_id="llm",
            node_type="llm",
            title="LLM",
            inputs='{"x": 1}',
            status="succeeded",
            elapsed_time=0.5,
            execution_metadata="{}",
            created_by_role="account",
            created_by=USER,
            created_at=datetime(2026, 1, 1, 8, 0, 1),
        )
        offload = WorkflowNodeExecutionOffload(
            tenant_id=TENANT,
            app_id=APP,
            node_execution_id=node.id,
            type_="outputs",
            file_id="33333333-3333-4333-8333-333333333333",
        )
        log = WorkflowAppLog(
            tenant_id=TENANT,
            app_id=APP,
            workflow_id=APP,
            workflow_run_id=run.id,
            created_from="service-api",
            created_by_role="end_user",
            created_by=USER,
        )
        session.add_all([run, node, offload, log])
        session.commit()
    with Session(engine) as session:
        loaded = session.scalars(
            sa.select(WorkflowNodeExecutionModel).options(selectinload(WorkflowNodeExecutionModel.offload_data))
        ).one()
        assert loaded.outputs_truncated and not loaded.inputs_truncated
        assert loaded.inputs_dict == {"x": 1}
        run_row = session.get(WorkflowRun, "11111111-1111-4111-8111-111111111111")
        assert run_row is not None and run_row.inputs_dict == {"q": "hi"} and run_row.total_tokens == 12
        assert session.scalar(sa.select(sa.func.count()).select_from(WorkflowAppLog)) == 1


def test_tables_on_sqlite() -> None:
    engine = sa.create_engine("sqlite://")
    Base.metadata.create_all(engine)
    _populate(engine)


@pytest.mark.postgres
def test_tables_on_postgresql_use_difys_names_and_types(pg_engine: sa.Engine) -> None:
    _populate(pg_engine)
    inspector = sa.inspect(pg_engine)
    assert {
        "workflow_runs",
        "workflow_node_executions",
        "workflow_node_execution_offload",
        "workflow_app_logs",
        "upload_files",
    } <= set(inspector.get_table_names())
    columns = {c["name"]: c for c in inspector.get_columns("workflow_runs")}
    assert str(columns["id"]["type"]) == "UUID"
    assert str(columns["total_tokens"]["type"]) == "BIGINT"
    assert columns["graph"]["nullable"] and not columns["status"]["nullable"]
    indexes = {i["name"] for i in inspector.get_indexes("workflow_runs")}
    assert "workflow_run_triggerd_from_idx" in indexes


def test_lazy_raise_on_offload_data_is_kept() -> None:
    engine = sa.create_engine("sqlite://")
    Base.metadata.create_all(engine)
    _populate(engine)
    with Session(engine) as session:
        row = session.scalars(sa.select(WorkflowNodeExecutionModel)).one()
        with pytest.raises(sa.exc.InvalidRequestError):
            _ = row.offload_data
