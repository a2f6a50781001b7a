"""Where offloaded full payloads live: the object behind ``upload_files.key``.

Dify keeps the full JSON of a truncated node payload in its object storage. Migration reads it
to store it as PAYLOAD records; clean-up deletes it once the log store holds it. Inside Dify the
store is Dify's own ``extensions.ext_storage.storage`` (S3, OSS, OpenDAL, ...); standalone it is
the package's local file store that its relational repositories write to (under the instance
path), or the directory given as ``--storage-dir``. Anything with ``load`` and ``delete`` fits.
"""

from __future__ import annotations

import importlib
import typing as t
from pathlib import Path

from flask import Flask


@t.runtime_checkable
class PayloadStore(t.Protocol):
    """Reads and deletes storage objects by ``upload_files.key``."""

    def load(self, key: str) -> bytes:
        """The object's bytes; raises when it is missing or the storage is unreachable."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object (a missing object is not an error)."""
        ...


class DifyStorage:
    """Dify's configured object storage (S3, OSS, OpenDAL, ...) through its ``storage`` facade."""

    def __init__(self, storage: t.Any) -> None:
        self._storage = storage

    def load(self, key: str) -> bytes:
        return t.cast(bytes, self._storage.load_once(key))

    def delete(self, key: str) -> None:
        self._storage.delete(key)

    def __repr__(self) -> str:
        return "DifyStorage()"


def _dify_storage() -> DifyStorage | None:
    try:
        module = importlib.import_module("extensions.ext_storage")
    except Exception:
        return None
    storage = getattr(module, "storage", None)
    if storage is None or getattr(storage, "storage_runner", None) is None:
        return None
    return DifyStorage(storage)


def default_payload_store(app: Flask, storage_dir: str | Path | None = None) -> PayloadStore:
    """The store offloaded payloads are read from (see the module docstring for the order)."""
    from flask_difylogstore.repositories.relational import LocalFileStore, default_storage

    if storage_dir is not None:
        return LocalFileStore(storage_dir)
    dify = _dify_storage()
    if dify is not None:
        return dify
    with app.app_context():
        return default_storage()
