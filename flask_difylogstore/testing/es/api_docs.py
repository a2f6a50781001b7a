"""Document and search endpoints: ``_doc``, ``_create``, ``_update``, ``_bulk``, ``_mget``, ``_search``..."""

from __future__ import annotations

import base64
import os
import time
import typing as t

import orjson

from flask_difylogstore.testing.es.documents import IndexStore
from flask_difylogstore.testing.es.errors import EsError, bad_request
from flask_difylogstore.testing.es.routing import Request, Response, router
from flask_difylogstore.testing.es.search import _source_filter, filter_source

if t.TYPE_CHECKING:
    from flask_difylogstore.testing.es.server import LocalElasticsearchServer as Srv


def new_id() -> str:
    return base64.urlsafe_b64encode(os.urandom(15)).decode()


def _int(value: t.Any) -> int | None:
    return None if value is None or value == "" else int(value)


def _refresh_mode(req: Request) -> str | None:
    """The write's ``refresh`` parameter, checked before anything is written (``None``: no refresh)."""
    mode = req.params.get("refresh")
    if mode is None or mode == "false":
        return None
    if mode not in ("", "true", "wait_for"):
        raise bad_request(f"Unknown value for refresh: [{mode}].")
    return mode


def _refresh_after(
    srv: Srv, mode: str | None, stores: t.Iterable[IndexStore], body: dict[str, t.Any] | None = None
) -> None:
    """Apply the refresh mode: ``true`` (or empty) refreshes now, ``wait_for`` waits for a refresh."""
    if mode is None:
        return
    if mode == "wait_for":
        forced = srv.cluster.wait_for_refresh(stores)
    else:
        srv.cluster.refresh_now(stores)
        forced = True
    if body is not None and forced:
        body["forced_refresh"] = True


def _versioning(req: Request) -> dict[str, t.Any]:
    return {
        "version": _int(req.params.get("version")),
        "version_type": req.params.get("version_type"),
        "if_seq_no": _int(req.params.get("if_seq_no")),
        "if_primary_term": _int(req.params.get("if_primary_term")),
    }


@router.route("PUT POST", "{index}/_doc/{id}", "{index}/_create/{id}", "{index}/_doc")
def index_doc(srv: Srv, req: Request) -> Response:
    refresh = _refresh_mode(req)
    source = req.json()
    if not isinstance(source, dict):
        raise EsError(400, "mapper_parsing_exception", "failed to parse, document is empty")
    create = "/_create/" in req.path or req.params.get("op_type") == "create"
    doc_id = req.args.get("id") or new_id()
    with srv.cluster.lock:
        store = srv.cluster.write_target(req.args["index"])
        status, body = store.index(doc_id, source, op_type="create" if create else "index", **_versioning(req))
        _refresh_after(srv, refresh, [store], body)
    return status, body


@router.route("GET", "{index}/_doc/{id}", "{index}/_source/{id}")
def get_doc(srv: Srv, req: Request) -> Response:
    with srv.cluster.lock:
        stores = srv.cluster.resolve(req.args["index"])
        if len(stores) != 1:
            raise bad_request(f"alias [{req.args['index']}] has more than one index associated with it")
        store = stores[0]
        if req.params.get("refresh") == "true":
            store.refresh()
        realtime = req.params.get("realtime", "true") != "false"
        doc = (store.live if realtime else store.view).get(req.args["id"])
    if "/_source/" in req.path:
        if doc is None:
            raise EsError(404, "resource_not_found_exception", f"Document not found [{store.name}]/[{req.args['id']}]")
        return 200, _filtered(req, doc.source)
    if doc is None:
        return 404, {"_index": store.name, "_id": req.args["id"], "found": False}
    body: dict[str, t.Any] = {
        "_index": store.name,
        "_id": doc.id,
        "_version": doc.version,
        "_seq_no": doc.seq_no,
        "_primary_term": doc.primary_term,
        "found": True,
    }
    source = _filtered(req, doc.source)
    if source is not None:
        body["_source"] = source
    return 200, body


def _filtered(req: Request, source: dict[str, t.Any], spec: t.Any = None) -> dict[str, t.Any] | None:
    from flask_difylogstore.testing.es.search import _source_param

    keep, inc, exc = _source_filter(spec if spec is not None else _source_param(req.params, {}))
    if not keep:
        return None
    return filter_source(source, inc, exc) if (inc or exc) else source


@router.route("DELETE", "{index}/_doc/{id}")
def delete_doc(srv: Srv, req: Request) -> Response:
    refresh = _refresh_mode(req)
    with srv.cluster.lock:
        store = srv.cluster.write_target(req.args["index"], auto_create=False)
        status, body = store.delete(req.args["id"], **_versioning(req))
        _refresh_after(srv, refresh, [store], body)
    return status, body


@router.route("POST", "{index}/_update/{id}")
def update_doc(srv: Srv, req: Request) -> Response:
    refresh = _refresh_mode(req)
    body = req.json()
    with srv.cluster.lock:
        store = srv.cluster.write_target(req.args["index"])
        v = _versioning(req)
        status, result = store.update(
            req.args["id"], body, if_seq_no=v["if_seq_no"], if_primary_term=v["if_primary_term"]
        )
        _refresh_after(srv, refresh, [store], result)
    return status, result


@router.route("PUT POST", "_bulk", "{index}/_bulk")
def bulk(srv: Srv, req: Request) -> Response:
    refresh = _refresh_mode(req)
    started = time.perf_counter()
    lines = req.body.split(b"\n")
    default_index = req.args.get("index")
    items: list[dict[str, t.Any]] = []
    touched: dict[str, IndexStore] = {}
    errors = False
    loads = orjson.loads
    faults = srv.faults
    with srv.cluster.lock:
        i, n = 0, len(lines)
        while i < n:
            line = lines[i]
            i += 1
            if not line.strip():
                continue
            try:
                action = loads(line)
                ((op, meta),) = action.items()
            except (orjson.JSONDecodeError, ValueError, AttributeError):
                raise EsError(
                    400,
                    "illegal_argument_exception",
                    f"Malformed action/metadata line [{i}], expected "
                    "START_OBJECT or END_OBJECT but found [VALUE_STRING]",
                ) from None
            if op not in ("index", "create", "update", "delete"):
                raise EsError(
                    400,
                    "illegal_argument_exception",
                    f"Malformed action/metadata line [{i}], expected "
                    f"field [create], [delete], [index] or [update] but found [{op}]",
                )
            source: t.Any = None
            if op != "delete":
                if i >= n or not lines[i].strip():
                    raise EsError(
                        400,
                        "illegal_argument_exception",
                        "The bulk request must be terminated by a newline [\\n]",
                    )
                raw = lines[i]
                i += 1
            index_name = meta.get("_index") or default_index
            doc_id = meta.get("_id")
            if doc_id is not None:
                doc_id = str(doc_id)
            try:
                if index_name is None:
                    raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: index is missing;")
                failure = faults.bulk_item_failure()
                if failure is not None:
                    raise failure
                store = touched.get(index_name) or srv.cluster.write_target(index_name)
                touched[index_name] = store
                if op != "delete":
                    try:
                        source = loads(raw)
                    except orjson.JSONDecodeError as exc:
                        raise EsError(400, "document_parsing_exception", f"[1:1] failed to parse: {exc}") from None
                if op == "update":
                    if doc_id is None:
                        raise EsError(
                            400, "action_request_validation_exception", "Validation Failed: 1: id is missing;"
                        )
                    status, result = store.update(
                        doc_id,
                        source,
                        if_seq_no=_int(meta.get("if_seq_no")),
                        if_primary_term=_int(meta.get("if_primary_term")),
                    )
                elif op == "delete":
                    if doc_id is None:
                        raise EsError(
                            400, "action_request_validation_exception", "Validation Failed: 1: id is missing;"
                        )
                    status, result = store.delete(
                        doc_id,
                        version=_int(meta.get("version")),
                        version_type=meta.get("version_type"),
                        if_seq_no=_int(meta.get("if_seq_no")),
                        if_primary_term=_int(meta.get("if_primary_term")),
                    )
                else:
                    if not isinstance(source, dict):
                        raise EsError(400, "document_parsing_exception", "[1:1] failed to parse: not an object")
                    status, result = store.index(
                        doc_id or new_id(),
                        source,
                        op_type=op,
                        version=_int(meta.get("version")),
                        version_type=meta.get("version_type"),
                        if_seq_no=_int(meta.get("if_seq_no")),
                        if_primary_term=_int(meta.get("if_primary_term")),
                    )
                result["status"] = status
                items.append({op: result})
            except EsError as exc:
                errors = True
                items.append({op: {"_index": index_name, "_id": doc_id, "status": exc.status, "error": exc.cause()}})
        _refresh_after(srv, refresh, touched.values())
    took = int((time.perf_counter() - started) * 1000)
    return 200, {"errors": errors, "took": took, "items": items}


@router.route("GET POST", "_mget", "{index}/_mget")
def mget(srv: Srv, req: Request) -> Response:
    body = req.json()
    specs = body.get("docs") or [{"_id": i} for i in body.get("ids", [])]
    out = []
    with srv.cluster.lock:
        for spec in specs:
            name = spec.get("_index") or req.args.get("index")
            doc_id = str(spec.get("_id"))
            try:
                if name is None:
                    raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: index is missing;")
                stores = srv.cluster.resolve(name)
            except EsError as exc:
                out.append({"_index": name, "_id": doc_id, "error": exc.cause()})
                continue
            doc = stores[0].live.get(doc_id)
            if doc is None:
                out.append({"_index": stores[0].name, "_id": doc_id, "found": False})
                continue
            item: dict[str, t.Any] = {
                "_index": stores[0].name,
                "_id": doc_id,
                "_version": doc.version,
                "_seq_no": doc.seq_no,
                "_primary_term": 1,
                "found": True,
            }
            source = _filtered(req, doc.source, spec.get("_source"))
            if source is not None:
                item["_source"] = source
            out.append(item)
    return 200, {"docs": out}
