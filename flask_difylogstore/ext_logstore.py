"""Drop-in module for Dify's extension list (``api/app_factory.py``).

Add ``ext_logstore`` from this package next to Dify's own extensions, after ``ext_database`` /
``ext_storage`` and before ``ext_celery``::

    from flask_difylogstore import ext_logstore
    extensions = [..., ext_storage, ext_logstore, ext_celery, ...]

Dify calls ``is_enabled()`` and skips the module when it returns ``False``, then ``init_app(app)``.
"""

from __future__ import annotations

from flask import Flask

from flask_difylogstore.errors import LogStoreConfigError
from flask_difylogstore.extension import DifyLogStore
from flask_difylogstore.settings import LogStoreSettings

#: The process's extension instance (one per process, per-app state lives on each app).
logstore = DifyLogStore()


def is_enabled() -> bool:
    """Enabled iff a backend is configured. Invalid settings count as enabled, so ``init_app`` reports them."""
    try:
        return LogStoreSettings.load(env_file=".env").enabled
    except LogStoreConfigError:
        return True


def init_app(app: Flask) -> None:
    """Initialise the log store on ``app`` from the environment and ``.env``."""
    logstore.init_app(app)
