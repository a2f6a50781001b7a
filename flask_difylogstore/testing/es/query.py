"""Query DSL evaluation: each query compiles to a function ``doc -> score | None`` (None = no match).

Hand-written: no maintained Python library evaluates the Elasticsearch query DSL. Scoring is
simplified (term/match count matched terms, filters score 0); ranking by relevance is not BM25.
"""

from __future__ import annotations

import fnmatch
import re
import typing as t
from collections.abc import Callable

from flask_difylogstore.testing.es import datemath
from flask_difylogstore.testing.es.documents import StoredDoc
from flask_difylogstore.testing.es.errors import EsError, parsing_error
from flask_difylogstore.testing.es.mapping import (
    FLOAT_TYPES,
    INT_RANGES,
    TEXT_TYPES,
    Mapping,
    analyze,
    coerce,
)
from flask_difylogstore.testing.es.querystring import parse_query_string

Matcher = Callable[[StoredDoc], float | None]


class Context:
    """What a compiled query needs to know about the index it runs on."""

    def __init__(self, index: str, mapping: Mapping, now_ms: int) -> None:
        self.index = index
        self.mapping = mapping
        self.now_ms = now_ms

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


def _values(doc: StoredDoc, field: str) -> list[t.Any]:
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


def _field_and_params(body: t.Any, key: str) -> tuple[str, dict[str, t.Any]]:
    if not isinstance(body, dict) or not body:
        raise parsing_error(f"[{key}] query malformed, no field specified")
    items = [(k, v) for k, v in body.items() if k not in ("boost", "_name")]
    if len(items) != 1:
        raise parsing_error(f"[{key}] query doesn't support multiple fields, found [{items[0][0]}] and [{items[1][0]}]")
    field, params = items[0]
    return field, params if isinstance(params, dict) else {"value": params, "query": params}


def _term(ctx: Context, field: str, value: t.Any, boost: float, insensitive: bool = False) -> Matcher:
    if field == "_index":
        hit = boost if str(value) == ctx.index else None
        return lambda doc: hit
    ftype = ctx.mapping.field_type(field)
    if ftype in TEXT_TYPES:
        token = str(value)
        return lambda doc: boost if any(token in analyze(v) for v in _values(doc, field)) else None
    target = _query_value(ctx, field, ftype, value)
    if insensitive and isinstance(target, str):
        low = target.lower()
        return lambda doc: boost if any(str(v).lower() == low for v in _values(doc, field)) else None
    if field == "_id":
        return lambda doc: boost if doc.id == target else None

    def match(doc: StoredDoc) -> float | None:
        v = doc.flat.get(field)
        if v == target or (type(v) is list and target in v):
            return boost
        return None

    return match


def _terms(ctx: Context, body: dict[str, t.Any]) -> Matcher:
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
        return lambda doc: boost if any(tokens.intersection(analyze(v)) for v in _values(doc, field)) else None
    targets = {_query_value(ctx, field, ftype, v) for v in values}

    def match(doc: StoredDoc) -> float | None:
        v = doc.flat.get(field) if field != "_id" else doc.id
        if v is None:
            return None
        if type(v) is list:
            return boost if targets.intersection(v) else None
        return boost if v in targets else None

    return match


def _range(ctx: Context, body: dict[str, t.Any]) -> Matcher:
    field, params = _field_and_params(body, "range")
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


def _match(ctx: Context, field: str, params: dict[str, t.Any], phrase: bool = False) -> Matcher:
    query = params.get("query")
    boost = float(params.get("boost", 1.0))
    ftype = ctx.mapping.field_type(field)
    if ftype not in TEXT_TYPES:
        if ftype is None and field != "_id":
            return lambda doc: None
        try:
            return _term(ctx, field, query, boost)
        except EsError:
            if params.get("lenient"):
                return lambda doc: None
            raise
    tokens = analyze(str(query))
    if not tokens:
        return lambda doc: None
    if phrase:
        n = len(tokens)

        def phrase_match(doc: StoredDoc) -> float | None:
            for v in _values(doc, field):
                toks = analyze(v)
                if any(toks[i : i + n] == tokens for i in range(len(toks) - n + 1)):
                    return boost * n
            return None

        return phrase_match
    operator = str(params.get("operator", "or")).lower()
    need = len(tokens) if operator == "and" else _min_should(params.get("minimum_should_match"), len(tokens), 1)
    wanted = set(tokens)

    def match(doc: StoredDoc) -> float | None:
        found: set[str] = set()
        for v in _values(doc, field):
            found.update(wanted.intersection(analyze(v)))
        return boost * len(found) if found and len(found) >= need else None

    return match


def _min_should(spec: t.Any, total: int, default: int) -> int:
    if spec is None:
        return default
    text = str(spec)
    if text.endswith("%"):
        pct = int(text[:-1])
        n = int(total * abs(pct) / 100)
        return n if pct >= 0 else total - n
    n = int(text)
    return n if n >= 0 else total + n


def _bool(ctx: Context, body: dict[str, t.Any]) -> Matcher:
    def many(key: str) -> list[Matcher]:
        clauses = body.get(key) or []
        return [compile_query(c, ctx) for c in (clauses if isinstance(clauses, list) else [clauses])]

    must, filt, should, must_not = many("must"), many("filter"), many("should"), many("must_not")
    boost = float(body.get("boost", 1.0))
    default = 0 if (must or filt) else (1 if should else 0)
    need = _min_should(body.get("minimum_should_match"), len(should), default)

    def match(doc: StoredDoc) -> float | None:
        score = 0.0
        for m in filt:
            if m(doc) is None:
                return None
        for m in must_not:
            if m(doc) is not None:
                return None
        for m in must:
            s = m(doc)
            if s is None:
                return None
            score += s
        if should:
            hits = 0
            for m in should:
                s = m(doc)
                if s is not None:
                    hits += 1
                    score += s
            if hits < need:
                return None
        elif not must and not filt and not must_not:
            return boost
        return score * boost

    return match


def _exists(ctx: Context, field: str) -> Matcher:
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


def _pattern(ctx: Context, body: dict[str, t.Any], kind: str) -> Matcher:
    field, params = _field_and_params(body, kind)
    raw = str(params.get("value", params.get("wildcard", params.get("query", ""))))
    insensitive = bool(params.get("case_insensitive", False))
    boost = float(params.get("boost", 1.0))
    if kind == "prefix":
        rx = re.compile(re.escape(raw) + ".*", re.S | (re.I if insensitive else 0))
    elif kind == "wildcard":
        rx = re.compile(wildcard_regex(raw), re.S | (re.I if insensitive else 0))
    else:
        rx = re.compile(raw, re.S | (re.I if insensitive else 0))
    text = ctx.mapping.field_type(field) in TEXT_TYPES

    def match(doc: StoredDoc) -> float | None:
        for v in _values(doc, field):
            for candidate in analyze(v) if text else (str(v),):
                if rx.fullmatch(candidate):
                    return boost
        return None

    return match


def compile_query(query: t.Any, ctx: Context) -> Matcher:
    """Compile one query clause for one index."""
    if not query:
        return lambda doc: 1.0
    if not isinstance(query, dict) or len(query) != 1:
        raise parsing_error("query malformed, must start with start_object and have exactly one query")
    kind, body = next(iter(query.items()))
    if kind == "match_all":
        boost = float((body or {}).get("boost", 1.0))
        return lambda doc: boost
    if kind == "match_none":
        return lambda doc: None
    if kind == "bool":
        return _bool(ctx, body)
    if kind == "term":
        field, params = _field_and_params(body, "term")
        return _term(
            ctx,
            field,
            params.get("value"),
            float(params.get("boost", 1.0)),
            bool(params.get("case_insensitive", False)),
        )
    if kind == "terms":
        return _terms(ctx, body)
    if kind == "range":
        return _range(ctx, body)
    if kind in ("match", "match_phrase", "match_phrase_prefix"):
        field, params = _field_and_params(body, kind)
        return _match(ctx, field, params, phrase=kind != "match")
    if kind == "multi_match":
        fields = ctx.expand(body.get("fields") or ["*"])
        subs = [(_match(ctx, f, {**body, "boost": w}, body.get("type") == "phrase")) for f, w in fields]

        def best(doc: StoredDoc) -> float | None:
            scores = [s for s in (m(doc) for m in subs) if s is not None]
            return max(scores) if scores else None

        return best
    if kind in ("query_string", "simple_query_string"):
        return compile_query(parse_query_string(body, ctx.expand), ctx)
    if kind == "exists":
        return _exists(ctx, body["field"])
    if kind == "ids":
        ids = {str(v) for v in body.get("values", [])}
        return lambda doc: 1.0 if doc.id in ids else None
    if kind in ("prefix", "wildcard", "regexp"):
        return _pattern(ctx, body, kind)
    if kind == "constant_score":
        inner = compile_query(body.get("filter"), ctx)
        boost = float(body.get("boost", 1.0))
        return lambda doc: boost if inner(doc) is not None else None
    if kind in ("nested", "dis_max"):
        inner = compile_query(body.get("query") or {"bool": {"should": body.get("queries", [])}}, ctx)
        return inner
    raise parsing_error(f"unknown query [{kind}]")
