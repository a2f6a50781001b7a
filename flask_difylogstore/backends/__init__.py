"""Backends by short name, imported lazily so an SDK is needed only for the backend in use.

``LOGSTORE_BACKEND`` names a built-in backend (``aliyun_sls``, ``elasticsearch``) or the dotted
path of a third-party class. A backend class provides ``from_settings(settings) -> backend`` and
implements :class:`~flask_difylogstore.backends.base.LogBackend`.
"""

from __future__ import annotations

import importlib
import importlib.util
import typing as t

from flask_difylogstore._settings_backends import add_backend_name, remove_backend_name
from flask_difylogstore.backends.base import (
    AggregateQuery,
    Filter,
    GroupBy,
    LogBackend,
    Metric,
    Page,
    PingResult,
    ProvisionChange,
    ProvisionReport,
    RecordQuery,
    Scope,
    TimeRange,
    WriteResult,
)
from flask_difylogstore.errors import BackendNotInstalledError, LogStoreConfigError

if t.TYPE_CHECKING:
    from flask_difylogstore.settings import LogStoreSettings

__all__ = [
    "AggregateQuery",
    "BackendFactory",
    "Filter",
    "GroupBy",
    "LogBackend",
    "Metric",
    "Page",
    "PingResult",
    "ProvisionChange",
    "ProvisionReport",
    "RecordQuery",
    "Scope",
    "TimeRange",
    "WriteResult",
    "create_backend",
    "register_backend",
    "unregister_backend",
    "resolve_backend",
]


class BackendFactory(t.Protocol):
    """Anything with ``from_settings(settings)`` returning a :class:`LogBackend`."""

    def from_settings(self, settings: LogStoreSettings) -> LogBackend: ...


#: name -> (module, class name, extra to install, SDK module the backend needs)
_BUILTIN: dict[str, tuple[str, str, str, str]] = {
    "aliyun_sls": ("flask_difylogstore.backends.aliyun_sls", "AliyunSLSBackend", "sls", "aliyun.log"),
    "elasticsearch": ("flask_difylogstore.backends.elasticsearch", "ElasticsearchBackend", "es", "elasticsearch"),
    "memory": ("flask_difylogstore.backends.memory", "MemoryBackend", "", ""),
}
_REGISTERED: dict[str, BackendFactory] = {}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make a backend available under a short name (for third-party packages and tests)."""
    _REGISTERED[name] = factory
    add_backend_name(name)  # so LOGSTORE_BACKEND=<name> passes the settings check


def unregister_backend(name: str) -> None:
    """Undo :func:`register_backend` (a test's registration, say); an unknown name is ignored."""
    _REGISTERED.pop(name, None)
    remove_backend_name(name)


def registered_backend_names() -> set[str]:
    """Names registered with :func:`register_backend` (built-in names are always accepted)."""
    return set(_REGISTERED)


def _sdk_missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except ModuleNotFoundError:
        return True


def resolve_backend(name: str) -> BackendFactory:
    """The backend class for ``name``: a registered or built-in short name, or a dotted path."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name in _BUILTIN:
        module_name, class_name, extra, sdk = _BUILTIN[name]
        if sdk and _sdk_missing(sdk):
            raise BackendNotInstalledError(
                f"the {name} backend needs the {sdk!r} package: pip install 'flask-difylogstore[{extra}]'"
            )
        return t.cast(BackendFactory, getattr(importlib.import_module(module_name), class_name))
    module_name, _, class_name = name.rpartition(".")
    if not module_name:
        known = ", ".join(sorted({*_BUILTIN, *_REGISTERED}))
        raise LogStoreConfigError.single("LOGSTORE_BACKEND", f"unknown backend {name!r}", f"use one of: {known}")
    try:
        return t.cast(BackendFactory, getattr(importlib.import_module(module_name), class_name))
    except (ImportError, AttributeError) as exc:
        raise LogStoreConfigError.single(
            "LOGSTORE_BACKEND", f"cannot import {name!r} ({exc})", "set a dotted path to an importable backend class"
        ) from None


def create_backend(settings: LogStoreSettings) -> LogBackend:
    """Build the configured backend (one per app; the caller owns and closes it)."""
    factory = resolve_backend(settings.effective_backend)
    return factory.from_settings(settings)
