"""SLS search syntax (the part of a query before ``|``) compiled to a DuckDB predicate.

Hand-written recursive-descent parser: no maintained Python library parses SLS's search
language. It follows Alibaba's "Search syntax" page (intl.en-US/Index and query/Query/Search
syntax.md in AlibabaCloudDocs/sls): ``*``; ``key: value`` and ``"key name": value``; bare full-text
terms; ``and`` / ``or`` / ``not`` (adjacent terms mean ``and``) with parentheses; a value of several
tokens matches logs holding all of them in any order (``http_user_agent:"Linux Chrome"``), and
``#"…"`` matches them as a phrase (in order, adjacent); ``*`` / ``?`` wildcards inside unquoted
terms (a term cannot start with one); ``key > n``, ``>=``, ``<``, ``<=``, ``=``, ``key in [a b]``
(``[``/``]`` inclusive, ``(``/``)`` exclusive) on long/double keys (on other keys SLS runs a
full-text search of the words instead); ``__topic__``, ``__source__`` (or ``source``) and
``__tag__:name: value``. A key that is not in the index is refused, as SLS does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from flask_difylogstore.testing.sls.errors import bad_request


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What the predicate compiler needs to know about one indexed key."""

    column: str | None  # quoted DuckDB column holding the raw value, None when never written
    type: str  # text | long | double | json
    tokens: str  # delimiter characters
    case_sensitive: bool
    since_seq: int  # logs ingested before this sequence number are not indexed for the key
    analytics: bool = True  # doc_value: the key is a SQL column


@dataclass(frozen=True, slots=True)
class SearchSchema:
    keys: dict[str, KeyInfo]  # json sub-keys of the index appear as "key.sub"
    line_tokens: str | None  # None when the index has no full-text (line) config
    line_case_sensitive: bool
    text_columns: Sequence[str]  # every raw value column, for full-text terms
    json_all: dict[str, KeyInfo] = field(default_factory=dict)  # json keys with index_all: any "key.sub" text


def json_value_sql(column: str, path: str) -> str:
    """SQL of the string at ``path`` (``a.b``: member b of member a) of a JSON value; NULL when absent."""
    steps = "".join('."' + part.replace("\\", "\\\\").replace('"', '\\"') + '"' for part in path.split("."))
    return f"CASE WHEN json_valid({column}) THEN json_extract_string({column}, {sql_str('$' + steps)}) END"


_TOKEN_RE = re.compile(
    r"""\s+|(?P<lp>\()|(?P<rp>\))|(?P<lb>\[)|(?P<rb>\])|(?P<op>>=|<=|>|<|=|:)"""
    r"""|(?P<phrase>#"(?:[^"\\]|\\.)*")|(?P<str>"(?:[^"\\]|\\.)*")|(?P<word>[^\s()\[\]:<>="]+)""",
    re.S,
)

_Tok = tuple[str, str]  # (kind, text); kind in lp rp lb rb op phrase str word
#: "You can specify a maximum of 30 keywords for each query" (Limits, "Query and analysis").
MAX_KEYWORDS = 30


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
        if kind in ("str", "phrase"):
            value = re.sub(r"\\(.)", r"\1", value[value.index('"') + 1 : -1], flags=re.S)
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


@dataclass(frozen=True, slots=True)
class Value:
    """A search value: its text, and whether it was quoted (no wildcards) or a ``#"…"`` phrase."""

    text: str
    quoted: bool = False
    phrase: bool = False


def _split(value: str, tokens: str) -> list[str]:
    return [t for t in re.split("[" + re.escape(tokens or " ") + "]+", value) if t]


def _token_regex(term: str, delims: str, wildcards: bool) -> str:
    piece = _re_escape(term)
    if wildcards:
        piece = piece.replace("\\*", f"[^{delims}]*").replace("\\?", f"[^{delims}]")
    return piece


def _like_guard(column: str, term: str, case_sensitive: bool, wildcards: bool) -> str | None:
    """A cheap (I)LIKE on the longest literal piece, so DuckDB skips most rows before the regex."""
    pieces = [p for p in re.split(r"[*?]", term) if p] if wildcards else [term]
    if not pieces:
        return None
    literal = max(pieces, key=len).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    like = "LIKE" if case_sensitive else "ILIKE"
    return f"{column} {like} {sql_str('%' + literal + '%')} ESCAPE '\\'"


def match_expr(column: str, value: Value, tokens: str, case_sensitive: bool) -> str | None:
    """SQL matching ``value`` in ``column``, or None when the value has no token.

    Every token of the value must be a token of the column, in any order; a phrase needs them
    adjacent and in order. Wildcards apply to unquoted values only.
    """
    wildcards = not value.quoted
    # Unquoted * and ? are operators of the search syntax, never delimiters.
    terms = _split(value.text, tokens.replace("*", "").replace("?", "") if wildcards else tokens)
    if not terms:
        return None
    delims = _char_class(tokens) or "\\s"
    flags = "" if case_sensitive else "(?i)"
    groups = [terms] if value.phrase else [[t] for t in terms]
    parts = []
    for group in groups:
        body = f"[{delims}]+".join(_token_regex(t, delims, wildcards) for t in group)
        pattern = f"{flags}(?:^|[{delims}]){body}(?:[{delims}]|$)"
        guard = _like_guard(column, max(group, key=len), case_sensitive, wildcards)
        regex = f"regexp_matches({column}, {sql_str(pattern)})"
        parts.append(f"({guard} AND {regex})" if guard else regex)
    return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"


def _glob(column: str, value: Value) -> str:
    """Whole-value match with ``*`` / ``?`` wildcards (for ``__source__`` and tags)."""
    if value.quoted or not any(ch in value.text for ch in "*?"):
        return f"{column} = {sql_str(value.text)}"
    escaped = value.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{column} LIKE {sql_str(escaped.replace('*', '%').replace('?', '_'))} ESCAPE '\\'"


def _invalid(message: str) -> Exception:
    return bad_request("ParameterInvalid", message)


class _Parser:
    def __init__(self, tokens: list[_Tok], schema: SearchSchema) -> None:
        self.toks = tokens
        self.pos = 0
        self.schema = schema
        self.keywords = 0

    def peek(self, offset: int = 0) -> _Tok | None:
        i = self.pos + offset
        return self.toks[i] if i < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise _invalid("unexpected end of search query")
        self.pos += 1
        return tok

    def _is_word(self, tok: _Tok | None, word: str) -> bool:
        return tok is not None and tok[0] == "word" and tok[1].lower() == word

    def parse(self) -> str:
        if not self.toks:
            return "TRUE"
        expr = self.parse_or()
        if self.peek() is not None:
            raise _invalid(f"unexpected token in search query: {self.peek()[1]!r}")  # type: ignore[index]
        return expr

    # Precedence, highest first ("Search syntax", Operators): colon, quotes, parentheses, and,
    # not, or. ``not`` is binary ("request_method:GET not status:200") with the weaker binding of
    # the two, so "not a and b" is "everything but (a and b)"; a leading not starts from every log.
    def parse_or(self) -> str:
        parts = [self.parse_not()]
        while self._is_word(self.peek(), "or"):
            self.take()
            parts.append(self.parse_not())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def parse_not(self) -> str:
        left = "TRUE" if self._is_word(self.peek(), "not") else self.parse_and()
        while self._is_word(self.peek(), "not"):
            self.take()
            left = f"({left} AND NOT coalesce({self.parse_and()}, FALSE))"
        return left

    def parse_and(self) -> str:
        parts = [self.parse_primary()]
        while True:
            tok = self.peek()
            if tok is None or tok[0] == "rp" or self._is_word(tok, "or") or self._is_word(tok, "not"):
                break
            if self._is_word(tok, "and"):
                self.take()
                if self._is_word(self.peek(), "not"):  # "a and not b" is "a not b"
                    break
            parts.append(self.parse_primary())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def _value(self, tok: _Tok) -> Value:
        if tok[0] not in ("word", "str", "phrase"):
            raise _invalid(f"unexpected token in search query: {tok[1]!r}")
        if tok[0] == "word" and tok[1] != "*" and tok[1][:1] in ("*", "?"):
            raise _invalid(f"the keyword {tok[1]!r} cannot start with * or ? (fuzzy search needs a prefix)")
        self.keywords += 1
        if self.keywords > MAX_KEYWORDS:
            raise _invalid(f"a search statement can hold at most {MAX_KEYWORDS} keywords")
        return Value(tok[1], quoted=tok[0] != "word", phrase=tok[0] == "phrase")

    def parse_primary(self) -> str:
        tok = self.take()
        if tok[0] == "lp":
            inner = self.parse_or()
            if self.take()[0] != "rp":
                raise _invalid("missing ) in search query")
            return inner
        if tok[0] not in ("word", "str", "phrase"):
            raise _invalid(f"unexpected token in search query: {tok[1]!r}")
        nxt = self.peek()
        if tok[0] != "phrase" and nxt is not None and nxt[0] == "op":
            self.take()
            key = tok[1]
            if key.lower() == "__tag__" and nxt[1] == ":":
                name = self.take()
                if self.take() != ("op", ":"):
                    raise _invalid("a tag search is __tag__:name: value")
                return self.tag_predicate(name[1], self._value(self.take()))
            return self.key_predicate(key, nxt[1], self._value(self.take()))
        # "The in operator is case-sensitive": only a lower-case in opens a range.
        if tok[0] != "phrase" and nxt == ("word", "in") and self.peek(1) is not None:
            opener = self.peek(1)
            if opener is not None and opener[0] in ("lb", "lp"):
                self.pos += 2
                low, high = self.take(), self.take()
                closer = self.take()
                if closer[0] not in ("rb", "rp"):
                    raise _invalid("malformed range in search query")
                return self.range_predicate(tok[1], low[1], high[1], opener[0] == "lb", closer[0] == "rb")
        if tok == ("word", "*"):
            return "TRUE"
        return self.fulltext(self._value(tok))

    # --- predicates -------------------------------------------------------------------------
    def _key(self, name: str) -> KeyInfo:
        info = self.schema.keys.get(name)
        if info is None:  # key names are not case-sensitive ("Source or SOURCE" finds a key "source")
            info = next((v for k, v in self.schema.keys.items() if k.lower() == name.lower()), None)
        parent, _, sub = name.partition(".")
        if info is None and sub and parent in self.schema.json_all:
            # A json key with index_all: every string member is searchable as key.member.
            p = self.schema.json_all[parent]
            column = json_value_sql(p.column, sub) if p.column else None
            info = KeyInfo(column, "text", p.tokens, p.case_sensitive, p.since_seq, analytics=False)
        if info is None:
            # Alibaba's "common errors" FAQ: searching a key that has no field index.
            raise _invalid(
                f"key ({name}) is not config as key value config,if symbol : is in your log,"
                'please wrap : with quotation mark "'
            )
        return info

    def _guard(self, info: KeyInfo, predicate: str) -> str:
        if info.column is None:
            return "FALSE"
        return f"(__seq__ >= {info.since_seq} AND {predicate})"

    def key_predicate(self, key: str, op: str, value: Value) -> str:
        reserved = {"__topic__": "__topic__", "__source__": "__source__", "source": "__source__"}
        if key in reserved:
            if op not in (":", "="):
                raise _invalid(f"{key} only supports key: value")
            return _glob(reserved[key], value)
        info = self._key(key)
        col = info.column
        if info.type in ("long", "double"):
            if op == ":" and value.text == "*" and not value.quoted:
                return self._guard(info, f"{col} IS NOT NULL")
            number = _number(value.text)
            if number is None and not value.quoted and any(ch in value.text for ch in "*?"):
                # "The long and double data types do not support asterisks (*) or question marks (?)"
                raise _invalid(f"key {key} is of type {info.type}: * and ? are not supported, use a range")
            if number is None:
                return "FALSE"
            sql_op = "=" if op == ":" else op
            return self._guard(info, f"TRY_CAST({col} AS DOUBLE) {sql_op} {number!r}")
        if op not in (":", "="):
            # "If the data type of the field is not set to double or long … Log Service performs
            # a full-text search" of the words (the operator itself is a delimiter here).
            return self._words([key, op, value.text])
        if value.text == "*" and not value.quoted:
            return self._guard(info, f"{col} IS NOT NULL")
        expr = match_expr(col or "NULL", value, info.tokens, info.case_sensitive)
        return "FALSE" if expr is None else self._guard(info, expr)

    def tag_predicate(self, name: str, value: Value) -> str:
        path = sql_str('$."' + name.replace('"', '\\"') + '"')
        return "coalesce(" + _glob(f"json_extract_string(__tags__, {path})", value) + ", FALSE)"

    def range_predicate(self, key: str, low: str, high: str, low_inc: bool, high_inc: bool) -> str:
        info = self._key(key)
        lo, hi = _number(low), _number(high)
        if info.type not in ("long", "double") or lo is None or hi is None:
            return self._words([key, "in", low, high])
        value = f"TRY_CAST({info.column} AS DOUBLE)"
        cond = f"{value} {'>=' if low_inc else '>'} {lo!r} AND {value} {'<=' if high_inc else '<'} {hi!r}"
        return self._guard(info, cond)

    def _words(self, words: list[str]) -> str:
        exprs = [self.fulltext(Value(w)) for w in words if _split(w, self.schema.line_tokens or " ")]
        return "(" + " AND ".join(exprs) + ")" if exprs else "FALSE"

    def fulltext(self, value: Value) -> str:
        if self.schema.line_tokens is None or not self.schema.text_columns:
            return "FALSE"
        exprs = [
            match_expr(c, value, self.schema.line_tokens, self.schema.line_case_sensitive)
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
