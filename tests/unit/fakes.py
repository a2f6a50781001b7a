"""A minimal backend double for extension-lifecycle tests (the real backends have their own suites)."""

from __future__ import annotations

import typing as t
from collections.abc import Sequence

from flask_difylogstore.backends.base import (
    AggregateQuery,
    Filter,
    Page,
    PingResult,
    ProvisionChange,
    ProvisionReport,
    RecordQuery,
    Scope,
    TimeRange,
    WriteResult,
)
from flask_difylogstore.records import LogRecord, RecordKind
from flask_difylogstore.settings import LogStoreSettings


class FakeBackend:
    name = "fake"
    max_batch_records = 100
    max_batch_bytes = 1 << 20
    instances: t.ClassVar[list[FakeBackend]] = []

    def __init__(self, settings: LogStoreSettings, *, reachable: bool = True, provision_error: str | None = None):
        self.settings = settings
        self.reachable = reachable
        self.provision_error = provision_error
        self.provision_calls = 0
        self.closed = False
        self.written: list[LogRecord] = []
        FakeBackend.instances.append(self)

    @classmethod
    def from_settings(cls, settings: LogStoreSettings) -> FakeBackend:
        return cls(settings)

    def provision(self, *, dry_run: bool = False) -> ProvisionReport:
        self.provision_calls += 1
        if self.provision_error:
            raise RuntimeError(self.provision_error)
        action: t.Literal["create", "keep"] = "create" if self.provision_calls == 1 else "keep"
        return ProvisionReport("fake", dry_run, [ProvisionChange("store", action, "the only store")])

    def write(self, records: Sequence[LogRecord]) -> WriteResult:
        self.written.extend(records)
        return WriteResult(written=len(records))

    def get_latest(self, kind: RecordKind, ids: Sequence[str], scope: Scope) -> dict[str, LogRecord]:
        return {}

    def search(self, query: RecordQuery) -> Page:
        return Page([])

    def count(
        self, kind: RecordKind, scope: Scope, filters: Sequence[Filter] = (), time_range: TimeRange | None = None
    ) -> int:
        return 0

    def aggregate(self, query: AggregateQuery) -> list[dict[str, t.Any]]:
        return []

    def delete(
        self,
        kind: RecordKind,
        scope: Scope,
        filters: Sequence[Filter] = (),
        time_range: TimeRange | None = None,
        *,
        limit: int | None = None,
    ) -> int:
        return 0

    def ping(self) -> PingResult:
        if self.reachable:
            return PingResult("fake", True, 0.1)
        return PingResult("fake", False, 0.1, "connection refused")

    def close(self) -> None:
        self.closed = True
