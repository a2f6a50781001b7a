"""The HTTP front end: a threaded loopback server speaking Elasticsearch's REST protocol."""

from __future__ import annotations

import contextlib
import fnmatch
import gzip
import re
import socket
import sys
import threading
import time
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson

from flask_difylogstore.testing.es import api_admin, api_bulk, api_docs, api_search, api_templates, jsonpos
from flask_difylogstore.testing.es.errors import EsError
from flask_difylogstore.testing.es.faults import Faults
from flask_difylogstore.testing.es.indices import Cluster
from flask_difylogstore.testing.es.params import check as params_check
from flask_difylogstore.testing.es.routing import MethodNotAllowed, Request, Router

if t.TYPE_CHECKING:
    from elasticsearch import Elasticsearch

router = Router()
"""Every endpoint, in the order they are matched."""
for _module in (api_admin, api_docs, api_bulk, api_search, api_templates):
    router.include(_module.routes)

_COMPAT = re.compile(r"compatible-with=(\d+)")
_LOCATED = re.compile(r"\[\d+:\d+\] ")


def _client_major() -> int:
    try:
        import elasticsearch

        return int(elasticsearch.__version__[0])
    except ImportError:
        return 9


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    owner: LocalElasticsearchServer

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def process_request(self, request: t.Any, client_address: t.Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: t.Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: t.Any, client_address: t.Any) -> None:
        """A client that went away (timeouts, injected faults) is normal here, not worth a traceback."""
        if isinstance(sys.exc_info()[1], ConnectionError | OSError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Drop keep-alive connections too, so a stopped server is really unreachable."""
        with self.connections_lock:
            for conn in list(self.connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self.connections.clear()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: t.Any) -> None:
        """Quiet: tests should not print a line per request."""

    def handle(self) -> None:
        if self.server.owner.faults.refusing:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        super().handle()

    def _serve(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        if length > owner.max_content_length:
            while length > 0:  # drain, so the client reads the 413 instead of a reset connection
                length -= len(self.rfile.read(min(length, 1 << 20)) or b"x" * length)
            self._reply(413, b"", None)
            return
        body = self.rfile.read(length) if length else b""
        if self.headers.get("Content-Encoding", "").lower() == "gzip" and body:
            body = gzip.decompress(body)
        if owner.faults.refusing:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if owner.faults.delay_seconds:
            time.sleep(owner.faults.delay_seconds)
        compat = self._compat()
        try:
            self._check_media_types(owner.major)
            status, payload = owner.dispatch(self.command, self.path, body)
        except EsError as exc:
            status, payload = exc.status, exc.body()
        except Exception as exc:  # a bug or an unsupported input: answer like ES's internal errors do
            status, payload = 500, EsError(500, "exception", f"{type(exc).__name__}: {exc}").body()
        self._reply(status, payload, compat)

    def _reply(self, status: int, payload: t.Any, compat: int | None) -> None:
        data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        self.send_response(status)
        self.send_header("X-Elastic-Product", "Elasticsearch")
        if isinstance(payload, bytes) and payload[:1] not in (b"{", b"["):
            self.send_header("Content-Type", "text/plain; charset=UTF-8")
        elif compat:
            self.send_header("Content-Type", f"application/vnd.elasticsearch+json;compatible-with={compat}")
        else:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "keep-alive")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _compat(self) -> int | None:
        found = _COMPAT.search(self.headers.get("Accept", "") + " " + self.headers.get("Content-Type", ""))
        return int(found.group(1)) if found else None

    def _check_media_types(self, major: int) -> None:
        """A server accepts ``compatible-with`` its own major and the previous one (REST compatibility)."""
        accept, ctype = self.headers.get("Accept"), self.headers.get("Content-Type")
        versions = {int(m.group(1)) for h in (accept, ctype) if h for m in [_COMPAT.search(h)] if m}
        if versions and (len(versions) > 1 or not versions <= {major, major - 1}):
            raise EsError(
                400,
                "media_type_header_exception",
                "Invalid media-type value on headers [Accept, Content-Type]",
                caused_by={
                    "type": "status_exception",
                    "reason": "A compatible version is required on both Content-Type and Accept headers if "
                    "either one has requested a compatible version and the compatible versions must match. "
                    f"Accept={accept}, Content-Type={ctype}",
                },
            )

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve


class LocalElasticsearchServer:
    """A local Elasticsearch-compatible server for tests and development, never for production.

    ``LocalElasticsearchServer(port=0)`` picks a free port; use it as a context manager or call
    ``start()``/``stop()``. With ``data_dir`` the data is saved on ``stop()`` and loaded on ``start()``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        version: str | None = None,
        data_dir: str | Path | None = None,
        refresh_interval: float = 1.0,
        max_content_length: int = 100 * 1024 * 1024,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.version = version or f"{_client_major()}.1.0"
        self.major = int(self.version.split(".")[0])
        minor = int(self.version.split(".")[1]) if "." in self.version else 0
        error_type = "document_parsing_exception" if (self.major, minor) >= (8, 8) else "mapper_parsing_exception"
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.max_content_length = max_content_length
        self.cluster = Cluster(error_type=error_type, default_refresh=refresh_interval)
        self.faults = Faults()
        self.pits: dict[str, dict[str, t.Any]] = {}
        self.scrolls: dict[str, dict[str, t.Any]] = {}
        self._httpd: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.port = port

    # ---- lifecycle ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalElasticsearchServer:
        if self._httpd is not None:
            return self
        if self.data_dir is not None:
            with self.cluster.lock:
                self.cluster.load(self.data_dir)
        httpd = _Server((self.host, self.port or self._requested_port), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._stopping.clear()
        with self.cluster.lock:
            self.cluster.closing = False
        self._threads = [
            threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                daemon=True,
                name=f"local-es-{self.port}",
            ),
            threading.Thread(target=self._refresher, daemon=True, name=f"local-es-refresh-{self.port}"),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; the port is kept so ``start()`` comes back on the same URL with the data."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        with self.cluster.lock:
            self.cluster.close()
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        for thread in self._threads:
            thread.join(timeout=5)
        if self.data_dir is not None:
            with self.cluster.lock:
                self.cluster.save(self.data_dir)

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> LocalElasticsearchServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _refresher(self) -> None:
        while not self._stopping.wait(0.05):
            with self.cluster.lock:
                self.cluster.refresh_due()

    # ---- public helpers -----------------------------------------------------------------------
    def client(self, **kwargs: t.Any) -> Elasticsearch:
        """An ``Elasticsearch`` client for this server (extra keyword arguments are passed through)."""
        from elasticsearch import Elasticsearch

        return Elasticsearch(self.url, **kwargs)

    def apply_lifecycle(self, now: float | None = None) -> list[str]:
        """Run ILM delete phases as of ``now`` (epoch seconds); returns the deleted index names."""
        with self.cluster.lock:
            return self.cluster.apply_lifecycle(now)

    def refresh(self, index: str | None = None) -> None:
        with self.cluster.lock:
            self.cluster.refresh_now(self.cluster.resolve(index, ignore_unavailable=True))

    def save(self) -> None:
        if self.data_dir is None:
            raise ValueError("this server has no data_dir")
        with self.cluster.lock:
            self.cluster.save(self.data_dir)

    # ---- dispatch -----------------------------------------------------------------------------
    def dispatch(self, method: str, raw_path: str, body: bytes) -> tuple[int, t.Any]:
        failure = self.faults.take_request_failure()
        if failure is not None:
            raise failure
        split = urlsplit(raw_path)
        parts = [unquote(p) for p in split.path.split("/") if p]
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        try:
            found = router.match(method, parts)
        except MethodNotAllowed as exc:
            allowed = ", ".join(exc.allowed)
            reason = f"Incorrect HTTP method for uri [{raw_path}] and method [{method}], allowed: [{allowed}]"
            return 405, {"error": reason, "status": 405}
        if found is None:  # RestController#handleBadRequest: a plain error string, status 400
            return 400, {"error": f"no handler found for uri [{raw_path}] and method [{method}]", "status": 400}
        handler, args, route = found
        params_check(method, route, split.path, params)
        if not body and "source" in params:  # a body passed in the URL (GET clients without bodies)
            body = params["source"].encode()
        try:
            status, payload = handler(self, Request(method, split.path, params, body, args, route))
        except EsError as exc:
            _locate(exc, body)
            raise
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
            # A body whose values have the wrong JSON type for where they stand: Elasticsearch's parsers
            # refuse those with an x_content_parse_exception (400), never with an internal error.
            raise EsError(
                400,
                "x_content_parse_exception",
                f"[1:1] failed to parse the request: a value has the wrong type or form ({type(exc).__name__}: {exc})",
            ) from None
        if params.get("filter_path") and isinstance(payload, dict):
            payload = filter_path(payload, params["filter_path"].split(","))
        if params.get("pretty", "false").lower() in ("", "true") and isinstance(payload, dict | list):
            payload = orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n"
        return status, payload


def _locate(exc: EsError, body: bytes) -> None:
    """Prefix an ``x_content_parse_exception`` with the ``[line:col]`` of the field it is about."""
    if exc.path is None or not body or _LOCATED.match(exc.reason) or "line" in exc.extra:
        return
    found = jsonpos.key_positions(body).get(exc.path)
    if found is None:
        return
    if exc.type == "parsing_exception":  # ParsingException: line and col fields
        exc.extra["line"], exc.extra["col"] = found
    else:  # XContentParseException: the location leads the message
        exc.reason = f"[{found[0]}:{found[1]}] {exc.reason}"


def filter_path(payload: dict[str, t.Any], paths: list[str]) -> dict[str, t.Any]:
    """Keep only the dotted paths named (``*`` matches one level, ``**`` any depth), like ``filter_path``."""
    include = [p.split(".") for p in paths if not p.startswith("-")]

    def keep(node: t.Any, patterns: list[list[str]]) -> t.Any:
        if any(not p for p in patterns):
            return node
        if isinstance(node, list):
            items = [keep(item, patterns) for item in node]
            return [i for i in items if i is not None] or None
        if not isinstance(node, dict):
            return None
        out = {}
        for key, value in node.items():
            rest = [p[1:] for p in patterns if p[0] in ("*", key) or fnmatch.fnmatchcase(key, p[0])]
            rest += [p for p in patterns if p[0] == "**"] + [p[1:] for p in patterns if p[0] == "**"]
            if rest:
                kept = keep(value, rest)
                if kept is not None:
                    out[key] = kept
        return out or None

    return keep(payload, include) or {}
