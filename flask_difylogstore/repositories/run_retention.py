"""Retention and clean-up of runs (Dify's archive / clean-up jobs): batch scans and deletes in both stores."""

from __future__ import annotations

import typing as t
from collections.abc import Callable, Sequence
from datetime import datetime

from flask_difylogstore import conversions
from flask_difylogstore.backends.base import Filter, RecordQuery, Scope, TimeRange
from flask_difylogstore.dify import compat
from flask_difylogstore.records import LogRecord, RecordKind
from flask_difylogstore.repositories._context import naive_utc, scope
from flask_difylogstore.repositories.dual import RelationalDelegate, larger
from flask_difylogstore.repositories.dual_read import ListSpec
from flask_difylogstore.repositories.relational_classes import relational_repositories
from flask_difylogstore.repositories.run_selection import RunSelection

RELATED_KEYS = ("runs", "node_executions", "offloads", "app_logs", "trigger_logs", "pauses", "pause_reasons")
#: Most rows one scan request reads when filters narrow the store's answer afterwards.
MAX_SCAN_PAGE = 5000

NodeDeleter = Callable[[t.Any, Sequence[t.Any]], tuple[int, int]]
TriggerLogDeleter = Callable[[t.Any, Sequence[str]], int]


class RunRetention(RelationalDelegate):
    """The retention half of the API run repository."""

    # -- scans ----------------------------------------------------------------------------------

    def get_expired_runs_batch(self, tenant_id: str, before_date: datetime, batch_size: int = 1000) -> Sequence[t.Any]:
        """Up to ``batch_size`` runs created before ``before_date``, oldest first."""
        window = TimeRange(until=naive_utc(before_date))
        spec = ListSpec(RecordKind.RUN, scope(tenant_id), window=window, descending=False)
        return self._merger().page(spec, batch_size)[0]

    def _scan(self, selection: RunSelection, last_seen: tuple[datetime, str] | None, batch_size: int) -> list[t.Any]:
        """Ended runs of ``selection`` after ``last_seen`` by ``(created_at, id)``, at most ``batch_size``."""
        if selection.selects_nothing or batch_size <= 0:
            return []
        spec = ListSpec(RecordKind.RUN, Scope.unscoped(), selection.store_filters(), selection.window, descending=False)
        page_size = min(batch_size * selection.fetch_factor, max(batch_size, MAX_SCAN_PAGE))
        after = (t.cast(datetime, naive_utc(last_seen[0])), str(last_seen[1])) if last_seen else None
        selected: list[t.Any] = []
        while len(selected) < batch_size:
            rows, has_more = self._merger().page(spec, page_size, after=after)
            for row in rows:
                if selection.accepts(str(row.id), str(row.tenant_id), row.created_at):
                    selected.append(row)
                    if len(selected) == batch_size:
                        break
            if not has_more or not rows:
                break
            after = (rows[-1].created_at, str(rows[-1].id))
        return selected

    def get_runs_batch_by_time_range(
        self,
        start_from: datetime | None,
        end_before: datetime,
        last_seen: tuple[datetime, str] | None,
        batch_size: int,
        run_types: Sequence[t.Any] | None = None,
        tenant_ids: Sequence[str] | None = None,
        tenant_prefixes: Sequence[str] | None = None,
        workflow_ids: Sequence[str] | None = None,
        run_shard_index: int | None = None,
        run_shard_total: int | None = None,
    ) -> Sequence[t.Any]:
        """Ended runs created in ``[start_from, end_before)`` by ``(created_at, id)``, after ``last_seen``.

        Every filter is applied exactly (see :mod:`~flask_difylogstore.repositories.run_selection`);
        one that cannot be is refused with a ``ValueError`` naming it, never ignored.
        """
        selection = RunSelection.of(
            start_from,
            end_before,
            run_types=run_types,
            tenant_ids=tenant_ids,
            tenant_prefixes=tenant_prefixes,
            workflow_ids=workflow_ids,
            run_shard_index=run_shard_index,
            run_shard_total=run_shard_total,
        )
        return self._scan(selection, last_seen, batch_size)

    def get_cleanup_refs_batch_by_time_range(
        self,
        start_from: datetime | None,
        end_before: datetime,
        last_seen: tuple[datetime, str] | None,
        batch_size: int,
        run_types: Sequence[t.Any] | None = None,
        tenant_ids: Sequence[str] | None = None,
        workflow_ids: Sequence[str] | None = None,
        upper_bound: tuple[datetime, str] | None = None,
    ) -> Sequence[t.Any]:
        """Like :meth:`get_runs_batch_by_time_range`, as ``WorkflowRunCleanupRef`` (id, tenant, created_at),
        never past the inclusive ``upper_bound`` cursor."""
        selection = RunSelection.of(
            start_from,
            end_before,
            run_types=run_types,
            tenant_ids=tenant_ids,
            workflow_ids=workflow_ids,
            upper_bound=upper_bound,
        )
        ref = compat.cleanup_ref_class()
        return [
            ref(id=str(r.id), tenant_id=str(r.tenant_id), created_at=r.created_at)
            for r in self._scan(selection, last_seen, batch_size)
        ]

    # -- deletes (both stores: see the dual module) ---------------------------------------------

    def delete_runs_by_ids(self, run_ids: Sequence[str]) -> int:
        if not run_ids:
            return 0
        deleted = self.delete_records(RecordKind.RUN, Scope.unscoped(), [Filter("id", "in", list(run_ids))])
        context = {"runs": len(run_ids)}
        return larger(deleted, self._relational_write("delete_runs_by_ids", run_ids, context=context))

    def delete_runs_by_app(self, tenant_id: str, app_id: str, batch_size: int = 1000) -> int:
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

    def _related_counts(self, run_ids: list[str]) -> tuple[dict[str, int], list[LogRecord]]:
        nodes = self._related_ids(RecordKind.NODE_EXECUTION, run_ids)
        counts = dict.fromkeys(RELATED_KEYS, 0)
        counts.update(
            runs=len(self._reader().get(RecordKind.RUN, run_ids, Scope.unscoped())),
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

    def _count(self, method: str, subject: Sequence[t.Any], ids: list[str], **callbacks: t.Any) -> dict[str, int]:
        """The log store's counts of ``ids``, merged with the relational repository's ``method(subject)``."""
        counts = self._related_counts(ids)[0]
        if not ids:
            return counts
        relational = self._relational_write(method, subject, context={"runs": len(ids)}, **callbacks)
        return self._merge_counts(counts, relational)

    def count_runs_with_related(
        self,
        runs: Sequence[t.Any],
        count_node_executions: NodeDeleter | None = None,
        count_trigger_logs: TriggerLogDeleter | None = None,
    ) -> dict[str, int]:
        """What :meth:`delete_runs_with_related` would delete (the larger count of the two stores)."""
        callbacks = {"count_node_executions": count_node_executions, "count_trigger_logs": count_trigger_logs}
        return self._count("count_runs_with_related", runs, [str(r.id) for r in runs], **callbacks)

    def count_runs_with_related_by_ids(
        self,
        run_ids: Sequence[str],
        count_node_executions: NodeDeleter | None = None,
        count_trigger_logs: TriggerLogDeleter | None = None,
    ) -> dict[str, int]:
        """:meth:`count_runs_with_related` for run ids (Dify's dry-run clean-up)."""
        ids = [str(i) for i in run_ids]
        callbacks = {"count_node_executions": count_node_executions, "count_trigger_logs": count_trigger_logs}
        return self._count("count_runs_with_related_by_ids", ids, ids, **callbacks)

    def _delete_related(self, run_ids: list[str]) -> dict[str, int]:
        """Delete runs with their node executions, full payloads and app logs from the log store."""
        counts, nodes = self._related_counts(run_ids)
        node_ids = [n.id for n in nodes]
        for start in range(0, len(node_ids), 500):
            chunk = node_ids[start : start + 500]
            self.delete_records(RecordKind.PAYLOAD, Scope.unscoped(), [Filter("node_execution_id", "in", chunk)])
            self.delete_records(RecordKind.NODE_EXECUTION, Scope.unscoped(), [Filter("id", "in", chunk)])
        self.delete_records(RecordKind.APP_LOG, Scope.unscoped(), [Filter("workflow_run_id", "in", run_ids)])
        counts["runs"] = self.delete_records(RecordKind.RUN, Scope.unscoped(), [Filter("id", "in", run_ids)])
        return counts

    def _delete(
        self,
        method: str,
        subject: Sequence[t.Any],
        ids: list[str],
        delete_node_executions: NodeDeleter,
        delete_trigger_logs: TriggerLogDeleter | None,
    ) -> dict[str, int]:
        """Delete ``ids`` with their related records from the log store, and ``method(subject)`` relationally.

        Trigger logs and pauses live in Dify's relational tables: the relational repository deletes
        them in its transaction (with the rows it holds), or, when it is not involved, the
        ``delete_trigger_logs`` callback runs in a session of its own.
        """
        if not ids:
            return dict.fromkeys(RELATED_KEYS, 0)
        counts = self._delete_related(ids)
        relational = self._relational_write(
            method,
            subject,
            delete_node_executions=delete_node_executions,
            delete_trigger_logs=delete_trigger_logs,
            context={"runs": len(ids)},
        )
        if relational is None and delete_trigger_logs is not None:
            counts["trigger_logs"] = self._with_session(lambda s: delete_trigger_logs(s, ids))
        return self._merge_counts(counts, relational)

    def delete_runs_with_related(
        self,
        runs: Sequence[t.Any],
        delete_node_executions: NodeDeleter | None = None,
        delete_trigger_logs: TriggerLogDeleter | None = None,
    ) -> dict[str, int]:
        """Delete runs with their node executions, full payloads and app logs, in both stores."""
        nodes = delete_node_executions or self._relational_node_deleter(by_ids=False)
        ids = [str(r.id) for r in runs]
        return self._delete("delete_runs_with_related", runs, ids, nodes, delete_trigger_logs)

    def delete_runs_with_related_by_ids(
        self,
        run_ids: Sequence[str],
        delete_node_executions: NodeDeleter | None = None,
        delete_trigger_logs: TriggerLogDeleter | None = None,
    ) -> dict[str, int]:
        """:meth:`delete_runs_with_related` for run ids; the callbacks receive ``(session, run_ids)``."""
        nodes = delete_node_executions or self._relational_node_deleter(by_ids=True)
        ids = [str(i) for i in run_ids]
        return self._delete("delete_runs_with_related_by_ids", ids, ids, nodes, delete_trigger_logs)

    def _relational_node_deleter(self, *, by_ids: bool) -> NodeDeleter:
        """Deletes the runs' relational node executions inside the relational repository's transaction."""

        def delete(session: t.Any, runs: Sequence[t.Any]) -> tuple[int, int]:
            from flask_difylogstore.repositories.relational import resolve_session_factory

            cls = relational_repositories()["api_workflow_node_execution"]
            repository = cls(session_maker=resolve_session_factory(self._session_maker))
            ids = [str(r) for r in runs] if by_ids else [str(r.id) for r in runs]
            return t.cast(tuple[int, int], repository.delete_by_runs(session, ids))

        return delete

    def _with_session(self, work: Callable[[t.Any], int]) -> int:
        from flask_difylogstore.repositories.relational import resolve_session_factory

        factory = resolve_session_factory(self._session_maker)
        with factory() as session:
            result = work(session)
            session.commit()
            return int(result or 0)
