"""SLS's date and time semantics as DuckDB macros, defined once per connection.

Alibaba's "Date and time functions" page (https://www.alibabacloud.com/help/doc-detail/63451.htm)
fixes the behaviour reproduced here:

* ``__time__`` is a UNIX timestamp in seconds, and the page reads 1592374067 as
  "2020-06-17 14:07:47" and 1512374067 as "Mon Dec 4 15:54:27 CST 2017"; ``current_timezone()``
  returns ``Asia/Shanghai``. SLS SQL therefore shows and truncates times in Asia/Shanghai
  (UTC+8): the DuckDB session runs in that zone and naive timestamps are Asia/Shanghai wall time.
* ``date_trunc``'s argument "can be a datetime expression, for example 2021-01-12 03:04:05.000 or
  1610350836 … or a time field, for example __time__": every date function accepts numbers (as
  UNIX seconds), timestamps and strings (:func:`sls_ts`).
* Timestamps have millisecond precision ("YYYY-MM-DD HH:MM:SS.Ms"), so values made by the
  functions are truncated to the millisecond, and ``to_unixtime`` returns e.g. 1494985500.848.
* ``from_unixtime(x, zone)`` gives the wall time in ``zone`` (``date_format`` / ``date_trunc`` of
  it follow that zone).
"""

from __future__ import annotations

from sqlglot import exp

#: The zone SLS's SQL functions use (see the module docstring for the source).
SLS_TIME_ZONE = "Asia/Shanghai"

#: ``time_series`` padding values (the page's "padding_data").
TIME_SERIES_PADDING = ("0", "null", "last", "next", "avg")

#: sqlglot nodes whose time argument (``this``; for ``date_diff`` both, for ``extract`` the
#: ``expression``) goes through ``sls_ts`` so that numbers and strings are accepted.
TIME_ARGUMENT_NODES: tuple[type[exp.Expr], ...] = (
    exp.TimestampTrunc, exp.DateTrunc, exp.TimeToStr, exp.DateAdd, exp.DateSub, exp.DateDiff,
    exp.TimestampAdd, exp.Hour, exp.Minute, exp.Second, exp.Day, exp.Month, exp.Year, exp.Quarter,
    exp.Week, exp.WeekOfYear, exp.DayOfWeek, exp.DayOfWeekIso, exp.DayOfYear, exp.DayOfMonth,
    exp.YearOfWeek, exp.LastDay, exp.Date,
)  # fmt: skip

_TZ = f"'{SLS_TIME_ZONE}'"
_NUMERIC = (
    "typeof(x) IN ('TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'HUGEINT', 'UTINYINT', 'USMALLINT',"
    " 'UINTEGER', 'UBIGINT', 'FLOAT', 'DOUBLE') OR typeof(x) LIKE 'DECIMAL%'"
)

#: Each value is cast through VARCHAR inside the CASE so every branch binds whatever the input type.
MACROS = [
    f"CREATE OR REPLACE TEMP MACRO sls_ts(x) AS CASE"
    f" WHEN {_NUMERIC} THEN date_trunc('millisecond',"
    f" timezone({_TZ}, to_timestamp(TRY_CAST(CAST(x AS VARCHAR) AS DOUBLE))))"
    f" WHEN typeof(x) = 'TIMESTAMP' THEN TRY_CAST(CAST(x AS VARCHAR) AS TIMESTAMP)"
    f" ELSE date_trunc('millisecond', timezone({_TZ}, TRY_CAST(CAST(x AS VARCHAR) AS TIMESTAMPTZ))) END",
    f"CREATE OR REPLACE TEMP MACRO sls_from_unixtime(x) AS"
    f" date_trunc('millisecond', timezone({_TZ}, to_timestamp(CAST(x AS DOUBLE))))",
    "CREATE OR REPLACE TEMP MACRO sls_from_unixtime_tz(x, tz) AS"
    " date_trunc('millisecond', timezone(tz, to_timestamp(CAST(x AS DOUBLE))))",
    "CREATE OR REPLACE TEMP MACRO sls_from_unixtime_offset(x, h, m) AS date_trunc('millisecond',"
    " timezone('UTC', to_timestamp(CAST(x AS DOUBLE))) + to_minutes(CAST(h * 60 + m AS BIGINT)))",
    f"CREATE OR REPLACE TEMP MACRO sls_to_unixtime(x) AS CASE"
    f" WHEN typeof(x) = 'TIMESTAMP' THEN epoch(timezone({_TZ}, TRY_CAST(CAST(x AS VARCHAR) AS TIMESTAMP)))"
    f" ELSE epoch(date_trunc('millisecond', TRY_CAST(CAST(x AS VARCHAR) AS TIMESTAMPTZ))) END",
    # max_text_len: the longest prefix of s of at most n UTF-8 bytes (hex digits of the bytes are
    # cut, then a trailing incomplete character is dropped: a character is never split).
    "CREATE OR REPLACE TEMP MACRO sls_cut_bytes(s, n) AS decode(unhex(regexp_replace(left(hex(s), 2 * n),"
    " '(?:[CD][0-9A-F]|E[0-9A-F](?:[89AB][0-9A-F])?|F[0-9A-F](?:[89AB][0-9A-F]){0,2})$', '')))",
    "CREATE OR REPLACE TEMP MACRO sls_from_iso8601_timestamp(s) AS date_trunc('millisecond', CAST(s AS TIMESTAMPTZ))",
    f"CREATE OR REPLACE TEMP MACRO current_timezone() AS {_TZ}",
    # time_series: the bucket of ``x`` (UNIX seconds or a timestamp), aligned on multiples of the window.
    "CREATE OR REPLACE TEMP MACRO sls_time_bucket(x, width, fmt) AS strftime(sls_ts("
    "CAST(floor(sls_to_unixtime(sls_ts(x)) / width) * width AS BIGINT)), fmt)",
]
