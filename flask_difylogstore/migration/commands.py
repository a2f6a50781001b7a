"""``flask logstore migrate`` / ``verify`` / ``cleanup-pg``: thin click wrappers over this package.

:mod:`flask_difylogstore.cli` adds :data:`COMMANDS` to the ``logstore`` group. They print a table (or
``--json``), show progress bars on stderr and exit non-zero whenever something was not done.
"""

from __future__ import annotations

import typing as t

import click
from flask.cli import with_appcontext

from flask_difylogstore.cli_support import F, catch_errors, echo_json, echo_table

KIND_CHOICE = click.Choice(["runs", "node-executions", "app-logs", "all"])


def selection_options(func: F) -> F:
    """``--tenant-id`` / ``--app-id`` shared by the migration commands."""
    func = click.option("--app-id", help="Only this app.")(func)
    func = click.option("--tenant-id", help="Only this workspace (tenant).")(func)
    return func


def _context(storage_dir: str | None) -> t.Any:
    from flask_difylogstore.migration import MigrationContext
    from flask_difylogstore.migration.progress import click_progress

    return MigrationContext.from_app(storage_dir=storage_dir, progress=click_progress)


def _selection(tenant_id: str | None, app_id: str | None, since: str | None, until: str | None) -> t.Any:
    from flask_difylogstore.migration import Selection, Window

    return Selection(tenant_id or None, app_id or None, Window.parse(since, until))


def _count(value: int) -> str:
    return f"{value:,}"


def _exit(code: int, message: str) -> None:
    if code:
        click.echo(f"Error: {message}", err=True)
        raise SystemExit(code)


@click.command("migrate")
@with_appcontext  # like every command of the group: it runs in an app context
@click.option("--kind", type=KIND_CHOICE, default="all", show_default=True, help="Which table to migrate.")
@selection_options
@click.option("--since", help="First day (UTC, inclusive) as YYYY-MM-DD, or an ISO datetime.")
@click.option("--until", help="Last day (UTC, inclusive: all of it) as YYYY-MM-DD, or an ISO datetime.")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=1000, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(1, 32),
    default=2,
    show_default=True,
    help="Batches converted and written in parallel (reads stay sequential).",
)
@click.option("--dry-run", is_flag=True, help="Only count what would be migrated.")
@click.option(
    "--resume",
    is_flag=True,
    help="Continue after the checkpoint of the same selection; retry its failed rows.",
)
@click.option(
    "--create-index",
    is_flag=True,
    help="First create the missing (created_at, id) indexes keyset paging needs (CONCURRENTLY).",
)
@click.option(
    "--max-failures",
    type=click.IntRange(0),
    default=1000,
    show_default=True,
    help="Stop a kind after this many failed rows.",
)
@click.option("--storage-dir", type=click.Path(file_okay=False), help="Local directory of offloaded payloads.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@catch_errors
def migrate_command(
    kind: str,
    tenant_id: str | None,
    app_id: str | None,
    since: str | None,
    until: str | None,
    batch_size: int,
    workers: int,
    dry_run: bool,
    resume: bool,
    create_index: bool,
    max_failures: int,
    storage_dir: str | None,
    as_json: bool,
) -> None:
    """Copy workflow runs, node executions (with full payloads) and app logs into the log store.

    Exit status: 0 all rows stored, 1 some rows failed (listed; --resume retries them), 3 every row
    stored but some offloaded payloads could not be read from storage.
    """
    from flask_difylogstore.migration import MigrateOptions
    from flask_difylogstore.migration import source as src

    ctx = _context(storage_dir)
    options = MigrateOptions(
        kind=kind,
        selection=_selection(tenant_id, app_id, since, until),
        batch_size=batch_size,
        workers=workers,
        dry_run=dry_run,
        resume=resume,
        max_failures=max_failures,
    )
    for spec in src.resolve_kinds(kind):
        if src.has_keyset_index(ctx.engine, spec.table):
            continue
        if create_index and not dry_run:
            click.echo(f"creating index {src.keyset_index_name(spec.table)} ...", err=True)
            src.create_keyset_index(ctx.engine, spec.table)
        else:
            click.echo(
                f"Warning: {spec.table.name} has no (created_at, id) index, so every batch scans the "
                f"table; run with --create-index or: "
                f"{src.keyset_index_sql(spec.table, ctx.engine.dialect.name)}",
                err=True,
            )
    report = ctx.migrator().run(options)
    if as_json:
        echo_json(report.to_dict())
    elif dry_run:
        echo_table(
            ["would migrate", "rows", "offloaded payloads", "payload bytes"],
            [[k.kind, _count(k.selected), _count(k.offloads), _count(k.offload_bytes)] for k in report.kinds],
        )
    else:
        echo_table(
            [
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
            ],
            [
                [
                    k.kind,
                    _count(k.selected),
                    _count(k.migrated),
                    _count(k.written),
                    _count(k.stale),
                    _count(k.payload_records),
                    _count(len(k.failed)),
                    _count(k.payloads_missing_count),
                    f"{k.rows_per_second:,.0f}",
                    f"{k.seconds:.1f}",
                ]
                for k in report.kinds
            ],
        )
        for k in report.kinds:
            for id_, reason in list(k.failed.items())[:10]:
                click.echo(f"failed {k.kind} {id_}: {reason}")
            for key, reason in list(k.payloads_missing.items())[:10]:
                click.echo(f"payload not readable {key}: {reason}")
            if k.aborted:
                click.echo(f"stopped {k.kind}: {k.aborted}")
    failed = sum(len(k.failed) for k in report.kinds)
    missing = sum(k.payloads_missing_count for k in report.kinds)
    _exit(
        report.exit_code,
        f"{failed:,} row(s) not migrated; fix the cause and run again with --resume"
        if report.exit_code == 1
        else f"{missing:,} offloaded payload(s) could not be read from storage",
    )


@click.command("verify")
@with_appcontext  # like every command of the group: it runs in an app context
@click.option("--kind", type=KIND_CHOICE, default="all", show_default=True)
@selection_options
@click.option("--since", help="First day (UTC, inclusive) as YYYY-MM-DD, or an ISO datetime.")
@click.option("--until", help="Last day (UTC, inclusive) as YYYY-MM-DD, or an ISO datetime.")
@click.option(
    "--sample",
    type=click.FloatRange(0, 100),
    default=1.0,
    show_default=True,
    help="Percent of rows compared field by field (random, drawn by the database).",
)
@click.option("--seed", type=int, help="Repeatable sample (PostgreSQL).")
@click.option("--groups", "all_groups", is_flag=True, help="Also print the count of every UTC day and app.")
@click.option("--storage-dir", type=click.Path(file_okay=False), help="Local directory of offloaded payloads.")
@click.option("--json", "as_json", is_flag=True)
@catch_errors
def verify_command(
    kind: str,
    tenant_id: str | None,
    app_id: str | None,
    since: str | None,
    until: str | None,
    sample: float,
    seed: int | None,
    all_groups: bool,
    storage_dir: str | None,
    as_json: bool,
) -> None:
    """Compare counts per day and app on both sides and a random sample field by field; exit 1 on mismatch."""
    from flask_difylogstore.migration import VerifyOptions

    ctx = _context(storage_dir)
    report = ctx.verifier().run(
        VerifyOptions(
            kind=kind,
            selection=_selection(tenant_id, app_id, since, until),
            sample_percent=sample,
            seed=seed,
            all_groups=all_groups,
        )
    )
    if as_json:
        echo_json(report.to_dict())
    else:
        echo_table(
            [
                "kind",
                "relational",
                "log store",
                "day/app groups",
                "short groups",
                "sampled",
                "newer in store",
                "mismatches",
                "result",
            ],
            [
                [
                    k.kind,
                    _count(k.relational_rows),
                    _count(k.log_store_rows),
                    _count(k.groups),
                    _count(k.short_group_count),
                    _count(k.sampled),
                    _count(k.superseded),
                    _count(k.mismatch_count),
                    "ok" if k.ok else "MISMATCH",
                ]
                for k in report.kinds
            ],
        )
        for k in report.kinds:
            if k.all_groups:
                click.echo("")
                echo_table(
                    [k.kind, "app", "relational", "log store", ""],
                    [
                        [
                            g.day,
                            g.app_id,
                            _count(g.relational),
                            _count(g.log_store),
                            "SHORT" if g.log_store < g.relational else "",
                        ]
                        for g in k.all_groups
                    ],
                )
            for g in k.short_groups:
                click.echo(
                    f"short {k.kind} {g.day} app {g.app_id}: relational {g.relational:,}, log store {g.log_store:,}"
                )
            for m in k.mismatches:
                click.echo(f"{m.status} {k.kind} {m.id}: {m.detail}")
    ids = report.first_mismatch_ids()
    short = [f"{k.kind} {g.day}/{g.app_id}" for k in report.kinds for g in k.short_groups][:5]
    _exit(
        report.exit_code,
        "verification failed; first mismatching ids: "
        + (", ".join(ids) or "-")
        + ("; short groups: " + ", ".join(short) if short else ""),
    )


@click.command("cleanup-pg")
@with_appcontext  # like every command of the group: it runs in an app context
@click.option("--kind", type=KIND_CHOICE, default="all", show_default=True)
@selection_options
@click.option(
    "--before",
    required=True,
    help="Delete rows created before this day (UTC, exclusive) / ISO datetime, e.g. the cut-over.",
)
@click.option("--batch-size", type=click.IntRange(1, 5_000), default=500, show_default=True)
@click.option("--yes", "execute", is_flag=True, help="Really delete (default: only report what would be deleted).")
@click.option("--resume", is_flag=True, help="Continue after the checkpoint of the same selection.")
@click.option("--storage-dir", type=click.Path(file_okay=False), help="Local directory of offloaded payloads.")
@click.option("--json", "as_json", is_flag=True)
@catch_errors
def cleanup_command(
    kind: str,
    tenant_id: str | None,
    app_id: str | None,
    before: str,
    batch_size: int,
    execute: bool,
    resume: bool,
    storage_dir: str | None,
    as_json: bool,
) -> None:
    """Delete relational rows the log store is proven to hold (with offloads, upload_files and objects).

    Dry run unless --yes. Needs a passing `verify` of each kind. Exit 1 when rows were refused.
    """
    from flask_difylogstore.migration import CleanupOptions, Selection, Window

    ctx = _context(storage_dir)
    window = Window(None, Window.parse(before, None).since)  # the start of --before: exclusive
    report = ctx.cleaner().run(
        CleanupOptions(
            kind=kind,
            selection=Selection(tenant_id or None, app_id or None, window),
            batch_size=batch_size,
            execute=execute,
            resume=resume,
        )
    )
    if as_json:
        echo_json(report.to_dict())
    else:
        verb = "deleted" if execute else "would delete"
        echo_table(
            [
                "kind",
                "checked",
                verb,
                "refused",
                "offload rows",
                "upload_files",
                "objects",
                "row bytes",
                "object bytes",
            ],
            [
                [
                    k.kind,
                    _count(k.scanned),
                    _count(k.deleted),
                    _count(k.refused_count),
                    _count(k.offloads_deleted),
                    _count(k.files_deleted),
                    _count(k.objects_deleted),
                    _count(k.row_bytes),
                    _count(k.object_bytes),
                ]
                for k in report.kinds
            ],
        )
        for k in report.kinds:
            for id_, reason in k.refused.items():
                click.echo(f"kept {k.kind} {id_}: {reason}")
            for key, reason in k.objects_failed.items():
                click.echo(f"object not deleted {key}: {reason}")
        if execute:
            click.echo("PostgreSQL returns the space after VACUUM (or pg_repack for the disk itself).")
        else:
            click.echo("Dry run: nothing was deleted; add --yes to delete.")
    refused = sum(k.refused_count for k in report.kinds)
    first = [id_ for k in report.kinds for id_ in k.refused][:5]
    _exit(
        report.exit_code,
        f"{refused:,} row(s) kept because the log store does not prove them; first: " + ", ".join(first)
        if refused
        else "some storage objects could not be deleted",
    )


COMMANDS: tuple[click.Command, ...] = (migrate_command, verify_command, cleanup_command)
"""The migration commands, in the order the ``logstore`` group lists them."""
