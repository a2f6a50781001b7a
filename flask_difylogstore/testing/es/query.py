"""Query DSL evaluation: each query compiles to a function ``doc -> score | None`` (None = no match).

Hand-written: no maintained Python library evaluates the Elasticsearch query DSL. Scoring is
simplified (term/match count matched terms, filters score 0); ranking by relevance is not BM25.
This module compiles the compound (``bool``, ``constant_score``, ...) and full-text (``match``,
``multi_match``, ``query_string``) queries; the term-level ones are in
:mod:`~flask_difylogstore.testing.es.query_term_level`, which also defines :class:`Context` and
:data:`Matcher` (re-exported here).
"""

from __future__ import annotations

import typing as t

from flask_difylogstore.testing.es.body_check import not_implemented
from flask_difylogstore.testing.es.documents import StoredDoc
from flask_difylogstore.testing.es.errors import EsError, parsing_error
from flask_difylogstore.testing.es.mapping import TEXT_TYPES, analyze
from flask_difylogstore.testing.es.query_check import check_query
from flask_difylogstore.testing.es.query_term_level import Context as Context
from flask_difylogstore.testing.es.query_term_level import Matcher as Matcher
from flask_difylogstore.testing.es.query_term_level import (
    exists_query,
    field_and_params,
    field_values,
    pattern_query,
    range_query,
    term_query,
    terms_query,
)
from flask_difylogstore.testing.es.querystring import parse_query_string


def _match(ctx: Context, field: str, params: dict[str, t.Any], phrase: bool = False, prefix: bool = False) -> Matcher:
    query = params.get("query")
    boost = float(params.get("boost", 1.0))
    ftype = ctx.mapping.field_type(field)
    if ftype not in TEXT_TYPES:
        if ftype is None and field != "_id":
            return lambda doc: None
        try:
            return term_query(ctx, field, query, boost)
        except EsError:
            if params.get("lenient"):
                return lambda doc: None
            raise
    tokens = analyze(str(query))
    if not tokens:
        return lambda doc: None
    if phrase:
        n = len(tokens)

        head, last = tokens[:-1], tokens[-1]

        def phrase_match(doc: StoredDoc) -> float | None:
            for v in field_values(doc, field):
                toks = analyze(v)
                for i in range(len(toks) - n + 1):
                    if prefix:
                        if toks[i : i + n - 1] == head and toks[i + n - 1].startswith(last):
                            return boost * n
                    elif toks[i : i + n] == tokens:
                        return boost * n
            return None

        return phrase_match
    operator = str(params.get("operator", "or")).lower()
    need = len(tokens) if operator == "and" else _min_should(params.get("minimum_should_match"), len(tokens), 1)
    wanted = set(tokens)

    def match(doc: StoredDoc) -> float | None:
        found: set[str] = set()
        for v in field_values(doc, field):
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


def _bool(ctx: Context, body: dict[str, t.Any], path: Path | None = None) -> Matcher:
    def many(key: str) -> list[Matcher]:
        clauses = body.get(key) or []
        if not isinstance(clauses, list):
            return [compile_query(clauses, ctx, None if path is None else (*path, "bool", key))]
        return [compile_query(c, ctx, None if path is None else (*path, "bool", key, i)) for i, c in enumerate(clauses)]

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


Path = tuple[str | int, ...]


def compile_query(query: t.Any, ctx: Context, path: Path | None = None) -> Matcher:
    """Compile one query clause for one index; ``path`` (its place in the body) locates parse errors."""
    try:
        return _compile(query, ctx, path)
    except EsError as exc:
        if path is not None and exc.path is None and exc.type == "parsing_exception" and isinstance(query, dict):
            kind = next(iter(query), None)
            if kind is not None:
                exc.path = (*path, kind, *exc.relative_path)
        raise


def _compile(query: t.Any, ctx: Context, path: Path | None) -> Matcher:
    if not query:
        return lambda doc: 1.0
    if not isinstance(query, dict) or len(query) != 1:
        raise parsing_error("query malformed, must start with start_object and have exactly one query")
    kind, body = next(iter(query.items()))
    check_query(kind, body)
    if kind == "match_all":
        boost = float((body or {}).get("boost", 1.0))
        return lambda doc: boost
    if kind == "match_none":
        return lambda doc: None
    if kind == "bool":
        return _bool(ctx, body, path)
    if kind == "term":
        return _term(ctx, body)
    if kind == "terms":
        return terms_query(ctx, body)
    if kind == "range":
        return range_query(ctx, body)
    if kind in ("match", "match_phrase", "match_phrase_prefix"):
        field, params = field_and_params(body, kind)
        return _match(ctx, field, params, phrase=kind != "match", prefix=kind == "match_phrase_prefix")
    if kind == "multi_match":
        return _multi_match(ctx, body)
    if kind in ("query_string", "simple_query_string"):
        return compile_query(parse_query_string(body, ctx.expand), ctx)
    if kind == "exists":
        if not isinstance(body.get("field"), str):
            raise parsing_error("[exists] must be provided with a [field]")
        return exists_query(ctx, body["field"])
    if kind == "ids":
        ids = {str(v) for v in body.get("values", [])}
        return lambda doc: 1.0 if doc.id in ids else None
    if kind in ("prefix", "wildcard", "regexp"):
        return pattern_query(ctx, body, kind)
    if kind == "constant_score":
        inner = compile_query(body.get("filter"), ctx, None if path is None else (*path, "constant_score", "filter"))
        boost = float(body.get("boost", 1.0))
        return lambda doc: boost if inner(doc) is not None else None
    if kind == "dis_max":
        inner = compile_query(body.get("query") or {"bool": {"should": body.get("queries", [])}}, ctx)
        return inner
    raise parsing_error(f"unknown query [{kind}]")


def _term(ctx: Context, body: t.Any) -> Matcher:
    field, params = field_and_params(body, "term")
    return term_query(
        ctx,
        field,
        params.get("value"),
        float(params.get("boost", 1.0)),
        bool(params.get("case_insensitive", False)),
    )


def _multi_match(ctx: Context, body: dict[str, t.Any]) -> Matcher:
    """``multi_match``: the best score of a ``match`` (or phrase) on each field, weighted by its ``^boost``."""
    fields = ctx.expand(body.get("fields") or ["*"])
    mtype = str(body.get("type", "best_fields"))
    if mtype not in ("best_fields", "most_fields", "cross_fields", "phrase", "phrase_prefix"):
        raise not_implemented(f"[multi_match] type [{mtype}]")
    phrase, prefix = mtype in ("phrase", "phrase_prefix"), mtype == "phrase_prefix"
    subs = [(_match(ctx, f, {**body, "boost": w}, phrase, prefix)) for f, w in fields]

    def best(doc: StoredDoc) -> float | None:
        scores = [s for s in (m(doc) for m in subs) if s is not None]
        return max(scores) if scores else None

    return best
