"""After an outage the first delivery follows the backend's return within 5 s.

The guarantee is a schedule: no retry, breaker probe or provisioning retry is ever planned more
than ``LOGSTORE_MAX_RETRY_DELAY`` (4 s by default) after the previous failure, whether the waiting
records are in memory or spilled to disk (docs/operations.md, "What happens when").
"""

from __future__ import annotations

import threading
import time
import typing as t

from conftest import Harness, MakePipeline
from pipeline_fakes import make_record

from flask_difylogstore.pipeline.breaker import CircuitBreaker
from flask_difylogstore.pipeline.lifecycle import wait_until
from flask_difylogstore.pipeline.writer import backoff_delay
from flask_difylogstore.provisioning import ProvisioningGate
from flask_difylogstore.settings import LogStoreSettings, PipelineSettings

RECOVERY_BOUND_S = 5.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_default_retry_cap_keeps_recovery_within_five_seconds() -> None:
    cap = PipelineSettings().max_retry_delay_s
    assert cap + 0.5 <= RECOVERY_BOUND_S  # one request's worth of slack
    assert all(backoff_delay(attempt, cap) <= cap for attempt in range(0, 200))


def test_breaker_never_plans_a_probe_more_than_the_cap_after_a_failure() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(max_open_s=PipelineSettings().max_retry_delay_s, clock=clock)
    for _ in range(500):  # a long outage: hours of failed probes
        breaker.failure()
        assert breaker.state == "open" or breaker.failures < breaker.threshold
        wait = breaker.wait_time()
        assert wait <= RECOVERY_BOUND_S - 0.5
        clock.now += wait
        breaker.wait_time()  # moves to half_open: the probe is due
    assert breaker.open_for() > 60  # it stayed open throughout, and health can tell


def test_provisioning_retries_at_most_the_cap_apart() -> None:
    class Unreachable:
        name = "down"

        def provision(self, *, dry_run: bool = False) -> t.Any:
            raise ConnectionRefusedError("connection refused")

    settings = LogStoreSettings(_env_file=None)
    gate = ProvisioningGate(t.cast(t.Any, Unreachable()), retry_max=settings.pipeline.max_retry_delay_s)
    delays: list[float] = []
    done = threading.Event()

    def record_delay(timeout: float | None = None) -> bool:
        delays.append(float(timeout or 0))
        if len(delays) >= 20:
            done.set()
            return True  # stop
        return False

    gate._stop.wait = record_delay  # type: ignore[method-assign]
    gate.start(timeout=0.01, strict=False)
    assert done.wait(10)
    assert max(delays) <= RECOVERY_BOUND_S - 0.5 and delays[0] <= 1.0


def test_spilled_records_flow_once_the_backend_returns(harness: Harness, make_pipeline: MakePipeline) -> None:
    """1 MB waiting with a 64 KB memory cap: most of it on disk only when the backend comes back."""
    harness.go_down()
    pipeline = make_pipeline(
        harness.backend, memory_max_bytes=64 * 1024, max_retry_delay_s=PipelineSettings().max_retry_delay_s
    )
    records = [make_record(i) for i in range(200)]
    for start in range(0, len(records), 20):
        pipeline.submit(records[start : start + 20])
    assert pipeline.stats()["spilling"]
    assert wait_until(lambda: pipeline.breaker.opens >= 1, 30)
    harness.come_back()
    now = time.monotonic()
    planned = max(pipeline.breaker._retry_at, pipeline.writer.retry_at) - now
    assert planned <= RECOVERY_BOUND_S - 0.5
    assert wait_until(lambda: len(harness.delivered()) == len(records), 60)
    assert pipeline.flush(10)
