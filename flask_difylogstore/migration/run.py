"""``migrate`` / ``verify`` / ``cleanup-pg`` as one call each: option values in, printable output out.

The ``flask logstore`` commands only parse their options, call one of these and print the
:class:`~flask_difylogstore.migration.output.CommandOutput`; code gets the same behaviour
(option checks, index warnings, exit status) without click.
"""

from __future__ import annotations

import typing as t

from flask_difylogstore.migration import source
from flask_difylogstore.migration.cleanup import CleanupOptions
from flask_difylogstore.migration.migrate import MigrateOptions
from flask_difylogstore.migration.output import CommandOutput, cleanup_output, migrate_output, verify_output
from flask_difylogstore.migration.selection import Selection, Window
from flask_difylogstore.migration.verify import VerifyOptions

if t.TYPE_CHECKING:
    from flask_difylogstore.migration import MigrationContext

#: Receives one line for the operator (the CLI prints it on stderr).
Notify = t.Callable[[str], None]


def _silent(message: str) -> None:
    return None


def selection(tenant_id: str | None, app_id: str | None, since: str | None, until: str | None) -> Selection:
    """The rows an operator picked by workspace, app and ``--since`` / ``--until`` (empty text: no filter)."""
    return Selection(tenant_id or None, app_id or None, Window.parse(since, until))


def prepare_keyset_indexes(ctx: MigrationContext, kind: str, *, create: bool, notify: Notify = _silent) -> None:
    """Create the missing ``(created_at, id)`` indexes keyset paging needs, or warn how to."""
    for spec in source.resolve_kinds(kind):
        if source.has_keyset_index(ctx.engine, spec.table):
            continue
        if create:
            notify(f"creating index {source.keyset_index_name(spec.table)} ...")
            source.create_keyset_index(ctx.engine, spec.table)
        else:
            notify(
                f"Warning: {spec.table.name} has no (created_at, id) index, so every batch scans the "
                f"table; run with --create-index or: "
                f"{source.keyset_index_sql(spec.table, ctx.engine.dialect.name)}"
            )


def migrate(
    ctx: MigrationContext,
    *,
    kind: str = "all",
    tenant_id: str | None = None,
    app_id: str | None = None,
    since: str | None = None,
    until: str | None = None,
    batch_size: int = 1000,
    workers: int = 2,
    dry_run: bool = False,
    resume: bool = False,
    create_index: bool = False,
    max_failures: int = 1000,
    notify: Notify = _silent,
) -> CommandOutput:
    """``flask logstore migrate``: exit 0 all stored, 1 rows failed, 3 only offloaded payloads unreadable."""
    options = MigrateOptions(
        kind=kind,
        selection=selection(tenant_id, app_id, since, until),
        batch_size=batch_size,
        workers=workers,
        dry_run=dry_run,
        resume=resume,
        max_failures=max_failures,
    )
    prepare_keyset_indexes(ctx, kind, create=create_index and not dry_run, notify=notify)
    return migrate_output(ctx.migrator().run(options))


def verify(
    ctx: MigrationContext,
    *,
    kind: str = "all",
    tenant_id: str | None = None,
    app_id: str | None = None,
    since: str | None = None,
    until: str | None = None,
    sample: float = 1.0,
    seed: int | None = None,
    all_groups: bool = False,
) -> CommandOutput:
    """``flask logstore verify``: exit 1 when a day/app group is short or a sampled row differs."""
    options = VerifyOptions(
        kind=kind,
        selection=selection(tenant_id, app_id, since, until),
        sample_percent=sample,
        seed=seed,
        all_groups=all_groups,
    )
    return verify_output(ctx.verifier().run(options))


def cleanup_pg(
    ctx: MigrationContext,
    *,
    before: str,
    kind: str = "all",
    tenant_id: str | None = None,
    app_id: str | None = None,
    batch_size: int = 500,
    execute: bool = False,
    resume: bool = False,
) -> CommandOutput:
    """``flask logstore cleanup-pg``: a dry run unless ``execute``; exit 1 when rows were refused."""
    window = Window(None, Window.parse(before, None).since)  # the start of --before: exclusive
    options = CleanupOptions(
        kind=kind,
        selection=Selection(tenant_id or None, app_id or None, window),
        batch_size=batch_size,
        execute=execute,
        resume=resume,
    )
    return cleanup_output(ctx.cleaner().run(options))
