"""Fault injection: make the server slow, unreachable, or fail requests and bulk items on demand."""

from __future__ import annotations

import threading

from flask_difylogstore.testing.es.errors import EsError

_TYPES = {
    429: ("es_rejected_execution_exception", "rejected execution of coordinating operation"),
    500: ("exception", "internal server error (injected fault)"),
    502: ("exception", "bad gateway (injected fault)"),
    503: (
        "cluster_block_exception",
        "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];",
    ),
    504: ("exception", "gateway timeout (injected fault)"),
}


def injected(status: int, error_type: str | None = None) -> EsError:
    default_type, reason = _TYPES.get(status, ("exception", "injected fault"))
    return EsError(status, error_type or default_type, reason)


class Faults:
    """Public fault controls, e.g. ``server.faults.fail_next(2, status=429)``; ``clear()`` undoes all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self.refusing = False
            self.delay_seconds = 0.0
            self._fail: list[EsError] = []
            self._bulk_count = 0
            self._bulk_fraction = 0.0
            self._bulk_status = 429
            self._bulk_seen = 0

    def refuse_connections(self, refuse: bool = True) -> None:
        """Drop every new connection without a response until ``refuse_connections(False)``/``clear()``."""
        self.refusing = refuse

    def delay(self, seconds: float) -> None:
        """Sleep this long before answering each request (for client timeout tests)."""
        self.delay_seconds = max(0.0, float(seconds))

    def fail_next(self, n: int = 1, status: int = 429, error_type: str | None = None) -> None:
        """Answer the next ``n`` requests with an error (default: 429 ``es_rejected_execution_exception``)."""
        with self._lock:
            self._fail.extend(injected(status, error_type) for _ in range(n))

    def fail_bulk_items(self, fraction: float | None = None, count: int | None = None, status: int = 429) -> None:
        """Reject bulk items: the next ``count`` items, or ``fraction`` of the items of every bulk request."""
        with self._lock:
            self._bulk_count = int(count or 0)
            self._bulk_fraction = float(fraction or 0.0)
            self._bulk_status = status
            self._bulk_seen = 0

    def take_request_failure(self) -> EsError | None:
        with self._lock:
            return self._fail.pop(0) if self._fail else None

    def bulk_item_failure(self) -> EsError | None:
        """Called once per bulk item; returns the error to report instead of applying the item."""
        with self._lock:
            if self._bulk_count > 0:
                self._bulk_count -= 1
                return injected(self._bulk_status)
            if self._bulk_fraction > 0:
                before = int(self._bulk_seen * self._bulk_fraction)
                self._bulk_seen += 1
                if int(self._bulk_seen * self._bulk_fraction) > before:
                    return injected(self._bulk_status)
        return None
