"""``_bulk``: parsed, validated and executed in Elasticsearch's three steps.

As in ``BulkRequestParser`` a malformed line or an unknown metadata key fails the whole request;
as in ``BulkRequest.validate`` every item's validation error (``id is missing``, internal versions
used for optimistic locking, ``create`` with external versioning, ...) fails the whole request with one
``action_request_validation_exception``; only then are the items executed, each with its own status
(an empty ``_id``, a version conflict, a mapping error or ``require_alias`` fail just that item).
"""

from __future__ import annotations

import time
import typing as t
from dataclasses import dataclass

import orjson

from flask_difylogstore.testing.es.api_docs import _refresh_after, _refresh_mode, new_id
from flask_difylogstore.testing.es.documents import IndexStore
from flask_difylogstore.testing.es.errors import EsError, bad_request, index_not_found
from flask_difylogstore.testing.es.routing import Node, Request, Response, Router
from flask_difylogstore.testing.es.versioning import Versioning, parse_versioning

routes = Router()
"""This module's endpoints; the server adds them to its own table."""

_OPS = ("index", "create", "update", "delete")
_META_KEYS = {
    "_index", "_id", "routing", "op_type", "version", "version_type", "if_seq_no", "if_primary_term",
    "retry_on_conflict", "pipeline", "_source", "require_alias", "require_data_stream", "dynamic_templates",
    "list_executed_pipelines",
}  # fmt: skip
_UNSUPPORTED_META = {"pipeline", "_source", "dynamic_templates", "list_executed_pipelines"}


@dataclass
class _Item:
    op: str
    index: str | None
    doc_id: str | None
    versioning: Versioning
    require_alias: bool
    raw: bytes | None


def _malformed(line: int, detail: str) -> EsError:
    return bad_request(f"Malformed action/metadata line [{line}], {detail}")


def _truthy(value: t.Any) -> bool:
    return value is True or str(value).lower() == "true"


def parse(req: Request) -> list[_Item]:
    """``BulkRequestParser``: structural errors and unknown metadata fail the whole request."""
    lines = req.body.split(b"\n")
    if not req.body.strip():
        raise EsError(400, "parse_exception", "request body is required")
    default_index = req.args.get("index")
    global_alias = _truthy(req.params.get("require_alias", "false") or "true")
    items: list[_Item] = []
    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        i += 1
        if not line.strip():
            continue
        try:
            action = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise _malformed(i, "expected START_OBJECT or END_OBJECT but found [VALUE_STRING]") from None
        if not isinstance(action, dict):
            raise _malformed(i, "expected START_OBJECT or END_OBJECT but found [VALUE_STRING]")
        if not action:
            raise _malformed(i, "expected FIELD_NAME but found [END_OBJECT]")
        op, meta = next(iter(action.items()))
        if op not in _OPS:
            raise _malformed(i, f"expected field [create], [delete], [index] or [update] but found [{op}]")
        if not isinstance(meta, dict):
            raise _malformed(i, "expected START_OBJECT but found [VALUE_STRING]")
        for key in meta:
            if key not in _META_KEYS:
                raise bad_request(f"Action/metadata line [{i}] contains an unknown parameter [{key}]")
            if key in _UNSUPPORTED_META:
                raise bad_request(
                    f"Action/metadata line [{i}] uses [{key}], which this local Elasticsearch-compatible server "
                    "does not implement"
                )
        if _truthy(meta.get("require_data_stream", False)):
            raise bad_request("[require_data_stream] is not implemented by this local Elasticsearch-compatible server")
        if op == "index" and meta.get("op_type") is not None:
            op_type = str(meta["op_type"]).lower()
            if op_type not in ("index", "create"):
                raise bad_request(f"opType must be 'create' or 'index', found: [{meta['op_type']}]")
            op = op_type
        raw = None
        if op != "delete":
            if i >= n or (i == n - 1 and not lines[i].strip()):
                raise bad_request("The bulk request must be terminated by a newline [\\n]")
            raw = lines[i]
            i += 1
        doc_id = meta.get("_id")
        items.append(
            _Item(
                op=op,
                index=meta.get("_index") or default_index,
                doc_id=None if doc_id is None else str(doc_id),
                versioning=parse_versioning(meta, f"line [{i}]"),
                require_alias=_truthy(meta["require_alias"]) if "require_alias" in meta else global_alias,
                raw=raw,
            )
        )
    return items


def validate(items: list[_Item]) -> None:
    """``BulkRequest.validate``: all item validation errors together, as one 400."""
    errors: list[str] = []
    if not items:
        errors.append("no requests added")
    for item in items:
        if item.index is None:
            errors.append("index is missing")
        if item.op in ("update", "delete") and not item.doc_id:
            errors.append("id is missing")
        errors += item.versioning.errors(item.op, item.doc_id)
    if errors:
        text = "".join(f"{n}: {e};" for n, e in enumerate(errors, 1))
        raise EsError(400, "action_request_validation_exception", f"Validation Failed: {text}")


def _target(srv: Node, item: _Item) -> IndexStore:
    assert item.index is not None
    if item.require_alias and item.index not in srv.cluster.alias_map():
        raise EsError(
            404,
            "index_not_found_exception",
            f"no such index [{item.index}] and [require_alias] request flag is [true] and "
            f"[{item.index}] is not an alias",
            index=item.index,
            extra={"resource.type": "index_expression", "resource.id": item.index},
        )
    return srv.cluster.write_target(item.index, auto_create=True)


def _execute(srv: Node, item: _Item, store: IndexStore) -> tuple[int, dict[str, t.Any]]:
    v = item.versioning
    if item.op == "delete":
        assert item.doc_id is not None
        return store.delete(item.doc_id, **v.kwargs())
    try:
        source = orjson.loads(item.raw or b"")
    except orjson.JSONDecodeError as exc:
        raise EsError(400, srv.cluster.error_type, f"[1:1] failed to parse: {exc}") from None
    if item.op == "update":
        assert item.doc_id is not None
        if not isinstance(source, dict):
            raise EsError(400, "x_content_parse_exception", "[1:1] [UpdateRequest] failed to parse object")
        return store.update(item.doc_id, source, if_seq_no=v.if_seq_no, if_primary_term=v.if_primary_term)
    if not isinstance(source, dict):
        raise EsError(400, srv.cluster.error_type, "[1:1] failed to parse: not an object")
    if item.doc_id == "":
        raise bad_request("if _id is specified it must not be empty")
    return store.index(item.doc_id or new_id(), source, op_type=item.op, **v.kwargs())


@routes.route("PUT POST", "_bulk", "{index}/_bulk")
def bulk(srv: Node, req: Request) -> Response:
    refresh = _refresh_mode(req)
    started = time.perf_counter()
    items = parse(req)
    validate(items)
    results: list[dict[str, t.Any]] = []
    touched: dict[str, IndexStore] = {}
    errors = False
    with srv.cluster.lock:
        for item in items:
            try:
                failure = srv.faults.bulk_item_failure()
                if failure is not None:
                    raise failure
                cached = None if item.require_alias else touched.get(item.index or "")
                store = cached or _target(srv, item)
                touched[item.index or ""] = store
                status, result = _execute(srv, item, store)
                result["status"] = status
                results.append({item.op: result})
            except EsError as exc:
                errors = True
                failed = {"_index": item.index, "_id": item.doc_id, "status": exc.status, "error": exc.cause()}
                results.append({item.op: failed})
        _refresh_after(srv, refresh, touched.values())
    took = int((time.perf_counter() - started) * 1000)
    return 200, {"errors": errors, "took": took, "items": results}


__all__ = ["bulk", "index_not_found"]
