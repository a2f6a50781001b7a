"""Bulk appends of buffered logs to a logstore's DuckDB table, column-wise.

Appending a few thousand logs in one statement is what keeps PutLogs fast: through a pyarrow table
when pyarrow is installed (about twice as fast), else ``INSERT … SELECT unnest(list)``. A key seen
for the first time becomes a new VARCHAR column.
"""

from __future__ import annotations

import importlib
from typing import Any

import duckdb
import orjson

from flask_difylogstore.testing.sls.wire import DecodedGroup

#: Buffered logs are appended to DuckDB once this many are waiting (or before any read).
FLUSH_ROWS = 5_000
FLUSH_BYTES = 64 * 1024 * 1024
#: Append through pyarrow when it is installed; set False to use DuckDB's list parameters only.
USE_ARROW = True

#: Columns of every logstore table: ingest order, log time, topic, source and tags.
FIXED_COLUMNS = (
    ("__seq__", "BIGINT"),
    ("__time__", "BIGINT"),
    ("__time_ns__", "BIGINT"),
    ("__topic__", "VARCHAR"),
    ("__source__", "VARCHAR"),
    ("__tags__", "VARCHAR"),
)


def _optional_pyarrow() -> Any:
    try:
        return importlib.import_module("pyarrow")
    except ImportError:  # pragma: no cover - depends on the environment
        return None


pyarrow: Any = _optional_pyarrow()


def key_column(key: str) -> str:
    """The column of a log key: ``k_`` and the key's UTF-8 in hex, so every key is a distinct column."""
    return "k_" + key.encode().hex()


def column_key(column: str) -> str:
    """The log key of a ``k_…`` column."""
    return bytes.fromhex(column[2:]).decode()


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Pending:
    """Logs accepted by PutLogs but not yet appended to DuckDB."""

    __slots__ = ("groups", "rows", "bytes")

    def __init__(self) -> None:
        self.groups: list[tuple[int, DecodedGroup]] = []
        self.rows = 0
        self.bytes = 0

    @property
    def full(self) -> bool:
        return self.rows >= FLUSH_ROWS or self.bytes >= FLUSH_BYTES


def insert(con: duckdb.DuckDBPyConnection, table: str, pending: Pending, existing: list[str]) -> list[str]:
    """Append ``pending`` to ``table`` (whose columns are ``existing``); returns the columns it added."""
    seqs: list[int] = []
    times: list[int] = []
    times_ns: list[int] = []
    topics: list[str] = []
    sources: list[str] = []
    tags: list[str | None] = []
    rows: list[dict[str, str]] = []
    for seq, group in pending.groups:
        count = len(group.rows)
        seqs.extend(range(seq, seq + count))
        times.extend(group.times)
        times_ns.extend(group.times_ns)
        topics.extend([group.topic] * count)
        sources.extend([group.source] * count)
        tag_json = orjson.dumps(group.tags).decode() if group.tags else None
        tags.extend([tag_json] * count)
        rows.extend(group.rows)
    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row))
    known = set(existing)
    added: list[str] = []
    tbl = quote_ident(table)
    columns = [name for name, _ in FIXED_COLUMNS]
    values: list[list[Any]] = [seqs, times, times_ns, topics, sources, tags]
    types = [type_ for _, type_ in FIXED_COLUMNS]
    for key in keys:
        col = key_column(key)
        if col not in known:
            con.execute(f"ALTER TABLE {tbl} ADD COLUMN {quote_ident(col)} VARCHAR")
            added.append(col)
        columns.append(quote_ident(col))
        values.append([row.get(key) for row in rows])
        types.append("VARCHAR")
    target = f"INSERT INTO {tbl} ({', '.join(columns)})"
    if pyarrow is not None and USE_ARROW:
        arrow_types = {"BIGINT": pyarrow.int64(), "VARCHAR": pyarrow.string()}
        batch = pyarrow.table(
            {f"c{i}": pyarrow.array(v, arrow_types[t]) for i, (v, t) in enumerate(zip(values, types, strict=True))}
        )
        # A cursor of its own: the shared connection may hold a partly fetched result, which
        # makes DuckDB refuse register() on it.
        cursor = con.cursor()
        try:
            cursor.register("__sls_batch", batch)
            cursor.execute(f"{target} SELECT * FROM __sls_batch")
        finally:
            cursor.close()
    else:
        select = ", ".join(f"unnest(${i + 1}::{t}[])" for i, t in enumerate(types))
        con.execute(f"{target} SELECT {select}", values)
    return added
