"""``API_WORKFLOW_NODE_EXECUTION_REPOSITORY``: the console's tracing panel, "last run", and cleanup."""

from __future__ import annotations

import typing as t
from collections.abc import Sequence
from datetime import datetime

from flask_difylogstore import conversions
from flask_difylogstore.backends.base import Filter, RecordQuery, Scope, TimeRange
from flask_difylogstore.records import LogRecord, RecordKind
from flask_difylogstore.repositories._context import scope
from flask_difylogstore.repositories.statistics import naive_utc
from flask_difylogstore.repositories.workflow_run import RelationalDelegate


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
        """The most recent execution of a node (the draft "last run" panel)."""
        page = self._reader().search(
            RecordQuery(
                RecordKind.NODE_EXECUTION,
                scope(tenant_id, app_id),
                (Filter("workflow_id", "eq", workflow_id), Filter("node_id", "eq", node_id)),
                order_by=(("created_at", "desc"), ("id", "desc")),
                limit=1,
            )
        )
        if not page.records:
            return self._dual_read("get_node_last_execution", tenant_id, app_id, workflow_id, node_id)
        return conversions.node_model(page.records[0])

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
        if not records:
            fallback = self._dual_read("get_executions_by_workflow_run", tenant_id, app_id, workflow_run_id)
            return list(fallback or [])
        return self._models(records)

    def get_execution_by_id(self, execution_id: str, tenant_id: str | None = None) -> t.Any:
        record = self._reader().get_one(RecordKind.NODE_EXECUTION, execution_id, scope(tenant_id))
        if record is None:
            return self._dual_read("get_execution_by_id", execution_id, tenant_id)
        return conversions.node_model(record)

    def get_expired_executions_batch(
        self, tenant_id: str, before_date: datetime, batch_size: int = 1000
    ) -> Sequence[t.Any]:
        page = self._reader().search(
            RecordQuery(
                RecordKind.NODE_EXECUTION,
                scope(tenant_id),
                time_range=TimeRange(until=naive_utc(before_date)),
                order_by=(("created_at", "asc"), ("id", "asc")),
                limit=batch_size,
            )
        )
        return self._models(page.records)

    # -- maintenance ----------------------------------------------------------------------------

    def _delete_payloads(self, node_ids: Sequence[str]) -> None:
        for start in range(0, len(node_ids), 500):
            self.backend.delete(
                RecordKind.PAYLOAD,
                Scope.unscoped(),
                [Filter("node_execution_id", "in", list(node_ids[start : start + 500]))],
            )

    def delete_expired_executions(self, tenant_id: str, before_date: datetime, batch_size: int = 1000) -> int:
        self._flush_before_delete()
        window = TimeRange(until=naive_utc(before_date))
        self.backend.delete(RecordKind.PAYLOAD, scope(tenant_id), time_range=window)
        return self.backend.delete(RecordKind.NODE_EXECUTION, scope(tenant_id), time_range=window)

    def delete_executions_by_app(self, tenant_id: str, app_id: str, batch_size: int = 1000) -> int:
        self._flush_before_delete()
        self.backend.delete(RecordKind.PAYLOAD, scope(tenant_id, app_id))
        return self.backend.delete(RecordKind.NODE_EXECUTION, scope(tenant_id, app_id))

    def delete_executions_by_ids(self, execution_ids: Sequence[str]) -> int:
        if not execution_ids:
            return 0
        self._flush_before_delete()
        self._delete_payloads(execution_ids)
        total = 0
        for start in range(0, len(execution_ids), 500):
            total += self.backend.delete(
                RecordKind.NODE_EXECUTION,
                Scope.unscoped(),
                [Filter("id", "in", list(execution_ids[start : start + 500]))],
            )
        return total

    # -- S3 (the Session argument is not needed: the rows live in the log store) ----------------

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
        """(node executions, offloaded payloads) of the runs."""
        records = self._by_runs(run_ids)
        return len(records), sum(len(conversions.truncated_types(r.data)) for r in records)

    def delete_by_runs(self, session: t.Any, run_ids: Sequence[str]) -> tuple[int, int]:
        """Delete the runs' node executions and full payloads; (executions, offloads) deleted."""
        records = self._by_runs(run_ids)
        offloads = sum(len(conversions.truncated_types(r.data)) for r in records)
        deleted = self.delete_executions_by_ids([r.id for r in records])
        return deleted, offloads

    def get_offloads_by_execution_ids(self, session: t.Any, node_execution_ids: Sequence[str]) -> Sequence[t.Any]:
        """Offload rows synthesised from the truncation flags (the full values are PAYLOAD records)."""
        found = self._reader().get(RecordKind.NODE_EXECUTION, list(node_execution_ids), Scope.unscoped())
        return [offload for record in found.values() for offload in conversions.node_model(record).offload_data]
