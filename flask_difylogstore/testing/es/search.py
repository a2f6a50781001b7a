"""``_search`` / ``_count`` execution: matching, sorting, ``search_after``, collapse, paging, ``_source``."""

from __future__ import annotations

import heapq
import typing as t

from flask_difylogstore.testing.es.aggs import register_handlers, run_aggs
from flask_difylogstore.testing.es.aggs_buckets import BUCKET_HANDLERS
from flask_difylogstore.testing.es.aggs_terms import TERMS_HANDLERS
from flask_difylogstore.testing.es.body_check import (
    as_int,
    check_count_body,
    check_from,
    check_search_body,
    check_size,
    not_implemented,
)
from flask_difylogstore.testing.es.documents import IndexStore
from flask_difylogstore.testing.es.errors import EsError, bad_request, shard_error
from flask_difylogstore.testing.es.fetch import FetchOptions
from flask_difylogstore.testing.es.query import Context, compile_query
from flask_difylogstore.testing.es.sorting import Hit, _InnerSort, _normalize_sort, _SortField
from flask_difylogstore.testing.es.source_filter import _render, _source_filter, filter_source

__all__ = ["Hit", "_InnerSort", "_normalize_sort", "count", "filter_source", "match_docs", "search"]

register_handlers(TERMS_HANDLERS)
register_handlers(BUCKET_HANDLERS)

SHARDS = {"total": 1, "successful": 1, "skipped": 0, "failed": 0}


def match_docs(
    stores: list[IndexStore],
    query: t.Any,
    now_ms: int,
    alias_filters: dict[str, t.Any] | None = None,
    path: tuple[str | int, ...] | None = None,
) -> list[Hit]:
    """Everything in the searchable (refreshed) view of ``stores`` that matches ``query``."""
    hits: list[Hit] = []
    for store in stores:
        ctx = Context(store.name, store.mapping, now_ms, int(store.settings.get("index.max_regex_length", "1000")))
        extra = (alias_filters or {}).get(store.name)
        effective = {"bool": {"must": [query or {"match_all": {}}], "filter": [extra]}} if extra else query
        matcher = compile_query(effective, ctx, None if extra else path)
        append = hits.append
        for doc in store.view.values():
            score = matcher(doc)
            if score is not None:
                append((ctx, doc, score))
    return hits


def search(
    stores: list[IndexStore],
    body: dict[str, t.Any],
    params: dict[str, str],
    now_ms: int,
    scroll: dict[str, t.Any] | None = None,
    alias_filters: dict[str, t.Any] | None = None,
) -> dict[str, t.Any]:
    """Run a search request; ``params`` are the URL query parameters.

    With ``scroll`` (a dict), the remaining sorted hits and a renderer are left in it for ``_search/scroll``.
    Each step below raises Elasticsearch's error for its part of the request, in Elasticsearch's order.
    """
    check_search_body(body)
    query = url_query(params, body.get("query"))
    size = int_param(params, "size", body.get("size", 10))
    start = int_param(params, "from", body.get("from", 0))
    check_size(size)
    check_from(start)
    _check_window(stores, start, size, scroll)
    hits = match_docs(stores, query, now_ms, alias_filters, ("query",) if "q" not in params else None)
    visible = _post_filtered(hits, body.get("post_filter"))
    hits_body: dict[str, t.Any] = {}
    total_body = total_hits(params, body, len(visible))
    if total_body is not None:
        hits_body["total"] = total_body
    order = _Order(stores, body, params)
    candidates = _search_after(visible, body.get("search_after"), start, order, now_ms)
    page = _page(candidates, body.get("collapse"), order, start, start + size, scroll)
    render = _renderer(stores, body, params, order)
    rendered = [{**render(hit), **extra} for hit, extra in page]
    if scroll is not None:
        scroll.update(render=render, size=size, total=hits_body.get("total"))
    scores = [h[2] for h in visible] if order.scored else []
    hits_body["max_score"] = max(scores) if scores else None
    hits_body["hits"] = rendered
    response: dict[str, t.Any] = {"took": 1, "timed_out": False, "_shards": SHARDS, "hits": hits_body}
    aggs = body.get("aggs", body.get("aggregations"))
    if aggs:
        typed = params.get("typed_keys", "false").lower() in ("", "true")
        top = "aggs" if "aggs" in body else "aggregations"
        response["aggregations"] = run_aggs(aggs, [(c, d) for c, d, _ in hits], stores, now_ms, typed, top)
    return response


def _check_window(stores: list[IndexStore], start: int, size: int, scroll: dict[str, t.Any] | None) -> None:
    """``index.max_result_window`` caps a scroll's batch size, else ``from + size``."""
    window = min((s.max_result_window for s in stores), default=10_000)
    if scroll is not None and size > window:
        raise shard_error(
            f"Batch size is too large, size must be less than or equal to: [{window}] but was [{size}]. Scroll "
            "batch sizes cost as much memory as result windows so they are controlled by the "
            "[index.max_result_window] index level setting."
        )
    if scroll is None and start + size > window:
        raise shard_error(
            "Result window is too large, from + size must be less than or equal to: "
            f"[{window}] but was [{start + size}]. See the scroll api for a more efficient way to "
            "request large data sets. This limit can be set by changing the [index.max_result_window] "
            "index level setting."
        )


def _post_filtered(hits: list[Hit], post_filter: t.Any) -> list[Hit]:
    """The hits ``post_filter`` keeps (aggregations still see all of them)."""
    if not post_filter:
        return hits
    post = {ctx.index: compile_query(post_filter, ctx, ("post_filter",)) for ctx, _, _ in hits}
    return [h for h in hits if post[h[0].index](h[1]) is not None]


class _Order:
    """The request's sort (``sort`` parameter or body), the key hits sort by, and whether scores are kept."""

    def __init__(self, stores: list[IndexStore], body: dict[str, t.Any], params: dict[str, str]) -> None:
        sort_spec = _normalize_sort(params["sort"].split(",") if "sort" in params else body.get("sort"))
        self.fields = [_SortField(f, p, stores) for f, p in sort_spec]
        track_scores = params.get("track_scores", body.get("track_scores"))
        self.scored = (
            not self.fields or any(f.kind == "score" for f in self.fields) or str(track_scores).lower() in ("", "true")
        )
        self.pos = {s.name: i for i, s in enumerate(stores)}
        self.order = self.fields or [_SortField("_score", {}, stores)]
        self.tiebreak = _SortField("_doc", {}, stores)

    def key(self, hit: Hit) -> tuple[t.Any, ...]:
        pos = self.pos
        return (*(f.component(f.raw(hit, pos)) for f in self.order), self.tiebreak.raw(hit, pos))

    def sort_values(self, hit: Hit) -> list[t.Any]:
        """The hit's ``sort`` array in the response."""
        return [f.export(f.raw(hit, self.pos)) for f in self.fields]


def _search_after(visible: list[Hit], after: t.Any, start: int, order: _Order, now_ms: int) -> list[Hit]:
    """The hits sorting after ``search_after`` (all of them without it)."""
    if after is None:
        return visible
    if start > 0:
        raise bad_request("`from` parameter must be set to 0 when `search_after` is used.")
    if len(after) != len(order.order):
        raise bad_request(
            f"search_after has {len(after)} value(s) but sort has {len(order.order)}.",
            "illegal_argument_exception",
        )
    after_key = tuple(f.component(f.after_value(v, now_ms)) for f, v in zip(order.order, after, strict=True))
    n = len(order.order)
    return [h for h in visible if order.key(h)[:n] > after_key]


def _page(
    candidates: list[Hit],
    collapse: t.Any,
    order: _Order,
    start: int,
    need: int,
    scroll: dict[str, t.Any] | None,
) -> list[tuple[Hit, dict[str, t.Any]]]:
    """The hits of ``[start, need)`` in sort order, each with the extra fields collapsing adds.

    A scroll keeps the hits after the page for its next batches.
    """
    key = order.key
    if collapse:
        return _collapse(sorted(candidates, key=key), collapse, order.scored)[start:need]
    if scroll is not None:
        ordered = sorted(candidates, key=key)
        scroll["rest"] = ordered[need:]
        return [(h, {}) for h in ordered[start:need]]
    if need < len(candidates) // 4:
        return [(h, {}) for h in heapq.nsmallest(need, candidates, key=key)[start:]]
    return [(h, {}) for h in sorted(candidates, key=key)[start:need]]


def _renderer(
    stores: list[IndexStore], body: dict[str, t.Any], params: dict[str, str], order: _Order
) -> t.Callable[[Hit], dict[str, t.Any]]:
    """How a hit appears in ``hits.hits``: ``_source`` filtering, ``sort`` values, fetched fields."""
    source_spec = _source_param(params, body)
    fetch = FetchOptions(body, params, stores)
    keep, inc, exc = _source_filter(source_spec)
    keep = keep and fetch.source_default(source_spec is not None)
    by_name = {s.name: s for s in stores}

    def render(hit: Hit) -> dict[str, t.Any]:
        doc_body = _render(hit, keep, inc, exc, order.scored)
        if order.fields:
            doc_body["sort"] = order.sort_values(hit)
        fetch.apply(doc_body, by_name[hit[0].index], hit[1])
        return doc_body

    return render


def _source_param(params: dict[str, str], body: dict[str, t.Any]) -> t.Any:
    if "_source_includes" in params or "_source_excludes" in params:
        return {
            "includes": [p for p in params.get("_source_includes", "").split(",") if p],
            "excludes": [p for p in params.get("_source_excludes", "").split(",") if p],
        }
    if "_source" in params:
        raw = params["_source"]
        return raw.lower() != "false" if raw.lower() in ("true", "false") else raw
    return body.get("_source")


def _collapse(ordered: list[Hit], spec: dict[str, t.Any], scored: bool) -> list[tuple[Hit, dict[str, t.Any]]]:
    for key in spec:
        if key not in ("field", "inner_hits", "max_concurrent_group_searches"):
            if key == "collapse":
                raise not_implemented("Second-level [collapse]")
            error = EsError(400, "x_content_parse_exception", f"[collapse] unknown field [{key}]")
            error.path = ("collapse", key)
            raise error
    field = spec["field"]
    groups: dict[t.Any, list[Hit]] = {}
    for hit in ordered:
        value = hit[1].flat.get(field)
        if isinstance(value, list):
            value = value[0]
        groups.setdefault(value, []).append(hit)
    inner_specs = spec.get("inner_hits") or []
    if isinstance(inner_specs, dict):
        inner_specs = [inner_specs]
    out: list[tuple[Hit, dict[str, t.Any]]] = []
    for value, members in groups.items():
        extra: dict[str, t.Any] = {"fields": {field: [value]}}
        if inner_specs:
            extra["inner_hits"] = {}
            for inner in inner_specs:
                inner_sort = [
                    _SortField(f, p, []) if f in ("_score", "_doc") else _InnerSort(f, p)
                    for f, p in _normalize_sort(inner.get("sort"))
                ]
                chosen = members
                if inner_sort:
                    chosen = sorted(
                        members,
                        key=lambda h, s=inner_sort: tuple(  # type: ignore[misc]
                            f.component(f.raw(h, {h[0].index: 0})) for f in s
                        ),
                    )
                frm, sz = int(inner.get("from", 0)), int(inner.get("size", 3))
                keep, inc, exc = _source_filter(inner.get("_source"))
                extra["inner_hits"][inner.get("name", field)] = {
                    "hits": {
                        "total": {"value": len(members), "relation": "eq"},
                        "max_score": max((h[2] for h in members), default=None) if scored else None,
                        "hits": [_render(h, keep, inc, exc, scored) for h in chosen[frm : frm + sz]],
                    }
                }
        out.append((members[0], extra))
    return out


def count(
    stores: list[IndexStore],
    body: dict[str, t.Any],
    params: dict[str, str],
    now_ms: int,
    alias_filters: dict[str, t.Any] | None = None,
) -> dict[str, t.Any]:
    check_count_body(body)
    query = url_query(params, body.get("query"))
    path = ("query",) if "q" not in params else None
    return {"count": len(match_docs(stores, query, now_ms, alias_filters, path)), "_shards": SHARDS}


def url_query(params: dict[str, str], query: t.Any) -> t.Any:
    """The ``q`` parameter (with ``df``, ``default_operator``, ``lenient``) replaces the body's query."""
    if "q" not in params:
        return query
    spec: dict[str, t.Any] = {"query": params["q"], "default_operator": params.get("default_operator", "or")}
    if "df" in params:
        spec["default_field"] = params["df"]
    if "lenient" in params:
        spec["lenient"] = params["lenient"] in ("", "true")
    return {"query_string": spec}


def int_param(params: dict[str, str], name: str, default: t.Any) -> int:
    """An integer URL parameter (or the body's value), refused the way Elasticsearch refuses a bad one."""
    raw = params.get(name)
    if raw is None:
        return as_int(default, name)
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"Failed to parse int parameter [{name}] with value [{raw}]") from None


def total_hits(params: dict[str, str], body: dict[str, t.Any], total: int) -> t.Any:
    """``hits.total`` as ``track_total_hits`` and ``rest_total_hits_as_int`` ask for it (None: left out)."""
    track = params.get("track_total_hits", body.get("track_total_hits"))
    as_int_total = params.get("rest_total_hits_as_int", "false").lower() in ("", "true")
    text = None if track is None else str(track).lower()
    if as_int_total:
        if text not in (None, "true", "false"):
            raise bad_request(
                f"[rest_total_hits_as_int] cannot be used if the tracking of total hits is not accurate, got {track}"
            )
        return -1 if text == "false" else total
    if text == "false":
        return None
    cap = total if text == "true" else (10_000 if track is None else as_int(track, "track_total_hits"))
    if cap < -1:
        raise bad_request(f"[track_total_hits] parameter must be positive or equals to -1, got {cap}")
    return {"value": min(total, cap), "relation": "eq" if total <= cap else "gte"}
