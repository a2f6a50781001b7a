"""Aggregations over the matched documents: the dispatch, metrics, top_hits and filter(s).

Hand-written. Buckets keep their member documents so sub-aggregations run on exactly those.
``terms`` lives in ``aggs_terms`` and value bucketing in ``aggs_buckets``; both import this module,
so they are added to the table explicitly, by ``register_handlers``.
"""

from __future__ import annotations

import typing as t

from flask_difylogstore.testing.es import aggs_spec, datemath
from flask_difylogstore.testing.es.body_check import not_implemented
from flask_difylogstore.testing.es.documents import IndexStore, StoredDoc
from flask_difylogstore.testing.es.errors import EsError, bad_request, parsing_error, shard_error
from flask_difylogstore.testing.es.mapping import TEXT_TYPES, coerce
from flask_difylogstore.testing.es.query import Context, Matcher, compile_query
from flask_difylogstore.testing.es.sorting import _InnerSort, _normalize_sort
from flask_difylogstore.testing.es.source_filter import _render, _source_filter

Pair = tuple[Context, StoredDoc]
METRICS = {"sum", "avg", "min", "max", "value_count", "cardinality", "stats"}


class _Env:
    def __init__(self, stores: list[IndexStore], now_ms: int) -> None:
        self.stores = stores
        self.now_ms = now_ms
        self.buckets = 0
        self.typed_keys = False
        self.path: tuple[str | int, ...] = ("aggs",)

    def count_buckets(self, result: dict[str, t.Any]) -> None:
        """``search.max_buckets``: every bucket of the response counts, at every level."""
        found = result.get("buckets")
        if found is None:
            return
        self.buckets += len(found)
        if self.buckets > aggs_spec.MAX_BUCKETS:
            raise aggs_spec.too_many_buckets(self.buckets)

    def field_type(self, field: str) -> str | None:
        for store in self.stores:
            found = store.mapping.field_type(field)
            if found is not None:
                return found
        return None

    def field_format(self, field: str) -> str | None:
        for store in self.stores:
            node: t.Any = store.mapping.body
            for part in field.split("."):
                node = (node.get("properties") or {}).get(part) if isinstance(node, dict) else None
            if isinstance(node, dict) and node.get("format"):
                return str(node["format"])
        return None


def run_aggs(
    spec: dict[str, t.Any],
    docs: list[Pair],
    stores: list[IndexStore],
    now_ms: int,
    typed_keys: bool = False,
    top_key: str = "aggs",
) -> dict[str, t.Any]:
    env = _Env(stores, now_ms)
    env.typed_keys = typed_keys
    env.path = (top_key,)
    return _run(spec, docs, env)


def _typed_name(kind: str, params: t.Any, env: _Env) -> str:
    """``typed_keys``: the result's type prefix (``sterms#``, ``lterms#``, ``date_range#`` ...)."""
    ftype = env.field_type(params.get("field", "")) if isinstance(params, dict) else None
    if kind == "terms":
        if ftype is None:
            return "sterms"
        if ftype in ("long", "integer", "short", "byte", "date", "date_nanos", "boolean"):
            return "lterms"
        if ftype == "unsigned_long":
            return "ulterms"
        return "dterms" if ftype in ("double", "float", "half_float", "scaled_float") else "sterms"
    if kind == "range" and ftype in ("date", "date_nanos"):
        return "date_range"
    return kind


def _run(spec: dict[str, t.Any], docs: list[Pair], env: _Env) -> dict[str, t.Any]:
    out: dict[str, t.Any] = {}
    for name, body in spec.items():
        if not isinstance(body, dict):
            raise parsing_error(f"Expected [START_OBJECT] under [{name}], but got a [VALUE] in [{name}]")
        sub = body.get("aggs", body.get("aggregations")) or {}
        kinds = [k for k in body if k not in ("aggs", "aggregations", "meta")]
        if not kinds:
            raise parsing_error(f"Missing definition for aggregation [{name}]")
        if len(kinds) != 1:
            raise parsing_error(f"Found two aggregation type definitions in [{name}]: [{kinds[0]}] and [{kinds[1]}]")
        kind = kinds[0]
        params = body[kind]
        aggs_spec.check_type(name, kind)
        try:
            aggs_spec.check_params(name, kind, params)
        except EsError as exc:
            if exc.field_key is not None:
                exc.path = (*env.path, name, kind, exc.field_key)
            raise
        saved = env.path
        env.path = (*saved, name, "aggs" if "aggs" in body else "aggregations")
        try:
            result = _HANDLERS[kind](params, docs, env, sub)
        finally:
            env.path = saved
        env.count_buckets(result)
        if "meta" in body:
            result["meta"] = body["meta"]
        out[f"{_typed_name(kind, params, env)}#{name}" if env.typed_keys else name] = result
    return out


def _vals(doc: StoredDoc, field: str) -> list[t.Any]:
    value = doc.flat.get(field)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _check_field(env: _Env, field: str) -> str | None:
    ftype = env.field_type(field)
    if ftype in TEXT_TYPES:
        raise shard_error(
            f"Fielddata is disabled on [{field}] in [{env.stores[0].name if env.stores else ''}]. "
            "Text fields are not optimised for operations that require per-document field data like "
            "aggregations and sorting, so these operations are disabled by default. Please use a keyword "
            "field instead."
        )
    return ftype


def _numbers(docs: list[Pair], field: str, missing: t.Any) -> list[float]:
    out: list[float] = []
    for _, doc in docs:
        values = _vals(doc, field)
        if not values and missing is not None:
            values = [missing]
        out.extend(float(v) for v in values)
    return out


def _metric(
    kind: str,
) -> t.Callable[[dict[str, t.Any], list[Pair], _Env, dict[str, t.Any]], dict[str, t.Any]]:
    def handler(params: dict[str, t.Any], docs: list[Pair], env: _Env, sub: dict[str, t.Any]) -> dict[str, t.Any]:
        field = params["field"]
        ftype = _check_field(env, field)
        missing = params.get("missing")
        if kind == "cardinality":
            seen = {v for _, d in docs for v in _vals(d, field)}
            if missing is not None and any(not _vals(d, field) for _, d in docs):
                seen.add(_missing_value(ftype, missing))
            return {"value": len(seen)}
        if kind == "value_count":
            count = 0
            for _, d in docs:
                n = len(_vals(d, field))
                count += n if n or missing is None else 1
            return {"value": count}
        if ftype is not None and ftype in ("keyword", "flattened"):
            raise shard_error(f"Field [{field}] of type [{ftype}] is not supported for aggregation [{kind}]")
        nums = _numbers(docs, field, params.get("missing"))
        if ftype == "date_nanos":
            nums = [n / 1_000_000 for n in nums]
        date = ftype in ("date", "date_nanos")
        fmt = params.get("format") or env.field_format(field)
        if params.get("format") and not date:
            raise not_implemented(f"[format] on a [{kind}] aggregation over the non-date field [{field}]")
        if kind == "stats":
            body: dict[str, t.Any] = {
                "count": len(nums),
                "min": min(nums) if nums else None,
                "max": max(nums) if nums else None,
                "avg": sum(nums) / len(nums) if nums else None,
                "sum": float(sum(nums)),
            }
            return body
        value: float | None
        if kind == "sum":
            value = float(sum(nums))
        elif kind == "avg":
            value = sum(nums) / len(nums) if nums else None
        else:
            value = (min(nums) if kind == "min" else max(nums)) if nums else None
        result: dict[str, t.Any] = {"value": value}
        if date and value is not None and kind in ("min", "max", "avg"):
            result["value_as_string"] = datemath.format_date(int(value), fmt)
        return result

    return handler


def _missing_value(ftype: str | None, missing: t.Any) -> t.Any:
    """A ``missing`` value in the field's indexed form, so it counts once with equal real values."""
    if ftype is None:
        return missing
    try:
        return coerce(missing, ftype, {})
    except (ValueError, TypeError, EsError):
        raise bad_request(f"Cannot use [missing] value [{missing}] for a field of type [{ftype}]") from None


def _compiled(query: t.Any, env: _Env) -> t.Callable[[Pair], bool]:
    cache: dict[str, Matcher] = {}

    def test(pair: Pair) -> bool:
        ctx = pair[0]
        matcher = cache.get(ctx.index)
        if matcher is None:
            matcher = cache[ctx.index] = compile_query(query, ctx)
        return matcher(pair[1]) is not None

    return test


def _filter(params: dict[str, t.Any], docs: list[Pair], env: _Env, sub: dict[str, t.Any]) -> dict[str, t.Any]:
    test = _compiled(params, env)
    chosen = [p for p in docs if test(p)]
    return {"doc_count": len(chosen), **_run(sub, chosen, env)}


def _filters(params: dict[str, t.Any], docs: list[Pair], env: _Env, sub: dict[str, t.Any]) -> dict[str, t.Any]:
    spec = params.get("filters")
    if not spec or not isinstance(spec, dict | list):
        raise bad_request("[filters] cannot be empty.")
    named = isinstance(spec, dict)
    items: list[tuple[t.Any, t.Any]] = list(spec.items()) if isinstance(spec, dict) else list(enumerate(spec))
    matched: set[int] = set()
    buckets: list[tuple[t.Any, dict[str, t.Any]]] = []
    for key, query in items:
        test = _compiled(query, env)
        chosen = [p for p in docs if test(p)]
        matched.update(id(p) for p in chosen)
        buckets.append((key, {"doc_count": len(chosen), **_run(sub, chosen, env)}))
    if params.get("other_bucket") or params.get("other_bucket_key"):
        rest = [p for p in docs if id(p) not in matched]
        buckets.append((params.get("other_bucket_key", "_other_"), {"doc_count": len(rest), **_run(sub, rest, env)}))
    if named:
        return {"buckets": dict(buckets)}
    return {"buckets": [b for _, b in buckets]}


def _top_hits(params: dict[str, t.Any], docs: list[Pair], env: _Env, sub: dict[str, t.Any]) -> dict[str, t.Any]:
    hits = [(ctx, doc, 1.0) for ctx, doc in docs]
    order = [_InnerSort(f, p) for f, p in _normalize_sort(params.get("sort")) if f not in ("_score", "_doc")]
    if order:
        hits.sort(key=lambda h: tuple(f.component(f.raw(h, {})) for f in order))
    start, size = int(params.get("from", 0)), int(params.get("size", 3))
    keep, inc, exc = _source_filter(params.get("_source"))
    rendered = []
    for hit in hits[start : start + size]:
        body = _render(hit, keep, inc, exc, not order)
        if params.get("version"):
            body["_version"] = hit[1].version
        if params.get("seq_no_primary_term"):
            body["_seq_no"], body["_primary_term"] = hit[1].seq_no, hit[1].primary_term
        if order:
            body["sort"] = [f.raw(hit, {}) for f in order]
        rendered.append(body)
    return {
        "hits": {
            "total": {"value": len(hits), "relation": "eq"},
            "max_score": None if order else (1.0 if hits else None),
            "hits": rendered,
        }
    }


Handler = t.Callable[[dict[str, t.Any], list[Pair], _Env, dict[str, t.Any]], dict[str, t.Any]]
"""An aggregation kind: ``(params, docs, env, sub_aggs) -> result``."""

_HANDLERS: dict[str, Handler] = {
    "filter": _filter,
    "filters": _filters,
    "top_hits": _top_hits,
    **{kind: _metric(kind) for kind in METRICS},
}


def register_handlers(handlers: dict[str, Handler]) -> None:
    """Add aggregation kinds defined in other modules (``aggs_terms``, ``aggs_buckets``)."""
    _HANDLERS.update(handlers)
