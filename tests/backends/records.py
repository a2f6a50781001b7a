"""Record factories shared by the backend tests: snapshots with increasing versions from one clock."""

from __future__ import annotations

import typing as t
import uuid
from datetime import datetime, timedelta

from flask_difylogstore.records import LogRecord, RecordKind, VersionClock

BASE_TIME = datetime(2026, 11, 1, 8, 0, 0)


class RecordFactory:
    """Builds run and node snapshots with increasing versions from one clock."""

    def __init__(self) -> None:
        self.clock = VersionClock(tag=9)

    def run(
        self,
        *,
        id: str | None = None,
        tenant: str = "t1",
        app: str = "a1",
        status: str = "running",
        offset_s: float = 0,
        **data: t.Any,
    ) -> LogRecord:
        values: dict[str, t.Any] = {
            "id": id or str(uuid.uuid4()),
            "tenant_id": tenant,
            "app_id": app,
            "workflow_id": "wf-1",
            "triggered_from": "app-run",
            "type": "workflow",
            "version": "draft",
            "status": status,
            "created_by_role": "account",
            "created_by": "user-1",
            "created_at": BASE_TIME + timedelta(seconds=offset_s),
            "inputs": '{"q": "hello"}',
            "outputs": "{}",
            "graph": '{"nodes": []}',
            "total_tokens": 0,
        }
        values.update(data)
        return LogRecord(RecordKind.RUN, values, self.clock.version_for(RecordKind.RUN, status))

    def node(
        self,
        *,
        run_id: str,
        index: int,
        id: str | None = None,
        tenant: str = "t1",
        app: str = "a1",
        status: str = "succeeded",
        offset_s: float = 0,
        **data: t.Any,
    ) -> LogRecord:
        values: dict[str, t.Any] = {
            "id": id or str(uuid.uuid4()),
            "tenant_id": tenant,
            "app_id": app,
            "workflow_id": "wf-1",
            "triggered_from": "workflow-run",
            "workflow_run_id": run_id,
            "index": index,
            "node_id": f"node-{index}",
            "node_type": "llm",
            "title": f"Step {index}",
            "inputs": "{}",
            "outputs": "{}",
            "process_data": "{}",
            "execution_metadata": "{}",
            "status": status,
            "created_by_role": "account",
            "created_by": "user-1",
            "created_at": BASE_TIME + timedelta(seconds=offset_s),
        }
        values.update(data)
        kind = RecordKind.NODE_EXECUTION
        return LogRecord(kind, values, self.clock.version_for(kind, status))
