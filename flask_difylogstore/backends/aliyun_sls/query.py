"""The one place where SLS queries are written: ``search | SQL`` built from backend-neutral queries.

Rules every statement follows (each one fixes a defect of the upstream plugin):

* the tenant (and app) is always applied, in the SQL as an exact comparison and, when the value
  is a plain identifier, also in the search part so SLS reads less;
* values are inlined only through :func:`search_literal` (search syntax) or :func:`sql_literal`
  (SQL), field names only from the record schema's whitelist;
* the latest version of each id is picked with ``ROW_NUMBER()`` over rows filtered by immutable
  owner fields only; every other filter, ``log_deleted = 0`` included, is applied afterwards;
* ``from``/``to`` bound the log time, which the writer sets to the record's ``created_at``;
* every statement has an explicit ``LIMIT offset, count`` within SLS's caps, and callers page;
* SQL selects light columns only: SQL results cut text at ``max_text_len``, so full records are
  read as raw logs (see :meth:`QueryBuilder.fetch`), which SLS never truncates.
"""

from __future__ import annotations

import calendar
import math
import re
import time
import typing as t
import zoneinfo
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from flask_difylogstore.backends.base import Filter, GroupBy, Metric, Scope, TimeRange
from flask_difylogstore.records import FieldType, format_datetime, parse_datetime
from flask_difylogstore.schemas import RecordSchema

#: SLS: ``LIMIT offset, count`` needs count <= 10,000 and offset + count <= 1,000,000.
MAX_SQL_ROWS = 10_000
MAX_SQL_OFFSET = 1_000_000
#: Raw (search-only) GetLogs returns at most 100 logs per request.
MAX_RAW_LINES = 100
#: SLS accepts at most 30 conditions in a search statement; stay below.
MAX_SEARCH_CONDITIONS = 24
#: Ids per raw-log fetch (plus the tenant and app conditions).
MAX_SEARCH_IDS = 20
#: Fields a keyword is matched against (as Dify's app-log search, and the memory backend, do).
KEYWORD_FIELDS = ("inputs", "outputs", "process_data")
#: Unbounded queries reach this far past "now" (clock skew between writers and readers).
FUTURE_SLACK_S = 86_400

_PLAIN = re.compile(r"[A-Za-z0-9_.\-]{1,256}")
_VERSION_RANK = "_version_rank"
#: Absent values sort as the greatest (PostgreSQL's default): last ascending, first descending.
_NULLS = {"asc": "ASC NULLS LAST", "desc": "DESC NULLS FIRST"}


class Unmatchable(ValueError):
    """A value no stored string can equal (it holds NUL or a lone surrogate)."""


def search_literal(value: str) -> str:
    """A quoted search-syntax phrase: ``\\`` and ``"`` escaped, operators inside stay literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sql_literal(value: str) -> str:
    """A SQL string literal. SLS SQL (Presto) has no backslash escapes: only ``'`` is doubled."""
    if "\x00" in value:
        raise Unmatchable("NUL in value")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Unmatchable("value is not valid unicode") from None
    return "'" + value.replace("'", "''") + "'"


def ident(name: str) -> str:
    """A quoted identifier (names come from the schema whitelist, quoting is belt and braces)."""
    return '"' + name.replace('"', '""') + '"'


def epoch_seconds(value: datetime) -> int:
    """Seconds since the epoch of a naive-UTC (or aware) datetime."""
    return calendar.timegm(value.utctimetuple())


@dataclass(frozen=True)
class Statement:
    """One GetLogs request: search part, optional SQL, and the log-time window [from, to)."""

    search: str
    sql: str | None
    from_time: int
    to_time: int

    @property
    def query(self) -> str:
        return f"{self.search} | {self.sql}" if self.sql else self.search


class QueryBuilder:
    """Builds every statement for the logstore of one record kind."""

    def __init__(self, schema: RecordSchema, *, clock: t.Callable[[], float] = time.time) -> None:
        self.schema = schema
        self._clock = clock

    # --- names and values ------------------------------------------------------------------
    def field_type(self, name: str) -> FieldType:
        try:
            return self.schema.fields[name]
        except KeyError:
            raise ValueError(f"unknown field {name!r} for {self.schema.kind.value}") from None

    def column(self, name: str) -> str:
        self.field_type(name)
        return ident(name)

    def literal(self, name: str, value: t.Any) -> str:
        """``value`` as a SQL literal of field ``name``'s stored type."""
        type_ = self.field_type(name)
        if isinstance(value, Enum):
            value = value.value
        if type_ in (FieldType.LONG, FieldType.BOOL):
            return str(int(value if not isinstance(value, str) else float(value)))
        if type_ is FieldType.DOUBLE:
            number = float(value)
            if not math.isfinite(number):
                raise Unmatchable("non-finite number")
            return repr(number)
        if type_ is FieldType.DATETIME:
            moment = value if isinstance(value, datetime) else parse_datetime(str(value))
            return sql_literal(format_datetime(moment))
        return sql_literal(value if isinstance(value, str) else str(value))

    # --- predicates --------------------------------------------------------------------------
    def predicate(self, f: Filter) -> str:
        """One filter as SQL, with the reference semantics for absent values.

        An absent (NULL) field never equals, differs from or compares with anything; it is
        ``not_in`` any list. ``None`` as a value never matches ``eq``; ``ne None`` means present.
        """
        col = self.column(f.field)
        op = f.op
        if op == "is_null":
            return f"{col} IS NULL"
        if op == "not_null" or (op == "ne" and f.value is None):
            return f"{col} IS NOT NULL"
        if op in ("in", "not_in"):
            lits = []
            for v in f.value or ():
                if v is None:
                    continue
                try:
                    lits.append(self.literal(f.field, v))
                except Unmatchable:
                    continue
            if not lits:
                return "FALSE" if op == "in" else "TRUE"
            listed = f"{col} IN ({', '.join(lits)})"
            return listed if op == "in" else f"({col} IS NULL OR NOT ({listed}))"
        if f.value is None:
            return "FALSE"
        try:
            lit = self.literal(f.field, f.value)
        except Unmatchable:
            return f"{col} IS NOT NULL" if op == "ne" else "FALSE"
        sql_op = {"eq": "=", "ne": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}.get(op)
        if sql_op is None:
            raise ValueError(f"unsupported filter operator {op!r}")
        return f"{col} {sql_op} {lit}"

    def owner_filters(self, scope: Scope, filters: t.Sequence[Filter]) -> tuple[list[Filter], list[Filter]]:
        """Split into (scope + immutable-field filters, filters on fields that change)."""
        inner = list(scope.owner_filters())
        outer: list[Filter] = []
        for f in filters:
            self.field_type(f.field)
            (inner if f.field in self.schema.owner_fields else outer).append(f)
        return inner, outer

    def search_part(self, filters: t.Sequence[Filter]) -> str:
        """A search-syntax pre-filter from equalities on plain identifiers (the SQL re-checks exactly).

        It lets SLS read only matching logs before the SQL runs; terms that do not fit SLS's
        limit on conditions are simply left to the SQL.
        """
        terms: list[str] = []
        budget = MAX_SEARCH_CONDITIONS
        for f in filters:
            if self.schema.fields.get(f.field) is not FieldType.KEYWORD:
                continue
            values = [f.value] if f.op == "eq" else list(f.value or ()) if f.op == "in" else []
            if not values or not all(isinstance(v, str) and _PLAIN.fullmatch(v) for v in values):
                continue
            if len(values) > budget:
                continue
            budget -= len(values)
            phrases = [f"{f.field}:{search_literal(v)}" for v in values]
            terms.append(phrases[0] if len(phrases) == 1 else "(" + " or ".join(phrases) + ")")
        return " and ".join(terms) or "*"

    def window(self, time_range: TimeRange | None) -> tuple[int, int, list[Filter]]:
        """The [from, to) log-time window and the exact ``created_at`` filters of ``time_range``."""
        exact: list[Filter] = []
        start, end = 0, int(self._clock()) + FUTURE_SLACK_S
        if time_range is not None and time_range.since is not None:
            start = max(0, epoch_seconds(time_range.since))
            exact.append(Filter("created_at", "gte", time_range.since))
        if time_range is not None and time_range.until is not None:
            end = epoch_seconds(time_range.until) + 1
            exact.append(Filter("created_at", "lt", time_range.until))
        return start, max(end, start + 1), exact

    # --- statements ----------------------------------------------------------------------------
    def latest(self, columns: t.Iterable[str], inner: t.Sequence[Filter]) -> str:
        """Latest version of every id among rows matching ``inner`` (owner filters only)."""
        cols = ["id", "log_version", "log_deleted", *columns]
        names = ", ".join(dict.fromkeys(ident(c) for c in cols))
        where = " AND ".join(self.predicate(f) for f in inner) or "TRUE"
        return (
            f"SELECT {names}, __time__ AS {ident('_time')}, ROW_NUMBER() OVER (PARTITION BY {ident('id')} "
            f"ORDER BY {ident('log_version')} DESC) AS {ident(_VERSION_RANK)} FROM log WHERE {where}"
        )

    def _outer_where(self, outer: t.Sequence[Filter], keyword: str | None) -> list[str]:
        where = [f"{ident(_VERSION_RANK)} = 1", f"coalesce({ident('log_deleted')}, 0) = 0"]
        where += [self.predicate(f) for f in outer]
        if keyword:
            try:
                lit = sql_literal(keyword)
            except Unmatchable:
                return [*where, "FALSE"]
            fields = [n for n in KEYWORD_FIELDS if n in self.schema.fields]
            hits = [f"strpos(lower({ident(n)}), lower({lit})) > 0" for n in fields]
            where.append("(" + " OR ".join(hits or ["FALSE"]) + ")")
        return where

    def rows(
        self,
        scope: Scope,
        filters: t.Sequence[Filter],
        time_range: TimeRange | None,
        *,
        order_by: t.Sequence[tuple[str, str]],
        columns: t.Sequence[str],
        after: t.Sequence[t.Any] | None,
        count: int,
        keyword: str | None = None,
    ) -> Statement:
        """Light columns of the latest visible snapshots, in order, after keyset ``after``."""
        start, end, exact = self.window(time_range)
        inner, outer = self.owner_filters(scope, [*filters, *exact])
        keys = self.order_keys(order_by)
        needed = [*columns, *(k for k, _ in keys), *(f.field for f in outer)]
        if keyword:
            needed += [n for n in KEYWORD_FIELDS if n in self.schema.fields]
        where = self._outer_where(outer, keyword)
        if after is not None:
            where.append(self.keyset(keys, after))
        out_cols = ", ".join(dict.fromkeys(ident(c) for c in ["id", "log_version", "_time", *columns]))
        order = ", ".join(f"{ident(k)} {_NULLS[d]}" for k, d in keys)
        sql = (
            f"SELECT {out_cols} FROM ({self.latest(needed, inner)}) AS v WHERE {' AND '.join(where)} "
            f"ORDER BY {order} LIMIT 0, {max(1, min(count, MAX_SQL_ROWS))}"
        )
        return Statement(self.search_part(inner), sql, start, end)

    def order_keys(self, order_by: t.Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        keys: list[tuple[str, str]] = []
        for name, direction in order_by:
            self.field_type(name)
            if direction not in ("asc", "desc"):
                raise ValueError(f"bad sort direction {direction!r}")
            keys.append((name, direction))
        if not any(k == "id" for k, _ in keys):
            keys.append(("id", keys[-1][1] if keys else "asc"))
        return keys

    def keyset(self, keys: t.Sequence[tuple[str, str]], after: t.Sequence[t.Any]) -> str:
        """Rows strictly after ``after`` in the order ``keys`` (absent values sort greatest)."""
        keys = list(keys)[: len(after)]
        branches = []
        for i, (name, direction) in enumerate(keys):
            parts = [self._equal(n, after[j]) for j, (n, _) in enumerate(keys[:i])]
            parts.append(self._beyond(name, direction, after[i]))
            branches.append("(" + " AND ".join(parts) + ")")
        return "(" + " OR ".join(branches) + ")" if branches else "TRUE"

    def _equal(self, name: str, value: t.Any) -> str:
        if value is None:
            return f"{ident(name)} IS NULL"
        try:
            return f"{ident(name)} = {self.literal(name, value)}"
        except Unmatchable:
            return "FALSE"

    def _beyond(self, name: str, direction: str, value: t.Any) -> str:
        col = ident(name)
        if value is None:
            return "FALSE" if direction == "asc" else f"{col} IS NOT NULL"
        try:
            lit = self.literal(name, value)
        except Unmatchable:
            return "FALSE"
        return f"({col} > {lit} OR {col} IS NULL)" if direction == "asc" else f"{col} < {lit}"

    def count(self, scope: Scope, filters: t.Sequence[Filter], time_range: TimeRange | None) -> Statement:
        start, end, exact = self.window(time_range)
        inner, outer = self.owner_filters(scope, [*filters, *exact])
        latest = self.latest([f.field for f in outer], inner)
        where = " AND ".join(self._outer_where(outer, None))
        sql = f"SELECT count(1) AS {ident('n')} FROM ({latest}) AS v WHERE {where} LIMIT 0, 1"
        return Statement(self.search_part(inner), sql, start, end)

    def group_expr(self, group: GroupBy) -> str:
        if group.day_in_timezone is None:
            return self.column(group.field)
        if self.field_type(group.field) is not FieldType.DATETIME:
            raise ValueError(f"{group.field!r} is not a datetime field")
        try:
            zoneinfo.ZoneInfo(group.day_in_timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {group.day_in_timezone!r}") from None
        tz = sql_literal(group.day_in_timezone)
        if group.field == "created_at":
            seconds = ident("_time")  # the log time is the record's created_at
        else:
            seconds = f"to_unixtime(from_iso8601_timestamp({ident(group.field)} || 'Z'))"
        return f"date_format(from_unixtime({seconds}, {tz}), '%Y-%m-%d')"

    def metric_expr(self, metric: Metric) -> str:
        if metric.function == "count":
            return "count(1)"
        if metric.field is None:
            raise ValueError(f"metric {metric.function} needs a field")
        col = self.column(metric.field)
        if metric.function == "count_distinct":
            return f"count(DISTINCT {col})"
        return f"{metric.function}({col})"

    def aggregate(
        self,
        scope: Scope,
        filters: t.Sequence[Filter],
        time_range: TimeRange | None,
        group_by: t.Sequence[GroupBy],
        metrics: t.Sequence[Metric],
        *,
        offset: int,
        count: int,
    ) -> Statement:
        start, end, exact = self.window(time_range)
        inner, outer = self.owner_filters(scope, [*filters, *exact])
        needed = [g.field for g in group_by] + [m.field for m in metrics if m.field] + [f.field for f in outer]
        groups = [self.group_expr(g) for g in group_by]
        select = [f"{e} AS {ident('g' + str(i))}" for i, e in enumerate(groups)]
        select += [f"{self.metric_expr(m)} AS {ident('m' + str(i))}" for i, m in enumerate(metrics)]
        where = " AND ".join(self._outer_where(outer, None))
        sql = f"SELECT {', '.join(select)} FROM ({self.latest(needed, inner)}) AS v WHERE {where}"
        if groups:
            positions = ", ".join(str(i + 1) for i in range(len(groups)))
            order = ", ".join(f"{i + 1} ASC NULLS LAST" for i in range(len(groups)))
            sql += f" GROUP BY {positions} ORDER BY {order}"
        count = max(1, min(count, MAX_SQL_ROWS, MAX_SQL_OFFSET - offset))
        return Statement(self.search_part(inner), f"{sql} LIMIT {offset}, {count}", start, end)

    def lookup(self, scope: Scope, ids: t.Sequence[str]) -> Statement:
        """A raw-log search for every version of plain ``ids`` over the whole retention."""
        start, end, _ = self.window(None)
        search = self.search_part([*scope.owner_filters(), Filter("id", "in", list(ids))])
        return Statement(search, None, start, end)

    def fetch(self, scope: Scope, ids: t.Sequence[str], times: t.Sequence[int]) -> Statement:
        """A raw-log search for ``ids`` (all versions; the caller keeps the exact winners).

        Ids that are not plain identifiers cannot be searched reliably, so such a chunk is
        searched by its time window alone; the caller passes them one log-second at a time.
        """
        search = self.search_part([*scope.owner_filters(), Filter("id", "in", list(ids))])
        return Statement(search, None, min(times), max(times) + 1)


def plain(value: str) -> bool:
    """Whether ``value`` can be used as a search-syntax pre-filter (a single case-kept token)."""
    return bool(_PLAIN.fullmatch(value))
