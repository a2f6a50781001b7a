"""Which ended runs a retention scan selects: Dify's batch filters, validated, as one value.

Dify's archive and clean-up jobs page through ended runs by ``(created_at, id)`` with optional
filters (``run_types``, ``tenant_ids``, ``tenant_prefixes``, ``workflow_ids``, a run-id shard, an
inclusive upper cursor). A filter the package cannot apply would widen the selection — and a scoped
clean-up would delete another workflow's runs — so every filter is either applied exactly or
refused with a :class:`ValueError` naming the parameter. The semantics follow Dify's SQL repository:

* a tenant prefix is hexadecimal: it selects tenants whose id starts with it (Dify's
  ``tenant_prefix_condition`` compares UUID bounds, which is the same for lower-case UUIDs);
* the shard of a run is the value of the last hexadecimal digit of its id (dashes removed, lower
  case; any other character counts as 0), and a run belongs to ``run_shard_index`` when that value
  modulo ``run_shard_total`` equals it (Dify's ``_workflow_run_id_shard_expr``);
* ``run_types=[]`` selects nothing.
"""

from __future__ import annotations

import string
import typing as t
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from flask_difylogstore.backends.base import Filter, TimeRange
from flask_difylogstore.records import FINAL_RUN_STATUSES
from flask_difylogstore.repositories._context import enum_value, naive_utc

_HEX = frozenset(string.hexdigits.lower())


def run_shard_value(run_id: str) -> int:
    """Dify's shard value of a run id: its last hexadecimal digit (0 when the last character is not one)."""
    normalized = str(run_id).replace("-", "").lower()
    last = normalized[-1:] if normalized else ""
    return int(last, 16) if last and last in _HEX else 0


def _prefixes(values: Sequence[str] | None) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        raise ValueError("tenant_prefixes must be a sequence of hexadecimal prefixes, not a single string")
    prefixes: list[str] = []
    for value in values:
        text = str(value).lower()
        if not text or any(ch not in _HEX for ch in text):
            raise ValueError(f"tenant_prefixes: {value!r} is not a hexadecimal tenant-id prefix")
        prefixes.append(text)
    return tuple(dict.fromkeys(prefixes))


def _shard(index: int | None, total: int | None) -> tuple[int, int] | None:
    if index is None and total is None:
        return None
    if index is None or total is None:
        raise ValueError("run_shard_index and run_shard_total must be given together")
    if isinstance(index, bool) or isinstance(total, bool) or not isinstance(index, int) or not isinstance(total, int):
        raise ValueError("run_shard_index and run_shard_total must be integers")
    if total < 1:
        raise ValueError(f"run_shard_total must be at least 1, got {total}")
    if not 0 <= index < total:
        raise ValueError(f"run_shard_index must be in [0, {total}), got {index}")
    return index, total


def _strings(name: str, values: Sequence[t.Any] | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    if isinstance(values, str):
        raise ValueError(f"{name} must be a sequence of values, not a single string")
    return tuple(str(enum_value(v)) for v in values)


def _cursor(name: str, value: tuple[datetime, str] | None) -> tuple[datetime, str] | None:
    if value is None:
        return None
    try:
        at, id_ = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (created_at, id) pair") from None
    if not isinstance(at, datetime):
        raise ValueError(f"{name}: created_at must be a datetime, got {type(at).__name__}")
    return t.cast(datetime, naive_utc(at)), str(id_)


@dataclass(frozen=True)
class RunSelection:
    """Dify's retention-scan filters, validated (build with :meth:`of`)."""

    start_from: datetime | None
    end_before: datetime
    run_types: tuple[str, ...] | None = None
    tenant_ids: tuple[str, ...] | None = None
    tenant_prefixes: tuple[str, ...] = ()
    workflow_ids: tuple[str, ...] | None = None
    shard: tuple[int, int] | None = None
    upper_bound: tuple[datetime, str] | None = None

    @classmethod
    def of(
        cls,
        start_from: datetime | None,
        end_before: datetime,
        *,
        run_types: Sequence[t.Any] | None = None,
        tenant_ids: Sequence[str] | None = None,
        tenant_prefixes: Sequence[str] | None = None,
        workflow_ids: Sequence[str] | None = None,
        run_shard_index: int | None = None,
        run_shard_total: int | None = None,
        upper_bound: tuple[datetime, str] | None = None,
    ) -> RunSelection:
        if not isinstance(end_before, datetime):
            raise ValueError(f"end_before must be a datetime, got {type(end_before).__name__}")
        if start_from is not None and not isinstance(start_from, datetime):
            raise ValueError(f"start_from must be a datetime or None, got {type(start_from).__name__}")
        return cls(
            start_from=naive_utc(start_from),
            end_before=t.cast(datetime, naive_utc(end_before)),
            run_types=_strings("run_types", run_types),
            tenant_ids=_strings("tenant_ids", tenant_ids),
            tenant_prefixes=_prefixes(tenant_prefixes),
            workflow_ids=_strings("workflow_ids", workflow_ids),
            shard=_shard(run_shard_index, run_shard_total),
            upper_bound=_cursor("upper_bound", upper_bound),
        )

    @property
    def selects_nothing(self) -> bool:
        """An empty (not ``None``) ``run_types`` selects no run, as in Dify."""
        return self.run_types is not None and not self.run_types

    @property
    def window(self) -> TimeRange:
        return TimeRange(self.start_from, self.end_before)

    def store_filters(self) -> tuple[Filter, ...]:
        """Filters a log store applies itself: exact, or (prefixes, shard, upper bound) a superset that
        :meth:`accepts` narrows down."""
        filters = [Filter("status", "in", sorted(FINAL_RUN_STATUSES))]
        if self.run_types:
            filters.append(Filter("type", "in", list(self.run_types)))
        if self.tenant_ids:
            filters.append(Filter("tenant_id", "in", list(self.tenant_ids)))
        if self.workflow_ids:
            filters.append(Filter("workflow_id", "in", list(self.workflow_ids)))
        if len(self.tenant_prefixes) == 1:
            prefix = self.tenant_prefixes[0]
            filters.append(Filter("tenant_id", "gte", prefix))
            upper = _next_prefix(prefix)
            if upper is not None:
                filters.append(Filter("tenant_id", "lt", upper))
        if self.upper_bound is not None:
            filters.append(Filter("created_at", "lte", self.upper_bound[0]))
        return tuple(filters)

    def accepts(self, run_id: str, tenant_id: str, created_at: datetime) -> bool:
        """Whether a run the store returned passes the filters it could only approximate."""
        if self.tenant_prefixes and not str(tenant_id).startswith(self.tenant_prefixes):
            return False
        if self.shard is not None and run_shard_value(run_id) % self.shard[1] != self.shard[0]:
            return False
        return self.upper_bound is None or (created_at, str(run_id)) <= self.upper_bound

    @property
    def fetch_factor(self) -> int:
        """How many rows to read per row expected to pass :meth:`accepts`."""
        factor = self.shard[1] if self.shard else 1
        if len(self.tenant_prefixes) > 1:
            factor *= 2
        return min(factor, 16)


def _next_prefix(prefix: str) -> str | None:
    """The smallest string above every string starting with ``prefix`` (``None`` for ``f``, ``ff``...)."""
    stripped = prefix.rstrip("f")
    if not stripped:
        return None
    return stripped[:-1] + format(int(stripped[-1], 16) + 1, "x")
