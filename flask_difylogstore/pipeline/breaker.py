"""Circuit breaker per backend, so an outage costs one probe per cool-down instead of a stream of requests.

``closed``: requests flow. After ``threshold`` consecutive failed attempts it ``open``s for a
cool-down that doubles (with jitter) up to ``max_open_s``; then ``half_open`` lets one small probe
batch through: success closes it, failure opens it again.
"""

from __future__ import annotations

import random
import time
import typing as t

BreakerState = t.Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Used by the writer thread only; reads for the health report need no lock."""

    def __init__(
        self,
        *,
        threshold: int = 5,
        base_open_s: float = 0.5,
        max_open_s: float = 30.0,
        clock: t.Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.base_open_s = base_open_s
        self.max_open_s = max_open_s
        self._clock = clock
        self.state: BreakerState = "closed"
        self.failures = 0
        self.opens = 0
        self.opened_at: float | None = None
        self._retry_at = 0.0

    def wait_time(self) -> float:
        """Seconds until a request may be sent (0 when allowed; moves ``open`` to ``half_open``)."""
        if self.state != "open":
            return 0.0
        remaining = self._retry_at - self._clock()
        if remaining > 0:
            return remaining
        self.state = "half_open"
        return 0.0

    def success(self) -> None:
        self.state = "closed"
        self.failures = 0
        self.opened_at = None

    def failure(self) -> None:
        self.failures += 1
        if self.state == "half_open" or self.failures >= self.threshold:
            if self.state != "open":
                self.opens += 1
            exponent = min(self.opens - 1 + max(0, self.failures - self.threshold), 16)
            ceiling = min(self.max_open_s, self.base_open_s * (2**exponent))
            now = self._clock()
            self.state = "open"
            self.opened_at = self.opened_at or now
            self._retry_at = now + random.uniform(ceiling / 2, ceiling)

    def snapshot(self) -> dict[str, t.Any]:
        return {"state": self.state, "consecutive_failures": self.failures, "opens": self.opens}
