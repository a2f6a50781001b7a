"""SLS search syntax (the part of a query before ``|``) compiled to a DuckDB predicate.

Hand-written recursive-descent parser: no maintained Python library parses SLS's search
language. Supported: ``*``, ``key: value``, ``key: "quoted \\" value"``, bare full-text terms,
``and`` / ``or`` / ``not`` (also implicit ``and`` between adjacent terms) with parentheses,
``*`` / ``?`` wildcards inside terms, and ``key > n``, ``key >= n``, ``key < n``, ``key <= n``,
``key = n``, ``key in [a b]`` (``[``/``]`` inclusive, ``(``/``)`` exclusive) on long/double keys.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from flask_difylogstore.testing.sls.errors import bad_request


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What the predicate compiler needs to know about one indexed key."""

    column: str | None  # quoted DuckDB column holding the raw value, None when never written
    type: str  # text | long | double | json
    tokens: str  # delimiter characters
    case_sensitive: bool
    since_seq: int  # logs ingested before this sequence number are not indexed for the key


@dataclass(frozen=True, slots=True)
class SearchSchema:
    keys: dict[str, KeyInfo]
    line_tokens: str | None  # None when the index has no full-text (line) config
    line_case_sensitive: bool
    text_columns: Sequence[str]  # every raw value column, for full-text terms


_TOKEN_RE = re.compile(
    r"""\s+|(?P<lp>\()|(?P<rp>\))|(?P<lb>\[)|(?P<rb>\])|(?P<op>>=|<=|>|<|=|:)"""
    r"""|(?P<str>"(?:[^"\\]|\\.)*")|(?P<word>[^\s()\[\]:<>="]+)""",
    re.S,
)

_Tok = tuple[str, str]  # (kind, text); kind in lp rp lb rb op str word


def _tokenize(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise bad_request("ParameterInvalid", f"invalid search query near: {text[pos : pos + 20]!r}")
        pos = m.end()
        kind = m.lastgroup
        if kind is None:
            continue
        value = m.group(kind)
        if kind == "str":
            value = re.sub(r"\\(.)", r"\1", value[1:-1], flags=re.S)
        out.append((kind, value))
    return out


def sql_str(value: str) -> str:
    """A DuckDB string literal."""
    return "'" + value.replace("'", "''") + "'"


def _re_escape(text: str) -> str:
    return "".join("\\" + ch if not ch.isalnum() and ch.isascii() and ch not in " _" else ch for ch in text)


def _char_class(tokens: str) -> str:
    items = []
    for ch in tokens:
        if ch == "\n":
            items.append("\\n")
        elif ch == "\t":
            items.append("\\t")
        elif ch == "\r":
            items.append("\\r")
        elif ch in "\\]^-[":
            items.append("\\" + ch)
        else:
            items.append(ch)
    return "".join(items)


def match_expr(column: str, value: str, tokens: str, case_sensitive: bool) -> str | None:
    """SQL matching ``value`` as a token phrase in ``column``, or None when it has no token.

    A plain (I)LIKE on the longest literal piece runs first: it is much cheaper than the regex
    on long values and lets DuckDB skip most rows before the exact token check.
    """
    pattern = term_regex(value, tokens, case_sensitive)
    if pattern is None:
        return None
    pieces = [p for p in re.split(r"[*?]|[" + re.escape(tokens or " ") + "]", value) if p]
    regex = f"regexp_matches({column}, {sql_str(pattern)})"
    if not pieces:
        return regex
    literal = max(pieces, key=len).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    like = "LIKE" if case_sensitive else "ILIKE"
    return f"({column} {like} {sql_str('%' + literal + '%')} ESCAPE '\\' AND {regex})"


def term_regex(value: str, tokens: str, case_sensitive: bool) -> str | None:
    """A RE2 pattern matching ``value`` as a phrase of tokens; None when it has no token."""
    delims = _char_class(tokens) or "\\s"
    terms = [t for t in re.split("[" + re.escape(tokens or " ") + "]+", value) if t]
    if not terms:
        return None
    parts = []
    for term in terms:
        piece = _re_escape(term).replace("\\*", f"[^{delims}]*").replace("\\?", f"[^{delims}]")
        parts.append(piece)
    body = f"[{delims}]+".join(parts)
    flags = "" if case_sensitive else "(?i)"
    return f"{flags}(?:^|[{delims}]){body}(?:[{delims}]|$)"


class _Parser:
    def __init__(self, tokens: list[_Tok], schema: SearchSchema) -> None:
        self.toks = tokens
        self.pos = 0
        self.schema = schema

    def peek(self, offset: int = 0) -> _Tok | None:
        i = self.pos + offset
        return self.toks[i] if i < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise bad_request("ParameterInvalid", "unexpected end of search query")
        self.pos += 1
        return tok

    def _is_word(self, tok: _Tok | None, word: str) -> bool:
        return tok is not None and tok[0] == "word" and tok[1].lower() == word

    def parse(self) -> str:
        if not self.toks:
            return "TRUE"
        expr = self.parse_or()
        if self.peek() is not None:
            raise bad_request("ParameterInvalid", f"unexpected token in search query: {self.peek()[1]!r}")  # type: ignore[index]
        return expr

    def parse_or(self) -> str:
        parts = [self.parse_and()]
        while self._is_word(self.peek(), "or"):
            self.take()
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def parse_and(self) -> str:
        parts = [self.parse_not()]
        while True:
            tok = self.peek()
            if tok is None or tok[0] == "rp" or self._is_word(tok, "or"):
                break
            if self._is_word(tok, "and"):
                self.take()
            parts.append(self.parse_not())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def parse_not(self) -> str:
        if self._is_word(self.peek(), "not"):
            self.take()
            return f"(NOT coalesce({self.parse_not()}, FALSE))"
        return self.parse_primary()

    def parse_primary(self) -> str:
        tok = self.take()
        if tok[0] == "lp":
            inner = self.parse_or()
            if self.take()[0] != "rp":
                raise bad_request("ParameterInvalid", "missing ) in search query")
            return inner
        if tok[0] not in ("word", "str"):
            raise bad_request("ParameterInvalid", f"unexpected token in search query: {tok[1]!r}")
        nxt = self.peek()
        if nxt is not None and nxt[0] == "op":
            self.take()
            value = self.take()
            if value[0] not in ("word", "str"):
                raise bad_request("ParameterInvalid", f"missing value after {tok[1]}{nxt[1]}")
            return self.key_predicate(tok[1], nxt[1], value[1])
        if nxt is not None and self._is_word(nxt, "in") and self.peek(1) is not None:
            opener = self.peek(1)
            if opener is not None and opener[0] in ("lb", "lp"):
                self.pos += 2
                low, high = self.take(), self.take()
                closer = self.take()
                if closer[0] not in ("rb", "rp"):
                    raise bad_request("ParameterInvalid", "malformed range in search query")
                return self.range_predicate(tok[1], low[1], high[1], opener[0] == "lb", closer[0] == "rb")
        if tok == ("word", "*"):
            return "TRUE"
        return self.fulltext(tok[1])

    # --- predicates -------------------------------------------------------------------------
    def _key(self, name: str) -> KeyInfo | None:
        return self.schema.keys.get(name)

    def _guard(self, info: KeyInfo, predicate: str) -> str:
        if info.column is None:
            return "FALSE"
        return f"(__seq__ >= {info.since_seq} AND {predicate})"

    def key_predicate(self, key: str, op: str, value: str) -> str:
        if key in ("__topic__", "__source__"):
            return f"{key} = {sql_str(value)}" if op in (":", "=") else "FALSE"
        info = self._key(key)
        if info is None or info.column is None:
            return "FALSE"
        col = info.column
        if info.type in ("long", "double"):
            if op == ":" and value == "*":
                return self._guard(info, f"{col} IS NOT NULL")
            number = _number(value)
            if number is None:
                return "FALSE"
            sql_op = "=" if op == ":" else op
            return self._guard(info, f"TRY_CAST({col} AS DOUBLE) {sql_op} {number!r}")
        if op not in (":", "="):
            return "FALSE"
        if value == "*":
            return self._guard(info, f"{col} IS NOT NULL")
        expr = match_expr(col, value, info.tokens, info.case_sensitive)
        return "FALSE" if expr is None else self._guard(info, expr)

    def range_predicate(self, key: str, low: str, high: str, low_inc: bool, high_inc: bool) -> str:
        info = self._key(key)
        lo, hi = _number(low), _number(high)
        if info is None or info.type not in ("long", "double") or lo is None or hi is None:
            return "FALSE"
        value = f"TRY_CAST({info.column} AS DOUBLE)"
        cond = f"{value} {'>=' if low_inc else '>'} {lo!r} AND {value} {'<=' if high_inc else '<'} {hi!r}"
        return self._guard(info, cond)

    def fulltext(self, term: str) -> str:
        if self.schema.line_tokens is None or not self.schema.text_columns:
            return "FALSE"
        exprs = [
            match_expr(c, term, self.schema.line_tokens, self.schema.line_case_sensitive)
            for c in self.schema.text_columns
        ]
        if not exprs or exprs[0] is None:
            return "FALSE"
        return "(" + " OR ".join(e for e in exprs if e) + ")"


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def compile_search(query: str, schema: SearchSchema) -> str:
    """Translate the search part of an SLS query into a SQL boolean expression."""
    return _Parser(_tokenize(query.strip()), schema).parse()


def split_query(query: str) -> tuple[str, str | None]:
    """Split ``search | sql`` at the first ``|`` outside double quotes."""
    in_quote = False
    escaped = False
    for i, ch in enumerate(query):
        if escaped:
            escaped = False
        elif ch == "\\" and in_quote:
            escaped = True
        elif ch == '"':
            in_quote = not in_quote
        elif ch == "|" and not in_quote:
            return query[:i].strip() or "*", query[i + 1 :].strip()
    return query.strip() or "*", None
