"""The ``flask logstore`` command group: thin click wrappers over library functions.

Every command runs in an app context (``AppGroup``), turns the package's errors into a one-line
message with a non-zero exit status, and never prints a secret.
"""

from __future__ import annotations

import typing as t

import click
from flask.cli import AppGroup

from flask_difylogstore.cli_support import catch_errors, echo_json, echo_table
from flask_difylogstore.health import build_health_report
from flask_difylogstore.migration import commands as migration_commands
from flask_difylogstore.state import get_state

logstore_group = AppGroup("logstore", help="Workflow logs in Aliyun SLS / Elasticsearch.")


def _flatten(prefix: str, data: t.Any, rows: list[tuple[str, str]]) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), value, rows)
    else:
        rows.append((prefix, "" if data is None else str(data)))


@logstore_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--exact", is_flag=True, help="Count relational rows exactly (PostgreSQL otherwise uses estimates).")
@catch_errors
def status_command(as_json: bool, exact: bool) -> None:
    """Show configuration (secrets masked), reachability, rows on each side and migration progress."""
    state = get_state()
    report = build_health_report(state)
    from flask import current_app

    from flask_difylogstore.wiring import host_summary

    data: dict[str, t.Any] = {
        "backend": state.settings.effective_backend,
        "reachable": None if report.backend is None else report.backend.ok,
        "provisioning": report.provisioning.get("state", "n/a"),
        "dify": host_summary(current_app),
        "settings": state.settings.summary(),
        "migration": _migration_status(exact),
    }
    if as_json:
        echo_json(data)
        return
    _echo_dify(data["dify"])
    click.echo(f"backend       {data['backend']}")
    click.echo(f"reachable     {'n/a' if data['reachable'] is None else ('yes' if data['reachable'] else 'NO')}")
    if report.backend is not None and report.backend.error:
        click.echo(f"error         {report.backend.error}")
    click.echo(f"provisioning  {data['provisioning']}")
    click.echo("")
    rows: list[tuple[str, str]] = []
    _flatten("", data["settings"], rows)
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key.ljust(width)}  {value}")
    _echo_migration_status(data["migration"])


def _echo_dify(dify: dict[str, t.Any]) -> None:
    """The detected Dify line and the class Dify builds for each repository contract."""
    click.echo(f"dify          {dify['description']}")
    for contract, path in dify["classes"].items():
        click.echo(f"  {contract:<28} {path}")
    for note in dify["notes"]:
        click.echo(f"  note: {note}")


def _migration_status(exact: bool) -> dict[str, t.Any]:
    from flask import current_app

    from flask_difylogstore.migration.status import migration_status

    ext = current_app.extensions.get("sqlalchemy")
    engine = None
    if ext is not None:
        try:
            engine = ext.engine
        except Exception:
            engine = None
    return migration_status(engine, get_state().backend, exact=exact)


def _echo_migration_status(status: dict[str, t.Any]) -> None:
    click.echo("")
    table = []
    for kind, entry in status["rows"].items():
        relational = entry.get("relational")
        if isinstance(relational, int):
            relational = f"{'' if entry.get('relational_exact', True) else '~'}{relational:,}"
        store = entry.get("log_store")
        table.append(
            [
                kind,
                "n/a" if relational is None else str(relational),
                "n/a" if store is None else (f"{store:,}" if isinstance(store, int) else str(store)),
            ]
        )
    echo_table(["rows", "relational", "log store"], table)
    jobs = status["jobs"]
    if isinstance(jobs, str):
        click.echo(f"\njobs: {jobs}")
    elif jobs:
        click.echo("")
        echo_table(
            ["job", "status", "rows done", "failed", "cursor", "updated"],
            [
                [
                    j["job"],
                    j["status"],
                    f"{j['rows_done']:,}",
                    str(j["rows_failed"]),
                    " ".join(j["cursor"]) if j["cursor"] else "-",
                    j["updated_at"][:19],
                ]
                for j in jobs
            ],
        )
    if status["verify"]:
        click.echo("")
        echo_table(
            ["last verify", "result", "sampled", "mismatches", "short groups", "at"],
            [
                [
                    kind,
                    v["status"],
                    str(v["sampled"]),
                    str(v["mismatches"]),
                    str(v["short_groups"]),
                    v["at"][:19],
                ]
                for kind, v in status["verify"].items()
            ],
        )


@logstore_group.command("health")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@catch_errors
def health_command(as_json: bool) -> None:
    """Ping the backend and show provisioning and write-pipeline figures; exit 1 when unhealthy."""
    report = build_health_report(get_state())
    if as_json:
        echo_json(report.to_dict())
    else:
        if not report.enabled:
            click.echo("log store disabled (LOGSTORE_BACKEND=none)")
        else:
            assert report.backend is not None
            ping = report.backend
            line = f"{ping.name}: {'ok' if ping.ok else 'FAILED'} ({ping.latency_ms:.1f} ms)"
            click.echo(line + (f" - {ping.error}" if ping.error else ""))
            click.echo("checks:")
            for name, check in report.checks.items():
                click.echo(f"  {name}: {'ok' if check.ok else 'FAILED - ' + check.detail}")
            for section in ("provisioning", "pipeline", "counters"):
                values = getattr(report, section)
                if values:
                    click.echo(f"{section}:")
                    for key, value in values.items():
                        click.echo(f"  {key}: {value}")
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


# The migration commands live beside the library they wrap.
for _command in migration_commands.COMMANDS:
    logstore_group.add_command(_command)
