"""Where offloaded full payloads live: the object behind ``upload_files.key``.

Dify keeps the full JSON of a truncated node payload in its object storage. Migration reads it
to store it as PAYLOAD records; clean-up deletes it once the log store holds it. Inside Dify the
store is Dify's own ``extensions.ext_storage.storage``; standalone it is a local directory
(``--storage-dir``, else Dify's ``OPENDAL_FS_ROOT`` / ``STORAGE_LOCAL_PATH`` from the app config,
else ``<instance path>/storage``). Anything with ``load`` and ``delete`` can be passed instead.
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


class LocalFileStore:
    """Objects as files under ``root`` (Dify's local / OpenDAL ``fs`` storage layout)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"storage key {key!r} points outside {self.root}")
        return path

    def load(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def save(self, key: str, data: bytes) -> None:
        """Write an object (tests and the demo seed offloaded payloads with it)."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def __repr__(self) -> str:
        return f"LocalFileStore({str(self.root)!r})"


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
    if storage_dir is not None:
        return LocalFileStore(storage_dir)
    dify = _dify_storage()
    if dify is not None:
        return dify
    for key in ("OPENDAL_FS_ROOT", "STORAGE_LOCAL_PATH"):
        value = app.config.get(key)
        if value:
            root = Path(value)
            return LocalFileStore(root if root.is_absolute() else Path(app.root_path) / root)
    return LocalFileStore(Path(app.instance_path) / "storage")
