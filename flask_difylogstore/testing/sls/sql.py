"""Translation of SLS's analytic SQL (Presto dialect) into DuckDB SQL.

The statement is tokenised first, so string literals, quoted identifiers and comments are never
rewritten. The rewrites are: the table name (``log``, the logstore's name, or none at all) becomes
the filtered logstore relation; ``LIMIT offset, count`` becomes ``LIMIT count OFFSET offset``; a
statement without ``LIMIT`` gets SLS's implicit ``LIMIT 100``; ``date_format``/``date_parse``
MySQL-style patterns become strftime patterns; Presto functions DuckDB lacks are provided as
macros (see ``MACROS``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask_difylogstore.testing.sls.errors import bad_request

#: SLS returns at most this many rows for a statement without LIMIT.
DEFAULT_SQL_LIMIT = 100

#: Presto/SLS functions missing from DuckDB, defined once per connection.
MACROS = [
    "CREATE OR REPLACE TEMP MACRO from_unixtime(x) AS timezone('UTC', to_timestamp(CAST(x AS DOUBLE))),"
    " (x, tz) AS timezone(tz, to_timestamp(CAST(x AS DOUBLE)))",
    "CREATE OR REPLACE TEMP MACRO to_unixtime(t) AS epoch(t)",
    "CREATE OR REPLACE TEMP MACRO from_iso8601_timestamp(s) AS CAST(s AS TIMESTAMPTZ)",
    "CREATE OR REPLACE TEMP MACRO from_iso8601_date(s) AS CAST(s AS DATE)",
    "CREATE OR REPLACE TEMP MACRO json_extract_scalar(j, p) AS json_extract_string(j, p)",
    "CREATE OR REPLACE TEMP MACRO approx_distinct(x) AS approx_count_distinct(x)",
    "CREATE OR REPLACE TEMP MACRO approx_percentile(x, p) AS approx_quantile(x, p)",
    "CREATE OR REPLACE TEMP MACRO arbitrary(x) AS any_value(x)",
    "CREATE OR REPLACE TEMP MACRO regexp_like(s, p) AS regexp_matches(s, p)",
    "CREATE OR REPLACE TEMP MACRO day_of_week(t) AS isodow(t)",
    "CREATE OR REPLACE TEMP MACRO sls_date_add(u, n, t) AS t + n * CAST('1 ' || u AS INTERVAL)",
]

_RENAMES = {"date_add": "sls_date_add", "date_format": "strftime", "date_parse": "strptime"}

# MySQL date_format specifiers (used by Presto/SLS) -> strftime specifiers (used by DuckDB).
_FORMAT_MAP = {
    "a": "%a", "b": "%b", "c": "%-m", "d": "%d", "e": "%-d", "f": "%f", "H": "%H", "h": "%I",
    "I": "%I", "i": "%M", "j": "%j", "k": "%-H", "l": "%-I", "M": "%B", "m": "%m", "p": "%p",
    "r": "%I:%M:%S %p", "S": "%S", "s": "%S", "T": "%H:%M:%S", "u": "%W", "v": "%V", "W": "%A",
    "w": "%w", "Y": "%Y", "y": "%y", "%": "%%",
}  # fmt: skip

_TOKEN_RE = re.compile(
    r"(?P<ws>\s+)|(?P<comment>--[^\n]*|/\*.*?\*/)|(?P<str>'(?:[^']|'')*')|(?P<qid>\"(?:[^\"]|\"\")*\")"
    r"|(?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)|(?P<word>[A-Za-z_][A-Za-z0-9_$]*)"
    r"|(?P<op><=|>=|<>|!=|\|\||::|->>|->|[^\s])",
    re.S,
)

_CLAUSE_AFTER_SELECT = {"where", "group", "having", "order", "limit", "offset", "union", "except",
                        "intersect", "window", "qualify", "fetch"}  # fmt: skip


@dataclass(slots=True)
class Tok:
    kind: str
    text: str

    @property
    def low(self) -> str:
        return self.text.lower() if self.kind == "word" else self.text


def tokenize(sql: str) -> list[Tok]:
    out: list[Tok] = []
    pos = 0
    while pos < len(sql):
        m = _TOKEN_RE.match(sql, pos)
        if m is None or m.lastgroup is None:
            raise bad_request("ParameterInvalid", f"line 1:{pos + 1}: cannot parse SQL near {sql[pos : pos + 20]!r}")
        if m.lastgroup == "str" and not m.group().endswith("'"):
            raise bad_request("ParameterInvalid", "unterminated string literal in SQL")
        out.append(Tok(m.lastgroup, m.group()))
        pos = m.end()
    return out


def mysql_to_strftime(fmt: str) -> str:
    out = []
    i = 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "%" and i + 1 < len(fmt):
            out.append(_FORMAT_MAP.get(fmt[i + 1], fmt[i + 1]))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _sig(tokens: list[Tok], start: int) -> int:
    """Index of the next significant (non-space, non-comment) token at or after ``start``."""
    i = start
    while i < len(tokens) and tokens[i].kind in ("ws", "comment"):
        i += 1
    return i


def _unquote(tok: Tok) -> str:
    return tok.text[1:-1].replace('""', '"') if tok.kind == "qid" else tok.text


def translate(sql: str, logstore: str, relation: str) -> str:
    """Rewrite an SLS SQL statement so DuckDB runs it against ``relation``."""
    toks = [t for t in tokenize(sql.strip().rstrip(";")) if t.kind != "comment"]
    if any(t.text == ";" for t in toks):
        raise bad_request("ParameterInvalid", "line 1:1: only one SQL statement is allowed")
    if not any(t.low == "select" for t in toks):
        raise bad_request("ParameterInvalid", "line 1:1: the analytic statement must be a SELECT")
    depth = 0
    depths: list[int] = []
    for t in toks:
        if t.text == "(":
            depth += 1
        depths.append(depth)
        if t.text == ")":
            depth -= 1
    out: list[str] = []
    i = 0
    n = len(toks)
    pending_from: dict[int, bool] = {}  # depth -> a SELECT at that depth still lacks FROM
    top_limit = False

    def flush_missing_from(d: int) -> None:
        if pending_from.pop(d, False):
            out.append(f" FROM {relation} ")

    while i < n:
        t = toks[i]
        d = depths[i]
        low = t.low
        if t.kind == "word" and low == "select":
            pending_from[d] = True
        elif t.kind == "word" and low == "from" and pending_from.get(d):
            pending_from[d] = False
        elif t.kind == "word" and low in _CLAUSE_AFTER_SELECT or t.text == ")":
            flush_missing_from(d)
        if t.kind == "word" and low in ("from", "join"):
            j = _sig(toks, i + 1)
            if j < n and toks[j].kind in ("word", "qid"):
                name = _unquote(toks[j])
                if name.lower() == "log" or name == logstore:
                    out.extend(tok.text for tok in toks[i:j])
                    out.append(relation)
                    i = j + 1
                    continue
        if t.kind == "word" and low == "limit":
            if d == 0:
                top_limit = True
            j = _sig(toks, i + 1)
            k = _sig(toks, j + 1)
            m = _sig(toks, k + 1)
            if k < n and toks[k].text == "," and toks[j].kind == "num" and m < n and toks[m].kind == "num":
                out.append(f"LIMIT {toks[m].text} OFFSET {toks[j].text}")
                i = m + 1
                continue
        if t.kind == "word":
            j = _sig(toks, i + 1)
            if j < n and toks[j].text == "(" and low in _RENAMES:
                if low in ("date_format", "date_parse"):
                    _rewrite_format_arg(toks, j)
                out.append(_RENAMES[low])
                i += 1
                continue
        out.append(t.text)
        i += 1
    flush_missing_from(0)
    result = "".join(out)
    if not top_limit:
        result += f" LIMIT {DEFAULT_SQL_LIMIT}"
    return result


def _rewrite_format_arg(toks: list[Tok], open_idx: int) -> None:
    """Translate the pattern literal (second argument) of ``date_format(x, '%Y…')`` in place."""
    depth = 0
    for k in range(open_idx, len(toks)):
        text = toks[k].text
        if text == "(":
            depth += 1
        elif text == ")":
            depth -= 1
            if depth == 0:
                return
        elif text == "," and depth == 1:
            j = _sig(toks, k + 1)
            if j < len(toks) and toks[j].kind == "str":
                literal = toks[j].text[1:-1].replace("''", "'")
                toks[j] = Tok("str", "'" + mysql_to_strftime(literal).replace("'", "''") + "'")
            return
