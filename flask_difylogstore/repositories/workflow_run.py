"""``API_WORKFLOW_RUN_REPOSITORY``: the console's and the cleanup tasks' view of workflow runs.

With dual read on, every read also sees runs that are only in the relational database (see
:mod:`flask_difylogstore.repositories.dual` for the rule); deletes reach both stores.
"""

from __future__ import annotations

import logging
import typing as t
from collections.abc import Callable, Sequence
from datetime import datetime

from flask_difylogstore import conversions
from flask_difylogstore.backends.base import Filter, RecordQuery, Scope, TimeRange
from flask_difylogstore.dify import compat
from flask_difylogstore.records import FINAL_RUN_STATUSES, LogRecord, RecordKind
from flask_difylogstore.repositories._context import enum_value, scope
from flask_difylogstore.repositories.dual import ListSpec, RelationalDelegate, larger
from flask_difylogstore.repositories.statistics import RunStatistics, naive_utc, triggered_from_filter

logger = logging.getLogger(__name__)

__all__ = ["LogStoreAPIWorkflowRunRepository", "RelationalDelegate"]

_RELATED_KEYS = ("runs", "node_executions", "offloads", "app_logs", "trigger_logs", "pauses", "pause_reasons")


class LogStoreAPIWorkflowRunRepository(RelationalDelegate, RunStatistics):
    """Reads, statistics and maintenance of runs in the log store; returns detached ``WorkflowRun`` rows.

    The S3 methods about pauses and archive logs (control data written and read inside Dify's
    relational transactions, several taking the caller's ``Session``) are delegated to the
    relational repository; each says so.
    """

    def __init__(self, session_maker: t.Any = None, **extra: t.Any) -> None:
        self._session_maker = session_maker

    def save(self, execution: t.Any) -> None:
        """Not used through the API factory; the engine writes through the core repository."""
        raise NotImplementedError(
            "save runs through LogStoreWorkflowExecutionRepository (CORE_WORKFLOW_EXECUTION_REPOSITORY), "
            "which knows the tenant, app and creator"
        )

    # -- reads ----------------------------------------------------------------------------------

    def get_paginated_workflow_runs(
        self,
        tenant_id: str,
        app_id: str,
        triggered_from: t.Any,
        limit: int = 20,
        last_id: str | None = None,
        status: str | None = None,
    ) -> t.Any:
        """Newest first by ``(created_at, id)``; ``last_id`` continues after that run (in either store)."""
        filters = [triggered_from_filter(triggered_from)]
        if status:
            filters.append(Filter("status", "eq", status))
        spec = ListSpec(RecordKind.RUN, scope(tenant_id, app_id), tuple(filters))
        try:
            runs, has_more = self._merger().page(spec, limit, cursor_id=last_id or None)
        except LookupError:
            raise ValueError("Last workflow run not exists") from None
        return compat.InfiniteScrollPagination(data=runs, limit=limit, has_more=has_more)

    def get_workflow_run_by_id(self, tenant_id: str, app_id: str, run_id: str) -> t.Any:
        record = self._reader().get_one(RecordKind.RUN, run_id, scope(tenant_id, app_id))
        return self._by_id(record, "get_workflow_run_by_id", tenant_id, app_id, run_id)

    def get_workflow_run_by_id_without_tenant(self, run_id: str) -> t.Any:
        record = self._reader().get_one(RecordKind.RUN, run_id, Scope.unscoped())
        return self._by_id(record, "get_workflow_run_by_id_without_tenant", run_id)

    def get_expired_runs_batch(self, tenant_id: str, before_date: datetime, batch_size: int = 1000) -> Sequence[t.Any]:
        """Up to ``batch_size`` runs created before ``before_date``, oldest first."""
        window = TimeRange(until=naive_utc(before_date))
        spec = ListSpec(RecordKind.RUN, scope(tenant_id), window=window, descending=False)
        return self._merger().page(spec, batch_size)[0]

    def get_runs_batch_by_time_range(
        self,
        start_from: datetime | None,
        end_before: datetime,
        last_seen: tuple[datetime, str] | None,
        batch_size: int,
        run_types: Sequence[t.Any] | None = None,
        tenant_ids: Sequence[str] | None = None,
        **extra: t.Any,
    ) -> Sequence[t.Any]:
        """Ended runs created in ``[start_from, end_before)`` by ``(created_at, id)``, after ``last_seen``."""
        filters = [Filter("status", "in", sorted(FINAL_RUN_STATUSES))]
        if run_types:
            filters.append(Filter("type", "in", [enum_value(v) for v in run_types]))
        if tenant_ids:
            filters.append(Filter("tenant_id", "in", list(tenant_ids)))
        window = TimeRange(naive_utc(start_from), naive_utc(end_before))
        spec = ListSpec(RecordKind.RUN, Scope.unscoped(), tuple(filters), window, descending=False)
        after = (t.cast(datetime, naive_utc(last_seen[0])), str(last_seen[1])) if last_seen else None
        return self._merger().page(spec, batch_size, after=after)[0]

    # -- maintenance (both stores: see the dual module) ---------------------------------------

    def delete_runs_by_ids(self, run_ids: Sequence[str]) -> int:
        if not run_ids:
            return 0
        self._flush_before_delete()
        deleted = self.delete_records(RecordKind.RUN, Scope.unscoped(), [Filter("id", "in", list(run_ids))])
        context = {"runs": len(run_ids)}
        return larger(deleted, self._relational_write("delete_runs_by_ids", run_ids, context=context))

    def delete_runs_by_app(self, tenant_id: str, app_id: str, batch_size: int = 1000) -> int:
        self._flush_before_delete()
        deleted = self.delete_records(RecordKind.RUN, scope(tenant_id, app_id))
        context = {"tenant_id": tenant_id, "app_id": app_id}
        return larger(
            deleted, self._relational_write("delete_runs_by_app", tenant_id, app_id, batch_size, context=context)
        )

    def _related_ids(self, kind: RecordKind, run_ids: list[str]) -> list[LogRecord]:
        records: list[LogRecord] = []
        for start in range(0, len(run_ids), 200):
            records.extend(
                self._reader().search_all(
                    RecordQuery(
                        kind,
                        Scope.unscoped(),
                        (Filter("workflow_run_id", "in", run_ids[start : start + 200]),),
                        order_by=(("id", "asc"),),
                    )
                )
            )
        return records

    def _related_counts(self, runs: Sequence[t.Any]) -> tuple[dict[str, int], list[LogRecord]]:
        run_ids = [str(r.id) for r in runs]
        nodes = self._related_ids(RecordKind.NODE_EXECUTION, run_ids)
        counts = dict.fromkeys(_RELATED_KEYS, 0)
        counts.update(
            runs=len(run_ids),
            node_executions=len(nodes),
            offloads=sum(len(conversions.truncated_types(n.data)) for n in nodes),
            app_logs=len(self._related_ids(RecordKind.APP_LOG, run_ids)),
        )
        return counts, nodes

    @staticmethod
    def _merge_counts(logstore: dict[str, int], relational: t.Any) -> dict[str, int]:
        if not isinstance(relational, dict):
            return logstore
        return {key: larger(logstore.get(key, 0), relational.get(key, 0)) for key in {*logstore, *relational}}

    def count_runs_with_related(
        self,
        runs: Sequence[t.Any],
        count_node_executions: t.Any = None,
        count_trigger_logs: t.Any = None,
        **extra: t.Any,
    ) -> dict[str, int]:
        """What :meth:`delete_runs_with_related` would delete (the larger count of the two stores)."""
        counts = self._related_counts(runs)[0]
        if not runs:
            return counts
        relational = self._relational_write(
            "count_runs_with_related",
            runs,
            count_node_executions=count_node_executions,
            count_trigger_logs=count_trigger_logs,
            context={"runs": len(runs)},
        )
        return self._merge_counts(counts, relational)

    def delete_runs_with_related(
        self,
        runs: Sequence[t.Any],
        delete_node_executions: Callable[..., tuple[int, int]] | None = None,
        delete_trigger_logs: Callable[..., int] | None = None,
        **extra: t.Any,
    ) -> dict[str, int]:
        """Delete runs with their node executions, full payloads and app logs, in both stores.

        Trigger logs and pauses live in Dify's relational tables: the relational repository deletes
        them in its transaction (with the rows it holds), or, when it is not involved, the
        ``delete_trigger_logs`` callback runs in a session of its own.
        """
        if not runs:
            return dict.fromkeys(_RELATED_KEYS, 0)
        self._flush_before_delete()
        counts, nodes = self._related_counts(runs)
        run_ids = [str(r.id) for r in runs]
        node_ids = [n.id for n in nodes]
        for start in range(0, len(node_ids), 500):
            chunk = node_ids[start : start + 500]
            self.delete_records(RecordKind.PAYLOAD, Scope.unscoped(), [Filter("node_execution_id", "in", chunk)])
            self.delete_records(RecordKind.NODE_EXECUTION, Scope.unscoped(), [Filter("id", "in", chunk)])
        self.delete_records(RecordKind.APP_LOG, Scope.unscoped(), [Filter("workflow_run_id", "in", run_ids)])
        counts["runs"] = self.delete_records(RecordKind.RUN, Scope.unscoped(), [Filter("id", "in", run_ids)])
        relational = self._relational_write(
            "delete_runs_with_related",
            runs,
            delete_node_executions=delete_node_executions or self._relational_node_deleter(),
            delete_trigger_logs=delete_trigger_logs,
            context={"runs": len(runs)},
        )
        if relational is None and delete_trigger_logs is not None:
            counts["trigger_logs"] = self._with_session(lambda s: delete_trigger_logs(s, run_ids))
        return self._merge_counts(counts, relational)

    def _relational_node_deleter(self) -> Callable[[t.Any, Sequence[t.Any]], tuple[int, int]]:
        """Deletes the runs' relational node executions inside the relational repository's transaction."""

        def delete(session: t.Any, runs: Sequence[t.Any]) -> tuple[int, int]:
            from flask_difylogstore.repositories.relational import resolve_session_factory

            cls = compat.relational_repositories()["api_workflow_node_execution"]
            repository = cls(session_maker=resolve_session_factory(self._session_maker))
            return t.cast(tuple[int, int], repository.delete_by_runs(session, [str(r.id) for r in runs]))

        return delete

    def _with_session(self, work: Callable[[t.Any], int]) -> int:
        from flask_difylogstore.repositories.relational import resolve_session_factory

        factory = resolve_session_factory(self._session_maker)
        with factory() as session:
            result = work(session)
            session.commit()
            return int(result or 0)

    # -- S3 control data: delegated to the relational repository ----------------------------------

    def _delegate(self, name: str, *args: t.Any, **kwargs: t.Any) -> t.Any:
        return getattr(self._relational(), name)(*args, **kwargs)

    def create_workflow_pause(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """Pauses are transactional control data: delegated to the relational repository."""
        return self._delegate("create_workflow_pause", *args, **kwargs)

    def resume_workflow_pause(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """Delegated to the relational repository (pause state)."""
        return self._delegate("resume_workflow_pause", *args, **kwargs)

    def delete_workflow_pause(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """Delegated to the relational repository (pause state)."""
        return self._delegate("delete_workflow_pause", *args, **kwargs)

    def prune_pauses(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """Delegated to the relational repository (pause state)."""
        return self._delegate("prune_pauses", *args, **kwargs)

    def get_pause_records_by_run_id(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """Takes the caller's Session: delegated to the relational repository."""
        return self._delegate("get_pause_records_by_run_id", *args, **kwargs)

    def get_pause_reason_records_by_run_id(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """Takes the caller's Session: delegated to the relational repository."""
        return self._delegate("get_pause_reason_records_by_run_id", *args, **kwargs)

    def get_archived_run_ids(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """Archive logs are a relational table read in the caller's Session: delegated."""
        return self._delegate("get_archived_run_ids", *args, **kwargs)

    def get_archived_logs_by_time_range(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """Archive logs: delegated to the relational repository."""
        return self._delegate("get_archived_logs_by_time_range", *args, **kwargs)

    def get_archived_log_by_run_id(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """Archive logs: delegated to the relational repository."""
        return self._delegate("get_archived_log_by_run_id", *args, **kwargs)

    def delete_archive_log_by_run_id(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """Archive logs: delegated to the relational repository."""
        return self._delegate("delete_archive_log_by_run_id", *args, **kwargs)

    def get_archived_runs_by_time_range(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """Joins runs with archive logs in the caller's Session: delegated."""
        return self._delegate("get_archived_runs_by_time_range", *args, **kwargs)

    def create_archive_logs(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """Writes archive rows in the caller's transaction: delegated."""
        return self._delegate("create_archive_logs", *args, **kwargs)

    def get_app_logs_by_run_id(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """Dify writes app logs with its ORM in the caller's Session: delegated."""
        return self._delegate("get_app_logs_by_run_id", *args, **kwargs)
