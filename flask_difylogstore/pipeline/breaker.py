"""Circuit breaker per backend, so an outage costs one probe per cool-down instead of a stream of requests.

``closed``: requests flow. After ``threshold`` consecutive failed attempts it ``open``s for a
cool-down that doubles (with jitter) with every failed probe, up to ``max_open_s``; then
``half_open`` lets one small probe batch through (one, whichever writer thread asks first; the
others wait for its outcome): success closes it, failure opens it again.
"""

from __future__ import annotations

import random
import time
import typing as t

from flask_difylogstore.pipeline.lifecycle import native_lock

BreakerState = t.Literal["closed", "open", "half_open"]

#: The breaker's own random source: background threads must not move the application's global one.
_jitter = random.Random()

#: How long a writer waits while another one's probe is in flight.
PROBE_WAIT_S = 0.05


class CircuitBreaker:
    """Shared by the writer threads; reads for the health report need no lock."""

    def __init__(
        self,
        *,
        threshold: int = 5,
        base_open_s: float = 0.5,
        max_open_s: float = 4.0,
        clock: t.Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.base_open_s = base_open_s
        self.max_open_s = max_open_s
        self._clock = clock
        self._lock = native_lock()
        self.state: BreakerState = "closed"
        self.failures = 0
        self.opens = 0
        self.opened_at: float | None = None
        self._retry_at = 0.0
        self._probing = False

    def wait_time(self) -> float:
        """Seconds until a request may be sent (0 when allowed; moves ``open`` to ``half_open``)."""
        with self._lock:
            if self.state == "closed":
                return 0.0
            if self.state == "open":
                remaining = self._retry_at - self._clock()
                if remaining > 0:
                    return remaining
                self.state = "half_open"
            return PROBE_WAIT_S if self._probing else 0.0

    def claim_probe(self) -> bool:
        """In ``half_open``: whether the caller may send the probe (only one caller until its outcome)."""
        with self._lock:
            if self.state != "half_open":
                return True
            if self._probing:
                return False
            self._probing = True
            return True

    def release_probe(self) -> None:
        """The probe was not sent, or its outcome was neither a success nor a failure."""
        with self._lock:
            self._probing = False

    def success(self) -> None:
        with self._lock:
            self.state = "closed"
            self.failures = 0
            self.opened_at = None
            self._probing = False

    def failure(self) -> None:
        with self._lock:
            self.failures += 1
            if self.state == "half_open" or self.failures >= self.threshold:
                if self.state != "open":
                    self.opens += 1
                exponent = min(max(0, self.failures - self.threshold), 16)
                ceiling = min(self.max_open_s, self.base_open_s * (2**exponent))
                now = self._clock()
                self.state = "open"
                self.opened_at = self.opened_at or now
                self._retry_at = now + _jitter.uniform(ceiling / 2, ceiling)
            self._probing = False

    def open_for(self) -> float:
        """Seconds since the breaker opened (0 while closed); a half-open probe does not reset it."""
        opened_at = self.opened_at
        if self.state == "closed" or opened_at is None:
            return 0.0
        return max(0.0, self._clock() - opened_at)

    def snapshot(self) -> dict[str, t.Any]:
        return {
            "state": self.state,
            "consecutive_failures": self.failures,
            "opens": self.opens,
            "open_for_s": round(self.open_for(), 3),
        }
