"""Read-your-writes: the records this process accepted that the backend has not acknowledged yet.

Only the latest snapshot per entity (id within its tenant and app) is kept (by ``log_version``),
so an entity saved many times costs one entry. Memory is bounded: once the cap is reached new ids
are not indexed (they are still in the spool and will be delivered; the miss is counted), while
newer versions of indexed ids still replace the old ones.
"""

from __future__ import annotations

from flask_difylogstore.records import LogRecord, RecordKind, supersedes


class PendingIndex:
    """Latest unacknowledged snapshot per kind and id. Not thread-safe: the pipeline locks."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.overflow = 0
        self._entries: dict[RecordKind, dict[tuple[str, str, str], tuple[LogRecord, int]]] = {}

    def __len__(self) -> int:
        return sum(len(by_id) for by_id in self._entries.values())

    def add(self, record: LogRecord, size: int) -> None:
        by_id = self._entries.setdefault(record.kind, {})
        current = by_id.get(record.entity_key)
        if current is not None:
            if supersedes(record.log_version, current[0].log_version):
                by_id[record.entity_key] = (record, size)
                self.bytes += size - current[1]
            return
        if self.bytes + size > self.max_bytes:
            self.overflow += 1
            return
        by_id[record.entity_key] = (record, size)
        self.bytes += size

    def discard(self, record: LogRecord) -> None:
        """Forget ``record`` once stored, unless a newer snapshot of the same id is still pending."""
        by_id = self._entries.get(record.kind)
        if not by_id:
            return
        current = by_id.get(record.entity_key)
        if current is not None and current[0].log_version == record.log_version:
            del by_id[record.entity_key]
            self.bytes -= current[1]

    def discard_many(self, records: list[LogRecord]) -> None:
        for record in records:
            self.discard(record)

    def records(self, kind: RecordKind) -> list[LogRecord]:
        by_id = self._entries.get(kind)
        return [record for record, _ in by_id.values()] if by_id else []

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0
