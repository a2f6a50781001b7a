"""What every repository needs from its surroundings: the extension state, the caller's identity and values.

Repositories are built per workflow run (core) and per request (API), so construction only
records arguments; the extension state is looked up when a method runs.
"""

from __future__ import annotations

import typing as t
from datetime import UTC, datetime

from flask_difylogstore.backends.base import Filter, LogBackend, Scope, TimeRange
from flask_difylogstore.backends.evaluate import record_matches
from flask_difylogstore.dify.enums import CreatorUserRole
from flask_difylogstore.payloads import TruncationLimits, Truncator
from flask_difylogstore.pipeline.base import RecordSink
from flask_difylogstore.records import LogRecord, RecordKind, compose_version, default_clock, latest_by_id
from flask_difylogstore.state import LogStoreState, get_state


def enum_value(value: t.Any) -> t.Any:
    """The stored string of an enum member (or the value itself)."""
    return getattr(value, "value", value)


def naive_utc(value: datetime | None) -> datetime | None:
    """A caller's time as records store it: naive UTC (a naive value is taken as UTC already)."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def tenant_of(user: t.Any) -> str:
    """Dify's ``extract_tenant_id``: ``Account.current_tenant_id`` or ``EndUser.tenant_id``."""
    if user is None:
        raise ValueError("a user (Account or EndUser) or tenant_id is required")
    if hasattr(user, "current_tenant_id"):
        tenant = user.current_tenant_id
    else:
        tenant = getattr(user, "tenant_id", None)
    if not tenant:
        raise ValueError(f"cannot determine the tenant of {type(user).__name__}")
    return str(tenant)


def creator_of(user: t.Any) -> tuple[str, str]:
    """``(created_by_role, created_by)`` as Dify's repositories derive them."""
    if user is None:
        return CreatorUserRole.ACCOUNT.value, ""
    role = CreatorUserRole.ACCOUNT if hasattr(user, "current_tenant_id") else CreatorUserRole.END_USER
    return role.value, str(getattr(user, "id", "") or "")


class StateMixin:
    """Access to the extension state of the current app (outside an app context: the only live one)."""

    _state_override: LogStoreState | None = None

    @property
    def state(self) -> LogStoreState:
        return self._state_override or get_state()

    @property
    def backend(self) -> LogBackend:
        return self.state.require_backend()

    @property
    def sink(self) -> RecordSink:
        return self.state.require_sink()

    def submit(self, records: t.Sequence[LogRecord]) -> None:
        self.sink.submit(records)

    def delete_records(
        self,
        kind: RecordKind,
        where: Scope,
        filters: t.Sequence[Filter] = (),
        time_range: TimeRange | None = None,
        *,
        limit: int | None = None,
    ) -> int:
        """Delete through the backend, and the matching entities this process has not delivered yet.

        The backend marks what it stores; an entity that exists only in the pipeline (accepted, not yet
        delivered — e.g. during an outage) gets a deletion marker through the pipeline, newer than its
        pending snapshot, so it can never appear later. Nothing waits for the pipeline to drain.
        """
        sink = self.state.sink
        pending: dict[str, LogRecord] = {}
        stored: dict[str, LogRecord] = {}
        if sink is not None:
            matching = (r for r in sink.pending(kind) if record_matches(r, where, tuple(filters), time_range))
            pending = {i: r for i, r in latest_by_id(matching).items() if not r.deleted}
            if pending:
                settle = getattr(self.backend, "settle", None)
                if settle is not None:  # near-real-time backends: make recent deliveries visible first
                    settle(kind)
                # Before the delete: afterwards the backend no longer returns what it marked.
                stored = self.backend.get_latest(kind, list(pending), where)
        deleted = self.backend.delete(kind, where, filters, time_range, limit=limit)
        if sink is None:
            return deleted
        sink.forget_delivered(kind)
        if not pending:
            return deleted
        markers = [
            record.tombstone(compose_version(default_clock.now(), final=True, deleted=True))
            for record in sorted(pending.values(), key=lambda r: r.created_at)
        ]
        fresh = [m for m in markers if m.id not in stored]  # the backend did not count these
        if limit is not None:
            fresh = fresh[: max(limit - deleted, 0)]
            markers = [m for m in markers if m.id in stored] + fresh
        sink.submit(markers)
        return deleted + len(fresh)

    def truncator(self) -> Truncator:
        return Truncator(TruncationLimits.from_settings(self.state.settings))


#: Stands in for an empty tenant id: no stored record has it, so such a query finds nothing.
NO_TENANT = "\x00"


def scope(tenant_id: str | None, app_id: str | None = None) -> Scope:
    """A tenant (+ app) scope. ``None`` means "not restricted by this" (a tenant-less by-id method, or a
    tenant-wide read); an empty string is an owner nobody has — never "all tenants" or "all apps"."""
    app = None if app_id is None else (str(app_id) or NO_TENANT)
    if tenant_id is None:
        return Scope.unscoped() if app is None else Scope(tenant_id=None, app_id=app, unrestricted=True)
    return Scope(tenant_id=str(tenant_id) or NO_TENANT, app_id=app)
