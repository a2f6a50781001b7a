"""The per-app runtime state (settings, backend, write sink, provisioning gate) and how code finds it.

It lives below the repositories, the migration tools, the CLI and the health report, which all
look it up here, and above the pipeline and the backends it holds; the extension fills it in.
"""

from __future__ import annotations

import atexit
import logging
import threading
import typing as t
import weakref
from dataclasses import dataclass, field

from flask import Flask, current_app, has_app_context

from flask_difylogstore.backends.base import LogBackend
from flask_difylogstore.errors import DifyLogStoreError
from flask_difylogstore.pipeline.base import RecordSink
from flask_difylogstore.provisioning import ProvisioningGate
from flask_difylogstore.settings import LogStoreSettings

logger = logging.getLogger(__name__)

#: Where an app keeps its state: ``app.extensions["difylogstore"]``.
EXTENSION_KEY = "difylogstore"

__all__ = ["EXTENSION_KEY", "LogStoreState", "get_state", "track_state"]


@dataclass(eq=False)
class LogStoreState:
    """Everything the extension holds for one app, kept in ``app.extensions["difylogstore"]``."""

    settings: LogStoreSettings
    backend: LogBackend | None = None
    sink: RecordSink | None = None
    gate: ProvisioningGate | None = None
    counters: dict[str, int] = field(default_factory=dict)
    closed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def enabled(self) -> bool:
        return self.backend is not None

    def require_backend(self) -> LogBackend:
        """The backend, or a clear error when none is configured."""
        if self.backend is None:
            raise DifyLogStoreError(
                "no log-store backend is configured: set LOGSTORE_BACKEND=aliyun_sls or elasticsearch"
            )
        return self.backend

    def require_sink(self) -> RecordSink:
        if self.sink is None:
            raise DifyLogStoreError("no log-store backend is configured, so there is nothing to write to")
        return self.sink

    def count(self, name: str, amount: int = 1) -> None:
        """Increment a named counter (shown by the health report)."""
        with self._lock:
            self.counters[name] = self.counters.get(name, 0) + amount

    def close(self, timeout: float | None = None) -> None:
        """Flush the sink within ``timeout`` and close the backend; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        if self.gate is not None:
            self.gate.stop()
        if self.sink is not None:
            try:
                self.sink.close(timeout if timeout is not None else self.settings.pipeline.shutdown_timeout_s)
            except Exception:
                logger.exception("flask-difylogstore: closing the write pipeline failed")
        if self.backend is not None:
            try:
                self.backend.close()
            except Exception:
                logger.exception("flask-difylogstore: closing the %s client failed", self.backend.name)


_last_state: LogStoreState | None = None
_live_states: weakref.WeakSet[LogStoreState] = weakref.WeakSet()


def track_state(state: LogStoreState) -> None:
    """Remember an initialised app's state: found outside app contexts, closed at interpreter exit."""
    global _last_state
    _last_state = state
    _live_states.add(state)


def get_state(app: Flask | None = None) -> LogStoreState:
    """The extension state of ``app``, the current app, or (outside any app context) the only live one.

    Dify builds repositories on engine threads and in Celery tasks; those normally run inside an
    app context, and the fallback covers the ones that don't. The fallback is unambiguous only while
    exactly one app's state is live (initialised and not closed): with several, the caller must say
    which app it means, by running inside its app context.
    """
    if app is None and has_app_context():
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    if app is not None:
        state = app.extensions.get(EXTENSION_KEY)
        if state is None:
            raise DifyLogStoreError(
                "flask-difylogstore is not initialised on this app: call DifyLogStore().init_app(app) "
                "(inside Dify: add ext_logstore to the extension list in app_factory.py)"
            )
        return t.cast(LogStoreState, state)
    live = [state for state in list(_live_states) if not state.closed]
    if len(live) > 1:
        raise DifyLogStoreError(
            f"flask-difylogstore is initialised on {len(live)} apps, so outside an app context it cannot "
            "tell which one is meant: use it inside `with app.app_context():` or pass the app"
        )
    if live:
        return live[0]
    if _last_state is None:
        raise DifyLogStoreError(
            "flask-difylogstore has no app: call DifyLogStore().init_app(app) first, or use it inside "
            "`with app.app_context():`"
        )
    return _last_state


@atexit.register
def _close_all() -> None:
    for state in list(_live_states):
        state.close()
