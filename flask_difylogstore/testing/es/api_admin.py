"""Cluster and index management endpoints: indices, mappings, settings, aliases, templates, ILM, stats."""

from __future__ import annotations

import copy
import typing as t

from flask_difylogstore.testing.es.errors import EsError, bad_request
from flask_difylogstore.testing.es.indices import flatten_settings, nest_settings
from flask_difylogstore.testing.es.mapping import validate_properties
from flask_difylogstore.testing.es.routing import Node, Request, Response, Router
from flask_difylogstore.testing.es.settings_check import check_settings

routes = Router()
"""This module's endpoints; the server adds them to its own table."""

ACK = {"acknowledged": True}
DYNAMIC_SETTINGS = (
    "index.refresh_interval",
    "index.max_result_window",
    "index.mapping.total_fields.limit",
    "index.lifecycle.",
    "index.number_of_replicas",
    "index.blocks.",
)


def _resolve(srv: Node, req: Request, expr: str | None) -> list[t.Any]:
    """The indices a request names, with its ``ignore_unavailable`` / ``allow_no_indices`` / ``expand_wildcards``."""
    return srv.cluster.resolve(
        expr,
        ignore_unavailable=req.flag("ignore_unavailable"),
        allow_no_indices=req.flag("allow_no_indices", True),
        expand_wildcards=req.params.get("expand_wildcards", "open"),
    )


def _settings(req: Request, flat: dict[str, str]) -> dict[str, t.Any]:
    return dict(flat) if req.flag("flat_settings") else nest_settings(flat)


@routes.route("GET", "/")
def info(srv: Node, req: Request) -> Response:
    return 200, {
        "name": "local-es",
        "cluster_name": "local",
        "cluster_uuid": "local-cluster-uuid",
        "version": {
            "number": srv.version,
            "build_flavor": "default",
            "build_type": "tar",
            "build_hash": "local",
            "build_date": "2025-01-01T00:00:00.000Z",
            "build_snapshot": False,
            "lucene_version": "10.1.0" if srv.major >= 9 else "9.12.0",
            "minimum_wire_compatibility_version": f"{srv.major - 1}.18.0",
            "minimum_index_compatibility_version": f"{srv.major - 1}.0.0",
        },
        "tagline": "You Know, for Search",
    }


@routes.route("GET", "_cluster/health", "_cluster/health/{index}")
def health(srv: Node, req: Request) -> Response:
    with srv.cluster.lock:
        stores = (
            _resolve(srv, req, req.args.get("index")) if req.args.get("index") else list(srv.cluster.indices.values())
        )
    replicas = sum(int(s.settings.get("index.number_of_replicas", "1")) for s in stores)
    status = "yellow" if replicas else "green"
    wanted = req.params.get("wait_for_status")
    if wanted is not None and wanted not in ("green", "yellow", "red"):
        raise bad_request(f"unknown cluster health status [{wanted}]")
    timed_out = wanted == "green" and status != "green"
    return (408 if timed_out else 200), {
        "cluster_name": "local",
        "status": status,
        "timed_out": timed_out,
        "number_of_nodes": 1,
        "number_of_data_nodes": 1,
        "active_primary_shards": len(stores),
        "active_shards": len(stores),
        "relocating_shards": 0,
        "initializing_shards": 0,
        "unassigned_shards": replicas,
        "delayed_unassigned_shards": 0,
        "number_of_pending_tasks": 0,
        "number_of_in_flight_fetch": 0,
        "task_max_waiting_in_queue_millis": 0,
        "active_shards_percent_as_number": 100.0 * len(stores) / max(1, len(stores) + replicas),
    }


def _size(n: int, raw: bool) -> str:
    if raw:
        return str(n)
    for unit in ("b", "kb", "mb", "gb"):
        if n < 1024 or unit == "gb":
            return f"{n}{unit}" if unit == "b" else f"{n:.1f}{unit}"
        n = n // 1024 if n >= 1024 * 1024 else n / 1024  # type: ignore[assignment]
    return str(n)


@routes.route("GET", "_cat/indices", "_cat/indices/{index}")
def cat_indices(srv: Node, req: Request) -> Response:
    with srv.cluster.lock:
        stores = _resolve(srv, req, req.args.get("index"))
        rows = []
        for s in sorted(stores, key=lambda s: s.name):
            size = _size(s.store_size(), req.params.get("bytes") == "b")
            rows.append(
                {
                    "health": "yellow" if s.settings.get("index.number_of_replicas", "1") != "0" else "green",
                    "status": "close" if s.closed else "open",
                    "index": s.name,
                    "uuid": s.uuid,
                    "pri": s.settings.get("index.number_of_shards", "1"),
                    "rep": s.settings.get("index.number_of_replicas", "1"),
                    "docs.count": str(len(s.view)),
                    "docs.deleted": "0",
                    "store.size": size,
                    "pri.store.size": size,
                    "dataset.size": size,
                }
            )
    return _cat_table(req, rows)


_RIGHT_ALIGNED = {"pri", "rep", "docs.count", "docs.deleted", "store.size", "pri.store.size", "dataset.size"}


def _cat_table(req: Request, rows: list[dict[str, t.Any]]) -> Response:
    """``_cat`` output: ``h`` columns, ``s`` sort keys (``col:desc``), ``v`` headers, aligned text or JSON."""
    fmt = req.params.get("format", "text")
    if fmt not in ("text", "json"):
        raise bad_request(
            f"[format={fmt}] on _cat APIs is not implemented by this local Elasticsearch-compatible server"
        )
    columns = list(rows[0]) if rows else []
    if "h" in req.params:
        columns = [c for c in req.params["h"].split(",") if c]
        rows = [{c: r.get(c, "") for c in columns} for r in rows]
    for spec in reversed([p for p in req.params.get("s", "").split(",") if p]):
        column, _, order = spec.partition(":")
        if rows and column not in rows[0]:
            raise bad_request(f"Unable to sort by unknown sort key `{column}`")

        def key(row: dict[str, t.Any], column: str = column) -> t.Any:
            value = str(row.get(column, ""))
            return (0, int(value), "") if value.isdigit() else (1, 0, value)

        rows.sort(key=key, reverse=order == "desc")
    if fmt == "json":
        return 200, rows
    table = [[str(r.get(c, "")) for c in columns] for r in rows]
    if req.flag("v"):
        table.insert(0, columns)
    widths = [max((len(row[i]) for row in table), default=0) for i in range(len(columns))]
    header = 1 if req.flag("v") else 0
    lines = []
    for n, row in enumerate(table):
        cells = [
            cell.rjust(w) if c in _RIGHT_ALIGNED and n >= header else cell.ljust(w)
            for cell, w, c in zip(row, widths, columns, strict=True)
        ]
        lines.append(" ".join(cells).rstrip())
    return 200, ("".join(line + "\n" for line in lines)).encode()


@routes.route("GET", "_stats", "{index}/_stats")
def stats(srv: Node, req: Request) -> Response:
    with srv.cluster.lock:
        stores = _resolve(srv, req, req.args.get("index"))
        per: dict[str, dict[str, t.Any]] = {}
        for s in stores:
            part = {
                "docs": {"count": len(s.view), "deleted": 0},
                "store": {"size_in_bytes": s.store_size()},
                "indexing": {"index_total": s.seq_no + 1},
            }
            per[s.name] = {
                "uuid": s.uuid,
                "health": "yellow",
                "status": "close" if s.closed else "open",
                "primaries": part,
                "total": part,
            }
    total = {
        "docs": {"count": sum(p["primaries"]["docs"]["count"] for p in per.values()), "deleted": 0},
        "store": {"size_in_bytes": sum(p["primaries"]["store"]["size_in_bytes"] for p in per.values())},
    }
    n = len(per)
    return 200, {
        "_shards": {"total": 2 * n, "successful": n, "failed": 0},
        "_all": {"primaries": total, "total": total},
        "indices": per,
    }


# ---- indices ---------------------------------------------------------------------------------
@routes.route("PUT", "{index}")
def create_index(srv: Node, req: Request) -> Response:
    body = req.json()
    for key in body:
        if key not in ("settings", "mappings", "aliases"):
            raise EsError(400, "parse_exception", f"unknown key [{key}] for create index")
    with srv.cluster.lock:
        srv.cluster.create_index(req.args["index"], body)
    return 200, {"acknowledged": True, "shards_acknowledged": True, "index": req.args["index"]}


@routes.route("GET", "{index}")
def get_index(srv: Node, req: Request) -> Response:
    with srv.cluster.lock:
        stores = _resolve(srv, req, req.args["index"])
        out = {
            s.name: {
                "aliases": copy.deepcopy(s.aliases),
                "mappings": s.mapping.to_json(),
                "settings": _settings(req, s.settings),
            }
            for s in stores
        }
    if req.method == "HEAD" and not out:
        return 404, {}
    return 200, out


@routes.route("DELETE", "{index}")
def delete_index(srv: Node, req: Request) -> Response:
    with srv.cluster.lock:
        srv.cluster.delete_index(req.args["index"], ignore_unavailable=req.flag("ignore_unavailable"))
    return 200, ACK


@routes.route("POST", "{index}/_close")
def close_index(srv: Node, req: Request) -> Response:
    """Closed indices refuse searches, reads and writes (``index_closed_exception``) until reopened."""
    expr = req.args["index"]
    if expr in ("_all", "*") or "*" in expr or "?" in expr:  # action.destructive_requires_name=true
        raise bad_request("Wildcard expressions or all indices are not allowed")
    with srv.cluster.lock:
        stores = srv.cluster.resolve(expr, ignore_unavailable=req.flag("ignore_unavailable"))
        for store in stores:
            store.refresh()
            store.closed = True
    return 200, {
        "acknowledged": True,
        "shards_acknowledged": True,
        "indices": {s.name: {"closed": True} for s in stores},
    }


@routes.route("POST", "{index}/_open")
def open_index(srv: Node, req: Request) -> Response:
    with srv.cluster.lock:
        stores = srv.cluster.resolve(
            req.args["index"],
            ignore_unavailable=req.flag("ignore_unavailable"),
            allow_no_indices=req.flag("allow_no_indices", True),
            expand_wildcards=req.params.get("expand_wildcards", "closed"),
        )
        for store in stores:
            store.closed = False
    return 200, {"acknowledged": True, "shards_acknowledged": True}


@routes.route("GET", "_mapping", "{index}/_mapping")
def get_mapping(srv: Node, req: Request) -> Response:
    with srv.cluster.lock:
        return 200, {s.name: {"mappings": s.mapping.to_json()} for s in _resolve(srv, req, req.args.get("index"))}


@routes.route("PUT POST", "{index}/_mapping")
def put_mapping(srv: Node, req: Request) -> Response:
    body = req.json()
    validate_properties(body.get("properties") or {})
    with srv.cluster.lock:
        for store in _resolve(srv, req, req.args["index"]):
            store.mapping.update(body)
    return 200, ACK


@routes.route("GET", "_settings", "{index}/_settings")
def get_settings(srv: Node, req: Request) -> Response:
    with srv.cluster.lock:
        return 200, {
            s.name: {"settings": _settings(req, s.settings)} for s in _resolve(srv, req, req.args.get("index"))
        }


@routes.route("PUT", "_settings", "{index}/_settings")
def put_settings(srv: Node, req: Request) -> Response:
    body = req.json()
    flat = flatten_settings(body.get("settings", body) if isinstance(body, dict) else {})
    check_settings(flat)
    static = [k for k in flat if not k.startswith(DYNAMIC_SETTINGS)]
    if static:
        raise bad_request(f"Can't update non dynamic settings [[{', '.join(static)}]] for open indices")
    with srv.cluster.lock:
        for store in _resolve(srv, req, req.args.get("index")):
            for key, value in flat.items():
                if value == "None":
                    store.settings.pop(key, None)
                else:
                    store.settings[key] = value
            store.apply_settings()
    return 200, ACK


# ---- aliases ---------------------------------------------------------------------------------
@routes.route("POST", "_aliases")
def alias_actions(srv: Node, req: Request) -> Response:
    with srv.cluster.lock:
        srv.cluster.alias_actions(req.json().get("actions", []))
    return 200, {"acknowledged": True, "errors": False}


@routes.route("PUT POST", "{index}/_alias/{name}", "{index}/_aliases/{name}")
def put_alias(srv: Node, req: Request) -> Response:
    body = req.json()
    with srv.cluster.lock:
        srv.cluster.alias_actions([{"add": {"index": req.args["index"], "alias": req.args["name"], **body}}])
    return 200, ACK


@routes.route("DELETE", "{index}/_alias/{name}", "{index}/_aliases/{name}")
def delete_alias(srv: Node, req: Request) -> Response:
    with srv.cluster.lock:
        srv.cluster.alias_actions([{"remove": {"index": req.args["index"], "alias": req.args["name"]}}])
    return 200, ACK


@routes.route("GET", "_alias", "_alias/{name}", "{index}/_alias", "{index}/_alias/{name}")
def get_alias(srv: Node, req: Request) -> Response:
    import fnmatch

    wanted = req.args.get("name")
    patterns = wanted.split(",") if wanted and wanted not in ("_all", "*") else None
    with srv.cluster.lock:
        stores = _resolve(srv, req, req.args.get("index"))
        out: dict[str, t.Any] = {}
        for s in stores:
            chosen = {
                a: copy.deepcopy(v)
                for a, v in s.aliases.items()
                if patterns is None or any(fnmatch.fnmatchcase(a, p) for p in patterns)
            }
            if chosen or patterns is None:
                out[s.name] = {"aliases": chosen}
    if patterns and not out:
        return 404, {"error": f"alias [{wanted}] missing", "status": 404}
    return 200, out
