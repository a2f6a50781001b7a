"""Entity / ORM <-> record conversions: Dify's columns, metadata keys, truncation flags, offload rows."""

from __future__ import annotations

import dataclasses
import typing as t
from datetime import UTC, datetime, timedelta, timezone

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, MappedAsDataclass, mapped_column

from flask_difylogstore import conversions, payloads
from flask_difylogstore.dify import compat
from flask_difylogstore.dify.entities import WorkflowExecution, WorkflowNodeExecution
from flask_difylogstore.dify.enums import (
    NodeType,
    WorkflowExecutionStatus,
    WorkflowNodeExecutionMetadataKey,
    WorkflowNodeExecutionStatus,
    WorkflowType,
)
from flask_difylogstore.dify.models import WorkflowAppLog, WorkflowNodeExecutionModel, WorkflowRun
from flask_difylogstore.records import LogRecord, RecordKind

OWNER = conversions.Owner("t1", "a1", "app-run", "end_user", "u1")
START = datetime(2026, 5, 1, 12, 0, 0)


def make_run(**changes: t.Any) -> WorkflowExecution:
    run = WorkflowExecution.new(
        id_="r1",
        workflow_id="w1",
        workflow_type=WorkflowType.CHAT,
        workflow_version="v2",
        graph={"nodes": []},
        inputs={"q": "hi"},
        started_at=START,
    )
    return run.model_copy(update=changes)


def test_run_columns_match_difys_sql_repository() -> None:
    data = conversions.run_data(make_run(), OWNER)
    assert data["type"] == "chat" and data["version"] == "v2" and data["status"] == "running"
    assert data["outputs"] == "{}" and data["error"] is None and data["elapsed_time"] == 0.0
    assert data["created_at"] == START and data["finished_at"] is None
    assert (
        data["tenant_id"],
        data["app_id"],
        data["triggered_from"],
        data["created_by_role"],
        data["created_by"],
    ) == ("t1", "a1", "app-run", "end_user", "u1")
    assert set(data) == set(conversions.model_columns(WorkflowRun))
    done = make_run(
        status=WorkflowExecutionStatus.FAILED,
        error_message="bad",
        outputs={"a": 1},
        finished_at=(START + timedelta(seconds=2.5)).replace(tzinfo=UTC),
    )
    data = conversions.run_data(done, OWNER, put_graph=False)
    assert data["graph"] == "{}" and data["error"] == "bad" and data["elapsed_time"] == 2.5
    assert data["finished_at"] == START + timedelta(seconds=2.5) and data["finished_at"].tzinfo is None


def test_run_model_and_entity_round_trip() -> None:
    run = make_run(
        status=WorkflowExecutionStatus.SUCCEEDED,
        outputs={"a": 1},
        total_tokens=7,
        finished_at=START + timedelta(seconds=1),
    )
    record = LogRecord(RecordKind.RUN, conversions.run_data(run, OWNER), 1)
    model = conversions.run_model(record)
    assert isinstance(model, WorkflowRun) and sa.inspect(model).transient
    assert model.outputs_dict == {"a": 1} and model.inputs_dict == {"q": "hi"} and model.total_tokens == 7
    entity = conversions.run_entity(record.data)
    assert entity.model_dump() == run.model_dump()


def make_node(**changes: t.Any) -> WorkflowNodeExecution:
    node = WorkflowNodeExecution(
        id="n1",
        node_execution_id="n1",
        workflow_id="w1",
        workflow_execution_id="r1",
        index=2,
        node_id="llm",
        node_type=NodeType.LLM,
        title="LLM",
        created_at=START.replace(tzinfo=timezone(timedelta(hours=8))),
    )
    return node.model_copy(update=changes)


def test_node_columns_metadata_and_flags() -> None:
    node = make_node(
        status=WorkflowNodeExecutionStatus.SUCCEEDED,
        metadata={
            WorkflowNodeExecutionMetadataKey.TOTAL_TOKENS: 5,
            WorkflowNodeExecutionMetadataKey.CURRENCY: "USD",
        },
    )
    truncator = payloads.Truncator(payloads.TruncationLimits(max_size=1024, string_length=10, array_length=3))
    encoded = {
        "inputs": payloads.encode_payload({"x": "y" * 5000}, truncator),
        "outputs": payloads.encode_payload({"ok": True}, truncator),
    }
    data = conversions.node_data(node, OWNER, encoded)
    assert data["workflow_run_id"] == "r1" and data["node_type"] == "llm"
    assert data["created_at"] == START - timedelta(hours=8)
    assert orjson.loads(data["execution_metadata"]) == {"total_tokens": 5, "currency": "USD"}
    assert (data["inputs_truncated"], data["outputs_truncated"], data["process_data_truncated"]) == (1, 0, 0)
    assert data["process_data"] is None
    assert set(data) == set(conversions.model_columns(WorkflowNodeExecutionModel)) | {
        "inputs_truncated",
        "outputs_truncated",
        "process_data_truncated",
    }
    assert conversions.truncated_types(data) == ["inputs"]

    record = LogRecord(RecordKind.NODE_EXECUTION, data, 1)
    model = conversions.node_model(record)
    assert model.inputs_truncated and not model.outputs_truncated and not model.process_data_truncated
    [offload] = model.offload_data
    assert offload.type_ == "inputs" and offload.node_execution_id == "n1"
    assert offload.id == conversions.offload_id("n1", "inputs")
    assert model.execution_metadata_dict == {"total_tokens": 5, "currency": "USD"}

    entity = conversions.node_entity(data, {"inputs": encoded["inputs"].full_text or ""})
    assert entity.inputs == {"x": "y" * 5000} and entity.inputs_truncated
    assert entity.get_truncated_inputs() == encoded["inputs"].truncated_value
    assert entity.metadata == {
        WorkflowNodeExecutionMetadataKey.TOTAL_TOKENS: 5,
        WorkflowNodeExecutionMetadataKey.CURRENCY: "USD",
    }
    without_full = conversions.node_entity(data)
    assert without_full.inputs == encoded["inputs"].truncated_value and not without_full.inputs_truncated


def test_unknown_metadata_keys_round_trip() -> None:
    """A key a newer engine wrote (graphon's ``completed_reason`` read by an older enum) is kept as a string."""
    metadata = conversions.metadata_from_text('{"total_tokens": 1, "from_the_future": 2}')
    assert metadata == {WorkflowNodeExecutionMetadataKey.TOTAL_TOKENS: 1, "from_the_future": 2}
    assert isinstance(next(iter(metadata)), compat.WorkflowNodeExecutionMetadataKey)
    entity = conversions.node_entity(
        conversions.node_data(make_node(), OWNER, {})
        | {"execution_metadata": '{"total_tokens": 1, "from_the_future": 2}'}
    )
    assert dict(entity.metadata) == metadata
    assert orjson.loads(conversions.metadata_text(entity.metadata) or "") == {"total_tokens": 1, "from_the_future": 2}
    assert conversions.metadata_from_text("[1]") == {} and conversions.metadata_from_text(None) == {}
    assert conversions.metadata_text({}) is None


def test_node_data_from_model_reads_offload_flags() -> None:
    record = LogRecord(
        RecordKind.NODE_EXECUTION,
        conversions.node_data(make_node(), OWNER, {"outputs": payloads.EncodedPayload("{}", None, "{}")}),
        1,
    )
    model = conversions.node_model(record)
    data = conversions.node_data_from_model(model)
    assert data["outputs_truncated"] == 1 and data["inputs_truncated"] == 0


def test_app_log_defaults_id_and_created_at() -> None:
    log = WorkflowAppLog(
        tenant_id="t",
        app_id="a",
        workflow_id="w",
        workflow_run_id="r",
        created_from="web-app",
        created_by_role="account",
        created_by="u",
    )
    data = conversions.app_log_data(log)
    assert data["id"] and isinstance(data["created_at"], datetime)
    model = conversions.app_log_model(LogRecord(RecordKind.APP_LOG, data, 1))
    assert isinstance(model, WorkflowAppLog) and model.workflow_run_id == "r"


class _DataclassBase(MappedAsDataclass, DeclarativeBase):
    pass


class _TypedLog(_DataclassBase):
    """Shaped like Dify's later ``TypeBase`` models: ``id`` / ``created_at`` are ``init=False``."""

    __tablename__ = "typed_log"
    id: Mapped[str] = mapped_column(sa.String, primary_key=True, init=False)
    name: Mapped[str] = mapped_column(sa.String)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, init=False)


def test_build_model_handles_mapped_dataclasses() -> None:
    assert dataclasses.is_dataclass(_TypedLog)
    obj = conversions.build_model(_TypedLog, {"id": "x", "name": "n", "created_at": START, "ignored": 1})
    assert (obj.id, obj.name, obj.created_at) == ("x", "n", START)
