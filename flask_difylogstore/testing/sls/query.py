"""GetLogs and GetHistograms: search filter, time window and SQL over one logstore."""

from __future__ import annotations

import datetime as dt
import decimal
import re
import time
from dataclasses import dataclass
from typing import Any

import duckdb
import orjson

from flask_difylogstore.testing.sls.errors import SLSError, bad_request
from flask_difylogstore.testing.sls.ingest import column_key, key_column, quote_ident
from flask_difylogstore.testing.sls.padding import pad_time_series
from flask_difylogstore.testing.sls.search import (
    KeyInfo,
    SearchSchema,
    compile_search,
    json_value_sql,
    split_query,
    sql_str,
)
from flask_difylogstore.testing.sls.sql import translate
from flask_difylogstore.testing.sls.store import Store

#: SLS's default ``max_text_len``: longer text values are cut in analytic (SQL) results.
DEFAULT_MAX_TEXT_LEN = 2048
_RELATION = "__sls_log"
_PERMANENT_TTL = 3650
_CAST = {"long": "BIGINT", "double": "DOUBLE"}


@dataclass(slots=True)
class QueryResult:
    rows: list[dict[str, str]]
    meta: dict[str, Any]


def _to_str(value: Any) -> str:
    """Render a value the way SLS returns it: always a string, NULL as ``"null"``."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        zone = getattr(value.tzinfo, "key", None) if value.tzinfo is not None else None
        return f"{text} {zone or value.strftime('%z')}" if value.tzinfo is not None else text
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (int, float, decimal.Decimal)):
        return str(value)
    if isinstance(value, (list, dict)):
        return orjson.dumps(value, default=str).decode()
    return str(value)


class _Context:
    """The filtered view of one logstore that a query runs against."""

    def __init__(self, store: Store, project: str | None, logstore: str, start: int, end: int, topic: str) -> None:
        ls = store.logstore(project, logstore)
        index = ls["_index"]
        if index is None:
            # GetLogs answers 400 here (GetLogs API reference, "Error codes").
            raise bad_request("IndexConfigNotExist", "Logstore without index config.")
        self.name = logstore
        self.table = ls["_table"]
        store.flush_table(self.table)
        all_columns = store.table_columns(self.table)
        self.raw_columns = [c for c in all_columns if c.startswith("k_")]
        self.max_text_len = int(index.get("max_text_len") or DEFAULT_MAX_TEXT_LEN)
        self.keys = _index_keys(ls, index, set(all_columns))
        json_all = _json_sub_keys(self.keys, index)
        line = index.get("line")
        self.schema = SearchSchema(
            keys=self.keys,
            line_tokens="".join(line.get("token") or []) if line else None,
            line_case_sensitive=bool(line.get("caseSensitive", False)) if line else False,
            text_columns=[quote_ident(c) for c in self.raw_columns],
            json_all=json_all,
        )
        self.window = _time_window(ls, start, end, topic)

    def where(self, search: str) -> str:
        return f"{self.window} AND ({compile_search(search, self.schema)})"

    def relation(self, where: str) -> str:
        """The SELECT behind ``FROM log``: indexed keys only, typed, text cut at max_text_len."""
        cols = ["__time__", "__source__", "__topic__"]
        seen = {"__time__", "__source__", "__topic__"}
        for key, info in self.keys.items():
            if key.lower() in seen or not info.analytics:
                # A key without analytics (doc_value) is no SQL column on SLS either.
                continue
            seen.add(key.lower())
            sql_type = _CAST.get(info.type)
            if info.column is None:
                expr = f"CAST(NULL AS {sql_type or 'VARCHAR'})"
            elif sql_type:
                expr = f"TRY_CAST({info.column} AS {sql_type})"
            else:
                # max_text_len counts UTF-8 bytes; a character never is split.
                n = self.max_text_len
                col = info.column
                expr = f"CASE WHEN strlen({col}) > {n} THEN sls_cut_bytes({col}, {n}) ELSE {col} END"
            if info.column is not None and info.since_seq > 0:
                expr = f"CASE WHEN __seq__ >= {info.since_seq} THEN {expr} END"
            cols.append(f"{expr} AS {quote_ident(key)}")
        return f"SELECT {', '.join(cols)} FROM {quote_ident(self.table)} WHERE {where}"


def _index_keys(ls: dict[str, Any], index: dict[str, Any], columns: set[str]) -> dict[str, KeyInfo]:
    """The index's keys: where each one's value is (a column, a tag, or nowhere yet) and how it is indexed."""
    keys: dict[str, KeyInfo] = {}
    for key, conf in (index.get("keys") or {}).items():
        col = key_column(key)
        if key.startswith("__tag__:"):  # an indexed log tag: its value comes from the tags
            column: str | None = (
                "json_extract_string(__tags__, " + sql_str('$."' + key[8:].replace('"', '\\"') + '"') + ")"
            )
        else:
            column = quote_ident(col) if col in columns else None
        keys[key] = KeyInfo(
            column=column,
            type=str(conf.get("type", "text")),
            tokens="".join(conf.get("token") or []),
            case_sensitive=bool(conf.get("caseSensitive", False)),
            since_seq=int(ls["_key_since"].get(key, ls["_index_since"])),
            analytics=bool(conf.get("doc_value", False)),
        )
    return keys


def _json_sub_keys(keys: dict[str, KeyInfo], index: dict[str, Any]) -> dict[str, KeyInfo]:
    """Add the ``json_keys`` of each json key to ``keys``, as ``key.sub``; return the json keys with ``index_all``."""
    json_all = {k: keys[k] for k, c in (index.get("keys") or {}).items() if c.get("type") == "json"}
    for key, conf in (index.get("keys") or {}).items():
        if conf.get("type") != "json":
            continue
        if not conf.get("index_all", True):
            del json_all[key]
        parent = keys[key]
        for sub, sub_conf in (conf.get("json_keys") or {}).items():
            keys[f"{key}.{sub}"] = KeyInfo(
                column=json_value_sql(parent.column, sub) if parent.column else None,
                type=str(sub_conf.get("type", "text")),
                tokens=parent.tokens,
                case_sensitive=parent.case_sensitive,
                since_seq=parent.since_seq,
                analytics=bool(sub_conf.get("doc_value", False)),
            )
    return json_all


def _time_window(ls: dict[str, Any], start: int, end: int, topic: str) -> str:
    """The SQL condition every query of the logstore runs within: indexed since, [start, end), TTL, topic."""
    window = [f"__seq__ >= {int(ls['_index_since'])}", f"__time__ >= {start}", f"__time__ < {end}"]
    ttl = int(ls.get("ttl", 30))
    if ttl < _PERMANENT_TTL:
        window.append(f"__time__ >= {int(time.time()) - ttl * 86400}")
    if topic:
        window.append("__topic__ = '" + topic.replace("'", "''") + "'")
    return " AND ".join(window)


_MISSING_COLUMN = re.compile(r'Referenced column (?:"([^"]+)"|(\S+)) not found', re.I)
_NOT_GROUPED = re.compile(r'column "([^"]+)" must appear in the GROUP BY clause', re.I)


def _sql_error(exc: duckdb.Error) -> SLSError:
    """DuckDB's error as SLS words it, for the errors Alibaba's common-errors FAQ lists."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    m = _MISSING_COLUMN.search(str(exc))
    if m:
        name = m.group(1) or m.group(2)
        return bad_request(
            "ParameterInvalid",
            f"line 1:1: Column '{name}' cannot be resolved;please add the column in the index attribute",
        )
    m = _NOT_GROUPED.search(str(exc))
    if m:
        return bad_request(
            "ParameterInvalid",
            f"line 1:1: Column '{m.group(1)}' not in GROUP BY clause;please add the column in the index attribute",
        )
    return bad_request("ParameterInvalid", f"line 1:1: {text}")


def _check_request(start: int, end: int, line: int, offset: int, has_sql: bool) -> None:
    """GetLogs' own parameter checks (GetLogs API reference, "Error codes")."""
    if start >= end:
        raise bad_request("InvalidTimeRange", "Request time range is invalid.")
    if line < 0:
        raise bad_request("InvalidLine", "Line is invalid.")
    if offset < 0:
        raise bad_request("InvalidOffset", "Offset is invalid.")
    if has_sql and offset != 0:
        raise bad_request(
            "ParameterInvalid",
            "ErrorType:OLSQueryParseError.ErrorMessage:offset is not available for pagination in sql query,"
            " please use limit x,y syntax for pagination.",
        )


def get_logs(
    store: Store,
    project: str | None,
    logstore: str,
    *,
    start: int,
    end: int,
    query: str,
    line: int = 100,
    offset: int = 0,
    reverse: bool = False,
    topic: str = "",
) -> QueryResult:
    began = time.perf_counter()
    search, sql = split_query(query or "*")
    if sql is None and re.match(r"\s*select\s", search, re.I):
        raise bad_request("ParameterInvalid", "sql query must follow search query,please read syntex doc")
    with store.lock:
        ctx = _Context(store, project, logstore, start, end, topic)
        _check_request(start, end, line, offset, sql is not None)
        where = ctx.where(search)
        con = store.db
        try:
            if sql is not None:
                processed = con.execute(f"SELECT count(*) FROM {quote_ident(ctx.table)} WHERE {where}").fetchone()
                translated = translate(sql, ctx.name, _RELATION)
                con.execute(f"CREATE OR REPLACE TEMP VIEW {_RELATION} AS {ctx.relation(where)}")
                try:
                    cursor = con.execute(translated.sql)
                    names = [d[0] for d in cursor.description or []]
                    types = [str(d[1]).lower() for d in cursor.description or []]
                    rows = [dict(zip(names, map(_to_str, r), strict=True)) for r in cursor.fetchall()]
                    if translated.time_series is not None:
                        rows = pad_time_series(con, rows, names, translated.time_series, start, end)
                finally:
                    con.execute(f"DROP VIEW IF EXISTS {_RELATION}")
                meta_extra: dict[str, Any] = {
                    "hasSQL": True, "whereQuery": search, "aggQuery": sql, "keys": names,
                    "columnTypes": types, "processedRows": int(processed[0]) if processed else 0,
                }  # fmt: skip
            else:
                rows, processed_rows = _raw_search(con, ctx, where, line, offset, reverse)
                meta_extra = {
                    "hasSQL": False,
                    "whereQuery": search,
                    "aggQuery": "",
                    "processedRows": processed_rows,
                }
                meta_extra["keys"] = sorted({k for r in rows for k in r if not k.startswith("__")})
        except duckdb.Error as exc:
            raise _sql_error(exc) from exc
    elapsed = int((time.perf_counter() - began) * 1000)
    meta: dict[str, Any] = {
        "progress": "Complete", "count": len(rows), "elapsedMillisecond": elapsed, "cpuSec": elapsed / 1000,
        "cpuCores": 1, "mode": 0, "isAccurate": True, "limited": 0, "powerSql": False, "insertedSQL": "",
        "marker": "", "scanBytes": 0, "processedBytes": 0, "telementryType": "logging",
        "phraseQueryInfo": {"scanAll": False, "beginOffset": 0, "endOffset": 0, "endTime": 0},
    }  # fmt: skip
    meta.update(meta_extra)
    return QueryResult(rows, meta)


def _raw_search(
    con: duckdb.DuckDBPyConnection, ctx: _Context, where: str, line: int, offset: int, reverse: bool
) -> tuple[list[dict[str, str]], int]:
    """Matching logs with every key, untruncated, ordered by time."""
    line = min(int(line), 100)  # "If you set this parameter to a value greater than 100, only 100 lines are returned."
    order = "DESC" if reverse else "ASC"
    raw = [quote_ident(c) for c in ctx.raw_columns]
    select = ", ".join(["__time__", "__source__", "__topic__", "__tags__", *raw])
    tbl = quote_ident(ctx.table)
    result = con.execute(
        f"SELECT {select} FROM {tbl} WHERE {where} ORDER BY __time__ {order}, __seq__ {order} "
        f"LIMIT {line} OFFSET {max(0, int(offset))}"
    ).fetchall()
    total = con.execute(f"SELECT count(*) FROM {tbl} WHERE {where}").fetchone()
    keys = [column_key(c) for c in ctx.raw_columns]
    rows: list[dict[str, str]] = []
    for record in result:
        item: dict[str, str] = {}
        for key, value in zip(keys, record[4:], strict=True):
            if value is not None:
                item[key] = value
        item["__time__"] = str(record[0])
        item["__source__"] = record[1] or ""
        item["__topic__"] = record[2] or ""
        if record[3]:
            for tag, tag_value in orjson.loads(record[3]).items():
                item[f"__tag__:{tag}"] = tag_value
        rows.append(item)
    return rows, int(total[0]) if total else 0


def get_histograms(
    store: Store, project: str | None, logstore: str, *, start: int, end: int, query: str, topic: str = ""
) -> list[dict[str, Any]]:
    """Counts of matching logs per time bucket of [start, end) (about 60 buckets, like SLS)."""
    search, _sql = split_query(query or "*")
    if start >= end:  # GetHistograms API reference, "Error codes"
        raise bad_request("InvalidTimeRange", "request time range is invalid.")
    span = max(1, end - start)
    step = max(1, -(-span // 60))
    with store.lock:
        ctx = _Context(store, project, logstore, start, end, topic)
        where = ctx.where(search)
        try:
            counts = dict(
                store.db.execute(
                    f"SELECT (__time__ - {start}) // {step} AS b, count(*) FROM {quote_ident(ctx.table)} "
                    f"WHERE {where} GROUP BY b"
                ).fetchall()
            )
        except duckdb.Error as exc:
            raise _sql_error(exc) from exc
    buckets = []
    for i, lo in enumerate(range(start, max(end, start + 1), step)):
        buckets.append({"from": lo, "to": min(lo + step, end), "count": int(counts.get(i, 0)), "progress": "Complete"})
    return buckets


def list_topics(store: Store, project: str | None, logstore: str, *, token: str, line: int) -> tuple[list[str], str]:
    """ListTopics: the distinct topics, in order, from ``token`` on; and the token of the next page."""
    if line < 0:
        raise bad_request("InvalidLine", "Line is invalid.")
    line = min(line, 100)
    with store.lock:
        ls = store.logstore(project, logstore)
        store.flush_table(ls["_table"])
        rows = store.db.execute(
            f"SELECT DISTINCT __topic__ FROM {quote_ident(ls['_table'])} WHERE __topic__ >= ? ORDER BY 1 LIMIT ?",
            [token, line + 1],
        ).fetchall()
    topics = [str(r[0]) for r in rows]
    return topics[:line], topics[line] if len(topics) > line else ""
