"""Health report: backend reachability, provisioning, and whether the write pipeline delivers.

The same report feeds ``flask logstore health`` and the optional JSON endpoint (200 healthy,
503 not), so operators and load balancers see one truth. A backend that answers pings is not
enough: the report is also unhealthy when a writer thread is dead, when the write circuit breaker
has been open longer than ``LOGSTORE_HEALTH_BREAKER_OPEN_MAX`` (pings pass but writes are refused:
quota, missing write permission), when the oldest unacknowledged record is older than
``LOGSTORE_HEALTH_MAX_PENDING_AGE``, or when records could be neither delivered nor dead-lettered.
``checks`` names each check and says why it failed.

``flask logstore status`` shows this report's reachability beside the configuration and the migration
progress; :func:`status_data` and :func:`status_blocks` build what it prints.
"""

from __future__ import annotations

import dataclasses
import typing as t
from dataclasses import asdict, dataclass, field

from flask import Blueprint, Response, jsonify

from flask_difylogstore._settings_errors import mask_url_credentials
from flask_difylogstore.backends.base import PingResult
from flask_difylogstore.migration.output import Block
from flask_difylogstore.migration.status import status_blocks as migration_status_blocks
from flask_difylogstore.state import LogStoreState, get_state

if t.TYPE_CHECKING:
    from flask_difylogstore.settings import LogStoreSettings


@dataclass
class Check:
    """One health check: whether it passed and, when it did not, why."""

    ok: bool
    detail: str = ""


@dataclass
class HealthReport:
    """Everything an operator needs to tell whether logs are flowing."""

    enabled: bool
    ok: bool
    backend: PingResult | None = None
    provisioning: dict[str, t.Any] = field(default_factory=dict)
    pipeline: dict[str, t.Any] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    checks: dict[str, Check] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        """Names of the checks that failed."""
        return [name for name, check in self.checks.items() if not check.ok]

    def to_dict(self) -> dict[str, t.Any]:
        data = asdict(self)
        data["failed"] = self.failed
        return data


def pipeline_checks(pipeline: dict[str, t.Any], settings: LogStoreSettings) -> dict[str, Check]:
    """The write pipeline's checks, from the figures of ``RecordSink.stats()``."""
    if pipeline.get("mode") != "spooling":
        return {}
    checks: dict[str, Check] = {}
    expected = int(pipeline.get("writers", 0))
    alive = int(pipeline.get("writers_alive", 0))
    if pipeline.get("writers_started") and alive < expected:
        dead = expected - alive
        checks["writer"] = Check(False, f"{dead} of {expected} writer threads are dead; restart the process")
    else:
        checks["writer"] = Check(True)
    breaker = pipeline.get("breaker") or {}
    open_for = float(breaker.get("open_for_s") or 0.0)
    limit = settings.health_breaker_open_max_s
    if breaker.get("state", "closed") != "closed" and open_for > limit:
        checks["breaker"] = Check(
            False,
            f"writes have failed for {open_for:.0f}s (circuit breaker open, more than "
            f"LOGSTORE_HEALTH_BREAKER_OPEN_MAX={limit:g}s): {pipeline.get('last_error') or 'unknown error'}",
        )
    else:
        checks["breaker"] = Check(True)
    age = pipeline.get("oldest_pending_age_s")
    max_age = settings.health_pending_age_max_s
    if age is not None and float(age) > max_age:
        checks["pending_age"] = Check(
            False,
            f"the oldest unacknowledged record is {float(age):.0f}s old (more than "
            f"LOGSTORE_HEALTH_MAX_PENDING_AGE={max_age:g}s)",
        )
    else:
        checks["pending_age"] = Check(True)
    stuck = int(pipeline.get("undeliverable", 0))
    if stuck:
        checks["undeliverable"] = Check(
            False,
            f"{stuck} records were refused by the backend and could not be written to the dead-letter "
            f"directory {pipeline.get('dead_letter_dir', '')} ({pipeline.get('dead_letter_error') or 'error'}); "
            "they stay in the spool",
        )
    else:
        checks["undeliverable"] = Check(True)
    return checks


def _unreachable(ping: PingResult) -> bool:
    """The ping failed for want of a connection (a dry run would only wait for the same timeout)."""
    if ping.ok:
        return False
    error = (ping.error or "").lower()
    return any(word in error for word in ("connect", "timed out", "timeout", "unreachable", "refused", "resolve"))


def build_health_report(state: LogStoreState) -> HealthReport:
    """Ping the backend and collect provisioning and pipeline figures and checks."""
    if state.backend is None:
        return HealthReport(enabled=False, ok=True, counters=dict(state.counters))
    try:
        ping = state.backend.ping()
    except Exception as exc:
        ping = PingResult(state.backend.name, False, 0.0, f"{type(exc).__name__}: {exc}")
    if ping.error:
        ping = dataclasses.replace(ping, error=mask_url_credentials(ping.error))
    if state.gate is not None and state.gate.deferred and not _unreachable(ping):
        state.gate.check()  # a `flask logstore` command did not provision: a dry run tells
    provisioning = state.gate.snapshot() if state.gate is not None else {}
    pipeline = state.sink.stats() if state.sink is not None else {}
    checks = {"backend": Check(ping.ok, "" if ping.ok else f"{ping.name} unreachable: {ping.error}")}
    provisioned = provisioning.get("state") in ("done", "disabled", None)
    checks["provisioning"] = Check(
        provisioned,
        "" if provisioned else f"provisioning {provisioning.get('state')}: {provisioning.get('last_error') or ''}",
    )
    checks.update(pipeline_checks(pipeline, state.settings))
    return HealthReport(
        enabled=True,
        ok=all(check.ok for check in checks.values()),
        backend=ping,
        provisioning=provisioning,
        pipeline=pipeline,
        counters=dict(state.counters),
        checks=checks,
    )


def health_lines(report: HealthReport) -> list[str]:
    """The text of ``flask logstore health``: the ping, every check, then the non-empty figure sections."""
    if not report.enabled:
        return ["log store disabled (LOGSTORE_BACKEND=none)"]
    assert report.backend is not None
    ping = report.backend
    line = f"{ping.name}: {'ok' if ping.ok else 'FAILED'} ({ping.latency_ms:.1f} ms)"
    lines = [line + (f" - {ping.error}" if ping.error else ""), "checks:"]
    lines += [f"  {name}: {'ok' if check.ok else 'FAILED - ' + check.detail}" for name, check in report.checks.items()]
    for section in ("provisioning", "pipeline", "counters"):
        values = getattr(report, section)
        if values:
            lines.append(f"{section}:")
            lines += [f"  {key}: {value}" for key, value in values.items()]
    return lines


def status_data(
    state: LogStoreState, report: HealthReport, *, dify: dict[str, t.Any], migration: dict[str, t.Any]
) -> dict[str, t.Any]:
    """What ``flask logstore status --json`` prints: the settings summary masks every secret."""
    return {
        "backend": state.settings.effective_backend,
        "reachable": None if report.backend is None else report.backend.ok,
        "provisioning": report.provisioning.get("state", "n/a"),
        "dify": dify,
        "settings": state.settings.summary(),
        "migration": migration,
    }


def _flatten(prefix: str, data: t.Any, rows: list[tuple[str, str]]) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), value, rows)
    else:
        rows.append((prefix, "" if data is None else str(data)))


def status_blocks(data: dict[str, t.Any], report: HealthReport) -> list[Block]:
    """The text of ``flask logstore status``: Dify, the backend, every setting, then the migration tables."""
    dify = data["dify"]
    blocks: list[Block] = [f"dify          {dify['description']}"]
    blocks += [f"  {contract:<28} {path}" for contract, path in dify["classes"].items()]
    blocks += [f"  note: {note}" for note in dify["notes"]]
    reachable = data["reachable"]
    blocks.append(f"backend       {data['backend']}")
    blocks.append(f"reachable     {'n/a' if reachable is None else ('yes' if reachable else 'NO')}")
    if report.backend is not None and report.backend.error:
        blocks.append(f"error         {report.backend.error}")
    blocks += [f"provisioning  {data['provisioning']}", ""]
    rows: list[tuple[str, str]] = []
    _flatten("", data["settings"], rows)
    width = max(len(k) for k, _ in rows)
    blocks += [f"{key.ljust(width)}  {value}" for key, value in rows]
    return blocks + migration_status_blocks(data["migration"])


def create_health_blueprint(name: str = "difylogstore_health") -> Blueprint:
    """A blueprint serving the report at ``/health`` (register it with a ``url_prefix``)."""
    blueprint = Blueprint(name, __name__)

    @blueprint.get("/health")
    def health() -> tuple[Response, int]:
        report = build_health_report(get_state())
        return jsonify(report.to_dict()), 200 if report.ok else 503

    return blueprint
