"""Document and search endpoints: ``_doc``, ``_create``, ``_update``, ``_bulk``, ``_mget``, ``_search``..."""

from __future__ import annotations

import base64
import os
import typing as t

from flask_difylogstore.testing.es.body_check import not_implemented, token
from flask_difylogstore.testing.es.documents import IndexStore
from flask_difylogstore.testing.es.errors import EsError, bad_request
from flask_difylogstore.testing.es.routing import Node, Request, Response, Router
from flask_difylogstore.testing.es.source_filter import _source_filter, filter_source
from flask_difylogstore.testing.es.versioning import parse_versioning, read_conflict

routes = Router()
"""This module's endpoints; the server adds them to its own table."""


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
    srv: Node, mode: str | None, stores: t.Iterable[IndexStore], body: dict[str, t.Any] | None = None
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


def _require_alias(srv: Node, req: Request, name: str) -> None:
    if req.flag("require_alias") and name not in srv.cluster.alias_map():
        raise EsError(
            404,
            "index_not_found_exception",
            f"no such index [{name}] and [require_alias] request flag is [true] and [{name}] is not an alias",
            index=name,
            extra={"resource.type": "index_expression", "resource.id": name},
        )


@routes.route("PUT POST", "{index}/_doc/{id}", "{index}/_create/{id}", "{index}/_doc")
def index_doc(srv: Node, req: Request) -> Response:
    refresh = _refresh_mode(req)
    op_type = req.params.get("op_type", "index").lower()
    if op_type not in ("index", "create"):
        raise bad_request(f"opType must be 'create' or 'index', found: [{req.params['op_type']}]")
    create = "/_create/" in req.path or op_type == "create"
    versioning = parse_versioning(req.params, "the request")
    versioning.validate("create" if create else "index", req.args.get("id"))
    source = req.json()
    if not isinstance(source, dict) or not source and not req.body.strip():
        raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: source is missing;")
    doc_id = req.args.get("id") or new_id()
    with srv.cluster.lock:
        _require_alias(srv, req, req.args["index"])
        store = srv.cluster.write_target(req.args["index"])
        status, body = store.index(doc_id, source, op_type="create" if create else "index", **versioning.kwargs())
        _refresh_after(srv, refresh, [store], body)
    return status, body


@routes.route("GET", "{index}/_doc/{id}", "{index}/_source/{id}")
def get_doc(srv: Node, req: Request) -> Response:
    with srv.cluster.lock:
        stores = srv.cluster.resolve(req.args["index"], allow_closed=False)
        if len(stores) != 1:
            raise bad_request(f"alias [{req.args['index']}] has more than one index associated with it")
        store = stores[0]
        if req.flag("refresh"):
            store.refresh()
        realtime = req.params.get("realtime", "true") != "false"
        doc = (store.live if realtime else store.view).get(req.args["id"])
        versioning = parse_versioning(req.params, "the request")
        if doc is not None and versioning.version is not None and doc.version != versioning.version:
            raise read_conflict(store.name, doc.id, doc.version, versioning.version)
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


@routes.route("DELETE", "{index}/_doc/{id}")
def delete_doc(srv: Node, req: Request) -> Response:
    refresh = _refresh_mode(req)
    versioning = parse_versioning(req.params, "the request")
    versioning.validate("delete", req.args["id"])
    with srv.cluster.lock:
        store = srv.cluster.write_target(req.args["index"], auto_create=False)
        status, body = store.delete(req.args["id"], **versioning.kwargs())
        _refresh_after(srv, refresh, [store], body)
    return status, body


_UPDATE_KEYS = {"doc", "upsert", "doc_as_upsert", "script", "scripted_upsert", "detect_noop"}


@routes.route("POST", "{index}/_update/{id}")
def update_doc(srv: Node, req: Request) -> Response:
    refresh = _refresh_mode(req)
    versioning = parse_versioning(req.params, "the request")
    versioning.validate("update", req.args["id"])
    body = req.json()
    for key in body:
        if key in ("_source", "fields"):
            raise not_implemented(f"[{key}] in an update request")
        if key not in _UPDATE_KEYS:
            error = EsError(400, "x_content_parse_exception", f"[UpdateRequest] unknown field [{key}]")
            error.path = (key,)
            raise error
    with srv.cluster.lock:
        _require_alias(srv, req, req.args["index"])
        store = srv.cluster.write_target(req.args["index"])
        status, result = store.update(
            req.args["id"], body, if_seq_no=versioning.if_seq_no, if_primary_term=versioning.if_primary_term
        )
        _refresh_after(srv, refresh, [store], result)
    return status, result


@routes.route("GET POST", "_mget", "{index}/_mget")
def mget(srv: Node, req: Request) -> Response:
    body = req.json()
    if not isinstance(body, dict):
        raise EsError(400, "parse_exception", "Failed to derive xcontent")
    for key, value in body.items():
        if not isinstance(value, list):
            raise EsError(
                400, "parse_exception", f"unexpected token [{token(value)}], expected [FIELD_NAME] or [START_ARRAY]"
            )
        if key not in ("docs", "ids"):
            raise EsError(400, "parse_exception", f"unknown key [{key}] for a START_ARRAY, expected [docs] or [ids]")
    if "ids" in body and not req.args.get("index"):
        raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: index is missing for doc 0;")
    specs = body.get("docs") or [{"_id": i} for i in body.get("ids", [])]
    problems = []
    for n, spec in enumerate(specs):
        for key in spec:
            if key in ("stored_fields", "version", "version_type"):
                raise not_implemented(f"[{key}] in an mget document")
            if key not in ("_index", "_id", "_source", "routing"):
                raise EsError(400, "parse_exception", f"Unknown key for a VALUE_STRING in [{key}].")
        if not (spec.get("_index") or req.args.get("index")):
            problems.append(f"index is missing for doc {n}")
        if spec.get("_id") in (None, ""):
            problems.append(f"id is missing for doc {n}")
    if not specs:
        problems.append("no documents to get")
    if problems:
        text = "".join(f"{n}: {e};" for n, e in enumerate(problems, 1))
        raise EsError(400, "action_request_validation_exception", f"Validation Failed: {text}")
    out = []
    with srv.cluster.lock:
        for spec in specs:
            name = spec.get("_index") or req.args.get("index")
            doc_id = str(spec.get("_id"))
            try:
                stores = srv.cluster.resolve(name, allow_closed=False)
            except EsError as exc:
                out.append({"_index": name, "_id": doc_id, "error": exc.cause()})
                continue
            if req.flag("refresh"):
                stores[0].refresh()
            doc = (stores[0].view if req.params.get("realtime", "true") == "false" else stores[0].live).get(doc_id)
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
