"""The Flask extension: settings, backend client, provisioning, write sink and CLI for one app."""

from __future__ import annotations

import logging
import sys
import typing as t

import click
from flask import Flask
from flask.cli import FlaskGroup

from flask_difylogstore.backends import create_backend
from flask_difylogstore.cli import logstore_group
from flask_difylogstore.errors import LogStoreConfigError
from flask_difylogstore.health import create_health_blueprint
from flask_difylogstore.pipeline import build_pipeline
from flask_difylogstore.pipeline.base import RecordSink
from flask_difylogstore.provisioning import ProvisioningGate
from flask_difylogstore.settings import LogStoreSettings
from flask_difylogstore.state import EXTENSION_KEY, LogStoreState, get_state, track_state

logger = logging.getLogger(__name__)

#: Re-exported: where an app keeps its state, the state itself and how code finds it.
__all__ = ["EXTENSION_KEY", "DifyLogStore", "LogStoreState", "get_state", "runs_cli_group"]


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
        track_state(state)

        app.cli.add_command(logstore_group, name=self._cli_group)
        if settings.health_url_prefix:
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
    return build_pipeline(state.require_backend(), state.settings, gate=state.gate, count=state.count, start=start)


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
