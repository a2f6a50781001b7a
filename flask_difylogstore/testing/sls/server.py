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
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson
from aliyun.log import LogClient
from aliyun.log.auth import AUTH_VERSION_1

from flask_difylogstore.testing.sls.api import route
from flask_difylogstore.testing.sls.auth import verify_request
from flask_difylogstore.testing.sls.errors import SLSError
from flask_difylogstore.testing.sls.faults import Failure, Faults
from flask_difylogstore.testing.sls.store import Store
from flask_difylogstore.testing.sls.wire import MAX_RAW_BODY

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
    ``<project>.127.0.0.1``. Setting the flag (for IPv4 and ``localhost`` endpoints) keeps the
    project in the Host header only, as the server expects. A fixed ``source`` avoids the DNS
    lookup put_logs otherwise does per call.
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
    if host == "localhost" or host.replace(".", "").isdigit():
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
    # Headers and body go out in two writes; without TCP_NODELAY the body waits ~40 ms for the
    # client's delayed ACK on every keep-alive response.
    disable_nagle_algorithm = True
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
                verify_request(method, path, params_list, headers, body, owner.access_key_id, owner.access_key_secret)
            project = _project_from_host(headers.get("host", ""))
            status, payload, extra = route(owner.store, method, parts, params, headers, body, project)
        except SLSError as exc:
            self._send(exc.status, orjson.dumps({"errorCode": exc.code, "errorMessage": exc.message}))
            return
        except Exception as exc:
            logger.exception("local SLS server failed on %s %s", method, path)
            error = {"errorCode": "InternalServerError", "errorMessage": f"{type(exc).__name__}: {exc}"}
            self._send(500, orjson.dumps(error))
            return
        self._send(status, payload if isinstance(payload, bytes) else orjson.dumps(payload), extra)


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
            target=httpd.serve_forever, args=(0.05,), name=f"local-sls-{self.port}", daemon=True
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
