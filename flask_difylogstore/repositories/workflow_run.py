"""``API_WORKFLOW_RUN_REPOSITORY``: the console's and the cleanup tasks' view of workflow runs.

With dual read on, every read also sees runs that are only in the relational database (see
:mod:`flask_difylogstore.repositories.dual_read` for the rule); deletes reach both stores.
"""

from __future__ import annotations

import logging
import typing as t

from flask_difylogstore.backends.base import Filter, Scope
from flask_difylogstore.dify import compat
from flask_difylogstore.records import RecordKind
from flask_difylogstore.repositories._context import scope
from flask_difylogstore.repositories.dual_read import ListSpec
from flask_difylogstore.repositories.run_control import RunControl
from flask_difylogstore.repositories.run_retention import RunRetention
from flask_difylogstore.repositories.statistics import RunStatistics, triggered_from_filter

logger = logging.getLogger(__name__)

__all__ = ["LogStoreAPIWorkflowRunRepository"]


class LogStoreAPIWorkflowRunRepository(RunRetention, RunControl, RunStatistics):
    """Reads, statistics and maintenance of runs in the log store; returns detached ``WorkflowRun`` rows.

    Implements every method of Dify's ``APIWorkflowRunRepository`` on all lines (S2–S4). Pauses,
    archive logs and chat-message references are control data of Dify's relational transactions and
    are answered by the relational repository (:mod:`.run_control`); retention scans and deletes are
    in :mod:`.run_retention`.
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
        """The run within ``tenant_id`` and ``app_id``, or ``None``."""
        return self._lookup(
            RecordKind.RUN, run_id, scope(tenant_id, app_id), "get_workflow_run_by_id", tenant_id, app_id, run_id
        )

    def get_workflow_run_by_id_and_tenant_id(self, tenant_id: str, run_id: str) -> t.Any:
        """The run within ``tenant_id`` (any app), or ``None`` (S4)."""
        return self._lookup(
            RecordKind.RUN, run_id, scope(tenant_id), "get_workflow_run_by_id_and_tenant_id", tenant_id, run_id
        )

    def get_workflow_run_by_id_without_tenant(self, run_id: str) -> t.Any:
        """The run whatever its tenant (Dify's trusted internal lookups), or ``None``."""
        return self._lookup(RecordKind.RUN, run_id, Scope.unscoped(), "get_workflow_run_by_id_without_tenant", run_id)
