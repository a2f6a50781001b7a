"""What the migration commands print: a job report as tables and lines, its exit status and error line.

Kept apart from click so code can render a report the way ``flask logstore`` does, and so the
commands only parse options and print (:mod:`flask_difylogstore.cli_migration`).
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

if t.TYPE_CHECKING:
    from flask_difylogstore.migration.cleanup import CleanupReport
    from flask_difylogstore.migration.migrate import MigrateReport
    from flask_difylogstore.migration.verify import VerifyReport


@dataclass(frozen=True)
class Table:
    """A text table: the first column left-aligned, the others right-aligned."""

    headers: list[str]
    rows: list[list[str]]


#: One piece of text output: a table, or one line.
Block = Table | str


@dataclass
class CommandOutput:
    """A command's result: ``data`` for ``--json``, ``blocks`` for text, and how it exits."""

    data: dict[str, t.Any]
    blocks: list[Block] = field(default_factory=list)
    exit_code: int = 0
    #: Why the exit status is not 0 (printed as ``Error: <error>`` on stderr).
    error: str = ""


def count(value: int) -> str:
    return f"{value:,}"


MIGRATE_HEADERS = [
    "kind",
    "selected",
    "migrated",
    "written",
    "present",
    "payloads",
    "failed",
    "no payload",
    "rows/s",
    "seconds",
]


def migrate_output(report: MigrateReport) -> CommandOutput:
    """A dry run lists what would be migrated; a run lists the figures, first failures and stops."""
    blocks: list[Block] = []
    if report.dry_run:
        headers = ["would migrate", "rows", "offloaded payloads", "payload bytes"]
        rows = [[k.kind, count(k.selected), count(k.offloads), count(k.offload_bytes)] for k in report.kinds]
        blocks.append(Table(headers, rows))
    else:
        rows = [
            [
                k.kind,
                count(k.selected),
                count(k.migrated),
                count(k.written),
                count(k.stale),
                count(k.payload_records),
                count(len(k.failed)),
                count(k.payloads_missing_count),
                f"{k.rows_per_second:,.0f}",
                f"{k.seconds:.1f}",
            ]
            for k in report.kinds
        ]
        blocks.append(Table(MIGRATE_HEADERS, rows))
        for k in report.kinds:
            blocks += [f"failed {k.kind} {id_}: {reason}" for id_, reason in list(k.failed.items())[:10]]
            blocks += [f"payload not readable {key}: {why}" for key, why in list(k.payloads_missing.items())[:10]]
            if k.aborted:
                blocks.append(f"stopped {k.kind}: {k.aborted}")
    failed = sum(len(k.failed) for k in report.kinds)
    missing = sum(k.payloads_missing_count for k in report.kinds)
    error = (
        f"{failed:,} row(s) not migrated; fix the cause and run again with --resume"
        if report.exit_code == 1
        else f"{missing:,} offloaded payload(s) could not be read from storage"
    )
    return CommandOutput(report.to_dict(), blocks, report.exit_code, error)


VERIFY_HEADERS = [
    "kind",
    "relational",
    "log store",
    "day/app groups",
    "short groups",
    "sampled",
    "newer in store",
    "mismatches",
    "result",
]


def _short(relational: int, log_store: int) -> str:
    return "SHORT" if log_store < relational else ""


def verify_output(report: VerifyReport) -> CommandOutput:
    """Counts and sample results per kind, every day/app group when kept, then each short group and mismatch."""
    rows = [
        [
            k.kind,
            count(k.relational_rows),
            count(k.log_store_rows),
            count(k.groups),
            count(k.short_group_count),
            count(k.sampled),
            count(k.superseded),
            count(k.mismatch_count),
            "ok" if k.ok else "MISMATCH",
        ]
        for k in report.kinds
    ]
    blocks: list[Block] = [Table(VERIFY_HEADERS, rows)]
    for k in report.kinds:
        if k.all_groups:
            groups = [
                [
                    g.day,
                    g.app_id,
                    count(g.relational),
                    count(g.log_store),
                    "SHORT" if g.log_store < g.relational else "",
                ]
                for g in k.all_groups
            ]
            blocks += ["", Table([k.kind, "app", "relational", "log store", ""], groups)]
        blocks += [
            f"short {k.kind} {g.day} app {g.app_id}: relational {g.relational:,}, log store {g.log_store:,}"
            for g in k.short_groups
        ]
        blocks += [f"{m.status} {k.kind} {m.id}: {m.detail}" for m in k.mismatches]
    ids = report.first_mismatch_ids()
    short = [f"{k.kind} {g.day}/{g.app_id}" for k in report.kinds for g in k.short_groups][:5]
    error = (
        "verification failed; first mismatching ids: "
        + (", ".join(ids) or "-")
        + ("; short groups: " + ", ".join(short) if short else "")
    )
    return CommandOutput(report.to_dict(), blocks, report.exit_code, error)


def cleanup_output(report: CleanupReport) -> CommandOutput:
    """What was (or would be) deleted per kind, each row kept and object not deleted, and what comes next."""
    headers = [
        "kind",
        "checked",
        "deleted" if report.execute else "would delete",
        "refused",
        "offload rows",
        "upload_files",
        "objects",
        "row bytes",
        "object bytes",
    ]
    rows = [
        [
            k.kind,
            count(k.scanned),
            count(k.deleted),
            count(k.refused_count),
            count(k.offloads_deleted),
            count(k.files_deleted),
            count(k.objects_deleted),
            count(k.row_bytes),
            count(k.object_bytes),
        ]
        for k in report.kinds
    ]
    blocks: list[Block] = [Table(headers, rows)]
    for k in report.kinds:
        blocks += [f"kept {k.kind} {id_}: {reason}" for id_, reason in k.refused.items()]
        blocks += [f"object not deleted {key}: {reason}" for key, reason in k.objects_failed.items()]
    if report.execute:
        blocks.append("PostgreSQL returns the space after VACUUM (or pg_repack for the disk itself).")
    else:
        blocks.append("Dry run: nothing was deleted; add --yes to delete.")
    refused = sum(k.refused_count for k in report.kinds)
    first = [id_ for k in report.kinds for id_ in k.refused][:5]
    error = (
        f"{refused:,} row(s) kept because the log store does not prove them; first: " + ", ".join(first)
        if refused
        else "some storage objects could not be deleted"
    )
    return CommandOutput(report.to_dict(), blocks, report.exit_code, error)
