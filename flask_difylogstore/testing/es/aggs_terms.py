"""The ``terms`` aggregation: one bucket per distinct value, filtered, ordered and cut to ``size``.

It is added to the aggregation table explicitly, by ``aggs.register_handlers(TERMS_HANDLERS)``.
"""

from __future__ import annotations

import typing as t
from collections import Counter

from flask_difylogstore.testing.es import datemath
from flask_difylogstore.testing.es.aggs import Handler, Pair, _check_field, _Env, _run, _vals
from flask_difylogstore.testing.es.body_check import not_implemented
from flask_difylogstore.testing.es.errors import EsError, bad_request
from flask_difylogstore.testing.es.lucene_regex import NotTranslatable, RegexError, compile_lucene


def _terms(params: dict[str, t.Any], docs: list[Pair], env: _Env, sub: dict[str, t.Any]) -> dict[str, t.Any]:
    field = params["field"]
    ftype = _check_field(env, field)
    size = int(params.get("size", 10))
    min_count = int(params.get("min_doc_count", 1))
    counts, members = _count_values(docs, field, params.get("missing"), bool(sub))
    if min_count == 0:
        _add_unmatched(counts, env, field)
    keys = [k for k, c in counts.items() if c >= min_count]
    keys = _include_exclude(params, keys, ftype)
    sub_results = {k: _run(sub, members.get(k, []), env) for k in keys} if sub else {}
    _order(keys, params.get("order", [{"_count": "desc"}, {"_key": "asc"}]), counts, sub, sub_results)
    shown = keys[:size]
    fmt = params.get("format") or env.field_format(field)
    if params.get("format") and ftype not in ("date", "date_nanos"):
        raise not_implemented(f"[format] on a [terms] aggregation over the non-date field [{field}]")
    show_error = bool(params.get("show_term_doc_count_error"))
    return {
        "doc_count_error_upper_bound": 0,
        "sum_other_doc_count": sum(counts[k] for k in keys[size:]),
        "buckets": [_bucket(key, ftype, fmt, counts[key], show_error, sub_results.get(key)) for key in shown],
    }


def _count_values(
    docs: list[Pair], field: str, missing: t.Any, keep_members: bool
) -> tuple[Counter[t.Any], dict[t.Any, list[Pair]]]:
    """Documents per value (a multi-valued document counts once per distinct value), and, for
    sub-aggregations, the documents themselves."""
    members: dict[t.Any, list[Pair]] = {}
    counts: Counter[t.Any] = Counter()
    for pair in docs:
        value = pair[1].flat.get(field)
        if value is None:
            if missing is None:
                continue
            value = missing
        for v in set(value) if type(value) is list else (value,):
            counts[v] += 1
            if keep_members:
                members.setdefault(v, []).append(pair)
    return counts, members


def _add_unmatched(counts: Counter[t.Any], env: _Env, field: str) -> None:
    """``min_doc_count: 0``: every value of the searched indices gets a bucket, matched or not."""
    for store in env.stores:
        for doc in store.view.values():
            for v in _vals(doc, field):
                counts.setdefault(v, 0)


def _include_exclude(params: dict[str, t.Any], keys: list[t.Any], ftype: str | None) -> list[t.Any]:
    """``include`` / ``exclude``: exact value lists, Lucene regexps (string fields), or partitions."""
    include, exclude = params.get("include"), params.get("exclude")
    for spec, keep in ((include, True), (exclude, False)):
        if spec is None:
            continue
        if isinstance(spec, dict):
            raise not_implemented("Terms [include] partitions")
        if isinstance(spec, list):
            texts = {str(v) for v in spec}
            keys = [k for k in keys if (k in spec or str(k) in texts) == keep]
            continue
        if ftype not in (None, "keyword", "flattened", "wildcard", "ip", "version", "constant_keyword"):
            raise EsError(
                400,
                "aggregation_execution_exception",
                "Aggregation [terms] cannot support regular expression style include/exclude settings as they "
                "can only be applied to string fields. Use an array of values for include/exclude clauses",
            )
        try:
            rx = compile_lucene(str(spec))
        except (RegexError, NotTranslatable) as exc:
            raise bad_request(
                f"Invalid regular expression [{spec}] in [{'include' if keep else 'exclude'}]: {exc}"
            ) from None
        keys = [k for k in keys if bool(rx.fullmatch(str(k))) == keep]
    return keys


def _order(
    keys: list[t.Any],
    order: t.Any,
    counts: Counter[t.Any],
    sub: dict[str, t.Any],
    sub_results: dict[t.Any, dict[str, t.Any]],
) -> None:
    """Sort ``keys`` in place by ``order``: the last criterion first, so the first one decides (stable sorts)."""
    for spec in reversed(order if isinstance(order, list) else [order]):
        for what, direction in reversed(list(spec.items())):
            desc = str(direction).lower() == "desc"
            if what == "_count":
                keys.sort(key=lambda k: counts[k], reverse=desc)
            elif what in ("_key", "_term"):
                keys.sort(key=lambda k: str(k) if isinstance(k, str) else k, reverse=desc)
            else:
                agg, _, metric = what.partition(".")
                if agg not in sub:
                    raise EsError(400, "aggregation_execution_exception", f"Invalid aggregation order path [{what}]")
                keys.sort(key=lambda k: _metric_value(sub_results[k][agg], metric), reverse=desc)


def _metric_value(result: dict[str, t.Any], metric: str) -> float:
    value = result.get(metric or "value")
    if value is None and "doc_count" in result and not metric:
        value = result["doc_count"]
    return float("-inf") if value is None else float(value)


def _bucket(
    key: t.Any,
    ftype: str | None,
    fmt: str | None,
    doc_count: int,
    show_error: bool,
    sub_result: dict[str, t.Any] | None,
) -> dict[str, t.Any]:
    """One bucket: its key as Elasticsearch renders the field's type, its count, its sub-aggregations."""
    bucket = _key_fields(ftype, key, fmt)
    bucket["doc_count"] = doc_count
    if show_error:
        bucket["doc_count_error_upper_bound"] = 0
    if sub_result is not None:
        bucket.update(sub_result)
    return bucket


def _key_fields(ftype: str | None, key: t.Any, fmt: str | None) -> dict[str, t.Any]:
    if ftype == "boolean":
        return {"key": 1 if key else 0, "key_as_string": "true" if key else "false"}
    if ftype in ("date", "date_nanos"):
        return {"key": key, "key_as_string": datemath.format_date(key, fmt)}
    return {"key": key}


TERMS_HANDLERS: dict[str, Handler] = {"terms": _terms}
