"""The contract every log-store backend implements, and the backend-neutral query description.

Repositories never build SLS SQL or Elasticsearch DSL themselves. They describe what they want
with :class:`RecordQuery` / :class:`AggregateQuery` (always inside a :class:`Scope`, so tenant
isolation is part of the type), and each backend's query builder translates that description —
escaping or parameterising values there and nowhere else. Every query reads the *latest* snapshot
of each entity (highest ``log_version``) **before** applying filters on fields that change, and
never returns deleted entities.
"""

from __future__ import annotations

import typing as t
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from flask_difylogstore.records import LogRecord, RecordKind

Op = t.Literal["eq", "ne", "in", "not_in", "lt", "lte", "gt", "gte", "is_null", "not_null"]
Direction = t.Literal["asc", "desc"]


@dataclass(frozen=True)
class Scope:
    """The owner every query is restricted to.

    ``tenant_id`` is required unless the scope is built with :meth:`unscoped`, which only the
    contract methods that Dify defines without a tenant (lookups by id) use.
    """

    tenant_id: str | None
    app_id: str | None = None
    unrestricted: bool = False

    def __post_init__(self) -> None:
        if not self.unrestricted and not self.tenant_id:
            raise ValueError("a query scope needs a tenant_id (use Scope.unscoped() for by-id lookups)")

    @classmethod
    def unscoped(cls) -> Scope:
        """A scope without tenant restriction, for Dify's tenant-less by-id methods."""
        return cls(tenant_id=None, app_id=None, unrestricted=True)

    def owner_filters(self) -> tuple[Filter, ...]:
        filters: list[Filter] = []
        if self.tenant_id:
            filters.append(Filter("tenant_id", "eq", self.tenant_id))
        if self.app_id:
            filters.append(Filter("app_id", "eq", self.app_id))
        return tuple(filters)


@dataclass(frozen=True)
class Filter:
    """One predicate on a record field. ``value`` is a list for ``in`` / ``not_in``, ignored for nulls."""

    field: str
    op: Op
    value: t.Any = None


@dataclass(frozen=True)
class TimeRange:
    """Bounds on the entity's ``created_at`` (naive UTC): ``since`` inclusive, ``until`` exclusive.

    Backends also use it to prune storage (SLS ``from``/``to`` on the log time, Elasticsearch
    time-partitioned indices), which is why it is separate from :class:`Filter`.
    """

    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class RecordQuery:
    """Find the latest snapshots of entities of one kind.

    ``after`` is a keyset cursor: the values of the ``order_by`` fields of the last row already
    returned; rows strictly after it (in the given order) are returned. Backends always append
    ``id`` as a final tie-breaker when it is not in ``order_by``. ``limit=None`` means every
    matching row: the backend pages past its own caps instead of truncating.
    ``fields`` restricts the returned fields (``id``, ``log_version`` and the owner fields are always
    included); ``None`` returns everything. ``keyword`` matches entities whose payload fields
    (inputs, outputs, process data — as Dify's app-log search) contain it (case-insensitive).
    """

    kind: RecordKind
    scope: Scope
    filters: tuple[Filter, ...] = ()
    time_range: TimeRange = field(default_factory=TimeRange)
    order_by: tuple[tuple[str, Direction], ...] = (("created_at", "desc"),)
    limit: int | None = 100
    after: tuple[t.Any, ...] | None = None
    fields: tuple[str, ...] | None = None
    keyword: str | None = None


@dataclass(frozen=True)
class GroupBy:
    """A grouping key: a field's value, or the calendar day of a datetime field in ``timezone``."""

    field: str
    day_in_timezone: str | None = None
    alias: str | None = None

    @property
    def name(self) -> str:
        return self.alias or (f"{self.field}_day" if self.day_in_timezone else self.field)


@dataclass(frozen=True)
class Metric:
    """An aggregate: ``count`` (entities), ``count_distinct`` / ``sum`` / ``max`` / ``min`` of a field."""

    function: t.Literal["count", "count_distinct", "sum", "max", "min"]
    field: str | None = None
    alias: str | None = None

    @property
    def name(self) -> str:
        return self.alias or (self.function if self.field is None else f"{self.function}_{self.field}")


@dataclass(frozen=True)
class AggregateQuery:
    """Aggregate the latest snapshots of entities of one kind, grouped by ``group_by``.

    Rows come back as dicts keyed by each :attr:`GroupBy.name` (days as ``YYYY-MM-DD`` strings)
    and :attr:`Metric.name` (numbers), ordered by the group keys ascending. Every group is
    returned (no silent cap).
    """

    kind: RecordKind
    scope: Scope
    metrics: tuple[Metric, ...]
    group_by: tuple[GroupBy, ...] = ()
    filters: tuple[Filter, ...] = ()
    time_range: TimeRange = field(default_factory=TimeRange)


@dataclass
class Page:
    """Rows of a :class:`RecordQuery` and the cursor to continue after them (``None`` at the end)."""

    records: list[LogRecord]
    next_after: tuple[t.Any, ...] | None = None


@dataclass
class WriteResult:
    """Outcome of writing one batch: nothing in it is ever silently dropped.

    ``written`` counts records the backend stored, ``stale`` records it ignored because a newer
    snapshot already existed (success for an idempotent, versioned write), ``failed`` the records
    that were not stored with the reason, ``retryable`` telling whether sending them again may work.
    """

    written: int = 0
    stale: int = 0
    failed: list[tuple[LogRecord, str, bool]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class PingResult:
    """One backend's reachability."""

    name: str
    ok: bool
    latency_ms: float
    error: str | None = None


@dataclass
class ProvisionChange:
    """One difference between what exists and what the package needs (a logstore, a key, a template)."""

    target: str
    action: t.Literal["create", "update", "keep"]
    detail: str


@dataclass
class ProvisionReport:
    """What provisioning found and did (or, with ``dry_run``, would do)."""

    backend: str
    dry_run: bool
    changes: list[ProvisionChange] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(c.action != "keep" for c in self.changes)


@t.runtime_checkable
class LogBackend(t.Protocol):
    """A log store the repositories and the pipeline can use.

    Implementations are built once per app from settings (see :mod:`flask_difylogstore.backends`),
    are safe to use from many threads, and hold bounded network timeouts.
    """

    #: Short name, e.g. ``aliyun_sls``.
    name: str
    #: Largest batch :meth:`write` accepts, in records and serialised bytes.
    max_batch_records: int
    max_batch_bytes: int

    def provision(self, *, dry_run: bool = False) -> ProvisionReport:
        """Create what is missing and add missing index keys / mappings; never remove custom ones."""
        ...

    def write(self, records: Sequence[LogRecord]) -> WriteResult:
        """Store a batch of snapshots. Idempotent: writing the same snapshot twice changes nothing."""
        ...

    def get_latest(self, kind: RecordKind, ids: Sequence[str], scope: Scope) -> dict[str, LogRecord]:
        """The latest non-deleted snapshot of each id found within ``scope``."""
        ...

    def search(self, query: RecordQuery) -> Page:
        """Latest snapshots matching ``query`` (filters applied after picking the latest version)."""
        ...

    def count(
        self, kind: RecordKind, scope: Scope, filters: Sequence[Filter] = (), time_range: TimeRange | None = None
    ) -> int:
        """Number of entities (not snapshots) matching, deleted ones excluded."""
        ...

    def aggregate(self, query: AggregateQuery) -> list[dict[str, t.Any]]:
        """Grouped aggregates over the latest snapshots (see :class:`AggregateQuery`)."""
        ...

    def delete(
        self,
        kind: RecordKind,
        scope: Scope,
        filters: Sequence[Filter] = (),
        time_range: TimeRange | None = None,
        *,
        limit: int | None = None,
    ) -> int:
        """Delete matching entities (a tombstone snapshot or a native delete); return how many."""
        ...

    def ping(self) -> PingResult:
        """A cheap reachability check with a short timeout."""
        ...

    def close(self) -> None:
        """Release connections; the backend is not used afterwards."""
        ...
