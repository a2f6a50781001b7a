"""A memory backend that survives ``kill -9``: every stored snapshot is appended to a journal file.

Tests use it where a migration runs in a subprocess that gets killed: the parent process reads
the journal back. Like SLS it is append-only underneath (re-sent snapshots are appended again)
while readers see one latest snapshot per entity.
"""

from __future__ import annotations

import os
import threading
import time
import typing as t
from collections.abc import Sequence
from pathlib import Path

import orjson

from flask_difylogstore.backends.base import WriteResult
from flask_difylogstore.backends.memory import MemoryBackend
from flask_difylogstore.records import LogRecord, RecordKind
from flask_difylogstore.schemas import schema

if t.TYPE_CHECKING:
    from flask_difylogstore.settings import LogStoreSettings

#: Seconds each write waits (lets a test kill the writer in the middle of a run).
DELAY_ENV = "DIFYLOGSTORE_TEST_WRITE_DELAY"


def journal_path(spool_dir: Path) -> Path:
    return Path(spool_dir) / "journal.jsonl"


class JournalBackend(MemoryBackend):
    name = "journal"
    max_batch_records = 2000

    def __init__(self, path: Path, delay: float = 0.0) -> None:
        super().__init__()
        self.path = path
        self.delay = delay
        self.appended = 0
        self._file_lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self._replay()
        self._fh = self.path.open("ab")

    @classmethod
    def from_settings(cls, settings: LogStoreSettings) -> JournalBackend:
        return cls(journal_path(settings.spool_dir), float(os.environ.get(DELAY_ENV, "0") or 0))

    def _replay(self) -> None:
        for line in self.path.read_bytes().splitlines():
            try:
                item = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a line cut short by kill -9
            kind = RecordKind(item["kind"])
            super().write([LogRecord.from_wire(kind, item["wire"], schema(kind))])

    def write(self, records: Sequence[LogRecord]) -> WriteResult:
        if self.delay:
            time.sleep(self.delay)
        result = super().write(records)
        lines = b"".join(orjson.dumps({"kind": r.kind.value, "wire": r.to_wire()}) + b"\n" for r in records)
        with self._file_lock:
            self._fh.write(lines)
            self._fh.flush()
            self.appended += len(records)
        return result

    def close(self) -> None:
        self._fh.close()
