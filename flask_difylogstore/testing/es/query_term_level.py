"""Term-level queries: exact values, value sets, ranges, existence and patterns.

They compare a query value with a field's indexed representation (keywords as stored, numbers and
dates coerced the way the mapping indexes them), unlike the full-text queries in
:mod:`~flask_difylogstore.testing.es.query`, which analyze the query first. Also holds the
:class:`Context` every compiled query runs in and the helpers both kinds share.
"""

from __future__ import annotations

import fnmatch
import re
import typing as t
from collections.abc import Callable

from flask_difylogstore.testing.es import datemath
from flask_difylogstore.testing.es.documents import StoredDoc
from flask_difylogstore.testing.es.errors import EsError, parsing_error
from flask_difylogstore.testing.es.lucene_regex import NotTranslatable, RegexError, compile_lucene
from flask_difylogstore.testing.es.mapping import FLOAT_TYPES, INT_RANGES, TEXT_TYPES, Mapping, analyze, coerce

Matcher = Callable[[StoredDoc], float | None]


class Context:
    """What a compiled query needs to know about the index it runs on."""

    def __init__(self, index: str, mapping: Mapping, now_ms: int, max_regex_length: int = 1000) -> None:
        self.index = index
        self.mapping = mapping
        self.now_ms = now_ms
        self.max_regex_length = max_regex_length

    def expand(self, patterns: list[str]) -> list[tuple[str, float]]:
        """``["title^2", "attr.*"]`` → concrete searchable fields with boosts."""
        out: list[tuple[str, float]] = []
        for raw in patterns:
            name, _, boost = raw.partition("^")
            weight = float(boost) if boost else 1.0
            if "*" in name:
                out.extend(
                    (f, weight)
                    for f, ty in self.mapping.types.items()
                    if fnmatch.fnmatchcase(f, name) and ty not in ("object", "nested")
                )
            else:
                out.append((name, weight))
        return out


def field_values(doc: StoredDoc, field: str) -> list[t.Any]:
    """The values of ``field`` in ``doc`` as a list, whether stored as one value or many."""
    if field == "_id":
        return [doc.id]
    value = doc.flat.get(field)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _query_value(ctx: Context, field: str, ftype: str | None, value: t.Any) -> t.Any:
    """Coerce a query-side value to the field's indexed representation."""
    if ftype is None or field == "_id":
        return str(value) if not isinstance(value, bool) else ("true" if value else "false")
    if ftype in ("date", "date_nanos"):
        return datemath.resolve(value, _field_format(ctx, field), now_ms=ctx.now_ms, nanos=ftype == "date_nanos")
    try:
        return coerce(value, ftype if ftype != "flattened" else "keyword", {})
    except (ValueError, TypeError):
        raise EsError(
            400,
            "query_shard_exception",
            f'failed to create query: For input string: "{value}"',
            index=ctx.index,
        ) from None


def field_and_params(body: t.Any, key: str) -> tuple[str, dict[str, t.Any]]:
    """Split ``{field: params}`` (or the short ``{field: value}``), rejecting what ES rejects."""
    if not isinstance(body, dict) or not body:
        raise parsing_error(f"[{key}] query malformed, no field specified")
    items = [(k, v) for k, v in body.items() if k not in ("boost", "_name")]
    if len(items) != 1:
        raise parsing_error(f"[{key}] query doesn't support multiple fields, found [{items[0][0]}] and [{items[1][0]}]")
    field, params = items[0]
    return field, params if isinstance(params, dict) else {"value": params, "query": params}


def term_query(ctx: Context, field: str, value: t.Any, boost: float, insensitive: bool = False) -> Matcher:
    if field == "_index":
        hit = boost if str(value) == ctx.index else None
        return lambda doc: hit
    ftype = ctx.mapping.field_type(field)
    if ftype in TEXT_TYPES:
        token = str(value)
        return lambda doc: boost if any(token in analyze(v) for v in field_values(doc, field)) else None
    target = _query_value(ctx, field, ftype, value)
    if insensitive and isinstance(target, str):
        low = target.lower()
        return lambda doc: boost if any(str(v).lower() == low for v in field_values(doc, field)) else None
    if field == "_id":
        return lambda doc: boost if doc.id == target else None

    def match(doc: StoredDoc) -> float | None:
        v = doc.flat.get(field)
        if v == target or (type(v) is list and target in v):
            return boost
        return None

    return match


def terms_query(ctx: Context, body: dict[str, t.Any]) -> Matcher:
    boost = float(body.get("boost", 1.0))
    items = [(k, v) for k, v in body.items() if k not in ("boost", "_name")]
    if len(items) != 1 or not isinstance(items[0][1], list):
        raise parsing_error("[terms] query requires a field with an array of values")
    field, values = items[0]
    if field == "_index":
        hit = boost if ctx.index in {str(v) for v in values} else None
        return lambda doc: hit
    ftype = ctx.mapping.field_type(field)
    if ftype in TEXT_TYPES:
        tokens = {str(v) for v in values}
        return lambda doc: boost if any(tokens.intersection(analyze(v)) for v in field_values(doc, field)) else None
    targets = {_query_value(ctx, field, ftype, v) for v in values}

    def match(doc: StoredDoc) -> float | None:
        v = doc.flat.get(field) if field != "_id" else doc.id
        if v is None:
            return None
        if type(v) is list:
            return boost if targets.intersection(v) else None
        return boost if v in targets else None

    return match


def range_query(ctx: Context, body: dict[str, t.Any]) -> Matcher:
    field, params = field_and_params(body, "range")
    ftype = ctx.mapping.field_type(field)
    boost = float(params.get("boost", 1.0))
    bounds: list[tuple[str, t.Any]] = []
    for op in ("gt", "gte", "lt", "lte", "from", "to"):
        if params.get(op) is None:
            continue
        raw = params[op]
        real_op = {
            "from": "gte" if params.get("include_lower", True) else "gt",
            "to": "lte" if params.get("include_upper", True) else "lt",
        }.get(op, op)
        if ftype in ("date", "date_nanos"):
            zone = datemath.get_zone(params.get("time_zone"))
            fmt = params.get("format") or _field_format(ctx, field)
            value: t.Any = datemath.resolve(
                raw,
                fmt,
                zone,
                round_up=real_op in ("gt", "lte"),
                now_ms=ctx.now_ms,
                nanos=ftype == "date_nanos",
            )
        elif ftype in INT_RANGES or ftype in FLOAT_TYPES:
            value = _number(raw, ctx)
        else:
            value = str(raw)
        bounds.append((real_op, value))

    lows = [(b, op == "gte") for op, b in bounds if op in ("gt", "gte")]
    highs = [(b, op == "lte") for op, b in bounds if op in ("lt", "lte")]
    lo, lo_inc = lows[-1] if lows else (None, True)
    hi, hi_inc = highs[-1] if highs else (None, True)

    def ok(v: t.Any) -> bool:
        if lo is not None and (v < lo if lo_inc else v <= lo):
            return False
        return not (hi is not None and (v > hi if hi_inc else v >= hi))

    def match(doc: StoredDoc) -> float | None:
        v = doc.flat.get(field)
        if v is None:
            return None
        if type(v) is list:
            return boost if any(ok(x) for x in v) else None
        try:
            return boost if ok(v) else None
        except TypeError:
            return None

    return match


def _number(raw: t.Any, ctx: Context) -> int | float:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return raw
    try:
        return int(str(raw))
    except ValueError:
        pass
    try:
        return float(str(raw))
    except ValueError:
        raise EsError(
            400,
            "query_shard_exception",
            f'failed to create query: For input string: "{raw}"',
            index=ctx.index,
        ) from None


def _field_format(ctx: Context, field: str) -> str | None:
    node: t.Any = ctx.mapping.body
    for part in field.split("."):
        node = (node.get("properties") or {}).get(part) if isinstance(node, dict) else None
    return node.get("format") if isinstance(node, dict) else None


def exists_query(ctx: Context, field: str) -> Matcher:
    if ctx.mapping.field_type(field) in ("object", "nested"):
        prefix = field + "."
        return lambda doc: 1.0 if any(k.startswith(prefix) for k in doc.flat) else None
    return lambda doc: 1.0 if doc.flat.get(field) is not None else None


def wildcard_regex(pattern: str) -> str:
    """Lucene wildcard syntax: ``*`` any run, ``?`` one character, ``\\`` escapes the next one."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
        i += 1
    return "".join(out)


def pattern_query(ctx: Context, body: dict[str, t.Any], kind: str) -> Matcher:
    field, params = field_and_params(body, kind)
    raw = str(params.get("value", params.get("wildcard", params.get("query", ""))))
    insensitive = bool(params.get("case_insensitive", False))
    boost = float(params.get("boost", 1.0))
    if kind == "prefix":
        rx = re.compile(re.escape(raw) + ".*", re.S | (re.I if insensitive else 0))
    elif kind == "wildcard":
        rx = re.compile(wildcard_regex(raw), re.S | (re.I if insensitive else 0))
    else:
        rx = _regexp(ctx, raw, params, insensitive)
    text = ctx.mapping.field_type(field) in TEXT_TYPES

    def match(doc: StoredDoc) -> float | None:
        for v in field_values(doc, field):
            for candidate in analyze(v) if text else (str(v),):
                if rx.fullmatch(candidate):
                    return boost
        return None

    return match


_REGEXP_KEYS = {
    "value",
    "flags",
    "flags_value",
    "case_insensitive",
    "max_determinized_states",
    "rewrite",
    "boost",
    "_name",
}


def _regexp(ctx: Context, raw: str, params: dict[str, t.Any], insensitive: bool) -> re.Pattern[str]:
    """A ``regexp`` query's pattern in Lucene syntax, refused the way Elasticsearch refuses it."""
    for key in params:
        if key not in _REGEXP_KEYS and key != "query":
            raise parsing_error(f"[regexp] query does not support [{key}]")
    flags = str(params.get("flags", "ALL")).upper()
    if flags not in ("ALL", ""):
        raise EsError(
            400, "illegal_argument_exception", f"regexp [flags] [{flags}] is not implemented by this local server"
        )
    limit = ctx.max_regex_length
    if len(raw) > limit:
        raise EsError(
            400,
            "illegal_argument_exception",
            f"The length of regex [{len(raw)}] used in the Regexp Query request has exceeded the allowed maximum of "
            f"[{limit}]. This maximum can be set by changing the [index.max_regex_length] index level setting.",
        )
    try:
        return compile_lucene(raw, re.I if insensitive else 0)
    except RegexError as exc:
        raise EsError(
            400,
            "query_shard_exception",
            f"failed to create query: {exc}",
            index=ctx.index,
            caused_by={"type": "illegal_argument_exception", "reason": str(exc)},
        ) from None
    except NotTranslatable as exc:
        raise EsError(
            400, "illegal_argument_exception", f"regexp {exc} is not implemented by this local server"
        ) from None
