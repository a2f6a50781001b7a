"""Dual read: one read answered from the log store and the relational database together.

**Dual read** (``LOGSTORE_DUAL_READ_ENABLED``) answers every read from both stores:

* ``LOGSTORE_CUTOVER_AT`` set (time *C*): entities created before *C* are read from the relational
  database, entities created at or after *C* from the log store, whatever else either store holds
  (migrated copies, dual-written rows). The halves are disjoint by construction, so a list is the
  log-store half followed by the relational half in key order (the relational half is only queried
  when a page reaches past *C*) and aggregates are added group by group. By id (and within one
  run's node executions) an entity created before *C* comes from the relational database when it
  has it, else from the log store.
* unset: per entity. By id, the log store answers and the relational database is asked only
  when it has nothing. Lists and aggregates are the union where an entity found in both stores
  (migrated and dual-written ones are) is taken once, with the log store's snapshot: the
  relational rows of a page or an aggregate are looked up by id in the log store and dropped
  when it has them.

Lists keep their order, ``has_more`` and cursors across the two stores: each store returns
``limit + 1`` rows after the cursor, and the merged page never extends past the last row of a store
that returned a full batch, because rows beyond it are unknown. Every read issues at most one
relational statement, with one exception: without a cut-over, a relational row that matches a
filter on a changing field (``status``) while the log store's newer snapshot does not is dropped,
and when a whole relational batch is dropped that way the page continues after it with another
statement (never an empty page that has more). A relational failure is logged, counted as
``dual_read_failures``, and the read answers from the log store alone.
"""

from __future__ import annotations

import dataclasses
import logging
import typing as t
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from flask_difylogstore import conversions
from flask_difylogstore.backends.base import AggregateQuery, Direction, Filter, RecordQuery, Scope, TimeRange
from flask_difylogstore.backends.evaluate import aggregate_records
from flask_difylogstore.records import LogRecord, RecordKind
from flask_difylogstore.repositories import dual_sql
from flask_difylogstore.repositories._context import naive_utc
from flask_difylogstore.repositories._reads import Reader
from flask_difylogstore.repositories.dual_merge import combine, merge_groups, narrow, row_key
from flask_difylogstore.repositories.dual_sql import Key, Sessions
from flask_difylogstore.state import LogStoreState

logger = logging.getLogger(__name__)

#: Fields fixed when an entity is created: a filter on them selects the same entities in both stores.
IMMUTABLE_FIELDS = frozenset(
    {"id", "tenant_id", "app_id", "workflow_id", "workflow_run_id", "node_id", "triggered_from", "type"}
    | {"created_at", "created_by", "created_by_role", "created_from"}
)
#: Ids per log-store lookup when checking which relational rows the log store has.
PRESENT_CHUNK = 500
#: Above this many relational ids, enumerating the log store's ids may be cheaper (decided by a count).
ENUMERATE_ABOVE = 2000

TO_MODEL: dict[RecordKind, Callable[[LogRecord], t.Any]] = {
    RecordKind.RUN: conversions.run_model,
    RecordKind.NODE_EXECUTION: conversions.node_model,
    RecordKind.APP_LOG: conversions.app_log_model,
}


def cutover_of(settings: t.Any) -> datetime | None:
    """``LOGSTORE_CUTOVER_AT`` as naive UTC (how every ``created_at`` is stored)."""
    return naive_utc(settings.cutover_at)


def describe(exc: BaseException) -> str:
    """Exception class and the first line of the driver's message: SQLAlchemy appends the statement's
    parameters (payloads) to its own message, so that is never logged."""
    inner = getattr(exc, "orig", None) or exc
    lines = str(inner).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200] if lines else ''}".rstrip(": ")


def report_read_failure(state: LogStoreState, action: str, exc: BaseException) -> None:
    """Log and count a relational read that failed; the read answers from the log store alone."""
    state.count("dual_read_failures")
    logger.error("flask-difylogstore: dual read %s from the relational database failed: %s", action, describe(exc))


def relational_sessions(source: t.Any) -> Sessions | None:
    """The relational session factory, or ``None`` when there is no relational database to ask."""
    from flask import current_app, has_app_context

    from flask_difylogstore.repositories.relational import resolve_session_factory

    if source is None and not (has_app_context() and current_app.extensions.get("sqlalchemy") is not None):
        return None
    return resolve_session_factory(source)


@dataclass(frozen=True)
class ListSpec:
    """A list read, described once for both stores: the kind, owner, filters, window and direction."""

    kind: RecordKind
    scope: Scope
    filters: tuple[Filter, ...] = ()
    window: TimeRange = dataclasses.field(default_factory=TimeRange)
    descending: bool = True


class Merger:
    """One merged read: the log store through ``reader``, the relational database through ``sessions``."""

    def __init__(self, reader: Reader, sessions: Sessions | None, cutover: datetime | None, state: LogStoreState):
        self.reader = reader
        self.sessions = sessions
        self.cutover = cutover
        self.state = state

    def present(
        self,
        kind: RecordKind,
        scope: Scope,
        ids: Sequence[str],
        filters: Sequence[Filter] = (),
        window: TimeRange | None = None,
    ) -> set[str]:
        """Which of ``ids`` the log store has, in any state. ``filters`` / ``window`` bound the entities
        ``ids`` came from, so that many ids can be answered by listing the log store's side instead."""
        ids = list(dict.fromkeys(ids))
        if not ids:
            return set()
        if len(ids) > ENUMERATE_ABOVE:
            fixed = tuple(f for f in filters if f.field in IMMUTABLE_FIELDS)
            if self.reader.count(kind, scope, fixed, window) < len(ids):
                query = RecordQuery(kind, scope, fixed, window or TimeRange(), (("id", "asc"),), None, fields=("id",))
                return {r.id for r in self.reader.iterate(query, page_size=5000)} & set(ids)
        found: set[str] = set()
        for start in range(0, len(ids), PRESENT_CHUNK):
            chunk = ids[start : start + PRESENT_CHUNK]
            query = RecordQuery(
                kind, scope, (Filter("id", "in", chunk),), order_by=(("id", "asc"),), limit=None, fields=("id",)
            )
            found.update(r.id for r in self.reader.search_all(query))
        return found

    def _relational_page(
        self, spec: ListSpec, size: int, after: Key | None = None, cursor: str | None = None
    ) -> tuple[Key | None, list[t.Any]]:
        assert self.sessions is not None
        model = dual_sql.model_of(spec.kind)
        where = dual_sql.conditions(model, spec.scope, spec.filters, narrow(spec.window, until=self.cutover))
        try:
            return dual_sql.keyset_rows(
                self.sessions,
                model,
                where,
                descending=spec.descending,
                limit=size,
                after=after,
                cursor=(cursor, spec.scope) if cursor else None,
            )
        except LookupError:
            raise
        except Exception as exc:
            report_read_failure(self.state, f"{spec.kind.value} list", exc)
            if cursor:
                raise LookupError(cursor) from exc
            return None, []

    def page(
        self, spec: ListSpec, limit: int, *, after: Key | None = None, cursor_id: str | None = None
    ) -> tuple[list[t.Any], bool]:
        """``(rows, has_more)``: up to ``limit`` rows after the key ``after`` or the entity ``cursor_id``
        (``LookupError`` when neither store has it within the scope)."""
        size = limit + 1
        prefetched: list[t.Any] | None = None
        if cursor_id:
            record = self.reader.get_one(spec.kind, cursor_id, spec.scope)
            if record is not None:
                after = (record.created_at, record.id)
            elif self.sessions is None:
                raise LookupError(cursor_id)
            else:
                after, prefetched = self._relational_page(spec, size, cursor=cursor_id)
        direction: Direction = "desc" if spec.descending else "asc"
        order = (("created_at", direction), ("id", direction))

        def logstore(since: datetime | None) -> list[t.Any]:
            window = narrow(spec.window, since=since)
            query = RecordQuery(spec.kind, spec.scope, spec.filters, window, order, size, after)
            return [TO_MODEL[spec.kind](r) for r in self.reader.search(query).records]

        def relational() -> list[t.Any]:
            return prefetched if prefetched is not None else self._relational_page(spec, size, after)[1]

        if self.sessions is None:
            return combine(logstore(None), [], set(), limit, spec.descending)
        cutover = self.cutover
        if cutover is None:
            ls_rows, rel_rows = logstore(None), relational()
            known = {str(r.id) for r in ls_rows}
            candidates = [str(r.id) for r in rel_rows if str(r.id) not in known]
            dropped = known | self.present(spec.kind, spec.scope, candidates)
            rows, more = combine(ls_rows, rel_rows, dropped, limit, spec.descending)
            if len(rows) < limit and len(rel_rows) >= size and len(ls_rows) < size:
                # The relational batch held rows whose newer log-store snapshot no longer matches (a
                # stale status); everything up to its last row is settled, so go on from there.
                rest, more = self.page(spec, limit - len(rows), after=row_key(rel_rows[-1]))
                rows = rows + rest
            return rows, more
        wanted = {
            "ls": spec.window.until is None or spec.window.until > cutover,
            "rel": spec.window.since is None or spec.window.since < cutover,
        }
        if after is not None and spec.descending and after[0] < cutover:
            wanted["ls"] = False  # everything after the cursor is older than the cut-over
        if after is not None and not spec.descending and after[0] >= cutover:
            wanted["rel"] = False
        halves: dict[str, list[t.Any]] = {"ls": [], "rel": []}
        for side in ("ls", "rel") if spec.descending else ("rel", "ls"):
            if wanted[side]:
                halves[side] = logstore(cutover) if side == "ls" else relational()
                if len(halves[side]) >= size:
                    break  # this half fills the page; the other one comes later in the order
        return combine(halves["ls"], halves["rel"], set(), limit, spec.descending)

    def aggregate(self, query: AggregateQuery) -> list[dict[str, t.Any]]:
        """``query`` over both stores, each entity counted once (``count`` / ``sum`` / ``max`` / ``min``)."""
        cutover, window = self.cutover, query.time_range
        if self.sessions is None:
            return self.reader.aggregate(query)
        if cutover is not None:
            after_cutover = window.until is None or window.until > cutover
            ls = (
                self.reader.aggregate(dataclasses.replace(query, time_range=narrow(window, since=cutover)))
                if after_cutover
                else []
            )
            if window.since is not None and window.since >= cutover:
                return ls
        else:
            ls = self.reader.aggregate(query)
        model = dual_sql.model_of(query.kind)
        where = dual_sql.conditions(model, query.scope, query.filters, narrow(window, until=cutover))
        try:
            if cutover is not None:
                rel = dual_sql.aggregate(self.sessions, where, query)
            else:
                fields = [g.field for g in query.group_by] + [m.field for m in query.metrics if m.field]
                found = dual_sql.records(self.sessions, query.kind, where, fields)
                have = self.present(query.kind, query.scope, [r.id for r in found], query.filters, window)
                rel = aggregate_records([r for r in found if r.id not in have], query)
        except Exception as exc:
            report_read_failure(self.state, f"{query.kind.value} aggregate", exc)
            rel = []
        return merge_groups(ls, rel, query)
