"""A Dify-shaped host application for tests, the demo and local development.

It mirrors Dify's ``app_factory.create_app()``: a Flask app, configuration copied into
``app.config``, then an ordered list of ``ext_*`` modules, each initialised only when its
``is_enabled()`` says so. The relational database is Flask-SQLAlchemy's (``app.extensions["sqlalchemy"]``)
on SQLite or PostgreSQL, as in Dify, with Dify's workflow-log tables created from the package's models.
"""

from __future__ import annotations

import logging
import time
import typing as t
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_difylogstore.dify.models import Base
from flask_difylogstore.extension import DifyLogStore
from flask_difylogstore.settings import LogStoreSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Extension:
    """One entry of the extension list: Dify's ``ext_*`` module shape."""

    name: str
    init_app: Callable[[Flask], None]
    is_enabled: Callable[[], bool] = lambda: True


def database_extension(db: SQLAlchemy) -> Extension:
    """``ext_database``: Flask-SQLAlchemy plus Dify's workflow-log tables."""

    def init_app(app: Flask) -> None:
        db.init_app(app)
        with app.app_context():
            Base.metadata.create_all(db.engine)

    return Extension("ext_database", init_app)


def logstore_extension(settings: LogStoreSettings | None = None) -> Extension:
    """``ext_logstore``: this package, with ready settings or from the environment."""

    def is_enabled() -> bool:
        if settings is not None:
            return settings.enabled
        from flask_difylogstore import ext_logstore

        return ext_logstore.is_enabled()

    def init_app(app: Flask) -> None:
        DifyLogStore(settings=settings).init_app(app)

    return Extension("ext_logstore", init_app, is_enabled)


def create_app(
    database_uri: str = "sqlite://",
    *,
    settings: LogStoreSettings | None = None,
    extensions: Sequence[Extension] | None = None,
    config: dict[str, t.Any] | None = None,
) -> Flask:
    """Build the host app: ``ext_database`` then ``ext_logstore`` unless ``extensions`` says otherwise."""
    app = Flask("difylogstore_host")
    app.config.update(SQLALCHEMY_DATABASE_URI=database_uri, SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True})
    if config:
        app.config.update(config)
    if extensions is None:
        extensions = [database_extension(SQLAlchemy()), logstore_extension(settings)]
    for ext in extensions:
        if not ext.is_enabled():
            logger.info("Skipped %s", ext.name)
            continue
        started = time.perf_counter()
        ext.init_app(app)
        logger.debug("Loaded %s (%.1f ms)", ext.name, (time.perf_counter() - started) * 1000)
    return app
