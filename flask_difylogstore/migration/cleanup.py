"""Delete relational rows the log store provably holds, and nothing else.

``cleanup-pg`` walks the selected rows (created before ``--before``) in keyset batches. Each
batch is checked against the log store right before it is deleted, row by row with the same
comparison ``verify`` uses (offloaded payloads included); rows that are missing or differ are
refused and kept. Inside the deleting transaction the rows are read again under ``FOR UPDATE``
and only those still identical to what was checked are deleted, together with their offload rows
and the ``upload_files`` rows those point at; the storage objects are removed after the commit
(an object that cannot be removed is reported, never the other way round, so no row ever points
at a deleted object). A passing ``verify`` of the kind is required before anything is deleted.
Without ``execute`` (the CLI's default) the same checks run and nothing is deleted.
"""

from __future__ import annotations

import time
import typing as t
from dataclasses import dataclass, field

import sqlalchemy as sa

from flask_difylogstore.errors import DifyLogStoreError
from flask_difylogstore.migration import source
from flask_difylogstore.migration.checkpoint import Checkpoint
from flask_difylogstore.migration.compare import check_rows, first_difference, make_searchable
from flask_difylogstore.migration.convert import record_data
from flask_difylogstore.migration.job import MigrationJob
from flask_difylogstore.migration.selection import Selection
from flask_difylogstore.migration.source import KindSpec, SourceRow
from flask_difylogstore.migration.verify import verify_job

#: Children before parents, so a partial run never leaves node executions without their run.
CLEANUP_ORDER = ("node-executions", "app-logs", "runs")
MAX_LISTED = 20


@dataclass
class CleanupOptions:
    kind: str = "all"
    #: Rows selected for deletion; its window's ``until`` is the ``--before`` bound.
    selection: Selection = field(default_factory=Selection)
    batch_size: int = 500
    execute: bool = False
    resume: bool = False


@dataclass
class CleanupKindReport:
    kind: str
    scanned: int = 0
    deleted: int = 0
    superseded: int = 0
    refused: dict[str, str] = field(default_factory=dict)
    refused_count: int = 0
    offloads_deleted: int = 0
    files_deleted: int = 0
    objects_deleted: int = 0
    objects_failed: dict[str, str] = field(default_factory=dict)
    row_bytes: int = 0
    object_bytes: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, t.Any]:
        return {
            "kind": self.kind,
            "scanned": self.scanned,
            "deleted": self.deleted,
            "superseded": self.superseded,
            "refused": self.refused_count,
            "first_refused": self.refused,
            "offloads_deleted": self.offloads_deleted,
            "upload_files_deleted": self.files_deleted,
            "objects_deleted": self.objects_deleted,
            "objects_failed": self.objects_failed,
            "row_bytes": self.row_bytes,
            "object_bytes": self.object_bytes,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class CleanupReport:
    execute: bool
    kinds: list[CleanupKindReport] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """1 when rows were refused or storage objects could not be removed (execute mode)."""
        if not self.execute:
            return 0
        return 1 if any(k.refused_count or k.objects_failed for k in self.kinds) else 0

    def to_dict(self) -> dict[str, t.Any]:
        return {
            "execute": self.execute,
            "exit_code": self.exit_code,
            "kinds": [k.to_dict() for k in self.kinds],
        }


def row_bytes(row: SourceRow) -> int:
    """Approximate bytes of a row's values (what the table and its TOAST hold for it)."""
    total = 0
    for value in row.data.values():
        total += len(value.encode("utf-8")) if isinstance(value, str) else 8
    return total


class Cleaner(MigrationJob):
    def run(self, options: CleanupOptions) -> CleanupReport:
        if options.selection.window.until is None:
            raise DifyLogStoreError("cleanup needs an upper bound: pass --before")
        specs = source.resolve_kinds(options.kind)
        specs.sort(key=lambda s: CLEANUP_ORDER.index(s.name))
        if options.execute:
            self._require_verified(specs)
        report = CleanupReport(options.execute)
        make_searchable(self.backend)
        for spec in specs:
            report.kinds.append(self._clean_kind(spec, options))
        return report

    def _require_verified(self, specs: list[KindSpec]) -> None:
        for spec in specs:
            last = self.checkpoints.load(verify_job(spec.name))
            if last is None or last.status != "ok":
                state = "never ran" if last is None else f"last result {last.status} at {last.updated_at:%F %T}"
                raise DifyLogStoreError(
                    f"refusing to delete {spec.name}: `flask logstore verify --kind {spec.name}` "
                    f"must pass first ({state})"
                )

    def _clean_kind(self, spec: KindSpec, options: CleanupOptions) -> CleanupKindReport:
        report = CleanupKindReport(spec.name)
        started = time.monotonic()
        job = f"cleanup:{spec.name}:{options.selection.key()}"
        with self.checkpoints.lock(job):
            checkpoint = self.checkpoints.load(job) if options.resume else None
            checkpoint = checkpoint or Checkpoint(job, spec.name)
            checkpoint.status = "running"
            total = source.count_rows(self.engine, spec, options.selection, checkpoint.cursor)
            bar = self.progress(f"{'clean' if options.execute else 'check'} {spec.name:16}", total)
            try:
                for batch in source.iter_batches(
                    self.engine, spec, options.selection, checkpoint.cursor, options.batch_size
                ):
                    self._batch(spec, batch.rows, options, report)
                    if options.execute:
                        checkpoint.cursor = batch.last
                        checkpoint.rows_done += len(batch.rows)
                        checkpoint.details = report.to_dict()
                        self.checkpoints.save(checkpoint)
                    bar.advance(len(batch.rows))
            finally:
                bar.close()
            if options.execute:
                checkpoint.status = "done" if not report.refused_count else "refused"
                checkpoint.details = report.to_dict()
                self.checkpoints.save(checkpoint)
        report.seconds = time.monotonic() - started
        return report

    def _batch(self, spec: KindSpec, rows: list[SourceRow], options: CleanupOptions, report: CleanupKindReport) -> None:
        checks = check_rows(self.backend, spec, rows, self.store)
        report.scanned += len(rows)
        good: list[SourceRow] = []
        for row in rows:
            check = checks[row.id]
            if check.good:
                good.append(row)
                report.superseded += check.status == "superseded"
            else:
                report.refused_count += 1
                if len(report.refused) < MAX_LISTED:
                    report.refused[row.id] = f"{check.status}: {check.detail}"
        if not options.execute:
            report.deleted += len(good)
            report.row_bytes += sum(row_bytes(r) for r in good)
            offloads = [o for r in good for o in r.offloads]
            report.offloads_deleted += len(offloads)
            report.files_deleted += sum(1 for o in offloads if o.key is not None)
            report.objects_deleted += sum(1 for o in offloads if o.key is not None)
            report.object_bytes += sum(o.size or 0 for o in offloads)
            return
        if good:
            self._delete(spec, good, report)

    def _delete(self, spec: KindSpec, checked: list[SourceRow], report: CleanupKindReport) -> None:
        table = spec.table
        by_id = {r.id: r for r in checked}
        keys: dict[str, int] = {}
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
            locked = conn.execute(sa.select(table).where(table.c.id.in_(list(by_id))).with_for_update())
            now = {
                str(r._mapping["id"]): SourceRow({k: source.plain(v) for k, v in r._mapping.items()}) for r in locked
            }
            if spec.has_offloads:
                for id_, offloads in source.read_offloads(conn, list(now)).items():
                    now[id_].offloads = offloads
            same = [id_ for id_, row in now.items() if _unchanged(spec, by_id[id_], row)]
            for id_ in set(by_id) - set(same):
                report.refused_count += 1
                if len(report.refused) < MAX_LISTED:
                    report.refused[id_] = "changed or deleted while being checked"
            if not same:
                return
            if spec.has_offloads:
                keys = self._delete_offloads(conn, [o for id_ in same for o in now[id_].offloads], report)
            conn.execute(sa.delete(table).where(table.c.id.in_(same)))
        report.deleted += len(same)
        report.row_bytes += sum(row_bytes(now[id_]) for id_ in same)
        self._delete_objects(keys, report)

    def _delete_offloads(
        self, conn: sa.Connection, offloads: list[source.Offload], report: CleanupKindReport
    ) -> dict[str, int]:
        """Delete offload rows and the upload_files rows nothing else uses; return their object keys."""
        if not offloads:
            return {}
        off, files = source.offload_table(), source.upload_file_table()
        conn.execute(sa.delete(off).where(off.c.id.in_([o.id for o in offloads])))
        report.offloads_deleted += len(offloads)
        file_ids = {o.file_id for o in offloads}
        still_used = {
            str(i) for i in conn.execute(sa.select(off.c.file_id).where(off.c.file_id.in_(file_ids))).scalars()
        }
        removable = list(file_ids - still_used)
        if not removable:
            return {}
        found = conn.execute(sa.select(files.c.key, files.c.size).where(files.c.id.in_(removable))).all()
        conn.execute(sa.delete(files).where(files.c.id.in_(removable)))
        report.files_deleted += len(found)
        return {str(key): int(size or 0) for key, size in found}

    def _delete_objects(self, keys: dict[str, int], report: CleanupKindReport) -> None:
        for key, size in keys.items():
            if self.store is None:
                report.objects_failed[key] = "no payload storage configured"
                continue
            try:
                self.store.delete(key)
            except Exception as exc:
                report.objects_failed[key] = f"{type(exc).__name__}: {exc}"
                continue
            report.objects_deleted += 1
            report.object_bytes += size


def _unchanged(spec: KindSpec, checked: SourceRow, current: SourceRow) -> bool:
    if first_difference(record_data(spec, checked), record_data(spec, current)) is not None:
        return False
    return sorted((o.id, o.file_id) for o in checked.offloads) == sorted((o.id, o.file_id) for o in current.offloads)
