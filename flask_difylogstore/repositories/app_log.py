"""``workflow_app_logs`` in the log store (Dify has no repository contract for them).

Dify writes app logs with its ORM and lists them in ``WorkflowAppService.get_paginate_workflow_app_logs``
by SQL-joining ``workflow_runs`` for the status and keyword filters. Once runs live in the log
store that join is impossible, so :meth:`LogStoreWorkflowAppLogRepository.get_paginated_logs`
filters in two steps: the backend finds the ids of the runs matching status / keyword (latest
snapshots, so a run that *was* running doesn't match ``running``), then the app logs are paged
newest first and kept when their run is among them.
"""

from __future__ import annotations

import typing as t
import uuid
from collections.abc import Sequence
from datetime import datetime

from flask_difylogstore import conversions
from flask_difylogstore.backends.base import Filter, RecordQuery, TimeRange
from flask_difylogstore.records import LogRecord, RecordKind, default_clock
from flask_difylogstore.repositories._context import enum_value, scope
from flask_difylogstore.repositories.statistics import naive_utc
from flask_difylogstore.repositories.workflow_run import RelationalDelegate

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

    def get_by_id(self, tenant_id: str, log_id: str) -> t.Any:
        record = self._reader().get_one(RecordKind.APP_LOG, log_id, scope(tenant_id))
        return None if record is None else conversions.app_log_model(record)

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
        return conversions.app_log_model(page.records[0]) if page.records else None

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
        query = RecordQuery(
            RecordKind.APP_LOG,
            scope(tenant_id, app_id),
            tuple(filters),
            window,
            order_by=(("created_at", "desc"), ("id", "desc")),
        )
        skip = max(page - 1, 0) * limit
        if not keyword and not status:
            total = self._reader().count(RecordKind.APP_LOG, query.scope, query.filters, window)
            rows = self._page(self._reader().iterate(query, page_size=max(limit, 500)), skip, limit)
        else:
            run_ids = self._matching_run_ids(tenant_id, app_id, keyword, status)
            matching = [
                r for r in self._reader().iterate(query, page_size=1000) if r.data.get("workflow_run_id") in run_ids
            ]
            total = len(matching)
            rows = matching[skip : skip + limit]
        return {
            "page": page,
            "limit": limit,
            "total": total,
            "has_more": total > skip + len(rows),
            "data": [conversions.app_log_model(r) for r in rows],
        }

    @staticmethod
    def _page(records: t.Iterable[LogRecord], skip: int, limit: int) -> list[LogRecord]:
        rows: list[LogRecord] = []
        for position, record in enumerate(records):
            if position >= skip + limit:
                break
            if position >= skip:
                rows.append(record)
        return rows

    def delete_by_app(self, tenant_id: str, app_id: str) -> int:
        self._flush_before_delete()
        return self.backend.delete(RecordKind.APP_LOG, scope(tenant_id, app_id))

    def delete_expired(self, tenant_id: str, before_date: datetime) -> int:
        self._flush_before_delete()
        return self.backend.delete(
            RecordKind.APP_LOG, scope(tenant_id), time_range=TimeRange(until=naive_utc(before_date))
        )
