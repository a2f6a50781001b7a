"""Health report: backend reachability, provisioning, and write-pipeline figures.

The same report feeds ``flask logstore health`` and the optional JSON endpoint (200 healthy,
503 not), so operators and load balancers see one truth.
"""

from __future__ import annotations

import typing as t
from dataclasses import asdict, dataclass, field

from flask import Blueprint, Response, jsonify

from flask_difylogstore.backends.base import PingResult

if t.TYPE_CHECKING:
    from flask_difylogstore.extension import LogStoreState


@dataclass
class HealthReport:
    """Everything an operator needs to tell whether logs are flowing."""

    enabled: bool
    ok: bool
    backend: PingResult | None = None
    provisioning: dict[str, t.Any] = field(default_factory=dict)
    pipeline: dict[str, t.Any] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, t.Any]:
        return asdict(self)


def build_health_report(state: LogStoreState) -> HealthReport:
    """Ping the backend and collect provisioning and pipeline figures."""
    if state.backend is None:
        return HealthReport(enabled=False, ok=True, counters=dict(state.counters))
    try:
        ping = state.backend.ping()
    except Exception as exc:
        ping = PingResult(state.backend.name, False, 0.0, f"{type(exc).__name__}: {exc}")
    provisioning = state.gate.snapshot() if state.gate is not None else {}
    pipeline = state.sink.stats() if state.sink is not None else {}
    provisioned = provisioning.get("state") in ("done", "disabled", None)
    breaker_open = pipeline.get("breaker_state") == "open"
    return HealthReport(
        enabled=True,
        ok=ping.ok and provisioned and not breaker_open,
        backend=ping,
        provisioning=provisioning,
        pipeline=pipeline,
        counters=dict(state.counters),
    )


def create_health_blueprint(name: str = "difylogstore_health") -> Blueprint:
    """A blueprint serving the report at ``/health`` (register it with a ``url_prefix``)."""
    blueprint = Blueprint(name, __name__)

    @blueprint.get("/health")
    def health() -> tuple[Response, int]:
        from flask_difylogstore.extension import get_state

        report = build_health_report(get_state())
        return jsonify(report.to_dict()), 200 if report.ok else 503

    return blueprint
