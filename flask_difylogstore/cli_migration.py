"""``flask logstore migrate`` / ``verify`` / ``cleanup-pg``: options in, one library call, output out.

:mod:`flask_difylogstore.cli` adds :data:`COMMANDS` to the ``logstore`` group. Each command calls one
function of :mod:`flask_difylogstore.migration.run` with a click progress bar on stderr, then prints
a table (or ``--json``) and exits non-zero whenever something was not done.
"""

from __future__ import annotations

import typing as t

import click
from flask.cli import with_appcontext

from flask_difylogstore.cli_progress import click_progress
from flask_difylogstore.cli_support import F, catch_errors, echo_output
from flask_difylogstore.migration import MigrationContext, run

__all__ = ["COMMANDS", "cleanup_command", "migrate_command", "verify_command"]

KIND_CHOICE = click.Choice(["runs", "node-executions", "app-logs", "all"])


def selection_options(func: F) -> F:
    """``--tenant-id`` / ``--app-id`` shared by the migration commands."""
    func = click.option("--app-id", help="Only this app.")(func)
    func = click.option("--tenant-id", help="Only this workspace (tenant).")(func)
    return func


def _context(storage_dir: str | None) -> MigrationContext:
    return MigrationContext.from_app(storage_dir=storage_dir, progress=click_progress)


def _warn(message: str) -> None:
    click.echo(message, err=True)


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
def migrate_command(storage_dir: str | None, as_json: bool, **options: t.Any) -> None:
    """Copy workflow runs, node executions (with full payloads) and app logs into the log store.

    Exit status: 0 all rows stored, 1 some rows failed (listed; --resume retries them), 3 every row
    stored but some offloaded payloads could not be read from storage.
    """
    echo_output(run.migrate(_context(storage_dir), notify=_warn, **options), as_json=as_json)


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
def verify_command(storage_dir: str | None, as_json: bool, **options: t.Any) -> None:
    """Compare counts per day and app on both sides and a random sample field by field; exit 1 on mismatch."""
    echo_output(run.verify(_context(storage_dir), **options), as_json=as_json)


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
def cleanup_command(storage_dir: str | None, as_json: bool, **options: t.Any) -> None:
    """Delete relational rows the log store is proven to hold (with offloads, upload_files and objects).

    Dry run unless --yes. Needs a passing `verify` of each kind. Exit 1 when rows were refused.
    """
    echo_output(run.cleanup_pg(_context(storage_dir), **options), as_json=as_json)


COMMANDS: tuple[click.Command, ...] = (migrate_command, verify_command, cleanup_command)
"""The migration commands, in the order the ``logstore`` group lists them."""
