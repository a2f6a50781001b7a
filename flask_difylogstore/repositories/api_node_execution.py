"""``API_WORKFLOW_NODE_EXECUTION_REPOSITORY``: the console's tracing panel, "last run", and cleanup.

With dual read on, every read also sees node executions only the relational database has (rule in
:mod:`flask_difylogstore.repositories.dual_read`); deletes reach both stores.
"""

from __future__ import annotations

import typing as t
from collections.abc import Mapping, Sequence
from datetime import datetime

from flask_difylogstore import conversions, payloads
from flask_difylogstore.backends.base import Filter, RecordQuery, Scope, TimeRange
from flask_difylogstore.dify import compat
from flask_difylogstore.dify.enums import WorkflowNodeExecutionStatus
from flask_difylogstore.records import LogRecord, RecordKind
from flask_difylogstore.repositories._context import enum_value, naive_utc, scope
from flask_difylogstore.repositories.dual import RelationalDelegate, larger, report_write_failure
from flask_difylogstore.repositories.dual_merge import merge_entities
from flask_difylogstore.repositories.dual_read import ListSpec, cutover_of, report_read_failure
from flask_difylogstore.repositories.node_execution import full_payloads
from flask_difylogstore.repositories.relational_classes import control_rows_required

#: Dify's ``WorkflowNodeExecutionTriggeredFrom.WORKFLOW_TOOL``: a node run as a tool of another workflow.
WORKFLOW_TOOL = "workflow-tool"


class LogStoreAPIWorkflowNodeExecutionRepository(RelationalDelegate):
    """Node executions as detached ``WorkflowNodeExecutionModel`` rows, ``offload_data`` preloaded.

    Like Dify's SQL implementation this repository is read / maintenance only; the engine writes
    through :class:`~flask_difylogstore.repositories.LogStoreWorkflowNodeExecutionRepository`.
    """

    _relational_key = "api_workflow_node_execution"

    def __init__(self, session_maker: t.Any = None, **extra: t.Any) -> None:
        self._session_maker = session_maker

    def _models(self, records: Sequence[LogRecord]) -> list[t.Any]:
        return [conversions.node_model(r) for r in records]

    # -- core protocol methods this repository inherits in Dify --------------------------------

    def save(self, execution: t.Any) -> None:
        """Writes go through the core repository, which knows the tenant, app and creator."""
        raise NotImplementedError("save node executions with LogStoreWorkflowNodeExecutionRepository")

    def save_execution_data(self, execution: t.Any) -> None:
        """Writes go through the core repository."""
        raise NotImplementedError("save node executions with LogStoreWorkflowNodeExecutionRepository")

    def get_by_workflow_run(self, workflow_run_id: str, order_config: t.Any = None) -> Sequence[t.Any]:
        """Needs the tenant the core repository is built with; use get_executions_by_workflow_run."""
        raise NotImplementedError("use get_executions_by_workflow_run(tenant_id, app_id, workflow_run_id)")

    # -- reads ----------------------------------------------------------------------------------

    def get_node_last_execution(self, tenant_id: str, app_id: str, workflow_id: str, node_id: str) -> t.Any:
        """The most recent finished-or-running execution of a node (the draft "last run" panel).

        A paused execution is not a result to show, and a node run as a tool of another workflow
        belongs to that workflow's history: both are skipped, as Dify's own log store does.
        """
        filters = (
            Filter("workflow_id", "eq", workflow_id),
            Filter("node_id", "eq", node_id),
            Filter("status", "ne", WorkflowNodeExecutionStatus.PAUSED.value),
            Filter("triggered_from", "ne", WORKFLOW_TOOL),
        )
        rows, _ = self._merger().page(ListSpec(RecordKind.NODE_EXECUTION, scope(tenant_id, app_id), filters), 1)
        return rows[0] if rows else None

    def load_full_process_data(self, execution: t.Any) -> Mapping[str, t.Any] | None:
        """The complete ``process_data`` of a returned row: the full value when it was truncated (S4)."""
        reader = self._reader()
        record = reader.get_one(RecordKind.NODE_EXECUTION, str(execution.id), scope(str(execution.tenant_id)))
        if record is None:
            loader = getattr(self._relational(), "load_full_process_data", None)
            if loader is not None and self._dual_read_sessions() is not None:
                return t.cast(Mapping[str, t.Any] | None, loader(execution))
            return t.cast(Mapping[str, t.Any] | None, payloads.loads(getattr(execution, "process_data", None)))
        if "process_data" in conversions.truncated_types(record.data):
            full = full_payloads(reader, [record], record.data.get("tenant_id")).get(record.id, {})
            if "process_data" in full:
                return t.cast(Mapping[str, t.Any] | None, payloads.loads(full["process_data"]))
        return t.cast(Mapping[str, t.Any] | None, payloads.loads(record.data.get("process_data")))

    def get_execution_snapshots_by_workflow_run(
        self, tenant_id: str, app_id: str, workflow_id: str, triggered_from: str, workflow_run_id: str
    ) -> Sequence[t.Any]:
        """Minimal snapshots of a run's node executions, ``created_at`` ascending, paused ones included (S4:
        the event stream rebuilds a paused run's state from them)."""
        snapshot = compat.node_snapshot_class()
        trigger = str(enum_value(triggered_from))
        rows = [
            row
            for row in self.get_executions_by_workflow_run(tenant_id, app_id, workflow_run_id)
            if str(row.workflow_id) == workflow_id and str(enum_value(row.triggered_from)) == trigger
        ]
        result = []
        for row in rows:
            metadata = payloads.loads(row.execution_metadata) or {}
            result.append(
                snapshot(
                    execution_id=str(row.node_execution_id or row.id),
                    node_id=str(row.node_id),
                    node_type=str(enum_value(row.node_type)),
                    title=str(row.title),
                    index=int(row.index),
                    status=str(enum_value(row.status)),
                    elapsed_time=float(row.elapsed_time or 0.0),
                    created_at=row.created_at,
                    finished_at=row.finished_at,
                    iteration_id=metadata.get("iteration_id") if isinstance(metadata, dict) else None,
                    loop_id=metadata.get("loop_id") if isinstance(metadata, dict) else None,
                )
            )
        return result

    def get_executions_by_workflow_run(self, tenant_id: str, app_id: str, workflow_run_id: str) -> Sequence[t.Any]:
        """Every node execution of a run, ``created_at`` ascending (the SQL order), no row cap."""
        records = self._reader().search_all(
            RecordQuery(
                RecordKind.NODE_EXECUTION,
                scope(tenant_id, app_id),
                (Filter("workflow_run_id", "eq", workflow_run_id),),
                order_by=(("created_at", "asc"), ("id", "asc")),
                limit=None,
            )
        )
        relational = self._dual_read("get_executions_by_workflow_run", tenant_id, app_id, workflow_run_id)
        return merge_entities(self._models(records), list(relational or ()), cutover_of(self.state.settings))

    def get_execution_by_id(self, execution_id: str, tenant_id: str | None = None) -> t.Any:
        """The node execution (within ``tenant_id`` when given), or ``None``."""
        return self._lookup(
            RecordKind.NODE_EXECUTION, execution_id, scope(tenant_id), "get_execution_by_id", execution_id, tenant_id
        )

    def get_expired_executions_batch(
        self, tenant_id: str, before_date: datetime, batch_size: int = 1000
    ) -> Sequence[t.Any]:
        window = TimeRange(until=naive_utc(before_date))
        spec = ListSpec(RecordKind.NODE_EXECUTION, scope(tenant_id), window=window, descending=False)
        return self._merger().page(spec, batch_size)[0]

    # -- maintenance (both stores) ----------------------------------------------------------------

    def _delete_payloads(self, node_ids: Sequence[str]) -> None:
        for start in range(0, len(node_ids), 500):
            self.delete_records(
                RecordKind.PAYLOAD,
                Scope.unscoped(),
                [Filter("node_execution_id", "in", list(node_ids[start : start + 500]))],
            )

    def delete_expired_executions(self, tenant_id: str, before_date: datetime, batch_size: int = 1000) -> int:
        window = TimeRange(until=naive_utc(before_date))
        self.delete_records(RecordKind.PAYLOAD, scope(tenant_id), time_range=window)
        deleted = self.delete_records(RecordKind.NODE_EXECUTION, scope(tenant_id), time_range=window)
        relational = self._relational_write(
            "delete_expired_executions", tenant_id, before_date, batch_size, context={"tenant_id": tenant_id}
        )
        return larger(deleted, relational)

    def delete_executions_by_app(self, tenant_id: str, app_id: str, batch_size: int = 1000) -> int:
        self.delete_records(RecordKind.PAYLOAD, scope(tenant_id, app_id))
        deleted = self.delete_records(RecordKind.NODE_EXECUTION, scope(tenant_id, app_id))
        context = {"tenant_id": tenant_id, "app_id": app_id}
        return larger(
            deleted, self._relational_write("delete_executions_by_app", tenant_id, app_id, batch_size, context=context)
        )

    def _delete_logstore_nodes(self, execution_ids: Sequence[str]) -> int:
        self._delete_payloads(execution_ids)
        total = 0
        for start in range(0, len(execution_ids), 500):
            total += self.delete_records(
                RecordKind.NODE_EXECUTION,
                Scope.unscoped(),
                [Filter("id", "in", list(execution_ids[start : start + 500]))],
            )
        return total

    def delete_executions_by_ids(self, execution_ids: Sequence[str]) -> int:
        if not execution_ids:
            return 0
        total = self._delete_logstore_nodes(execution_ids)
        context = {"node_executions": len(execution_ids)}
        return larger(total, self._relational_write("delete_executions_by_ids", execution_ids, context=context))

    # -- S3: the caller's Session is used for the relational side, inside a savepoint -----------

    def _in_session(self, session: t.Any, method: str, run_ids: Sequence[str], *, write: bool) -> t.Any:
        """The relational repository's ``method(session, ...)``; a failure rolls back only its savepoint."""
        settings = self.state.settings
        control = write and control_rows_required()  # caller rows of save_synchronously live there
        if not (settings.dual_read_enabled or (write and settings.dual_write_enabled) or control):
            return None
        try:
            with session.begin_nested():
                return getattr(self._relational(), method)(session, list(run_ids))
        except Exception as exc:
            if write:
                report_write_failure(self.state, method, exc, ids=len(run_ids))
            else:
                report_read_failure(self.state, method, exc)
            return None

    def _by_runs(self, run_ids: Sequence[str]) -> list[LogRecord]:
        records: list[LogRecord] = []
        for start in range(0, len(run_ids), 200):
            records.extend(
                self._reader().search_all(
                    RecordQuery(
                        RecordKind.NODE_EXECUTION,
                        Scope.unscoped(),
                        (Filter("workflow_run_id", "in", list(run_ids[start : start + 200])),),
                        order_by=(("id", "asc"),),
                    )
                )
            )
        return records

    def count_by_runs(self, session: t.Any, run_ids: Sequence[str]) -> tuple[int, int]:
        """(node executions, offloaded payloads) of the runs (the larger count of the two stores)."""
        records = self._by_runs(run_ids)
        counts = (len(records), sum(len(conversions.truncated_types(r.data)) for r in records))
        relational = self._in_session(session, "count_by_runs", run_ids, write=True)
        return counts if relational is None else (larger(counts[0], relational[0]), larger(counts[1], relational[1]))

    def delete_by_runs(self, session: t.Any, run_ids: Sequence[str]) -> tuple[int, int]:
        """Delete the runs' node executions and full payloads in both stores; (executions, offloads)."""
        records = self._by_runs(run_ids)
        counts = (
            self._delete_logstore_nodes([r.id for r in records]),
            sum(len(conversions.truncated_types(r.data)) for r in records),
        )
        relational = self._in_session(session, "delete_by_runs", run_ids, write=True)
        return counts if relational is None else (larger(counts[0], relational[0]), larger(counts[1], relational[1]))

    def get_offloads_by_execution_ids(self, session: t.Any, node_execution_ids: Sequence[str]) -> Sequence[t.Any]:
        """Offload rows: synthesised from the truncation flags for the log store's node executions
        (the full values are payload records), the relational rows for the others."""
        found = self._reader().get(RecordKind.NODE_EXECUTION, list(node_execution_ids), Scope.unscoped())
        offloads = [offload for record in found.values() for offload in conversions.node_model(record).offload_data]
        missing = [i for i in node_execution_ids if i not in found]
        if missing:
            offloads.extend(self._in_session(session, "get_offloads_by_execution_ids", missing, write=False) or ())
        return offloads
