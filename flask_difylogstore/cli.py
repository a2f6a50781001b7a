"""The ``flask logstore`` command group: thin click wrappers over library functions.

Every command runs in an app context (``AppGroup``), turns the package's errors into a one-line
message with a non-zero exit status, and never prints a secret.
"""

from __future__ import annotations

import functools
import typing as t

import click
import orjson
from flask.cli import AppGroup

from flask_difylogstore.errors import DifyLogStoreError
from flask_difylogstore.extension import get_state
from flask_difylogstore.health import build_health_report

logstore_group = AppGroup("logstore", help="Workflow logs in Aliyun SLS / Elasticsearch.")

F = t.TypeVar("F", bound=t.Callable[..., t.Any])


def catch_errors(func: F) -> F:
    """Report the package's errors as ``Error: <message>`` with exit status 1, without a traceback."""

    @functools.wraps(func)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        try:
            return func(*args, **kwargs)
        except DifyLogStoreError as exc:
            lines = [line.strip(" -") for line in str(exc).splitlines() if line.strip()]
            raise click.ClickException("; ".join(lines)) from None

    return t.cast(F, wrapper)


def _echo_json(data: t.Any) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode())


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
    data: dict[str, t.Any] = {
        "backend": state.settings.effective_backend,
        "reachable": None if report.backend is None else report.backend.ok,
        "provisioning": report.provisioning.get("state", "n/a"),
        "settings": state.settings.summary(),
        "migration": _migration_status(exact),
    }
    if as_json:
        _echo_json(data)
        return
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
    _echo_table(["rows", "relational", "log store"], table)
    jobs = status["jobs"]
    if isinstance(jobs, str):
        click.echo(f"\njobs: {jobs}")
    elif jobs:
        click.echo("")
        _echo_table(
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
        _echo_table(
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


def _echo_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=False)]
    for line in [headers, *rows]:
        click.echo(
            "  ".join(
                str(c).ljust(w) if i == 0 else str(c).rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=False))
            ).rstrip()
        )


@logstore_group.command("health")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@catch_errors
def health_command(as_json: bool) -> None:
    """Ping the backend and show provisioning and write-pipeline figures; exit 1 when unhealthy."""
    report = build_health_report(get_state())
    if as_json:
        _echo_json(report.to_dict())
    else:
        if not report.enabled:
            click.echo("log store disabled (LOGSTORE_BACKEND=none)")
        else:
            assert report.backend is not None
            ping = report.backend
            line = f"{ping.name}: {'ok' if ping.ok else 'FAILED'} ({ping.latency_ms:.1f} ms)"
            click.echo(line + (f" - {ping.error}" if ping.error else ""))
            for section in ("provisioning", "pipeline", "counters"):
                values = getattr(report, section)
                if values:
                    click.echo(f"{section}:")
                    for key, value in values.items():
                        click.echo(f"  {key}: {value}")
    if not report.ok:
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


# -- migration: migrate, verify, cleanup-pg --------------------------------------------------------

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


@logstore_group.command("migrate")
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
        _echo_json(report.to_dict())
    elif dry_run:
        _echo_table(
            ["would migrate", "rows", "offloaded payloads", "payload bytes"],
            [[k.kind, _count(k.selected), _count(k.offloads), _count(k.offload_bytes)] for k in report.kinds],
        )
    else:
        _echo_table(
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


@logstore_group.command("verify")
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
    storage_dir: str | None,
    as_json: bool,
) -> None:
    """Compare counts per day and app on both sides and a random sample field by field; exit 1 on mismatch."""
    from flask_difylogstore.migration import VerifyOptions

    ctx = _context(storage_dir)
    report = ctx.verifier().run(
        VerifyOptions(
            kind=kind, selection=_selection(tenant_id, app_id, since, until), sample_percent=sample, seed=seed
        )
    )
    if as_json:
        _echo_json(report.to_dict())
    else:
        _echo_table(
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


@logstore_group.command("cleanup-pg")
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
        _echo_json(report.to_dict())
    else:
        verb = "deleted" if execute else "would delete"
        _echo_table(
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
