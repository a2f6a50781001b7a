"""Prove the log store holds what the relational database holds.

Two checks per kind. Counts per UTC day and app on both sides: a group with fewer entities in
the log store than rows in the database means rows are missing (more is fine: live writes land
only in the log store unless dual write is on). And a random sample of rows (``--sample``
percent, drawn by the database, ``TABLESAMPLE BERNOULLI`` on PostgreSQL, so not "the first N")
compared field by field with the latest snapshot, offloaded payloads included. The result is
kept in the checkpoint table for ``status`` and as the gate ``cleanup-pg`` requires.
"""

from __future__ import annotations

import time
import typing as t
from dataclasses import dataclass, field

import sqlalchemy as sa

from flask_difylogstore.backends.base import AggregateQuery, GroupBy, LogBackend, Metric, Scope, TimeRange
from flask_difylogstore.dify.entities import naive_utc_now
from flask_difylogstore.migration import source
from flask_difylogstore.migration.checkpoint import Checkpoint, CheckpointStore
from flask_difylogstore.migration.compare import check_rows, content_hash, make_searchable
from flask_difylogstore.migration.convert import record_data
from flask_difylogstore.migration.job import MigrationJob
from flask_difylogstore.migration.selection import Selection
from flask_difylogstore.migration.source import KindSpec

MAX_LISTED = 20


def verify_job(kind_name: str) -> str:
    return f"verify:{kind_name}"


@dataclass
class VerifyOptions:
    kind: str = "all"
    selection: Selection = field(default_factory=Selection)
    sample_percent: float = 1.0
    batch_size: int = 500
    seed: int | None = None
    #: Keep every day/app group in the result, not only the short ones.
    all_groups: bool = False


@dataclass
class GroupCount:
    """Entities of one UTC day and app on each side."""

    day: str
    app_id: str
    relational: int
    log_store: int


@dataclass
class Mismatch:
    id: str
    status: str
    detail: str
    relational_hash: str = ""


@dataclass
class KindVerification:
    """The result for one kind; ``ok`` when no group is short and no sampled row differs."""

    kind: str
    relational_rows: int = 0
    log_store_rows: int = 0
    groups: int = 0
    short_groups: list[GroupCount] = field(default_factory=list)
    all_groups: list[GroupCount] = field(default_factory=list)
    short_group_count: int = 0
    extra_groups: int = 0
    sampled: int = 0
    superseded: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    mismatch_count: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.short_group_count == 0 and self.mismatch_count == 0

    def to_dict(self) -> dict[str, t.Any]:
        return {
            "kind": self.kind,
            "ok": self.ok,
            "relational_rows": self.relational_rows,
            "log_store_rows": self.log_store_rows,
            "groups": self.groups,
            "short_groups": self.short_group_count,
            "first_short_groups": [vars(g) for g in self.short_groups],
            "all_groups": [vars(g) for g in self.all_groups],
            "extra_groups": self.extra_groups,
            "sampled": self.sampled,
            "superseded": self.superseded,
            "mismatches": self.mismatch_count,
            "first_mismatches": [vars(m) for m in self.mismatches],
            "seconds": round(self.seconds, 3),
        }


@dataclass
class VerifyReport:
    sample_percent: float
    selection: Selection
    kinds: list[KindVerification] = field(default_factory=list)
    finished_at: str = ""

    @property
    def ok(self) -> bool:
        return all(k.ok for k in self.kinds)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def first_mismatch_ids(self, limit: int = 10) -> list[str]:
        ids = [m.id for k in self.kinds for m in k.mismatches]
        return ids[:limit]

    def to_dict(self) -> dict[str, t.Any]:
        return {
            "ok": self.ok,
            "sample_percent": self.sample_percent,
            "selection": self.selection.to_dict(),
            "finished_at": self.finished_at,
            "kinds": [k.to_dict() for k in self.kinds],
        }


def _scope(selection: Selection) -> Scope:
    if selection.tenant_id:
        return Scope(selection.tenant_id, selection.app_id)
    return Scope(None, selection.app_id, unrestricted=True)


def relational_groups(engine: sa.Engine, spec: KindSpec, selection: Selection) -> dict[tuple[str, str], int]:
    table = spec.table
    day = sa.func.date(table.c.created_at)
    stmt = sa.select(day, table.c.app_id, sa.func.count()).where(*selection.where(table)).group_by(day, table.c.app_id)
    with engine.connect() as conn, conn.begin():
        source.readonly(conn)
        return {(str(d)[:10], str(source.plain(a))): int(n) for d, a, n in conn.execute(stmt)}


def log_store_groups(backend: LogBackend, spec: KindSpec, selection: Selection) -> dict[tuple[str, str], int]:
    query = AggregateQuery(
        spec.kind,
        _scope(selection),
        metrics=(Metric("count", alias="rows"),),
        group_by=(GroupBy("created_at", day_in_timezone="UTC", alias="day"), GroupBy("app_id")),
        time_range=TimeRange(selection.window.since, selection.window.until),
    )
    return {(str(r["day"]), str(r["app_id"])): int(r["rows"]) for r in backend.aggregate(query)}


def sample_ids(
    engine: sa.Engine, spec: KindSpec, selection: Selection, percent: float, seed: int | None = None
) -> list[str]:
    """Ids of a random sample of the selected rows, drawn by the database."""
    table = spec.table
    if percent >= 100:
        stmt = sa.select(table.c.id).where(*selection.where(table))
    elif engine.dialect.name == "postgresql":
        sample = table.tablesample(
            sa.func.bernoulli(percent), name="sampled", seed=sa.literal(seed) if seed is not None else None
        )
        stmt = sa.select(sample.c.id).where(*selection.where(sample))
    else:
        threshold = int(percent * 10_000)
        stmt = sa.select(table.c.id).where(
            *selection.where(table), sa.func.abs(sa.func.random()) % 1_000_000 < threshold
        )
    with engine.connect() as conn, conn.begin():
        source.readonly(conn)
        return [str(i) for i in conn.execute(stmt).scalars()]


class Verifier(MigrationJob):
    def run(self, options: VerifyOptions) -> VerifyReport:
        report = VerifyReport(options.sample_percent, options.selection)
        make_searchable(self.backend)
        for spec in source.resolve_kinds(options.kind):
            result = self._verify_kind(spec, options)
            report.kinds.append(result)
            self.checkpoints.save(
                Checkpoint(
                    verify_job(spec.name),
                    spec.name,
                    status="ok" if result.ok else "mismatch",
                    rows_done=result.sampled,
                    rows_failed=result.mismatch_count,
                    details={
                        **result.to_dict(),
                        "selection": options.selection.to_dict(),
                        "sample_percent": options.sample_percent,
                    },
                )
            )
        report.finished_at = naive_utc_now().isoformat()
        return report

    def _verify_kind(self, spec: KindSpec, options: VerifyOptions) -> KindVerification:
        started = time.monotonic()
        result = KindVerification(spec.name)
        relational = relational_groups(self.engine, spec, options.selection)
        stored = log_store_groups(self.backend, spec, options.selection)
        result.relational_rows = sum(relational.values())
        result.log_store_rows = sum(stored.values())
        result.groups = len(relational.keys() | stored.keys())
        for key in sorted(relational.keys() | stored.keys()):
            ours, theirs = relational.get(key, 0), stored.get(key, 0)
            if options.all_groups:
                result.all_groups.append(GroupCount(key[0], key[1], ours, theirs))
            if theirs < ours:
                result.short_group_count += 1
                if len(result.short_groups) < MAX_LISTED:
                    result.short_groups.append(GroupCount(key[0], key[1], ours, theirs))
            elif theirs > ours:
                result.extra_groups += 1
        ids = sample_ids(self.engine, spec, options.selection, options.sample_percent, options.seed)
        bar = self.progress(f"verify {spec.name:16}", len(ids))
        try:
            for start in range(0, len(ids), options.batch_size):
                rows = source.read_by_ids(self.engine, spec, ids[start : start + options.batch_size])
                by_id = {r.id: r for r in rows}
                for check in check_rows(self.backend, spec, rows, self.store).values():
                    result.sampled += 1
                    if check.status == "superseded":
                        result.superseded += 1
                    elif not check.good:
                        result.mismatch_count += 1
                        if len(result.mismatches) < MAX_LISTED:
                            data = record_data(spec, by_id[check.id])
                            result.mismatches.append(
                                Mismatch(check.id, check.status, check.detail, content_hash(data)[:16])
                            )
                bar.advance(len(rows))
        finally:
            bar.close()
        result.seconds = time.monotonic() - started
        return result


def last_results(checkpoints: CheckpointStore) -> dict[str, Checkpoint]:
    """The stored result of the last verification of each kind."""
    return {cp.kind: cp for cp in checkpoints.all("verify:")}
