"""``workflow_app_logs`` in the log store (Dify has no repository contract for them).

Dify writes app logs with its ORM and lists them in ``WorkflowAppService.get_paginate_workflow_app_logs``
by SQL-joining ``workflow_runs`` for the status and keyword filters. Once runs live in the log
store that join is impossible, so :meth:`LogStoreWorkflowAppLogRepository.get_paginated_logs`
filters in two steps: the backend finds the ids of the runs matching status / keyword (latest
snapshots, so a run that *was* running doesn't match ``running``), then the app logs are paged
newest first and kept when their run is among them.

With dual read on, app logs only the relational database has are listed too (rule in
:mod:`flask_difylogstore.repositories.dual_read`). With a cut-over, each half is matched against the
runs of its own store; without one, a run the log store has is judged by the log store's
snapshot, any other by the relational row.
"""

from __future__ import annotations

import heapq
import itertools
import typing as t
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

import sqlalchemy as sa

from flask_difylogstore import conversions
from flask_difylogstore.backends.base import Filter, RecordQuery, TimeRange
from flask_difylogstore.dify import compat
from flask_difylogstore.records import LogRecord, RecordKind, default_clock
from flask_difylogstore.repositories import dual_sql
from flask_difylogstore.repositories._context import enum_value, naive_utc, scope
from flask_difylogstore.repositories.dual import RelationalDelegate, larger, report_write_failure
from flask_difylogstore.repositories.dual_merge import narrow, row_key
from flask_difylogstore.repositories.dual_read import Merger, report_read_failure

#: Dify's service only looks at the first 30 characters of a keyword.
KEYWORD_LENGTH = 30


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class LogStoreWorkflowAppLogRepository(RelationalDelegate):
    """Save, look up, list (with Dify's filters) and delete workflow app logs."""

    _relational_key = "workflow_app_log"

    def __init__(self, session_maker: t.Any = None, **extra: t.Any) -> None:
        self._session_maker = session_maker

    def save(self, app_log: t.Any) -> None:
        """Store a ``WorkflowAppLog`` row (``id`` / ``created_at`` filled in when unset)."""
        data = conversions.app_log_data(app_log)
        if getattr(app_log, "id", None) is None:
            app_log.id = data["id"]
        if getattr(app_log, "created_at", None) is None:
            app_log.created_at = data["created_at"]
        self.submit([LogRecord(RecordKind.APP_LOG, data, default_clock.version_for(RecordKind.APP_LOG, None))])
        if self.state.settings.dual_write_enabled:
            try:
                self._relational().save(conversions.build_model(compat.WorkflowAppLog, data))
            except Exception as exc:
                context = {"id": data["id"], "tenant_id": data.get("tenant_id"), "app_id": data.get("app_id")}
                report_write_failure(self.state, "save of app log", exc, **context)

    def get_by_id(self, tenant_id: str, log_id: str) -> t.Any:
        record = self._reader().get_one(RecordKind.APP_LOG, log_id, scope(tenant_id))
        return self._by_id(record, "get_by_id", tenant_id, log_id)

    def get_by_workflow_run_id(self, tenant_id: str, workflow_run_id: str) -> t.Any:
        page = self._reader().search(
            RecordQuery(
                RecordKind.APP_LOG,
                scope(tenant_id),
                (Filter("workflow_run_id", "eq", workflow_run_id),),
                order_by=(("created_at", "desc"), ("id", "desc")),
                limit=1,
            )
        )
        record = page.records[0] if page.records else None
        return self._by_id(record, "get_by_workflow_run_id", tenant_id, workflow_run_id)

    def _matching_run_ids(self, tenant_id: str, app_id: str, keyword: str | None, status: str | None) -> set[str]:
        filters = (Filter("status", "eq", enum_value(status)),) if status else ()
        base = RecordQuery(
            RecordKind.RUN,
            scope(tenant_id, app_id),
            filters,
            order_by=(("id", "asc"),),
            fields=("id",),
            keyword=keyword[:KEYWORD_LENGTH] if keyword else None,
        )
        ids = {r.id for r in self._reader().iterate(base, page_size=5000)}
        if keyword and _is_uuid(keyword):
            run = self._reader().get_one(RecordKind.RUN, str(uuid.UUID(keyword)), scope(tenant_id, app_id))
            if run is not None and (not status or run.data.get("status") == enum_value(status)):
                ids.add(run.id)
        return ids

    def get_paginated_logs(
        self,
        tenant_id: str,
        app_id: str,
        *,
        keyword: str | None = None,
        status: str | None = None,
        created_at_before: datetime | None = None,
        created_at_after: datetime | None = None,
        created_from: str | None = None,
        created_by: str | Sequence[str] | None = None,
        page: int = 1,
        limit: int = 20,
    ) -> dict[str, t.Any]:
        """``{"page", "limit", "total", "has_more", "data"}``, newest first, as Dify's service returns.

        ``created_by`` takes creator ids (Dify resolves an end-user session id or account email to
        ids before filtering; those tables stay relational).
        """
        filters: list[Filter] = []
        if created_from:
            filters.append(Filter("created_from", "eq", enum_value(created_from)))
        if created_by:
            ids = [created_by] if isinstance(created_by, str) else list(created_by)
            filters.append(Filter("created_by", "in", ids))
        window = TimeRange(naive_utc(created_at_after), naive_utc(created_at_before))
        listing = _Listing(self, tenant_id, app_id, tuple(filters), keyword, status)
        skip = max(page - 1, 0) * limit
        merger = self._merger()
        if merger.sessions is None:
            total, records = listing.logstore(window, skip, limit)
            rows = [conversions.app_log_model(r) for r in records]
        elif merger.cutover is None:
            total, rows = listing.merged(merger, window, skip, limit)
        else:
            total, rows = listing.split(merger, window, skip, limit)
        return {"page": page, "limit": limit, "total": total, "has_more": total > skip + len(rows), "data": rows}

    def delete_by_app(self, tenant_id: str, app_id: str) -> int:
        deleted = self.delete_records(RecordKind.APP_LOG, scope(tenant_id, app_id))
        context = {"tenant_id": tenant_id, "app_id": app_id}
        return larger(deleted, self._relational_write("delete_by_app", tenant_id, app_id, context=context))

    def delete_expired(self, tenant_id: str, before_date: datetime) -> int:
        window = TimeRange(until=naive_utc(before_date))
        deleted = self.delete_records(RecordKind.APP_LOG, scope(tenant_id), time_range=window)
        context = {"tenant_id": tenant_id}
        return larger(deleted, self._relational_write("delete_expired", tenant_id, before_date, context=context))


def _slice(rows: Iterable[t.Any], skip: int, limit: int) -> list[t.Any]:
    return list(itertools.islice(rows, skip, skip + limit))


class _Listing:
    """One ``get_paginated_logs`` call: the same filters applied to the log store, the relational
    database, or both."""

    def __init__(
        self,
        repository: LogStoreWorkflowAppLogRepository,
        tenant_id: str,
        app_id: str,
        filters: tuple[Filter, ...],
        keyword: str | None,
        status: str | None,
    ) -> None:
        self.repository = repository
        self.tenant_id, self.app_id = tenant_id, app_id
        self.scope = scope(tenant_id, app_id)
        self.filters, self.keyword, self.status = filters, keyword, status

    def _query(self, window: TimeRange) -> RecordQuery:
        return RecordQuery(
            RecordKind.APP_LOG, self.scope, self.filters, window, order_by=(("created_at", "desc"), ("id", "desc"))
        )

    def logstore(self, window: TimeRange, skip: int, limit: int) -> tuple[int, list[LogRecord]]:
        """``(total, page)`` of the log store's app logs, runs matched against the log store's runs."""
        reader = self.repository._reader()
        query = self._query(window)
        if not self.keyword and not self.status:
            total = reader.count(RecordKind.APP_LOG, self.scope, self.filters, window)
            return total, _slice(reader.iterate(query, page_size=max(limit, 500)), skip, limit)
        run_ids = self.repository._matching_run_ids(self.tenant_id, self.app_id, self.keyword, self.status)
        matching = [r for r in reader.iterate(query, page_size=1000) if r.data.get("workflow_run_id") in run_ids]
        return len(matching), matching[skip : skip + limit]

    def _run_match(self) -> sa.ColumnElement[bool] | None:
        """Dify's status / keyword predicates on the joined relational run."""
        if not self.keyword and not self.status:
            return None
        run = compat.WorkflowRun
        conditions: list[sa.ColumnElement[bool]] = []
        if self.keyword:
            text = self.keyword[:KEYWORD_LENGTH].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            options: list[sa.ColumnElement[bool]] = [
                run.inputs.ilike(f"%{text}%", escape="\\"),
                run.outputs.ilike(f"%{text}%", escape="\\"),
            ]
            if _is_uuid(self.keyword):
                options.append(run.id == str(uuid.UUID(self.keyword)))
            conditions.append(sa.or_(*options))
        if self.status:
            conditions.append(run.status == enum_value(self.status))
        return sa.and_(*conditions)

    def _where(self, window: TimeRange) -> list[sa.ColumnElement[bool]]:
        return dual_sql.conditions(compat.WorkflowAppLog, self.scope, self.filters, window)

    def split(self, merger: Merger, window: TimeRange, skip: int, limit: int) -> tuple[int, list[t.Any]]:
        """Cut-over set: the log store's app logs from the cut-over on, then the relational ones before it."""
        cutover = t.cast(datetime, merger.cutover)
        total, records = 0, t.cast(list[LogRecord], [])
        if window.until is None or window.until > cutover:
            total, records = self.logstore(narrow(window, since=cutover), skip, limit)
        rows: list[t.Any] = [conversions.app_log_model(r) for r in records]
        if window.since is not None and window.since >= cutover:
            return total, rows
        assert merger.sessions is not None
        match = self._run_match()
        try:
            rel_total, rel_rows = dual_sql.app_log_page(
                merger.sessions,
                self._where(narrow(window, until=cutover)),
                None if match is None else [match],
                skip=max(skip - total, 0),
                limit=limit - len(rows),
            )
        except Exception as exc:
            report_read_failure(merger.state, "app log list", exc)
            return total, rows
        return total + rel_total, rows + rel_rows

    def merged(self, merger: Merger, window: TimeRange, skip: int, limit: int) -> tuple[int, list[t.Any]]:
        """No cut-over: the union of both stores, an app log in both taken once (the log store's)."""
        assert merger.sessions is not None
        match = self._run_match()
        try:
            relational = dual_sql.app_log_rows(merger.sessions, self._where(window), match)
        except Exception as exc:
            report_read_failure(merger.state, "app log list", exc)
            relational = []
        have = merger.present(RecordKind.APP_LOG, self.scope, [str(r.id) for r, _ in relational], self.filters, window)
        only = [(row, flag) for row, flag in relational if str(row.id) not in have]
        reader = self.repository._reader()
        query = self._query(window)
        if match is None:
            total = reader.count(RecordKind.APP_LOG, self.scope, self.filters, window) + len(only)
            stream = (conversions.app_log_model(r) for r in reader.iterate(query, page_size=max(limit, 500)))
            merged = heapq.merge(stream, [row for row, _ in only], key=row_key, reverse=True)
            return total, _slice(merged, skip, limit)
        run_ids = self.repository._matching_run_ids(self.tenant_id, self.app_id, self.keyword, self.status)
        logs = [conversions.app_log_model(r) for r in reader.iterate(query, page_size=1000)]
        flags = {str(row.id): flag for row, flag in relational}
        other_runs = {str(r.workflow_run_id) for r in [*logs, *(row for row, _ in only)]} - run_ids
        known_runs = merger.present(RecordKind.RUN, self.scope, sorted(other_runs))

        def matches(row: t.Any) -> bool:
            run_id = str(row.workflow_run_id)
            if run_id in run_ids or run_id in known_runs:
                return run_id in run_ids
            return bool(flags.get(str(row.id)))

        rows = sorted([r for r in [*logs, *(row for row, _ in only)] if matches(r)], key=row_key, reverse=True)
        return len(rows), rows[skip : skip + limit]
