"""``time_series`` padding: every bucket of the query window gets a row.

SLS's ``time_series(time_column, window, format, padding_data)`` "adds the missing data when you
query in the time window" (https://www.alibabacloud.com/help/doc-detail/63451.htm, "Time series
padding function"): a bucket without logs gets a row whose other columns are ``0``, ``null``,
the previous bucket's value (``last``), the next one's (``next``) or their average (``avg``).
"""

from __future__ import annotations

import duckdb

from flask_difylogstore.testing.sls.sql import TimeSeries

#: No more buckets than this are generated (a one-second window over a year would be 31M rows).
MAX_BUCKETS = 100_000


def _avg(before: str | None, after: str | None) -> str:
    """The mean of the neighbouring values that are numbers ("null" when neither is)."""
    numbers: list[float] = []
    for text in (before, after):
        if text is None or text == "null":
            continue
        try:
            numbers.append(float(text))
        except ValueError:
            return "null"
    if not numbers:
        return "null"
    mean = sum(numbers) / len(numbers)
    return str(int(mean)) if mean.is_integer() else str(mean)


def pad_time_series(
    con: duckdb.DuckDBPyConnection,
    rows: list[dict[str, str]],
    names: list[str],
    series: TimeSeries,
    start: int,
    end: int,
) -> list[dict[str, str]]:
    """``rows`` (ordered by the bucket) with a row for every bucket of ``[start, end)``."""
    first = start - start % series.seconds
    count = (end - first + series.seconds - 1) // series.seconds
    if count > MAX_BUCKETS:
        return rows
    buckets = [
        r[0]
        for r in con.execute(
            "SELECT strftime(sls_ts(b), ?) FROM range(?, ?, ?) AS t(b)", [series.fmt, first, end, series.seconds]
        ).fetchall()
    ]
    seen = {row.get(series.column) for row in rows}
    if all(b in seen for b in buckets):
        return rows
    by_bucket = {row.get(series.column): row for row in rows}
    others = [n for n in names if n != series.column]
    merged: list[dict[str, str] | None] = [by_bucket.get(b) for b in buckets]
    out: list[dict[str, str]] = []
    for i, bucket in enumerate(buckets):
        row = merged[i]
        if row is not None:
            out.append(row)
            continue
        filled = {series.column: bucket}
        before = next((r for r in reversed(merged[:i]) if r is not None), None)
        after = next((r for r in merged[i + 1 :] if r is not None), None)
        for name in others:
            if series.padding == "0":
                filled[name] = "0"
            elif series.padding == "null":
                filled[name] = "null"
            elif series.padding == "last":
                filled[name] = before[name] if before else "null"
            elif series.padding == "next":
                filled[name] = after[name] if after else "null"
            else:
                filled[name] = _avg(before[name] if before else None, after[name] if after else None)
        out.append({n: filled[n] for n in names})
    extra = [row for row in rows if row.get(series.column) not in set(buckets)]
    return out + extra
