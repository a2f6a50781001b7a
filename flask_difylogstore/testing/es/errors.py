"""Elasticsearch-shaped errors, so the real client maps them to its own exception classes."""

from __future__ import annotations

import typing as t

SHARD_LEVEL_TYPES = frozenset({"query_shard_exception", "parse_exception", "aggregation_execution_exception"})


class EsError(Exception):
    """An error that the HTTP layer renders as ``{"error": {...}, "status": N}``."""

    def __init__(
        self,
        status: int,
        type_: str,
        reason: str,
        *,
        index: str | None = None,
        root_cause: dict[str, t.Any] | None = None,
        caused_by: dict[str, t.Any] | None = None,
        extra: dict[str, t.Any] | None = None,
        shard: bool = False,
    ) -> None:
        super().__init__(reason)
        #: Raised while a shard executes a search (not while the request is parsed): the search
        #: APIs report it as Elasticsearch does, inside a ``search_phase_execution_exception``.
        self.shard = shard or type_ in SHARD_LEVEL_TYPES
        #: The body path of the field name an ``x_content_parse_exception`` is about; the server
        #: prefixes the reason with its ``[line:col]``, as Jackson's location does in Elasticsearch.
        self.path: tuple[str | int, ...] | None = None
        self.field_key: str | None = None
        #: Within a query clause, the keys leading to the offending one (``(field, key)``, ``(key,)``).
        self.relative_path: tuple[str | int, ...] = ()
        self.status = status
        self.type = type_
        self.reason = reason
        self.index = index
        self.root_cause = root_cause
        self.caused_by = caused_by
        self.extra = extra or {}

    def cause(self) -> dict[str, t.Any]:
        """The inner ``{"type", "reason", ...}`` object used in bulk items and root causes."""
        body: dict[str, t.Any] = {"type": self.type, "reason": self.reason}
        if self.index is not None:
            body["index_uuid"] = "_na_"
            body["index"] = self.index
        body.update(self.extra)
        if self.caused_by is not None:
            body["caused_by"] = self.caused_by
        return body

    def body(self) -> dict[str, t.Any]:
        """The full error response body."""
        inner = self.cause()
        root = self.root_cause or {k: v for k, v in inner.items() if k != "caused_by"}
        return {"error": {"root_cause": [root], **inner}, "status": self.status}


def index_not_found(name: str) -> EsError:
    return EsError(
        404,
        "index_not_found_exception",
        f"no such index [{name}]",
        index=name,
        extra={"resource.type": "index_or_alias", "resource.id": name},
    )


def bad_request(reason: str, type_: str = "illegal_argument_exception") -> EsError:
    return EsError(400, type_, reason)


def parsing_error(reason: str) -> EsError:
    return EsError(400, "parsing_exception", reason)


def version_conflict(index: str, doc_id: str, reason: str) -> EsError:
    return EsError(409, "version_conflict_engine_exception", f"[{doc_id}]: {reason}", index=index)


def shard_error(reason: str) -> EsError:
    """An ``illegal_argument_exception`` a shard raises while executing a search (fielddata, field types)."""
    return EsError(400, "illegal_argument_exception", reason, shard=True)


def search_phase_failure(exc: EsError, index: str | None) -> EsError:
    """A shard-level failure as the search APIs report it when every shard failed (one shard here)."""
    cause = exc.cause()
    failed = {"shard": 0, "index": index, "node": "local-node", "reason": cause}
    return EsError(
        exc.status,
        "search_phase_execution_exception",
        "all shards failed",
        root_cause={k: v for k, v in cause.items() if k != "caused_by"},
        caused_by=cause,
        extra={"phase": "query", "grouped": True, "failed_shards": [failed]},
    )
