"""The Flask extension: settings, backend client, provisioning, write sink and CLI for one app."""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import typing as t
import weakref
from dataclasses import dataclass, field

import click
from flask import Flask, current_app, has_app_context
from flask.cli import FlaskGroup

from flask_difylogstore.backends import create_backend
from flask_difylogstore.backends.base import LogBackend
from flask_difylogstore.errors import DifyLogStoreError, LogStoreConfigError
from flask_difylogstore.pipeline.base import RecordSink
from flask_difylogstore.provisioning import ProvisioningGate
from flask_difylogstore.settings import LogStoreSettings

logger = logging.getLogger(__name__)

EXTENSION_KEY = "difylogstore"


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


class DifyLogStore:
    """Flask extension that keeps Dify's workflow logs in a log store.

    ``DifyLogStore(app)`` or ``ext = DifyLogStore(); ext.init_app(app)``. Settings come from the
    environment and ``.env`` unless a ready :class:`LogStoreSettings` is passed (the test seam).
    """

    def __init__(
        self, app: Flask | None = None, *, settings: LogStoreSettings | None = None, cli_group: str = "logstore"
    ) -> None:
        self._settings = settings
        self._cli_group = cli_group
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Validate settings, build the backend client, provision, start the writer, attach the CLI.

        Raises :class:`LogStoreConfigError` listing every bad variable, and refuses a second
        registration on the same app.
        """
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                "flask-difylogstore is already initialised on this app; reuse the existing DifyLogStore "
                "instead of calling init_app twice"
            )
        settings = self._settings if self._settings is not None else LogStoreSettings.load()
        problems = settings.problems()
        if problems:
            raise LogStoreConfigError(problems)

        state = LogStoreState(settings=settings)
        if settings.enabled:
            backend = create_backend(settings)
            state.backend = backend
            state.gate = ProvisioningGate(
                backend,
                enabled=settings.auto_provision,
                retry_initial=min(1.0, settings.pipeline.max_retry_delay_s),
                retry_max=settings.pipeline.max_retry_delay_s,
            )
            command = runs_cli_group(self._cli_group)
            if command:
                # `flask logstore ...`: provisioning and the writer wait for a command that needs
                # them (`init` provisions itself; `init --dry-run`, `status`, `health` only look).
                state.gate.defer()
            else:
                try:
                    state.gate.start(timeout=settings.startup_timeout, strict=settings.startup_strict)
                except Exception:
                    backend.close()
                    raise
            state.sink = _build_sink(state, start=not command)

        app.extensions[EXTENSION_KEY] = state
        global _last_state
        _last_state = state
        _live_states.add(state)

        from flask_difylogstore.cli import logstore_group

        app.cli.add_command(logstore_group, name=self._cli_group)
        if settings.health_url_prefix:
            from flask_difylogstore.health import create_health_blueprint

            app.register_blueprint(create_health_blueprint(), url_prefix=settings.health_url_prefix)

    @staticmethod
    def state(app: Flask | None = None) -> LogStoreState:
        """The per-app state (see :func:`get_state`)."""
        return get_state(app)

    @staticmethod
    def close(app: Flask, timeout: float | None = None) -> None:
        """Flush and release the app's log-store resources (also done at interpreter exit)."""
        state = app.extensions.get(EXTENSION_KEY)
        if state is not None:
            t.cast(LogStoreState, state).close(timeout)


def _build_sink(state: LogStoreState, *, start: bool = True) -> RecordSink:
    """The background write pipeline: ``save()`` never waits on the network."""
    from flask_difylogstore.pipeline import build_pipeline

    return build_pipeline(state, start=start)


#: Options of the ``flask`` command that take a value (``flask --app x logstore init``).
_FLASK_VALUE_OPTIONS = frozenset({"--app", "-A", "--env-file", "-e"})


def runs_cli_group(group: str, argv: t.Sequence[str] | None = None) -> bool:
    """Whether this process runs ``flask <group> ...`` (the app is being loaded by Flask's CLI for it).

    Flask's CLI loads the app while it resolves the command, before click has made a context for
    it, so the command line is read from ``sys.argv`` once a ``FlaskGroup`` is known to be running.
    """
    if argv is None:
        ctx = click.get_current_context(silent=True)
        if ctx is None or not isinstance(ctx.find_root().command, FlaskGroup):
            return False
        argv = sys.argv[1:]
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _FLASK_VALUE_OPTIONS:
            skip = True
        elif not arg.startswith("-"):
            return arg == group
    return False


@atexit.register
def _close_all() -> None:
    for state in list(_live_states):
        state.close()
