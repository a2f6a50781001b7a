"""Search endpoints: ``_search``, ``_count``, scroll, point in time, by-query updates, ``_refresh``."""

from __future__ import annotations

import contextlib
import copy
import re
import time
import typing as t

import orjson

from flask_difylogstore.testing.es.api_docs import _int, _refresh_after, new_id
from flask_difylogstore.testing.es.body_check import (
    SEARCH_KEYS,
    check_count_body,
    check_search_body,
    not_implemented,
    token,
)
from flask_difylogstore.testing.es.documents import IndexStore, StoredDoc
from flask_difylogstore.testing.es.errors import EsError, bad_request, search_phase_failure
from flask_difylogstore.testing.es.routing import Node, Request, Response, Router
from flask_difylogstore.testing.es.script import run_script
from flask_difylogstore.testing.es.search import Hit, count, match_docs, search, url_query

routes = Router()
"""This module's endpoints; the server adds them to its own table."""


def _targets(srv: Node, req: Request, body: dict[str, t.Any] | None = None) -> list[IndexStore]:
    if body and body.get("pit"):
        pit = srv.pits.get(body["pit"]["id"])
        if pit is None:
            raise EsError(
                404,
                "search_context_missing_exception",
                "No search context found for id [" + body["pit"]["id"] + "]",
            )
        return list(pit["stores"])
    return srv.cluster.resolve(
        req.args.get("index"),
        ignore_unavailable=req.flag("ignore_unavailable"),
        allow_no_indices=req.flag("allow_no_indices", True),
        allow_closed=False,
        expand_wildcards=req.params.get("expand_wildcards", "open"),
    )


@contextlib.contextmanager
def _shard_failures(stores: list[IndexStore]) -> t.Iterator[None]:
    """Errors a shard raises while executing come back wrapped as Elasticsearch wraps them."""
    try:
        yield
    except EsError as exc:
        if exc.shard and stores:
            raise search_phase_failure(exc, exc.index or stores[0].name) from None
        raise


@routes.route("GET POST", "_search", "{index}/_search")
def search_route(srv: Node, req: Request) -> Response:
    check_search_type(req.params)
    body = req.json()
    check_search_body(body, req.body)
    now_ms = int(time.time() * 1000)
    state: dict[str, t.Any] | None = {} if "scroll" in req.params else None
    if state is not None:
        time_value(req.params["scroll"], "scroll")
    with srv.cluster.lock:
        filters = srv.cluster.alias_filters(req.args.get("index"))
        stores = _targets(srv, req, body)
        with _shard_failures(stores):
            result = search(stores, body, req.params, now_ms, scroll=state, alias_filters=filters)
    if body.get("pit"):
        result["pit_id"] = body["pit"]["id"]
    if state is not None:
        scroll_id = new_id() + new_id()
        srv.scrolls[scroll_id] = state
        result["_scroll_id"] = scroll_id
    return 200, result


_MSEARCH_HEADER = {
    "index", "search_type", "preference", "routing", "request_cache", "ignore_unavailable", "allow_no_indices",
    "expand_wildcards", "ccs_minimize_roundtrips", "allow_partial_search_results", "ignore_throttled",
}  # fmt: skip


@routes.route("GET POST", "_msearch", "{index}/_msearch")
def msearch(srv: Node, req: Request) -> Response:
    """``_msearch``: header/body line pairs; each search answers on its own, errors included."""
    started = time.perf_counter()
    lines = [line for line in req.body.split(b"\n") if line.strip()]
    if not lines:
        raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
    pairs: list[tuple[dict[str, t.Any], dict[str, t.Any]]] = []
    for n in range(0, len(lines), 2):
        try:
            header = orjson.loads(lines[n])
            body = orjson.loads(lines[n + 1]) if n + 1 < len(lines) else None
        except orjson.JSONDecodeError as exc:
            raise EsError(400, "x_content_parse_exception", f"[1:1] failed to parse msearch line: {exc}") from None
        if not isinstance(header, dict):
            raise EsError(400, "parse_exception", "header must be an object")
        for key in header:
            if key not in _MSEARCH_HEADER:
                raise bad_request(f"key [{key}] is not supported in the metadata section")
        if body is None:
            raise bad_request("The msearch request must be terminated by a newline [\\n]")
        pairs.append((header, body))
    responses: list[dict[str, t.Any]] = []
    base = {k: v for k, v in req.params.items() if k in ("rest_total_hits_as_int", "typed_keys")}
    for header, body in pairs:
        index = header.get("index", req.args.get("index"))
        if isinstance(index, list):
            index = ",".join(index)
        params = {**base, **{k: str(v).lower() for k, v in header.items() if k != "index"}}
        sub = Request(
            "POST", f"/{index}/_search" if index else "/_search", params, b"", {"index": index} if index else {}
        )
        try:
            check_search_type(params)
            with srv.cluster.lock:
                filters = srv.cluster.alias_filters(index)
                stores = _targets(srv, sub, body)
                with _shard_failures(stores):
                    result = search(stores, body, params, int(time.time() * 1000), alias_filters=filters)
            responses.append({**result, "status": 200})
        except EsError as exc:
            responses.append({**exc.body(), "status": exc.status})
    return 200, {"took": int((time.perf_counter() - started) * 1000), "responses": responses}


_TIME = re.compile(r"(-1|0|\d+(?:\.\d+)?(?:nanos|micros|ms|s|m|h|d))")


def time_value(raw: str, setting: str) -> None:
    """``TimeValue.parseTimeValue``: ``30s``, ``1m``, ``-1``..., refused otherwise."""
    if not _TIME.fullmatch(raw.strip()):
        raise bad_request(
            f"failed to parse setting [{setting}] with value [{raw}] as a time value: unit is missing or unrecognized"
        )


def check_search_type(params: dict[str, str]) -> None:
    kind = params.get("search_type")
    if kind is not None and kind not in ("query_then_fetch", "dfs_query_then_fetch"):
        raise bad_request(f"No search type for [{kind}]")


@routes.route("GET POST", "_search/scroll", "_search/scroll/{id}")
def scroll_next(srv: Node, req: Request) -> Response:
    """Continue a scroll: the hit list was sorted once, when the scroll started."""
    scroll_id = req.args.get("id") or req.json().get("scroll_id") or req.params.get("scroll_id", "")
    state = srv.scrolls.get(scroll_id)
    if state is None:
        raise EsError(404, "search_context_missing_exception", f"No search context found for id [{scroll_id}]")
    page, state["rest"] = state["rest"][: state["size"]], state["rest"][state["size"] :]
    hits: dict[str, t.Any] = {"max_score": None, "hits": [state["render"](h) for h in page]}
    total = state["total"]
    if total is not None:
        as_int = req.params.get("rest_total_hits_as_int", "false").lower() in ("", "true")
        hits["total"] = total["value"] if as_int and isinstance(total, dict) else total
    return 200, {
        "_scroll_id": scroll_id,
        "took": 1,
        "timed_out": False,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": hits,
    }


@routes.route("DELETE", "_search/scroll", "_search/scroll/{id}")
def clear_scroll(srv: Node, req: Request) -> Response:
    ids = req.args.get("id") or req.json().get("scroll_id") or []
    ids = [ids] if isinstance(ids, str) else ids
    if ids == ["_all"]:
        ids = list(srv.scrolls)
    freed = sum(1 for i in ids if srv.scrolls.pop(i, None) is not None)
    return (200 if freed or not ids else 404), {"succeeded": True, "num_freed": freed}


@routes.route("GET POST", "_count", "{index}/_count")
def count_route(srv: Node, req: Request) -> Response:
    check_count_body(req.json(), req.body)
    with srv.cluster.lock:
        filters = srv.cluster.alias_filters(req.args.get("index"))
        stores = _targets(srv, req)
        with _shard_failures(stores):
            return 200, count(stores, req.json(), req.params, int(time.time() * 1000), filters)


@routes.route("POST", "{index}/_pit")
def open_pit(srv: Node, req: Request) -> Response:
    """A point in time: a frozen copy of each index's searchable view."""
    if "keep_alive" not in req.params:
        raise EsError(
            400, "action_request_validation_exception", "Validation Failed: 1: [keep_alive] is not specified;"
        )
    time_value(req.params["keep_alive"], "keep_alive")
    with srv.cluster.lock:
        frozen = []
        for store in _targets(srv, req):
            snap = copy.copy(store)
            snap.view = dict(store.view)
            frozen.append(snap)
        pit_id = new_id() + new_id()
        srv.pits[pit_id] = {"stores": frozen}
    return 200, {"id": pit_id, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}}


@routes.route("DELETE", "_pit")
def close_pit(srv: Node, req: Request) -> Response:
    found = srv.pits.pop(req.json().get("id", ""), None) is not None
    return (200 if found else 404), {"succeeded": found, "num_freed": int(found)}


@routes.route("POST", "{index}/_delete_by_query", "{index}/_update_by_query")
def by_query(srv: Node, req: Request) -> Response:
    started = time.perf_counter()
    body = req.json()
    deleting = req.path.endswith("_delete_by_query")
    _check_by_query_body(body, deleting)
    query = url_query(req.params, body.get("query"))
    mode = _by_query_refresh(req.params.get("refresh"))
    proceed = req.params.get("conflicts", body.get("conflicts")) == "proceed"
    max_docs = _int(req.params.get("max_docs", body.get("max_docs")))
    with srv.cluster.lock:
        stores = _targets(srv, req)
        filters = srv.cluster.alias_filters(req.args.get("index"))
        hits = match_docs(stores, query, int(time.time() * 1000), filters)
        done, conflicts, failures = _rewrite_hits(hits, stores, deleting, body.get("script"), proceed, max_docs)
        _refresh_after(srv, mode, stores)
    result: dict[str, t.Any] = {
        "took": int((time.perf_counter() - started) * 1000),
        "timed_out": False,
        "total": done + conflicts,
        "deleted" if deleting else "updated": done,
        "batches": 1,
        "version_conflicts": conflicts,
        "noops": 0,
        "retries": {"bulk": 0, "search": 0},
        "throttled_millis": 0,
        "requests_per_second": -1.0,
        "throttled_until_millis": 0,
        "failures": failures,
    }
    if deleting:
        result["updated"] = 0
    return (409 if failures else 200), result


def _check_by_query_body(body: dict[str, t.Any], deleting: bool) -> None:
    """Only ``conflicts``, ``max_docs``, ``query`` (and ``script`` when updating) are implemented."""
    for key in body:
        if key in ("conflicts", "max_docs", "query") or (key == "script" and not deleting):
            continue
        if key in SEARCH_KEYS or key == "script":
            raise not_implemented(f"[{key}] in a by-query request")
        raise EsError(400, "parsing_exception", f"Unknown key for a {token(body[key])} in [{key}].")


def _by_query_refresh(refresh: str | None) -> str | None:
    """The ``refresh`` parameter: ``true`` or ``false`` only, no ``wait_for`` here, unlike the document APIs."""
    if refresh not in (None, "", "true", "false"):
        raise EsError(
            400,
            "illegal_argument_exception",
            f"Failed to parse value [{refresh}] as only [true] or [false] are allowed.",
        )
    return None if refresh in (None, "false") else "true"


def _rewrite_hits(
    hits: list[Hit],
    stores: list[IndexStore],
    deleting: bool,
    script: t.Any,
    proceed: bool,
    max_docs: int | None,
) -> tuple[int, int, list[dict[str, t.Any]]]:
    """Delete or update each hit still at the version searched: (done, version conflicts, failures).

    A conflict stops the request unless ``conflicts=proceed``; ``max_docs`` counts conflicts too.
    """
    done = conflicts = 0
    failures: list[dict[str, t.Any]] = []
    by_name = {s.name: s for s in stores}
    for ctx, doc, _ in hits:
        if max_docs is not None and done + conflicts >= max_docs:
            break
        store = by_name[ctx.index]
        live = store.live.get(doc.id)
        if live is None or live.seq_no != doc.seq_no:
            conflicts += 1
            if not proceed:
                failures.append(_conflict_failure(store, doc, live))
                break
            continue
        if deleting:
            store.delete(doc.id)
        else:
            _update(store, doc.id, live, script)
        done += 1
    return done, conflicts, failures


def _update(store: IndexStore, doc_id: str, live: StoredDoc, script: t.Any) -> None:
    """Store the document again, as ``script`` changes it, with the next version."""
    source = copy.deepcopy(live.source)
    if script:
        source = run_script(script, source)
    flat = store.mapping.index_document(source, doc_id)
    store._store(doc_id, source, flat, live.version + 1)


def _conflict_failure(store: IndexStore, doc: StoredDoc, live: StoredDoc | None) -> dict[str, t.Any]:
    """The ``failures`` entry of a document changed (or deleted) since the search saw it."""
    return {
        "index": store.name,
        "id": doc.id,
        "status": 409,
        "cause": EsError(
            409,
            "version_conflict_engine_exception",
            f"[{doc.id}]: version conflict, required seqNo [{doc.seq_no}], "
            "primary term [1]. current document has seqNo "
            f"[{live.seq_no if live else -1}] and primary term [1]",
            index=store.name,
        ).cause(),
    }


@routes.route("GET POST", "_refresh", "{index}/_refresh")
def refresh(srv: Node, req: Request) -> Response:
    with srv.cluster.lock:
        stores = _targets(srv, req)
        srv.cluster.refresh_now(stores)
    n = len(stores)
    return 200, {"_shards": {"total": 2 * n, "successful": n, "failed": 0}}
