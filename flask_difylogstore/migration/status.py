"""The migration part of ``flask logstore status``: rows on each side, checkpoints, last verify.

Exact ``count(*)`` over tens of millions of rows takes a while, so on PostgreSQL the relational
side defaults to the planner's estimate (``pg_class.reltuples``, refreshed by autovacuum) and
says so; ``exact=True`` counts. Every figure that cannot be obtained is reported as an error
string instead of failing the whole status.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa

from flask_difylogstore.backends.base import LogBackend, Scope
from flask_difylogstore.migration import source
from flask_difylogstore.migration.checkpoint import CheckpointStore


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
