"""Copy Dify's workflow logs from the relational database into the log store.

The main thread reads batches in keyset order (one short read-only transaction each) and hands
them to a bounded pool of workers that convert rows, read offloaded payloads and bulk-write.
Results are applied in batch order, so the stored checkpoint is always a prefix of the table: a
run killed at any moment resumes after the last batch that was fully handled. Rows that could
not be stored are kept in the checkpoint with their reason and retried first on ``--resume``;
nothing is skipped silently.
"""

from __future__ import annotations

import time
import typing as t
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import sqlalchemy as sa

from flask_difylogstore.backends.base import LogBackend
from flask_difylogstore.migration import source
from flask_difylogstore.migration.checkpoint import Checkpoint, CheckpointStore
from flask_difylogstore.migration.compare import make_searchable
from flask_difylogstore.migration.convert import load_payloads, owner_id, row_records
from flask_difylogstore.migration.job import MigrationJob
from flask_difylogstore.migration.progress import ProgressFactory, null_progress
from flask_difylogstore.migration.selection import Selection
from flask_difylogstore.migration.source import Batch, Cursor, KindSpec, SourceRow
from flask_difylogstore.migration.storage import PayloadStore
from flask_difylogstore.migration.writer import BulkWriter, failure_reasons
from flask_difylogstore.records import LogRecord, RecordKind

#: Missing payloads kept by name in a checkpoint (the count is always exact).
MAX_LISTED_MISSING = 1000


def job_name(spec: KindSpec, selection: Selection) -> str:
    return f"migrate:{spec.name}:{selection.key()}"


@dataclass
class MigrateOptions:
    """What to migrate and how (the ``flask logstore migrate`` options)."""

    kind: str = "all"
    selection: Selection = field(default_factory=Selection)
    batch_size: int = 1000
    workers: int = 1
    dry_run: bool = False
    resume: bool = False
    #: Stop a kind once this many rows failed (something systemic is wrong; fix it and --resume).
    max_failures: int = 1000
    write_attempts: int = 4


@dataclass
class KindReport:
    """The outcome for one kind."""

    kind: str
    selected: int = 0
    migrated: int = 0
    written: int = 0
    stale: int = 0
    payload_records: int = 0
    offloads: int = 0
    offload_bytes: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    payloads_missing: dict[str, str] = field(default_factory=dict)
    payloads_missing_count: int = 0
    seconds: float = 0.0
    resumed_from: Cursor | None = None
    keyset_index: bool = True
    aborted: str | None = None

    @property
    def rows_per_second(self) -> float:
        return self.migrated / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, t.Any]:
        return {
            "kind": self.kind,
            "selected": self.selected,
            "migrated": self.migrated,
            "written": self.written,
            "already_present": self.stale,
            "payload_records": self.payload_records,
            "offloads": self.offloads,
            "offload_bytes": self.offload_bytes,
            "failed": len(self.failed),
            "first_failures": dict(list(self.failed.items())[:10]),
            "payloads_missing": self.payloads_missing_count,
            "first_payloads_missing": dict(list(self.payloads_missing.items())[:10]),
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
            "resumed_from": None
            if self.resumed_from is None
            else [self.resumed_from[0].isoformat(), self.resumed_from[1]],
            "keyset_index": self.keyset_index,
            "aborted": self.aborted,
        }


@dataclass
class MigrateReport:
    """The outcome of a run: exit code 1 when any row failed, 3 when only full payloads are missing."""

    dry_run: bool
    kinds: list[KindReport] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if any(k.failed or k.aborted for k in self.kinds):
            return 1
        if any(k.payloads_missing_count for k in self.kinds):
            return 3
        return 0

    def to_dict(self) -> dict[str, t.Any]:
        return {
            "dry_run": self.dry_run,
            "exit_code": self.exit_code,
            "kinds": [k.to_dict() for k in self.kinds],
        }


@dataclass
class _Outcome:
    rows: int = 0
    written: int = 0
    stale: int = 0
    payload_records: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def migrated(self) -> int:
        return self.rows - len(self.failed)


class Migrator(MigrationJob):
    """Runs migrations for one app's database and backend."""

    def __init__(
        self,
        engine: sa.Engine,
        backend: LogBackend,
        *,
        store: PayloadStore | None,
        checkpoints: CheckpointStore | None = None,
        progress: ProgressFactory = null_progress,
        before_write: t.Callable[[], None] | None = None,
    ) -> None:
        super().__init__(engine, backend, store=store, checkpoints=checkpoints, progress=progress)
        self.before_write = before_write

    def run(self, options: MigrateOptions) -> MigrateReport:
        report = MigrateReport(options.dry_run)
        for spec in source.resolve_kinds(options.kind):
            kind_report = KindReport(spec.name)
            kind_report.keyset_index = source.has_keyset_index(self.engine, spec.table)
            report.kinds.append(kind_report)
            if options.dry_run:
                self._dry_run(spec, options, kind_report)
            else:
                self._migrate_kind(spec, options, kind_report)
        if not options.dry_run:
            make_searchable(self.backend)
        return report

    # -- one kind -------------------------------------------------------------------------------

    def _dry_run(self, spec: KindSpec, options: MigrateOptions, report: KindReport) -> None:
        after = None
        if options.resume:
            checkpoint = self.checkpoints.load(job_name(spec, options.selection))
            after = checkpoint.cursor if checkpoint else None
            report.resumed_from = after
        report.selected = source.count_rows(self.engine, spec, options.selection, after)
        if spec.has_offloads:
            report.offloads, report.offload_bytes = source.count_offloads(self.engine, options.selection)

    def _migrate_kind(self, spec: KindSpec, options: MigrateOptions, report: KindReport) -> None:
        job = job_name(spec, options.selection)
        writer = BulkWriter(self.backend, attempts=options.write_attempts, before_write=self.before_write)
        started = time.monotonic()
        with self.checkpoints.lock(job):
            checkpoint = self.checkpoints.load(job) if options.resume else None
            if checkpoint is None:
                checkpoint = Checkpoint(job, spec.name)
            else:
                checkpoint.status = "running"
                report.resumed_from = checkpoint.cursor
            checkpoint.details.setdefault("selection", options.selection.to_dict())
            self.checkpoints.save(checkpoint)
            try:
                if checkpoint.failures:
                    self._retry_failures(spec, options, checkpoint, writer, report)
                expected = source.estimate_rows(self.engine, spec, options.selection, checkpoint.cursor)
                self._copy(spec, options, checkpoint, writer, report, expected)
            except BaseException:
                checkpoint.status = "interrupted"
                self.checkpoints.save(checkpoint)
                raise
            finally:
                report.seconds = time.monotonic() - started
            report.failed = dict(checkpoint.failures)
            checkpoint.status = "aborted" if report.aborted else ("failed" if checkpoint.failures else "done")
            checkpoint.details["last_run"] = report.to_dict()
            self.checkpoints.save(checkpoint)

    def _copy(
        self,
        spec: KindSpec,
        options: MigrateOptions,
        checkpoint: Checkpoint,
        writer: BulkWriter,
        report: KindReport,
        expected: int,
    ) -> None:
        bar = self.progress(f"{spec.name:16}", expected)
        workers = max(1, options.workers)
        inflight: deque[tuple[Batch, Future[_Outcome]]] = deque()
        try:
            with ThreadPoolExecutor(workers, thread_name_prefix="difylogstore-migrate") as pool:
                try:
                    batches = source.iter_batches(
                        self.engine, spec, options.selection, checkpoint.cursor, options.batch_size
                    )
                    for batch in batches:
                        report.selected += len(batch.rows)
                        inflight.append((batch, pool.submit(self._process, spec, batch.rows, writer)))
                        while inflight and (len(inflight) > 2 * workers or inflight[0][1].done()):
                            self._apply(*inflight.popleft(), checkpoint, report, options, bar)
                        if report.aborted:
                            break
                    while inflight:
                        self._apply(*inflight.popleft(), checkpoint, report, options, bar)
                except BaseException:
                    for _, future in inflight:  # do not wait for queued batches on the way out
                        future.cancel()
                    raise
        finally:
            bar.close()

    def _apply(
        self,
        batch: Batch,
        future: Future[_Outcome],
        checkpoint: Checkpoint,
        report: KindReport,
        options: MigrateOptions,
        bar: t.Any,
    ) -> None:
        """Fold a finished batch into the report and move the checkpoint past it."""
        outcome = future.result()
        checkpoint.cursor = batch.last
        self._record(outcome, checkpoint, report)
        if len(checkpoint.failures) > options.max_failures:
            report.aborted = (
                f"more than {options.max_failures} rows failed; fix the cause (see the first "
                "failures) and run again with --resume"
            )
        self.checkpoints.save(checkpoint)
        bar.advance(outcome.rows)

    def _record(self, outcome: _Outcome, checkpoint: Checkpoint, report: KindReport) -> None:
        report.migrated += outcome.migrated
        report.written += outcome.written
        report.stale += outcome.stale
        report.payload_records += outcome.payload_records
        report.payloads_missing_count += len(outcome.missing)
        for key, reason in outcome.missing.items():
            if len(report.payloads_missing) < MAX_LISTED_MISSING:
                report.payloads_missing[key] = reason
        checkpoint.rows_done += outcome.migrated
        checkpoint.failures.update(outcome.failed)
        checkpoint.rows_failed = len(checkpoint.failures)
        missing = checkpoint.details.setdefault("payloads_missing", {})
        for key, reason in outcome.missing.items():
            if len(missing) < MAX_LISTED_MISSING:
                missing[key] = reason
        checkpoint.details["payloads_missing_count"] = int(checkpoint.details.get("payloads_missing_count", 0)) + len(
            outcome.missing
        )

    def _retry_failures(
        self,
        spec: KindSpec,
        options: MigrateOptions,
        checkpoint: Checkpoint,
        writer: BulkWriter,
        report: KindReport,
    ) -> None:
        """Migrate again the rows an earlier run could not store (rows deleted since are dropped)."""
        ids = list(checkpoint.failures)
        for start in range(0, len(ids), options.batch_size):
            chunk = ids[start : start + options.batch_size]
            rows = source.read_by_ids(self.engine, spec, chunk)
            report.selected += len(rows)
            for id_ in set(chunk) - {r.id for r in rows}:
                checkpoint.failures.pop(id_, None)
            outcome = self._process(spec, rows, writer)
            for row in rows:
                if row.id not in outcome.failed:
                    checkpoint.failures.pop(row.id, None)
            self._record(outcome, checkpoint, report)
            self.checkpoints.save(checkpoint)

    # -- one batch (worker threads) ---------------------------------------------------------------

    def _process(self, spec: KindSpec, rows: list[SourceRow], writer: BulkWriter) -> _Outcome:
        outcome = _Outcome(rows=len(rows))
        records: list[LogRecord] = []
        for row in rows:
            try:
                loaded = load_payloads(row, self.store) if row.offloads else None
                records.extend(row_records(spec, row, loaded))
            except Exception as exc:
                outcome.failed[row.id] = f"cannot convert: {type(exc).__name__}: {exc}"
                continue
            if loaded is not None:
                for payload_type, reason in loaded.missing.items():
                    outcome.missing[f"{row.id}:{payload_type}"] = reason
        result = writer.write(records)
        outcome.written, outcome.stale = result.written, result.stale
        outcome.payload_records = sum(1 for r in records if r.kind is RecordKind.PAYLOAD)
        for id_, reason in failure_reasons(result.failed, owner_id).items():
            outcome.failed.setdefault(id_, reason)
        return outcome
