"""The HTTP layer: SLS's REST API on a loopback port, for the unmodified ``aliyun.log.LogClient``."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import orjson
from aliyun.log import LogClient
from aliyun.log.auth import AUTH_VERSION_1

from flask_difylogstore.testing.sls import query as q
from flask_difylogstore.testing.sls.auth import verify_request
from flask_difylogstore.testing.sls.errors import SLSError, bad_request
from flask_difylogstore.testing.sls.faults import Failure, Faults
from flask_difylogstore.testing.sls.store import Store
from flask_difylogstore.testing.sls.wire import MAX_RAW_BODY, decode_log_group, decompress

logger = logging.getLogger(__name__)


def local_log_client(
    endpoint: str,
    access_key_id: str,
    access_key_secret: str,
    *,
    auth_version: str | None = None,
    region: str | None = None,
) -> LogClient:
    """A real ``LogClient`` that reaches a server at ``IP:port``.

    The SDK sends requests to ``http://<project>.<endpoint>`` unless the endpoint is a bare IPv4
    address (its private ``_isRowIp`` flag), so ``127.0.0.1:9000`` would become the unresolvable
    ``<project>.127.0.0.1``. Setting the flag keeps the project in the Host header only, as the
    server expects. A fixed ``source`` avoids the DNS lookup put_logs otherwise does per call.
    """
    client = LogClient(
        endpoint,
        access_key_id,
        access_key_secret,
        source="127.0.0.2",
        auth_version=auth_version or AUTH_VERSION_1,
        region=region or "",
    )
    host = urlsplit(endpoint if "//" in endpoint else f"http://{endpoint}").hostname or ""
    if host.replace(".", "").isdigit():
        client._isRowIp = True  # type: ignore[attr-defined]
    return client


def _project_from_host(host: str) -> str | None:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    labels = name.split(".")
    if len(labels) >= 5 and all(p.isdigit() for p in labels[-4:]):
        return ".".join(labels[:-4])
    if all(p.isdigit() for p in labels) or name in ("localhost", ""):
        return None
    return labels[0] if len(labels) > 1 else None


def _api_name(method: str, parts: list[str], params: dict[str, str]) -> str:
    if method == "POST" and len(parts) >= 3 and parts[2] == "shards":
        return "PutLogs"
    if (method == "POST" and len(parts) == 3 and parts[2] == "logs") or (
        method == "GET" and len(parts) == 2 and params.get("type") == "log"
    ):
        return "GetLogs"
    if method == "GET" and len(parts) == 2 and params.get("type") == "histogram":
        return "GetHistograms"
    return "Admin"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LocalSLS/1.0"
    timeout = 120
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _send(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-log-requestid", uuid.uuid4().hex[:24].upper())
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _handle(self, method: str) -> None:
        owner: LocalSLSServer = self.server.owner
        split = urlsplit(self.path)
        path = unquote(split.path) or "/"
        params_list = parse_qsl(split.query, keep_blank_values=True)
        params = dict(params_list)
        length = int(self.headers.get("Content-Length") or 0)
        if length > 4 * MAX_RAW_BODY:
            self.close_connection = True
            self._send(400, orjson.dumps({"errorCode": "PostBodyTooLarge", "errorMessage": "body too large"}))
            return
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        parts = [p for p in path.split("/") if p]
        action = owner.faults.before_request(_api_name(method, parts, params))
        if action == "drop":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            if isinstance(action, Failure):
                raise SLSError(action.status, action.code, action.message)
            if owner.require_auth:
                verify_request(
                    method, path, params_list, headers, body, owner.access_key_id, owner.access_key_secret
                )
            project = _project_from_host(headers.get("host", ""))
            status, payload, extra = _route(owner.store, method, parts, params, headers, body, project)
        except SLSError as exc:
            self._send(exc.status, orjson.dumps({"errorCode": exc.code, "errorMessage": exc.message}))
            return
        except Exception as exc:
            logger.exception("local SLS server failed on %s %s", method, path)
            error = {"errorCode": "InternalServerError", "errorMessage": f"{type(exc).__name__}: {exc}"}
            self._send(500, orjson.dumps(error))
            return
        self._send(status, payload if isinstance(payload, bytes) else orjson.dumps(payload), extra)


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


def _route(
    store: Store,
    method: str,
    parts: list[str],
    params: dict[str, str],
    headers: dict[str, str],
    body: bytes,
    project: str | None,
) -> _Reply:
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


def _route_project(
    store: Store, method: str, params: dict[str, str], body: bytes, project: str | None
) -> _Reply:
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
        info = store.project(project)
        info["description"] = str(_json_body(body).get("description", info["description"]))
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
            "x-log-has-sql": "True" if meta["hasSQL"] else "False",
            "x-log-where-query": _header_safe(meta["whereQuery"]),
            "x-log-agg-query": _header_safe(meta["aggQuery"]), "x-log-cpu-sec": str(meta["cpuSec"]),
            "x-log-cpu-cores": "1", "x-log-query-info": '{"mode":0}',
        }  # fmt: skip
        return 200, result.rows, extra
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


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], owner: LocalSLSServer) -> None:
        self.owner = owner
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.conn_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.conn_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.conn_lock:
            conns = list(self.connections)
            self.connections.clear()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class LocalSLSServer:
    """A local Aliyun SLS endpoint backed by DuckDB; see ``docs/local-sls-server.md``.

    Use as a context manager or with ``start()`` / ``stop()``. Data survives ``stop()`` and
    ``start()`` of the same object (on the same port), and process restarts when ``data_dir``
    is given.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        access_key_id: str = "local-ak",
        access_key_secret: str = "local-sk",
        data_dir: str | os.PathLike[str] | None = None,
        require_auth: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.require_auth = require_auth
        self.data_dir = data_dir
        self.store = Store(data_dir)
        self.faults = Faults(self)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def start(self) -> LocalSLSServer:
        with self._lock:
            self.store.reopen()
            if self._httpd is None and not self.faults.refusing:
                self._open_listener()
        return self

    def stop(self) -> None:
        with self._lock:
            self._close_listener()
            self.store.close()

    def client(self, **kwargs: Any) -> LogClient:
        """A ``LogClient`` for this server (keyword arguments as ``local_log_client``)."""
        return local_log_client(self.endpoint, self.access_key_id, self.access_key_secret, **kwargs)

    def __enter__(self) -> LocalSLSServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Run in the foreground until interrupted (used by ``python -m``)."""
        self.start()
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def _open_listener(self) -> None:
        if self._httpd is not None:
            return
        httpd = _HTTPServer((self.host, self.port), self)
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, name=f"local-sls-{self.port}", daemon=True
        )
        self._thread.start()

    def _close_listener(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
