"""The ``flask logstore`` command group: thin click wrappers over library functions.

Every command runs in an app context (``AppGroup``), turns the package's errors into a one-line
message with a non-zero exit status, and never prints a secret. ``status``, ``health`` and ``init``
are defined here; the migration commands come from :mod:`flask_difylogstore.cli_migration`.
"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from flask_difylogstore import cli_migration
from flask_difylogstore.cli_support import catch_errors, echo_blocks, echo_json
from flask_difylogstore.health import build_health_report, health_lines, status_blocks, status_data
from flask_difylogstore.state import get_state

logstore_group = AppGroup("logstore", help="Workflow logs in Aliyun SLS / Elasticsearch.")


@logstore_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--exact", is_flag=True, help="Count relational rows exactly (PostgreSQL otherwise uses estimates).")
@catch_errors
def status_command(as_json: bool, exact: bool) -> None:
    """Show configuration (secrets masked), reachability, rows on each side and migration progress."""
    from flask import current_app

    from flask_difylogstore.migration.status import app_migration_status
    from flask_difylogstore.wiring import host_summary

    state = get_state()
    report = build_health_report(state)
    dify = host_summary(current_app)
    data = status_data(
        state, report, dify=dify, migration=app_migration_status(current_app, state.backend, exact=exact)
    )
    echo_json(data) if as_json else echo_blocks(status_blocks(data, report))


@logstore_group.command("health")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@catch_errors
def health_command(as_json: bool) -> None:
    """Ping the backend and show provisioning and write-pipeline figures; exit 1 when unhealthy."""
    report = build_health_report(get_state())
    if as_json:
        echo_json(report.to_dict())
    else:
        echo_blocks(health_lines(report))
    if not report.ok:
        if not as_json:
            click.echo(f"UNHEALTHY: {', '.join(report.failed)}", err=True)
        raise SystemExit(1)


@logstore_group.command("init")
@click.option("--dry-run", is_flag=True, help="Only show what would be created or changed.")
@catch_errors
def init_command(dry_run: bool) -> None:
    """Create or update logstores / indexes / templates; never removes anything custom."""
    state = get_state()
    state.require_backend()
    assert state.gate is not None
    report = state.gate.run_now(dry_run=dry_run)
    verb = "would" if dry_run else "did"
    for change in report.changes:
        mark = {"create": "+", "update": "~", "keep": "="}[change.action]
        click.echo(f"{mark} {change.target}: {change.detail}")
    changed = sum(1 for c in report.changes if c.action != "keep")
    click.echo(f"{report.backend}: {verb} change {changed} item(s), {len(report.changes) - changed} already up to date")


# The migration commands, registered explicitly from their own CLI module.
for _command in cli_migration.COMMANDS:
    logstore_group.add_command(_command)
