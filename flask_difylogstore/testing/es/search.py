"""``_search`` / ``_count`` execution: matching, sorting, ``search_after``, collapse, paging, ``_source``."""

from __future__ import annotations

import fnmatch
import heapq
import math
import typing as t

from flask_difylogstore.testing.es import (
    aggs_buckets,  # noqa: F401  (registers date_histogram, composite)
    datemath,
)
from flask_difylogstore.testing.es.aggs import run_aggs
from flask_difylogstore.testing.es.body_check import (
    as_int,
    check_count_body,
    check_from,
    check_search_body,
    check_size,
    not_implemented,
)
from flask_difylogstore.testing.es.documents import IndexStore, StoredDoc
from flask_difylogstore.testing.es.errors import EsError, bad_request
from flask_difylogstore.testing.es.fetch import FetchOptions
from flask_difylogstore.testing.es.mapping import FLOAT_TYPES, INT_RANGES, TEXT_TYPES
from flask_difylogstore.testing.es.query import Context, compile_query

Hit = tuple[Context, StoredDoc, float]
LONG_MAX, LONG_MIN = 2**63 - 1, -(2**63)
SHARDS = {"total": 1, "successful": 1, "skipped": 0, "failed": 0}


class _Rev:
    """Inverts ordering for descending sort components."""

    __slots__ = ("v",)

    def __init__(self, v: t.Any) -> None:
        self.v = v

    def __lt__(self, other: _Rev) -> bool:
        return bool(other.v < self.v)

    def __gt__(self, other: _Rev) -> bool:
        return bool(other.v > self.v)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Rev) and self.v == other.v

    def __hash__(self) -> int:
        return hash(self.v)


def match_docs(
    stores: list[IndexStore], query: t.Any, now_ms: int, alias_filters: dict[str, t.Any] | None = None
) -> list[Hit]:
    """Everything in the searchable (refreshed) view of ``stores`` that matches ``query``."""
    hits: list[Hit] = []
    for store in stores:
        ctx = Context(store.name, store.mapping, now_ms, int(store.settings.get("index.max_regex_length", "1000")))
        extra = (alias_filters or {}).get(store.name)
        effective = {"bool": {"must": [query or {"match_all": {}}], "filter": [extra]}} if extra else query
        matcher = compile_query(effective, ctx)
        append = hits.append
        for doc in store.view.values():
            score = matcher(doc)
            if score is not None:
                append((ctx, doc, score))
    return hits


def _normalize_sort(spec: t.Any) -> list[tuple[str, dict[str, t.Any]]]:
    if spec is None:
        return []
    items = spec if isinstance(spec, list) else [spec]
    out: list[tuple[str, dict[str, t.Any]]] = []
    for item in items:
        if isinstance(item, str):
            field, _, order = item.partition(":")
            out.append((field, {"order": order} if order else {}))
        else:
            for field, params in item.items():
                out.append((field, params if isinstance(params, dict) else {"order": params}))
    return out


_SORT_KEYS = {"order", "missing", "unmapped_type", "mode", "format", "numeric_type", "nested"}
_MODES = {"min", "max", "sum", "avg", "median"}


class _SortField:
    def __init__(self, field: str, params: dict[str, t.Any], stores: list[IndexStore]) -> None:
        self.field = field
        unknown = set(params) - _SORT_KEYS
        if unknown:
            raise EsError(400, "x_content_parse_exception", f"[field_sort] unknown field [{sorted(unknown)[0]}]")
        for key in ("numeric_type", "nested"):
            if key in params:
                raise not_implemented(f"sort [{key}]")
        default_order = "desc" if field == "_score" else "asc"
        order = str(params.get("order", default_order)).lower()
        if order not in ("asc", "desc"):
            raise EsError(400, "x_content_parse_exception", "[field_sort] failed to parse field [order]")
        self.desc = order == "desc"
        self.missing = params.get("missing", "_last")
        self.mode = str(params.get("mode", "max" if self.desc else "min")).lower()
        if self.mode not in _MODES:
            raise bad_request(f"Unknown SortMode [{self.mode}]")
        self.fmt: str | None = params.get("format")
        self.numeric = field in ("_score", "_doc", "_shard_doc")
        self.kind = "score" if field == "_score" else "doc" if field in ("_doc", "_shard_doc") else "field"
        self.ftype: str | None = None
        self.is_float = False
        if self.kind == "field":
            types = {s.mapping.field_type(field) for s in stores} - {None}
            if not types and "unmapped_type" not in params:
                raise EsError(
                    400,
                    "query_shard_exception",
                    f"No mapping found for [{field}] in order to sort on",
                    index=stores[0].name if stores else None,
                )
            if types & TEXT_TYPES:
                raise bad_request(
                    "Text fields are not optimised for operations that require per-document field data "
                    "like aggregations and sorting, so these operations are disabled by default. Please use "
                    f"a keyword field instead. Alternatively, set fielddata=true on [{field}] in order to "
                    "load field data by uninverting the inverted index. Note that this can use significant "
                    "memory."
                )
            self.ftype = next(iter(types)) if types else params.get("unmapped_type")
            self.numeric = bool(types & (set(INT_RANGES) | FLOAT_TYPES | {"date", "date_nanos", "boolean"}))
            self.is_float = bool(types & FLOAT_TYPES)
            if self.mode in ("sum", "avg", "median") and not self.numeric:
                raise bad_request(f"only [min] and [max] sort modes are supported on non-numeric field [{field}]")
            if self.fmt is not None and self.ftype not in ("date", "date_nanos"):
                raise not_implemented(f"sort [format] on the non-date field [{field}]")
            self.store_format = next((f for s in stores if (f := _mapped_format(s, field)) is not None), None)

    def after_value(self, value: t.Any, now_ms: int) -> t.Any:
        """A ``search_after`` value in the sort's internal form (a formatted date is parsed, as ES does)."""
        if value is None or self.kind != "field":
            return value
        if self.ftype in ("date", "date_nanos"):
            if isinstance(value, int | float) and not isinstance(value, bool):
                return int(value)
            fmt = self.fmt or self.store_format
            try:
                return datemath.resolve(str(value), fmt, nanos=self.ftype == "date_nanos", now_ms=now_ms)
            except EsError:
                raise bad_request(f"Failed to parse search_after value for field [{self.field}].") from None
        if self.numeric:
            if isinstance(value, bool):
                return int(value)
            if isinstance(value, int | float):
                return value
            try:
                return float(value) if self.is_float else int(str(value))
            except ValueError:
                raise bad_request(f"Failed to parse search_after value for field [{self.field}].") from None
        return str(value)

    def export(self, value: t.Any) -> t.Any:
        """A hit's ``sort`` value: floats for floating-point fields, the ``format`` for dates."""
        if self.kind != "field" or value is None:
            return value
        if self.fmt is not None and self.ftype in ("date", "date_nanos") and isinstance(value, int):
            ms = value // 1_000_000 if self.ftype == "date_nanos" else value
            return datemath.format_date(ms, self.fmt)
        if self.is_float and isinstance(value, int | float):
            return float(value)
        return value

    def raw(self, hit: Hit, store_pos: dict[str, int]) -> t.Any:
        ctx, doc, score = hit
        if self.kind == "score":
            return score
        if self.kind == "doc":
            return (store_pos[ctx.index] << 40) + doc.ord
        value = doc.flat.get(self.field)
        if isinstance(value, list):
            value = _pick(value, self.mode)
            if self.mode in ("avg", "median") and not self.is_float and isinstance(value, float):
                value = math.floor(value + 0.5)  # MultiValueMode on longs: Math.round
        if isinstance(value, bool):
            value = int(value)
        if value is None:
            if self.missing not in ("_last", "_first"):
                return self.missing
            if self.numeric:
                last = LONG_MIN if self.desc else LONG_MAX
                first = LONG_MAX if self.desc else LONG_MIN
                return last if self.missing == "_last" else first
        return value

    def component(self, value: t.Any) -> tuple[int, t.Any]:
        if value is None:
            return (0 if self.missing == "_first" else 2, 0)
        return (1, _Rev(value) if self.desc else value)


def _pick(values: list[t.Any], mode: str) -> t.Any:
    if mode == "min":
        return min(values)
    if mode == "max":
        return max(values)
    if mode == "sum":
        return sum(values)
    if mode == "avg":
        return sum(values) / len(values)
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _mapped_format(store: IndexStore, field: str) -> str | None:
    node: t.Any = store.mapping.body
    for part in field.split("."):
        node = (node.get("properties") or {}).get(part) if isinstance(node, dict) else None
    return node.get("format") if isinstance(node, dict) else None


def _source_filter(spec: t.Any) -> tuple[bool, list[str], list[str]]:
    if spec is None or spec is True:
        return True, [], []
    if spec is False:
        return False, [], []
    if isinstance(spec, str):
        return True, spec.split(","), []
    if isinstance(spec, list):
        return True, [str(s) for s in spec], []
    inc = spec.get("includes", spec.get("include", []))
    exc = spec.get("excludes", spec.get("exclude", []))
    return True, [inc] if isinstance(inc, str) else list(inc), [exc] if isinstance(exc, str) else list(exc)


def filter_source(
    source: dict[str, t.Any], includes: list[str], excludes: list[str], prefix: str = ""
) -> dict[str, t.Any]:
    out: dict[str, t.Any] = {}
    for key, value in source.items():
        path = prefix + key
        if any(fnmatch.fnmatchcase(path, p) for p in excludes):
            continue
        whole = not includes or any(fnmatch.fnmatchcase(path, p) for p in includes)
        if isinstance(value, dict):
            if whole:
                out[key] = filter_source(value, [], excludes, path + ".") if excludes else value
            elif any(p.startswith(path + ".") or "*" in p for p in includes):
                sub = filter_source(value, includes, excludes, path + ".")
                if sub:
                    out[key] = sub
        elif whole:
            out[key] = value
    return out


def _render(hit: Hit, keep: bool, inc: list[str], exc: list[str], score: bool) -> dict[str, t.Any]:
    ctx, doc, s = hit
    body: dict[str, t.Any] = {"_index": ctx.index, "_id": doc.id, "_score": s if score else None}
    if keep:
        body["_source"] = filter_source(doc.source, inc, exc) if (inc or exc) else doc.source
    return body


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
    """
    check_search_body(body)
    query = url_query(params, body.get("query"))
    size = int_param(params, "size", body.get("size", 10))
    start = int_param(params, "from", body.get("from", 0))
    check_size(size)
    check_from(start)
    window = min((s.max_result_window for s in stores), default=10_000)
    if scroll is not None and size > window:
        raise bad_request(
            f"Batch size is too large, size must be less than or equal to: [{window}] but was [{size}]. Scroll "
            "batch sizes cost as much memory as result windows so they are controlled by the "
            "[index.max_result_window] index level setting."
        )
    if scroll is None and start + size > window:
        raise EsError(
            400,
            "search_phase_execution_exception",
            "all shards failed",
            root_cause={
                "type": "illegal_argument_exception",
                "reason": "Result window is too large, from + size must be less than or equal to: "
                f"[{window}] but was [{start + size}]. See the scroll api for a more efficient way to "
                "request large data sets. This limit can be set by changing the [index.max_result_window] "
                "index level setting.",
            },
            extra={"phase": "query", "grouped": True},
        )
    hits = match_docs(stores, query, now_ms, alias_filters)
    if body.get("post_filter"):
        post = {ctx.index: compile_query(body["post_filter"], ctx) for ctx, _, _ in hits}
        visible = [h for h in hits if post[h[0].index](h[1]) is not None]
    else:
        visible = hits
    response: dict[str, t.Any] = {"took": 1, "timed_out": False, "_shards": SHARDS}
    total = len(visible)
    hits_body: dict[str, t.Any] = {}
    total_body = total_hits(params, body, total)
    if total_body is not None:
        hits_body["total"] = total_body
    sort_spec = _normalize_sort(params["sort"].split(",") if "sort" in params else body.get("sort"))
    fields = [_SortField(f, p, stores) for f, p in sort_spec]
    track_scores = params.get("track_scores", body.get("track_scores"))
    scored = not fields or any(f.kind == "score" for f in fields) or str(track_scores).lower() in ("", "true")
    pos = {s.name: i for i, s in enumerate(stores)}
    order = fields or [_SortField("_score", {}, stores)]
    tiebreak = _SortField("_doc", {}, stores)

    def key(hit: Hit) -> tuple[t.Any, ...]:
        return (*(f.component(f.raw(hit, pos)) for f in order), tiebreak.raw(hit, pos))

    candidates = visible
    after = body.get("search_after")
    if after is not None:
        if start > 0:
            raise bad_request("`from` parameter must be set to 0 when `search_after` is used.")
        if len(after) != len(order):
            raise bad_request(
                f"search_after has {len(after)} value(s) but sort has {len(order)}.",
                "illegal_argument_exception",
            )
        after_key = tuple(f.component(f.after_value(v, now_ms)) for f, v in zip(order, after, strict=True))
        n = len(order)
        candidates = [h for h in visible if key(h)[:n] > after_key]
    collapse = body.get("collapse")
    need = start + size
    page: list[tuple[Hit, dict[str, t.Any]]]
    if collapse:
        page = _collapse(sorted(candidates, key=key), collapse, scored)[start:need]
    elif scroll is not None:
        ordered = sorted(candidates, key=key)
        page = [(h, {}) for h in ordered[start:need]]
        scroll["rest"] = ordered[need:]
    elif need < len(candidates) // 4:
        page = [(h, {}) for h in heapq.nsmallest(need, candidates, key=key)[start:]]
    else:
        page = [(h, {}) for h in sorted(candidates, key=key)[start:need]]
    source_spec = _source_param(params, body)
    fetch = FetchOptions(body, params, stores)
    keep, inc, exc = _source_filter(source_spec)
    keep = keep and fetch.source_default(source_spec is not None)
    by_name = {s.name: s for s in stores}

    def render(hit: Hit) -> dict[str, t.Any]:
        doc_body = _render(hit, keep, inc, exc, scored)
        if fields:
            doc_body["sort"] = [f.export(f.raw(hit, pos)) for f in fields]
        fetch.apply(doc_body, by_name[hit[0].index], hit[1])
        return doc_body

    rendered = []
    for hit, extra in page:
        doc_body = render(hit)
        doc_body.update(extra)
        rendered.append(doc_body)
    if scroll is not None:
        scroll.update(render=render, size=size, total=hits_body.get("total"))
    scores = [h[2] for h in visible] if scored else []
    hits_body["max_score"] = max(scores) if scores else None
    hits_body["hits"] = rendered
    response["hits"] = hits_body
    aggs = body.get("aggs", body.get("aggregations"))
    if aggs:
        response["aggregations"] = run_aggs(aggs, [(c, d) for c, d, _ in hits], stores, now_ms)
    return response


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


class _InnerSort(_SortField):
    """A sort field for inner hits (no index-wide type validation)."""

    def __init__(self, field: str, params: dict[str, t.Any]) -> None:
        self.field = field
        self.desc = str(params.get("order", "asc")).lower() == "desc"
        self.missing = params.get("missing", "_last")
        self.kind = "field"
        self.numeric = False
        self.is_float = False
        self.mode = "max" if self.desc else "min"
        self.fmt = None
        self.ftype = None


def count(
    stores: list[IndexStore],
    body: dict[str, t.Any],
    params: dict[str, str],
    now_ms: int,
    alias_filters: dict[str, t.Any] | None = None,
) -> dict[str, t.Any]:
    check_count_body(body)
    query = url_query(params, body.get("query"))
    return {"count": len(match_docs(stores, query, now_ms, alias_filters)), "_shards": SHARDS}


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
