"""Request/response types and the path router shared by the API modules."""

from __future__ import annotations

import typing as t
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from flask_difylogstore.testing.es.errors import EsError

if t.TYPE_CHECKING:
    from flask_difylogstore.testing.es.faults import Faults
    from flask_difylogstore.testing.es.indices import Cluster


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    body: bytes
    args: dict[str, str] = field(default_factory=dict)
    route: str = ""

    def json(self, default: t.Any = None) -> t.Any:
        if not self.body.strip():
            return {} if default is None else default
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise EsError(400, "x_content_parse_exception", f"[1:1] failed to parse JSON body: {exc}") from None

    def flag(self, name: str, default: bool = False) -> bool:
        if name not in self.params:
            return default
        return self.params[name].lower() in ("", "true")


class Node(t.Protocol):
    """What a handler sees of the running server (``LocalElasticsearchServer`` provides it)."""

    version: str
    major: int
    cluster: Cluster
    faults: Faults
    pits: dict[str, dict[str, t.Any]]
    scrolls: dict[str, dict[str, t.Any]]


Response = tuple[int, t.Any]
Handler = Callable[[Node, Request], Response]


class MethodNotAllowed(Exception):
    """A known path asked with a method it does not take."""

    def __init__(self, method: str, allowed: list[str]) -> None:
        super().__init__(method)
        self.method = method
        self.allowed = allowed


class Router:
    """Matches ``METHOD /seg/{placeholder}/...`` routes; ``{index}`` never matches an API word."""

    def __init__(self) -> None:
        self.routes: list[tuple[frozenset[str], tuple[str, ...], Handler]] = []

    def add(self, methods: str, pattern: str, handler: Handler) -> None:
        segments = tuple(s for s in pattern.strip("/").split("/") if s)
        self.routes.append((frozenset(methods.split()), segments, handler))

    def route(self, methods: str, *patterns: str) -> Callable[[Handler], Handler]:
        def decorate(fn: Handler) -> Handler:
            for pattern in patterns:
                self.add(methods, pattern, fn)
            return fn

        return decorate

    def include(self, other: Router) -> None:
        """Add another router's routes after this one's (earlier routes win a match)."""
        self.routes.extend(other.routes)

    def match(self, method: str, parts: list[str]) -> tuple[Handler, dict[str, str], str] | None:
        """The handler, the path placeholders and the route pattern (``{index}/_doc/{id}``) of a request."""
        allowed: set[str] = set()
        for methods, segments, handler in self.routes:
            if len(segments) != len(parts):
                continue
            args: dict[str, str] = {}
            for seg, part in zip(segments, parts, strict=True):
                if seg.startswith("{"):
                    if part.startswith("_") and not (seg in ("{index}", "{name}") and part == "_all") and seg != "{id}":
                        break
                    args[seg[1:-1]] = part
                elif seg != part:
                    break
            else:
                if method in methods or (method == "HEAD" and "GET" in methods):
                    return handler, args, "/".join(segments)
                allowed |= methods
        if allowed:
            # RestController: 405 with a plain error string naming the allowed methods (EnumSet order)
            order = ["GET", "POST", "PUT", "DELETE", "HEAD"]
            names = sorted(allowed, key=order.index)
            raise MethodNotAllowed(method, names)
        return None
