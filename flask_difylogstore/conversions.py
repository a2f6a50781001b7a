"""Conversions between Dify's entities / ORM rows and :class:`~flask_difylogstore.records.LogRecord`.

Records carry exactly the columns Dify's SQLAlchemy repositories write (dify-contracts §3.4), so
a record, a row of the relational database and a migrated row compare field by field. ORM objects
built from records are detached instances of the classes :mod:`flask_difylogstore.dify.compat`
picks (Dify's own inside Dify), with ``offload_data`` filled so ``lazy="raise"`` never fires.
"""

from __future__ import annotations

import dataclasses
import typing as t
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

import sqlalchemy as sa

from flask_difylogstore import payloads
from flask_difylogstore.dify import compat
from flask_difylogstore.errors import RecordRejectedError
from flask_difylogstore.records import LogRecord

PAYLOAD_TYPES = ("inputs", "process_data", "outputs")
_OFFLOAD_NAMESPACE = uuid.UUID("6f1c2b8e-5d1e-4c55-9a53-0f6a4c1d2e7b")


def _value(enum_or_str: t.Any) -> t.Any:
    return getattr(enum_or_str, "value", enum_or_str)


def _naive(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


#: Longest identifier the package stores (Dify's id columns are UUIDs or short names).
MAX_IDENTIFIER_LENGTH = 255


def identifier(value: t.Any, field: str, kind: str) -> str:
    """A required identifier as stored, or a :class:`RecordRejectedError` naming the field.

    An empty or missing id would make an entity no read can address, so ``save()`` refuses it.
    """
    text = "" if value is None else str(value)
    if not text.strip():
        raise RecordRejectedError(f"{kind}.{field} is required (got {value!r})")
    if len(text) > MAX_IDENTIFIER_LENGTH or "\x00" in text:
        raise RecordRejectedError(f"{kind}.{field} is not an identifier (NUL or over {MAX_IDENTIFIER_LENGTH} chars)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RecordRejectedError(f"{kind}.{field} is not valid text") from None
    return text


def number(value: t.Any, field: str, kind: str, cast: t.Callable[[t.Any], t.Any] = int) -> t.Any:
    """``cast(value)`` (``None`` as 0), or a :class:`RecordRejectedError` naming the field."""
    try:
        return cast(value or 0)
    except (TypeError, ValueError, OverflowError):
        raise RecordRejectedError(f"{kind}.{field} must be a number, got {str(value)[:40]!r}") from None


@dataclasses.dataclass(frozen=True)
class Owner:
    """Who a record belongs to: the fields Dify's repositories take from their constructor."""

    tenant_id: str
    app_id: str | None
    triggered_from: str | None
    created_by_role: str
    created_by: str


# -- generic ORM <-> dict -----------------------------------------------------------------------


def model_columns(model_cls: t.Any) -> dict[str, str]:
    """Column name -> attribute key of an ORM class (e.g. ``type`` -> ``type_`` on offload rows)."""
    mapper = sa.inspect(model_cls)
    return {prop.columns[0].name: prop.key for prop in mapper.column_attrs}


def model_to_data(row: t.Any) -> dict[str, t.Any]:
    """The column values of an ORM row, keyed by column name."""
    return {name: getattr(row, key) for name, key in model_columns(type(row)).items()}


def build_model(model_cls: t.Any, data: Mapping[str, t.Any]) -> t.Any:
    """A detached instance of ``model_cls`` with ``data`` (column names) set.

    Works for classic declarative models and for mapped dataclasses whose ``id`` / ``created_at``
    are ``init=False`` (later Dify versions).
    """
    columns = model_columns(model_cls)
    values = {columns[name]: value for name, value in data.items() if name in columns}
    if dataclasses.is_dataclass(model_cls):
        init_names = {f.name for f in dataclasses.fields(model_cls) if f.init}
        factory = t.cast(t.Callable[..., t.Any], model_cls)
        obj = factory(**{k: v for k, v in values.items() if k in init_names})
        for key, value in values.items():
            if key not in init_names:
                setattr(obj, key, value)
        return obj
    return model_cls(**values)


# -- workflow runs ------------------------------------------------------------------------------


def run_data(execution: t.Any, owner: Owner, *, put_graph: bool = True) -> dict[str, t.Any]:
    """The ``workflow_runs`` columns of a ``WorkflowExecution``, as Dify's SQL repository writes them."""
    started = _naive(execution.started_at)
    finished = _naive(execution.finished_at)
    graph = execution.graph if put_graph else {}
    kind = "workflow_execution"
    return {
        "id": identifier(execution.id_, "id_", kind),
        "tenant_id": owner.tenant_id,
        "app_id": owner.app_id,
        "workflow_id": identifier(execution.workflow_id, "workflow_id", kind),
        "type": _value(execution.workflow_type),
        "triggered_from": owner.triggered_from,
        "version": execution.workflow_version,
        "graph": payloads.dumps(graph) if graph is not None else None,
        "inputs": payloads.dumps(execution.inputs) if execution.inputs is not None else None,
        "status": _value(execution.status),
        # The column defaults to "{}" when Dify inserts a run without outputs.
        "outputs": payloads.dumps(execution.outputs) if execution.outputs is not None else "{}",
        "error": execution.error_message or None,
        "elapsed_time": (finished - started).total_seconds() if finished and started else 0.0,
        "total_tokens": number(execution.total_tokens, "total_tokens", kind),
        "total_steps": number(execution.total_steps, "total_steps", kind),
        "created_by_role": owner.created_by_role,
        "created_by": owner.created_by,
        "created_at": started,
        "finished_at": finished,
        "exceptions_count": number(execution.exceptions_count, "exceptions_count", kind),
    }


def run_model(record: LogRecord) -> t.Any:
    """A detached ``WorkflowRun`` from a run record."""
    return build_model(compat.WorkflowRun, record.data)


def run_entity(data: Mapping[str, t.Any]) -> t.Any:
    """A ``WorkflowExecution`` from run columns (a record's data or an ORM row's)."""
    return compat.WorkflowExecution(
        id_=data["id"],
        workflow_id=data["workflow_id"],
        workflow_version=data["version"],
        workflow_type=compat.WorkflowType(data["type"]),
        graph=payloads.loads(data.get("graph")) or {},
        inputs=payloads.loads(data.get("inputs")) or {},
        outputs=payloads.loads(data.get("outputs")),
        status=compat.WorkflowExecutionStatus(data["status"]),
        error_message=data.get("error") or "",
        total_tokens=data.get("total_tokens") or 0,
        total_steps=data.get("total_steps") or 0,
        exceptions_count=data.get("exceptions_count") or 0,
        started_at=data["created_at"],
        finished_at=data.get("finished_at"),
    )


# -- node executions ----------------------------------------------------------------------------


def metadata_text(metadata: Mapping[t.Any, t.Any] | None) -> str | None:
    """``execution_metadata`` as Dify writes it (enum keys as their string values)."""
    if not metadata:
        return None
    return payloads.dumps({str(_value(k)): v for k, v in metadata.items()})


def metadata_from_text(text: str | None) -> dict[t.Any, t.Any]:
    """Metadata with keys rebuilt as ``WorkflowNodeExecutionMetadataKey``; keys the enum lacks stay strings."""
    raw = payloads.loads(text)
    if not isinstance(raw, dict):
        return {}
    return compat.metadata_keys(raw)


def node_data(execution: t.Any, owner: Owner, encoded: Mapping[str, payloads.EncodedPayload]) -> dict[str, t.Any]:
    """The ``workflow_node_executions`` columns of a ``WorkflowNodeExecution`` plus truncation flags."""
    kind = "workflow_node_execution"
    data: dict[str, t.Any] = {
        "id": identifier(execution.id, "id", kind),
        "tenant_id": owner.tenant_id,
        "app_id": owner.app_id,
        "workflow_id": identifier(execution.workflow_id, "workflow_id", kind),
        "triggered_from": owner.triggered_from,
        "workflow_run_id": execution.workflow_execution_id,
        "index": number(execution.index, "index", kind),
        "predecessor_node_id": execution.predecessor_node_id,
        "node_execution_id": execution.node_execution_id,
        "node_id": identifier(execution.node_id, "node_id", kind),
        "node_type": _value(execution.node_type),
        "title": execution.title,
        "status": _value(execution.status),
        "error": execution.error,
        "elapsed_time": number(execution.elapsed_time, "elapsed_time", kind, float),
        "execution_metadata": metadata_text(execution.metadata),
        "created_at": _naive(execution.created_at),
        "created_by_role": owner.created_by_role,
        "created_by": owner.created_by,
        "finished_at": _naive(execution.finished_at),
    }
    for name in PAYLOAD_TYPES:
        payload = encoded.get(name, payloads.EncodedPayload(None))
        data[name] = payload.text
        data[f"{name}_truncated"] = 1 if payload.truncated else 0
    return data


def truncated_types(data: Mapping[str, t.Any]) -> list[str]:
    """The payload types of a node record that were truncated (full value in PAYLOAD records)."""
    return [name for name in PAYLOAD_TYPES if data.get(f"{name}_truncated")]


def node_entity(data: Mapping[str, t.Any], full_texts: Mapping[str, str] | None = None) -> t.Any:
    """A ``WorkflowNodeExecution``; truncated payloads get the full value and ``set_truncated_*``."""
    metadata = metadata_from_text(data.get("execution_metadata"))
    values: dict[str, t.Any] = {name: payloads.loads(data.get(name)) for name in PAYLOAD_TYPES}
    truncated: dict[str, t.Any] = {}
    for name in truncated_types(data):
        full = (full_texts or {}).get(name)
        if full is not None:
            truncated[name] = values[name]
            values[name] = payloads.loads(full)
    entity = compat.WorkflowNodeExecution(
        id=data["id"],
        node_execution_id=data.get("node_execution_id"),
        workflow_id=data["workflow_id"],
        workflow_execution_id=data.get("workflow_run_id"),
        index=data["index"],
        predecessor_node_id=data.get("predecessor_node_id"),
        node_id=data["node_id"],
        node_type=compat.node_type(data["node_type"]),
        title=data["title"],
        inputs=values["inputs"],
        process_data=values["process_data"],
        outputs=values["outputs"],
        status=compat.WorkflowNodeExecutionStatus(data["status"]),
        error=data.get("error"),
        elapsed_time=data.get("elapsed_time") or 0.0,
        metadata={k: v for k, v in metadata.items() if isinstance(k, compat.WorkflowNodeExecutionMetadataKey)},
        created_at=data["created_at"],
        finished_at=data.get("finished_at"),
    )
    if len(metadata) != len(entity.metadata or {}):
        # Keys the running enum does not know (written by a newer engine) are kept on the entity
        # unvalidated, so a read-modify-save never drops them.
        entity.metadata = metadata
    for name, value in truncated.items():
        getattr(entity, f"set_truncated_{name}")(value)
    return entity


def offload_id(node_execution_id: str, payload_type: str) -> str:
    """A stable id for a synthesised offload row (the same node and type always give the same id)."""
    return str(uuid.uuid5(_OFFLOAD_NAMESPACE, f"{node_execution_id}:{payload_type}"))


def node_model(record: LogRecord) -> t.Any:
    """A detached ``WorkflowNodeExecutionModel`` whose ``offload_data`` mirrors the truncation flags.

    The offload rows are synthesised (no ``upload_files`` row exists: the full value lives in the
    log store), so ``inputs_truncated`` & co. answer as in Dify and the console shows the
    truncated copy with its "view full" marker.
    """
    model = build_model(compat.WorkflowNodeExecutionModel, record.data)
    offloads = []
    for name in truncated_types(record.data):
        offloads.append(
            build_model(
                compat.WorkflowNodeExecutionOffload,
                {
                    "id": offload_id(record.id, name),
                    "created_at": record.data.get("created_at"),
                    "tenant_id": record.data.get("tenant_id"),
                    "app_id": record.data.get("app_id"),
                    "node_execution_id": record.id,
                    "type": name,
                    "file_id": offload_id(record.id, f"{name}:file"),
                },
            )
        )
    model.offload_data = offloads
    return model


def node_data_from_model(row: t.Any) -> dict[str, t.Any]:
    """Node record data from an ORM row (migration, dual read); flags from its preloaded offloads."""
    data = model_to_data(row)
    offloads = row.__dict__.get("offload_data") or []
    kinds = {str(_value(o.type_)) for o in offloads}
    for name in PAYLOAD_TYPES:
        data[f"{name}_truncated"] = 1 if name in kinds else 0
    return data


# -- app logs -----------------------------------------------------------------------------------


def app_log_data(app_log: t.Any) -> dict[str, t.Any]:
    """``workflow_app_logs`` columns of an ORM row (``created_at`` defaulted when not yet flushed)."""
    from flask_difylogstore.dify.entities import naive_utc_now

    data = model_to_data(app_log)
    data["id"] = data.get("id") or str(uuid.uuid4())
    data["created_at"] = _naive(data.get("created_at")) or naive_utc_now()
    for key in ("created_from", "created_by_role"):
        data[key] = _value(data.get(key))
    return data


def app_log_model(record: LogRecord) -> t.Any:
    return build_model(compat.WorkflowAppLog, record.data)
