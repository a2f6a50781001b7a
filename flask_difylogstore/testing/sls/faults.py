"""Fault injection, so reliability code can be tested against failures SLS really produces."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol


class _Listener(Protocol):
    def _close_listener(self) -> None: ...
    def _open_listener(self) -> None: ...


@dataclass(slots=True)
class Failure:
    status: int
    code: str
    message: str


#: API names accepted by the ``api=`` filters: the SLS operation a request maps to.
API_NAMES = ("PutLogs", "GetLogs", "GetHistograms", "Admin")


class Faults:
    """Failures applied to the next requests; ``api`` restricts one to an operation name.

    ``refuse_connections()`` closes the listening socket (clients get "connection refused"),
    ``drop_connections(n)`` closes the connection after reading a request without answering,
    ``fail_next(n, status, code)`` answers with an SLS error body, ``delay(s)`` sleeps before
    answering. ``clear()`` undoes all of them.
    """

    def __init__(self, server: _Listener) -> None:
        self._server = server
        self._lock = threading.Lock()
        self._delay = 0.0
        self._delay_api: str | None = None
        self._fail: list[tuple[Failure, str | None]] = []
        self._drop = 0
        self._drop_api: str | None = None
        self.refusing = False

    def refuse_connections(self) -> None:
        with self._lock:
            self.refusing = True
        self._server._close_listener()

    def accept_connections(self) -> None:
        with self._lock:
            was = self.refusing
            self.refusing = False
        if was:
            self._server._open_listener()

    def delay(self, seconds: float, *, api: str | None = None) -> None:
        with self._lock:
            self._delay, self._delay_api = float(seconds), api

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 503,
        code: str = "ServerBusy",
        message: str = "The server is busy, please try again later.",
        api: str | None = None,
    ) -> None:
        with self._lock:
            self._fail.extend((Failure(status, code, message), api) for _ in range(n))

    def drop_connections(self, n: int = 1, *, api: str | None = None) -> None:
        with self._lock:
            self._drop, self._drop_api = n, api

    def clear(self) -> None:
        with self._lock:
            self._delay, self._delay_api = 0.0, None
            self._fail.clear()
            self._drop, self._drop_api = 0, None
        self.accept_connections()

    # --- used by the request handler ----------------------------------------------------------
    def before_request(self, api: str) -> Failure | str | None:
        """Apply delay; return "drop", a Failure to answer with, or None to proceed."""
        with self._lock:
            delay = self._delay if self._delay_api in (None, api) else 0.0
            action: Failure | str | None = None
            if self._drop and self._drop_api in (None, api):
                self._drop -= 1
                action = "drop"
            else:
                for i, (failure, only) in enumerate(self._fail):
                    if only in (None, api):
                        del self._fail[i]
                        action = failure
                        break
        if delay:
            time.sleep(delay)
        return action
