"""Translation of SLS's analytic SQL (the Presto dialect) into DuckDB SQL, with sqlglot.

sqlglot parses the statement as Presto and writes it as DuckDB; on top of that this module
applies what is specific to SLS (https://www.alibabacloud.com/help/doc-detail/63451.htm and the
"Log analysis" / "LIMIT clause" pages):

* the table is ``log``, the logstore's name, or nothing at all (``* | select count(1)``);
* a statement without ``LIMIT`` returns at most 100 rows; ``LIMIT`` is refused in subqueries and
  beyond SLS's caps (``LIMIT S, N``: N <= 10,000 and S + N <= 1,000,000; ``LIMIT N``: N <= 1,000,000);
* date and time functions accept ``__time__`` (UNIX seconds) and other numbers as well as
  timestamps and strings, and work in SLS's time zone (:data:`SLS_TIME_ZONE`) at millisecond
  precision; ``from_unixtime(x, zone)`` keeps its zone; ``time_series`` buckets and pads;
* unnamed result columns are called ``_col0``, ``_col1``… by position, as Presto names them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from flask_difylogstore.testing.sls.errors import bad_request
from flask_difylogstore.testing.sls.functions import TIME_ARGUMENT_NODES, TIME_SERIES_PADDING

#: SLS returns at most this many rows for a statement without LIMIT.
DEFAULT_SQL_LIMIT = 100
#: ``LIMIT S, N``: N at most 10,000 and S + N at most 1,000,000 (SLS "LIMIT clause").
MAX_PAGE_ROWS = 10_000
MAX_SQL_ROWS = 1_000_000

_WINDOW_RE = re.compile(r"^\s*(\d+)\s*([smhd])\s*$", re.I)
_WINDOW_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class TimeSeries:
    """A ``time_series(...)`` output column: its name, bucket width, format and padding."""

    column: str
    seconds: int
    fmt: str  # a DuckDB strftime pattern
    padding: str  # 0, null, last, next or avg


@dataclass(frozen=True, slots=True)
class Translated:
    sql: str
    time_series: TimeSeries | None


def _invalid(message: str) -> Exception:
    return bad_request("ParameterInvalid", message)


def _parse(sql: str) -> exp.Query:
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise _invalid("line 1:1: the analytic statement is empty")
    try:
        statements = [s for s in sqlglot.parse(text, read="presto") if s is not None]
    except SqlglotError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _invalid(f"line 1:1: {first}") from exc
    if len(statements) != 1:
        raise _invalid("line 1:1: only one SQL statement is allowed")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise _invalid("line 1:1: the analytic statement must be a SELECT")
    return tree


def _rewrite_tables(tree: exp.Expr, logstore: str, relation: str) -> None:
    """``log`` / the logstore become ``relation``; every other table name is refused."""
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for table in list(tree.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier) or table.args.get("db") or table.args.get("catalog"):
            raise _invalid(f"line 1:1: '{table.sql(dialect='presto')}' is not a logstore of this project")
        name = table.name
        if name.lower() in ctes:
            continue
        if name.lower() != "log" and name != logstore:
            raise _invalid(f"line 1:1: Table '{name}' does not exist; query the logstore as log or {logstore}")
        alias = table.args.get("alias")
        table.set("this", exp.to_identifier(relation, quoted=True))
        if alias is None:
            table.set("alias", exp.TableAlias(this=exp.to_identifier(name, quoted=True)))
    for select in tree.find_all(exp.Select):
        if select.args.get("from_") is None and select.args.get("from") is None:
            select.from_(exp.Table(this=exp.to_identifier(relation, quoted=True)), copy=False)


def _limit_value(node: exp.Expr | None) -> int | None:
    if node is None:
        return 0
    if isinstance(node, exp.Literal) and not node.is_string and node.this.isdigit():
        return int(node.this)
    if isinstance(node, exp.Var) and node.name.upper() == "ALL":
        return None
    raise _invalid(f"line 1:1: LIMIT needs a number, not {node.sql(dialect='presto')}")


def _check_limits(tree: exp.Query) -> None:
    for clause in tree.find_all(exp.Limit, exp.Offset, exp.Fetch):
        if clause.parent is not tree:
            raise _invalid("line 1:1: LIMIT is not supported in a subquery; use it on the outermost statement only")
    limit = tree.args.get("limit")
    if limit is None:
        if tree.args.get("offset") is not None:
            raise _invalid("line 1:1: OFFSET needs LIMIT; use LIMIT offset, count")
        tree.set("limit", exp.Limit(expression=exp.Literal.number(DEFAULT_SQL_LIMIT)))
        return
    if isinstance(limit, exp.Fetch):
        raise _invalid("line 1:1: FETCH is not supported; use LIMIT offset, count")
    count = _limit_value(limit.expression)
    offset_node = tree.args.get("offset")
    offset = _limit_value(offset_node.expression if offset_node is not None else None) or 0
    if count is None:
        if offset:
            raise _invalid("line 1:1: LIMIT ALL cannot be combined with an offset")
        return
    if offset_node is not None and count > MAX_PAGE_ROWS:
        raise _invalid(f"line 1:1: LIMIT offset, count: count must not exceed {MAX_PAGE_ROWS}")
    if offset + count > MAX_SQL_ROWS:
        raise _invalid(f"line 1:1: LIMIT reads at most {MAX_SQL_ROWS} rows (offset + count)")


def _anon(name: str, *args: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=list(args))


def _rewrite_time_functions(tree: exp.Expr) -> None:
    """SLS's date and time semantics (see :mod:`~flask_difylogstore.testing.sls.functions`)."""
    for node in list(tree.find_all(exp.UnixToTime, exp.TimeToUnix, exp.FromISO8601Timestamp)):
        new: exp.Expr
        if isinstance(node, exp.UnixToTime):
            zone, hours, minutes = node.args.get("zone"), node.args.get("hours"), node.args.get("minutes")
            if hours is not None:
                new = _anon("sls_from_unixtime_offset", node.this, hours, minutes or exp.Literal.number(0))
            elif zone is not None:
                new = _anon("sls_from_unixtime_tz", node.this, zone)
            else:
                new = _anon("sls_from_unixtime", node.this)
        elif isinstance(node, exp.TimeToUnix):
            new = _anon("sls_to_unixtime", node.this)
        else:
            new = _anon("sls_from_iso8601_timestamp", node.this)
        node.replace(new)
    for call in list(tree.find_all(*TIME_ARGUMENT_NODES, exp.Extract)):
        keys = ("this", "expression") if isinstance(call, exp.DateDiff) else ("this",)
        for key in ("expression",) if isinstance(call, exp.Extract) else keys:
            arg = call.args.get(key)
            if arg is not None and not (isinstance(arg, exp.Anonymous) and str(arg.this).startswith("sls_")):
                call.set(key, _anon("sls_ts", arg))


def _time_series(tree: exp.Query) -> TimeSeries | None:
    """Rewrite ``time_series(t, window, format, padding)`` into its bucket; remember how to pad."""
    calls = [a for a in tree.find_all(exp.Anonymous) if str(a.this).lower() == "time_series"]
    if not calls:
        return None
    if len(calls) > 1 or not isinstance(tree, exp.Select):
        raise _invalid("line 1:1: time_series can be used once, in the outermost SELECT")
    call = calls[0]
    args = call.expressions
    if len(args) != 4 or not all(isinstance(a, exp.Literal) and a.is_string for a in args[1:]):
        raise _invalid("line 1:1: time_series(time_column, 'window', 'format', 'padding') needs literal options")
    window, fmt, padding = (a.this for a in args[1:])
    match = _WINDOW_RE.match(window)
    if match is None:
        raise _invalid(f"line 1:1: time_series window {window!r} must be a number of s, m, h or d")
    if padding.lower() not in TIME_SERIES_PADDING:
        raise _invalid(f"line 1:1: time_series padding {padding!r} must be one of 0, null, last, next, avg")
    alias = call.parent if isinstance(call.parent, exp.Alias) else None
    if alias is None or alias.parent is not tree:
        raise _invalid("line 1:1: time_series must be an aliased column of the SELECT, e.g. time_series(...) as time")
    order = tree.args.get("order")
    if order is None or not tree.args.get("group"):
        raise _invalid("line 1:1: time_series needs GROUP BY and ORDER BY")
    if any(o.args.get("desc") for o in order.expressions):
        raise _invalid("line 1:1: time_series does not support ORDER BY ... DESC")
    seconds = int(match.group(1)) * _WINDOW_UNITS[match.group(2).lower()]
    if seconds <= 0:
        raise _invalid("line 1:1: time_series window must be positive")
    strftime = sqlglot.parse_one(f"date_format(x, '{fmt.replace(chr(39), chr(39) * 2)}')", read="presto")
    duck_fmt = str(strftime.args["format"].this)
    call.replace(_anon("sls_time_bucket", args[0], exp.Literal.number(seconds), exp.Literal.string(duck_fmt)))
    return TimeSeries(alias.alias, seconds, duck_fmt, padding.lower())


def _name_columns(tree: exp.Query) -> None:
    """Unnamed expressions of the result are ``_col<position>``, as Presto (and so SLS) names them."""
    select = tree
    while isinstance(select, exp.SetOperation):
        select = select.this
    if not isinstance(select, exp.Select):
        return
    for i, projection in enumerate(list(select.expressions)):
        if isinstance(projection, (exp.Alias, exp.Column, exp.Star)):
            continue
        projection.replace(exp.alias_(projection.copy(), f"_col{i}", quoted=True))


def translate(sql: str, logstore: str, relation: str) -> Translated:
    """Rewrite an SLS analytic statement so DuckDB runs it against ``relation``."""
    tree = _parse(sql)
    _rewrite_tables(tree, logstore, relation)
    _check_limits(tree)
    series = _time_series(tree)
    _rewrite_time_functions(tree)
    _name_columns(tree)
    try:
        return Translated(tree.sql(dialect="duckdb"), series)
    except SqlglotError as exc:
        raise _invalid(f"line 1:1: {exc}") from exc
