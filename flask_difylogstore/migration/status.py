"""The migration part of ``flask logstore status``: rows on each side, checkpoints, last verify.

Exact ``count(*)`` over tens of millions of rows takes a while, so on PostgreSQL the relational
side defaults to the planner's estimate (``pg_class.reltuples``, refreshed by autovacuum) and
says so; ``exact=True`` counts. Every figure that cannot be obtained is reported as an error
string instead of failing the whole status.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from flask import Flask

from flask_difylogstore.backends.base import LogBackend, Scope
from flask_difylogstore.migration import source
from flask_difylogstore.migration.checkpoint import CheckpointStore
from flask_difylogstore.migration.output import Block, Table


def _error(exc: Exception) -> str:
    return f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")


def relational_count(engine: sa.Engine, table: sa.Table, *, exact: bool) -> tuple[int, bool]:
    """Rows of ``table`` and whether the figure is exact."""
    with engine.connect() as conn:
        if not exact and engine.dialect.name == "postgresql":
            estimate = conn.execute(
                sa.text("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(:name)"),
                {"name": table.name},
            ).scalar()
            if estimate is not None and estimate >= 0:
                return int(estimate), False
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()), True


def migration_status(engine: sa.Engine | None, backend: LogBackend | None, *, exact: bool = False) -> dict[str, t.Any]:
    """Rows per kind on each side, the checkpoints of migration / clean-up jobs, the last verify results."""
    rows: dict[str, dict[str, t.Any]] = {}
    for name, spec in source.kind_specs().items():
        entry: dict[str, t.Any] = {}
        if engine is None:
            entry["relational"] = None
        else:
            try:
                count, is_exact = relational_count(engine, spec.table, exact=exact)
                entry["relational"] = count
                entry["relational_exact"] = is_exact
            except Exception as exc:
                entry["relational"] = _error(exc)
        if backend is None:
            entry["log_store"] = None
        else:
            try:
                entry["log_store"] = backend.count(spec.kind, Scope.unscoped())
            except Exception as exc:
                entry["log_store"] = _error(exc)
        rows[name] = entry
    result: dict[str, t.Any] = {"rows": rows, "jobs": [], "verify": {}}
    if engine is None:
        return result
    try:
        store = CheckpointStore(engine)
        for checkpoint in store.all():
            data = checkpoint.to_dict()
            if checkpoint.job.startswith("verify:"):
                details = data["details"]
                result["verify"][checkpoint.kind] = {
                    "status": checkpoint.status,
                    "at": data["updated_at"],
                    "sampled": details.get("sampled"),
                    "mismatches": details.get("mismatches"),
                    "short_groups": details.get("short_groups"),
                    "first_mismatches": [m.get("id") for m in details.get("first_mismatches", [])][:5],
                }
            else:
                data.pop("details", None)
                result["jobs"].append(data)
    except Exception as exc:
        result["jobs"] = _error(exc)
    return result


def app_migration_status(app: Flask, backend: LogBackend | None, *, exact: bool = False) -> dict[str, t.Any]:
    """:func:`migration_status` over the app's Flask-SQLAlchemy engine (none when it has none or it fails)."""
    ext = app.extensions.get("sqlalchemy")
    engine = None
    if ext is not None:
        try:
            engine = ext.engine
        except Exception:
            engine = None
    return migration_status(engine, backend, exact=exact)


def status_blocks(status: dict[str, t.Any]) -> list[Block]:
    """The migration tables of ``flask logstore status``: rows on each side, jobs, last verify of each kind."""
    rows = []
    for kind, entry in status["rows"].items():
        relational = entry.get("relational")
        if isinstance(relational, int):
            relational = f"{'' if entry.get('relational_exact', True) else '~'}{relational:,}"
        store = entry.get("log_store")
        rows.append(
            [
                kind,
                "n/a" if relational is None else str(relational),
                "n/a" if store is None else (f"{store:,}" if isinstance(store, int) else str(store)),
            ]
        )
    blocks: list[Block] = ["", Table(["rows", "relational", "log store"], rows)]
    jobs = status["jobs"]
    if isinstance(jobs, str):
        blocks.append(f"\njobs: {jobs}")
    elif jobs:
        headers = ["job", "status", "rows done", "failed", "cursor", "updated"]
        table = [
            [
                j["job"],
                j["status"],
                f"{j['rows_done']:,}",
                str(j["rows_failed"]),
                " ".join(j["cursor"]) if j["cursor"] else "-",
                j["updated_at"][:19],
            ]
            for j in jobs
        ]
        blocks += ["", Table(headers, table)]
    if status["verify"]:
        headers = ["last verify", "result", "sampled", "mismatches", "short groups", "at"]
        table = [
            [kind, v["status"], str(v["sampled"]), str(v["mismatches"]), str(v["short_groups"]), v["at"][:19]]
            for kind, v in status["verify"].items()
        ]
        blocks += ["", Table(headers, table)]
    return blocks
