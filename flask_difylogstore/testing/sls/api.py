"""Routing of SLS REST calls (method + path + query) to the store and the query engine."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from flask_difylogstore.testing.sls import query as q
from flask_difylogstore.testing.sls.errors import SLSError, bad_request
from flask_difylogstore.testing.sls.store import Store
from flask_difylogstore.testing.sls.wire import MAX_RAW_BODY, decode_log_group, decompress


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise bad_request("PostBodyInvalid", f"request body is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise bad_request("PostBodyInvalid", "request body must be a JSON object")
    return value


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _header_safe(value: str) -> str:
    return value if value.isascii() else quote(value)


_Reply = tuple[int, Any, dict[str, str] | None]


def route(
    store: Store,
    method: str,
    parts: list[str],
    params: dict[str, str],
    headers: dict[str, str],
    body: bytes,
    project: str | None,
) -> _Reply:
    """Dispatch one request: (status, JSON-able payload or raw bytes, extra response headers)."""
    if not parts:
        return _route_project(store, method, params, body, project)
    if parts[0] != "logstores":
        raise SLSError(404, "RouteNotFound", f"unsupported resource /{'/'.join(parts)}")
    if len(parts) == 1:
        if method == "GET":
            names = store.list_logstores(project, params.get("logstoreName"))
            offset, size = _int(params.get("offset"), 0), _int(params.get("size"), 500)
            page = names[offset : offset + size]
            return 200, {"count": len(page), "total": len(names), "logstores": page}, None
        if method == "POST":
            store.create_logstore(project, _json_body(body))
            return 200, b"", None
    else:
        name = parts[1]
        rest = parts[2:]
        if not rest:
            return _route_logstore(store, method, name, params, body, project)
        if rest == ["index"]:
            if method == "GET":
                return 200, store.get_index(project, name), None
            if method in ("POST", "PUT"):
                store.set_index(project, name, _json_body(body), create=method == "POST")
                return 200, b"", None
            if method == "DELETE":
                store.delete_index(project, name)
                return 200, b"", None
        if rest == ["logs"] and method == "POST":
            req = _json_body(body)
            result = q.get_logs(
                store, project, name, start=_int(req.get("from"), 0), end=_int(req.get("to"), 0),
                query=str(req.get("query") or "*"), line=_int(req.get("line"), 100),
                offset=_int(req.get("offset"), 0), reverse=bool(req.get("reverse", False)),
                topic=str(req.get("topic") or ""),
            )  # fmt: skip
            return 200, {"meta": result.meta, "data": result.rows}, None
        if rest == ["shards"] and method == "GET":
            count = int(store.logstore_info(project, name)["shardCount"])
            return 200, [{"shardID": i, "status": "readwrite"} for i in range(count)], None
        if rest and rest[0] == "shards" and method == "POST":
            return _put_logs(store, name, headers, body, project)
    raise SLSError(404, "RouteNotFound", f"unsupported {method} /{'/'.join(parts)}")


def _route_project(store: Store, method: str, params: dict[str, str], body: bytes, project: str | None) -> _Reply:
    if method == "GET" and project:
        return 200, store.project_info(project), None
    if method == "GET":
        projects = [p for p in store.list_projects() if params.get("projectName", "") in p["projectName"]]
        offset, size = _int(params.get("offset"), 0), _int(params.get("size"), 100)
        page = projects[offset : offset + size]
        return 200, {"count": len(page), "total": len(projects), "projects": page}, None
    if method == "POST":
        req = _json_body(body)
        store.create_project(str(req.get("projectName") or project or ""), str(req.get("description") or ""))
        return 200, b"", None
    if method == "DELETE":
        store.delete_project(project)
        return 200, b"", None
    if method == "PUT":
        store.update_project(project, _json_body(body).get("description"))
        return 200, b"", None
    raise SLSError(404, "RouteNotFound", f"unsupported {method} /")


def _route_logstore(
    store: Store, method: str, name: str, params: dict[str, str], body: bytes, project: str | None
) -> _Reply:
    kind = params.get("type")
    if method == "GET" and kind == "log":
        result = q.get_logs(
            store, project, name, start=_int(params.get("from"), 0), end=_int(params.get("to"), 0),
            query=params.get("query") or "*", line=_int(params.get("line"), 100),
            offset=_int(params.get("offset"), 0), reverse=params.get("reverse", "false").lower() == "true",
            topic=params.get("topic") or "",
        )  # fmt: skip
        meta = result.meta
        extra = {
            "x-log-progress": "Complete", "x-log-count": str(meta["count"]),
            "x-log-processed-rows": str(meta["processedRows"]),
            "x-log-elapsed-millisecond": str(meta["elapsedMillisecond"]),
            # The SDK reads any value but "false" as true (GetLogsResponse._from_v1_resp).
            "x-log-has-sql": "true" if meta["hasSQL"] else "false",
            "x-log-where-query": _header_safe(meta["whereQuery"]),
            "x-log-agg-query": _header_safe(meta["aggQuery"]), "x-log-cpu-sec": str(meta["cpuSec"]),
            "x-log-cpu-cores": "1", "x-log-query-info": '{"mode":0}',
        }  # fmt: skip
        return 200, result.rows, extra
    if method == "GET" and kind == "topic":
        topics, next_token = q.list_topics(
            store, project, name, token=params.get("token") or "", line=_int(params.get("line"), 100)
        )
        return 200, topics, {"x-log-count": str(len(topics)), "x-log-nexttoken": next_token}
    if method == "GET" and kind == "histogram":
        buckets = q.get_histograms(
            store, project, name, start=_int(params.get("from"), 0), end=_int(params.get("to"), 0),
            query=params.get("query") or "*", topic=params.get("topic") or "",
        )  # fmt: skip
        total = sum(b["count"] for b in buckets)
        return 200, buckets, {"x-log-progress": "Complete", "x-log-count": str(total)}
    if method == "GET":
        return 200, store.logstore_info(project, name), None
    if method == "PUT":
        store.update_logstore(project, name, _json_body(body))
        return 200, b"", None
    if method == "DELETE":
        store.delete_logstore(project, name)
        return 200, b"", None
    raise SLSError(404, "RouteNotFound", f"unsupported {method} /logstores/{name}")


def _put_logs(store: Store, name: str, headers: dict[str, str], body: bytes, project: str | None) -> _Reply:
    store.logstore(project, name)  # 404 before any decoding work
    if len(body) > MAX_RAW_BODY:
        raise bad_request("PostBodyTooLarge", f"body size {len(body)} must little than {MAX_RAW_BODY}")
    raw_size = headers.get("x-log-bodyrawsize")
    data = decompress(body, headers.get("x-log-compresstype", ""), int(raw_size) if raw_size else None)
    group = decode_log_group(data)
    store.append(project, name, group)
    return 200, b"", None
