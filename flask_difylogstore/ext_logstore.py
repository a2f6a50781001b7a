"""Drop-in module for Dify's extension list (``api/app_factory.py``).

Add ``ext_logstore`` from this package next to Dify's own extensions, after ``ext_database`` /
``ext_storage`` and before ``ext_celery``::

    from flask_difylogstore import ext_logstore
    extensions = [..., ext_storage, ext_logstore, ext_celery, ...]

Dify calls ``is_enabled()`` and skips the module when it returns ``False``, then ``init_app(app)``.
``init_app`` makes Dify construct the package's repositories on every Dify line (see
:mod:`flask_difylogstore.wiring`) — or fails with one message naming the setting to change — and
then starts the extension.
"""

from __future__ import annotations

import logging

from flask import Flask

from flask_difylogstore import wiring
from flask_difylogstore.errors import LogStoreConfigError
from flask_difylogstore.extension import DifyLogStore
from flask_difylogstore.settings import LogStoreSettings

logger = logging.getLogger(__name__)

#: Where ``init_app`` leaves the :class:`~flask_difylogstore.wiring.HostWiring` it detected and installed.
WIRING_KEY = wiring.WIRING_KEY

#: The process's extension instance (one per process, per-app state lives on each app).
logstore = DifyLogStore()


def is_enabled() -> bool:
    """Enabled iff a backend is configured. Invalid settings count as enabled, so ``init_app`` reports them."""
    try:
        return LogStoreSettings.load(env_file=".env").enabled
    except LogStoreConfigError:
        return True


def init_app(app: Flask) -> None:
    """Wire the host Dify to the package's repositories, then initialise the log store on ``app``.

    The settings are read from the environment and ``.env``; a bad configuration raises
    :class:`LogStoreConfigError` before anything changes, a host that cannot be wired raises
    :class:`~flask_difylogstore.wiring.DifyWiringError`.
    """
    settings = LogStoreSettings.load()
    if settings.problems():
        raise LogStoreConfigError(settings.problems())
    host = wiring.install(app) if settings.enabled else wiring.detect()
    app.extensions[WIRING_KEY] = host
    logger.info("flask-difylogstore: host is %s", host.description)
    if host.line == "in-code" and settings.enabled and settings.dual_read_enabled and settings.cutover_at is None:
        # Every run has a control row in workflow_runs on this line: without a cut-over, each console list
        # and statistic also merges all of them with the log store.
        logger.warning(
            "flask-difylogstore: dual read is on without LOGSTORE_CUTOVER_AT; on this Dify line every run keeps "
            "a control row in workflow_runs, so console reads also scan those. Set LOGSTORE_CUTOVER_AT to the "
            "time the log store took over (or LOGSTORE_DUAL_READ_ENABLED=false once history is migrated)"
        )
    logstore.init_app(app)
