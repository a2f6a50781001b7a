"""The relational half of a merged read: one statement per read over Dify's tables.

Dify's repository methods cannot take what a merge needs (a ``created_at`` bound at the
cut-over, a keyset cursor shared with the log store, the total of an offset page in the same
round trip), so merged lists and aggregates run one statement over the same ORM models instead:
Dify's own inside Dify (through :mod:`flask_difylogstore.dify.compat`), the package's copies
standalone. The predicates are built from the very :class:`~flask_difylogstore.backends.base.Filter`
/ :class:`~flask_difylogstore.backends.base.Scope` / :class:`~flask_difylogstore.backends.base.TimeRange`
description the log-store half is queried with, so both halves select the same entities.
"""

from __future__ import annotations

import typing as t
from collections.abc import Sequence
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased, selectinload, sessionmaker

from flask_difylogstore.backends.base import AggregateQuery, Filter, Metric, Scope, TimeRange
from flask_difylogstore.backends.evaluate import aggregate_records
from flask_difylogstore.conversions import model_columns
from flask_difylogstore.dify import compat
from flask_difylogstore.records import LogRecord, RecordKind
from flask_difylogstore.repositories._context import NO_TENANT

Key = tuple[datetime, str]
Sessions = sessionmaker[Session]


def model_of(kind: RecordKind) -> t.Any:
    """The ORM class of a record kind (Dify's own inside Dify)."""
    return compat.record_models()[kind.value]


def _column(entity: t.Any, model: t.Any, name: str) -> t.Any:
    return getattr(entity, model_columns(model)[name])


def _predicate(column: t.Any, flt: Filter) -> sa.ColumnElement[bool]:
    value = flt.value
    if flt.op == "eq":
        return t.cast(sa.ColumnElement[bool], column == value)
    if flt.op == "ne":
        return sa.and_(column.is_not(None), column != value)
    if flt.op in ("in", "not_in"):
        values = list(value or ())
        return t.cast(sa.ColumnElement[bool], column.in_(values) if flt.op == "in" else column.not_in(values))
    if flt.op == "is_null":
        return t.cast(sa.ColumnElement[bool], column.is_(None))
    if flt.op == "not_null":
        return t.cast(sa.ColumnElement[bool], column.is_not(None))
    operators = {"lt": column < value, "lte": column <= value, "gt": column > value, "gte": column >= value}
    return t.cast(sa.ColumnElement[bool], operators[flt.op])


def conditions(
    model: t.Any, scope: Scope, filters: Sequence[Filter] = (), window: TimeRange | None = None, entity: t.Any = None
) -> list[sa.ColumnElement[bool]]:
    """SQL predicates selecting what a log-store query with the same arguments selects."""
    entity = model if entity is None else entity
    result: list[sa.ColumnElement[bool]] = []
    if scope.tenant_id == NO_TENANT:
        return [sa.false()]
    for name, value in (("tenant_id", scope.tenant_id), ("app_id", scope.app_id)):
        if value:
            result.append(_column(entity, model, name) == value)
    result.extend(_predicate(_column(entity, model, f.field), f) for f in filters)
    created = _column(entity, model, "created_at")
    if window is not None and window.since is not None:
        result.append(created >= window.since)
    if window is not None and window.until is not None:
        result.append(created < window.until)
    return result


def _after(model: t.Any, created: t.Any, id_: t.Any, descending: bool) -> sa.ColumnElement[bool]:
    if descending:
        return sa.or_(model.created_at < created, sa.and_(model.created_at == created, model.id < id_))
    return sa.or_(model.created_at > created, sa.and_(model.created_at == created, model.id > id_))


def keyset_rows(
    sessions: Sessions,
    model: t.Any,
    where: Sequence[sa.ColumnElement[bool]],
    *,
    descending: bool,
    limit: int,
    after: Key | None = None,
    cursor: tuple[str, Scope] | None = None,
) -> tuple[Key | None, list[t.Any]]:
    """Up to ``limit`` rows in ``(created_at, id)`` order after ``after``, or after the row ``cursor``.

    ``cursor`` is ``(id, scope)`` of a row only the relational database knows: the statement finds
    its position and the page in one round trip, and returns the row's key (``LookupError``
    when no such row exists in ``scope``).
    """
    order = [model.created_at.desc(), model.id.desc()] if descending else [model.created_at.asc(), model.id.asc()]
    condition = sa.and_(sa.true(), *where)
    if after is not None:
        condition = sa.and_(condition, _after(model, after[0], after[1], descending))
    if cursor is not None:
        if not descending:
            raise ValueError("a cursor row is only resolved for newest-first pages")
        cursor_id, cursor_scope = cursor
        ref = aliased(model)
        position = sa.select(ref.created_at).where(ref.id == cursor_id, *conditions(model, cursor_scope, entity=ref))
        condition = sa.or_(
            sa.and_(condition, _after(model, position.scalar_subquery(), cursor_id, True)),
            sa.and_(model.id == cursor_id, *conditions(model, cursor_scope)),
        )
        limit += 1
    stmt = sa.select(model).where(condition).order_by(*order).limit(limit)
    if hasattr(model, "offload_data"):
        stmt = stmt.options(selectinload(model.offload_data))
    with sessions() as session:
        rows = list(session.scalars(stmt))
    if cursor is None:
        return None, rows
    found = [r for r in rows if str(r.id) == cursor[0]]
    if not found:
        raise LookupError(cursor[0])
    return (found[0].created_at, str(found[0].id)), [r for r in rows if r is not found[0]]


def records(
    sessions: Sessions, kind: RecordKind, where: Sequence[sa.ColumnElement[bool]], fields: Sequence[str]
) -> list[LogRecord]:
    """``id`` plus ``fields`` of every matching row, as records (for per-entity merging in Python)."""
    model = model_of(kind)
    names = list(dict.fromkeys(["id", *fields]))
    stmt = sa.select(*[_column(model, model, n) for n in names]).where(*where)
    with sessions() as session:
        rows = session.execute(stmt).all()
    return [
        LogRecord(kind, {n: (str(v) if n == "id" else v) for n, v in zip(names, row, strict=True)}, 0) for row in rows
    ]


def _metric(model: t.Any, metric: Metric) -> t.Any:
    if metric.function == "count":
        return sa.func.count(model.id)
    column = _column(model, model, metric.field or "")
    if metric.function == "count_distinct":
        return sa.func.count(sa.distinct(column))
    return getattr(sa.func, metric.function)(column)


def aggregate(
    sessions: Sessions, where: Sequence[sa.ColumnElement[bool]], query: AggregateQuery
) -> list[dict[str, t.Any]]:
    """``query`` over the matching rows: grouped by the database (days too on PostgreSQL)."""
    model = model_of(query.kind)
    with sessions() as session:
        postgres = session.get_bind().dialect.name == "postgresql"
        if not postgres and any(g.day_in_timezone for g in query.group_by):
            needed = [g.field for g in query.group_by] + [m.field for m in query.metrics if m.field]
            return aggregate_records(records(sessions, query.kind, where, needed), query)
        keys = []
        for group in query.group_by:
            column = _column(model, model, group.field)
            if group.day_in_timezone:
                column = sa.cast(sa.func.timezone(group.day_in_timezone, sa.func.timezone("UTC", column)), sa.Date)
            keys.append(column.label(group.name))
        metrics = [_metric(model, m).label(m.name) for m in query.metrics]
        stmt = sa.select(*keys, *metrics).where(*where)
        if keys:
            stmt = stmt.group_by(*keys)
        rows = [dict(r) for r in session.execute(stmt).mappings()]
    for row in rows:
        for group in query.group_by:
            if isinstance(row[group.name], date):
                row[group.name] = row[group.name].isoformat()
    return rows


def app_log_page(
    sessions: Sessions,
    where: Sequence[sa.ColumnElement[bool]],
    run_where: Sequence[sa.ColumnElement[bool]] | None,
    *,
    skip: int,
    limit: int,
) -> tuple[int, list[t.Any]]:
    """``(total, rows skip..skip+limit)`` of app logs newest first, in one statement.

    ``run_where`` (predicates on the joined ``workflow_runs`` row) is given for Dify's status and
    keyword filters, which match the run of each log. The total travels on the first row.
    """
    model = compat.WorkflowAppLog
    run = compat.WorkflowRun
    order = (model.created_at.desc(), model.id.desc())
    inner = sa.select(
        model,
        sa.func.count().over().label("dual_total"),
        sa.func.row_number().over(order_by=order).label("dual_position"),
    ).where(*where)
    if run_where is not None:
        inner = inner.join(run, run.id == model.workflow_run_id).where(*run_where)
    sub = inner.subquery()
    row_alias = aliased(model, sub)
    stmt = (
        sa.select(row_alias, sub.c.dual_total, sub.c.dual_position)
        .where(sa.or_(sub.c.dual_position == 1, sub.c.dual_position.between(skip + 1, skip + limit)))
        .order_by(sub.c.dual_position)
    )
    with sessions() as session:
        result = session.execute(stmt).all()
    total = int(result[0][1]) if result else 0
    return total, [row for row, _, position in result if skip < position <= skip + limit]


def app_log_rows(
    sessions: Sessions, where: Sequence[sa.ColumnElement[bool]], run_match: sa.ColumnElement[bool] | None
) -> list[tuple[t.Any, bool | None]]:
    """Every matching app log, newest first, with whether its relational run matches ``run_match``.

    The flag is ``None`` when the run is not in the relational database (or no ``run_match``).
    """
    model = compat.WorkflowAppLog
    run = compat.WorkflowRun
    order = (model.created_at.desc(), model.id.desc())
    if run_match is None:
        with sessions() as session:
            return [(row, None) for row in session.scalars(sa.select(model).where(*where).order_by(*order))]
    flag = sa.case((run.id.is_(None), sa.null()), (run_match, sa.true()), else_=sa.false())
    stmt = sa.select(model, flag).outerjoin(run, run.id == model.workflow_run_id).where(*where).order_by(*order)
    with sessions() as session:
        return [(row, matched) for row, matched in session.execute(stmt).all()]
