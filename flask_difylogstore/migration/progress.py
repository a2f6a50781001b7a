"""Progress reporting for long jobs: rows done, rows per second and the time left.

The library functions take a :class:`Progress` factory so they stay silent when used from code;
the CLI passes :func:`flask_difylogstore.cli_progress.click_progress`, a click progress bar that
adds :class:`Rate` (rows/s and the time left) to click's own position.
"""

from __future__ import annotations

import time
import typing as t


class Progress(t.Protocol):
    """One bar: ``advance`` as rows complete, ``close`` at the end."""

    def advance(self, rows: int) -> None: ...

    def close(self) -> None: ...


#: Builds a bar for ``label`` with ``total`` rows expected (``None`` when unknown).
ProgressFactory = t.Callable[[str, int | None], Progress]


class NullProgress:
    """Reports nothing."""

    def advance(self, rows: int) -> None:
        return None

    def close(self) -> None:
        return None


def null_progress(label: str, total: int | None) -> Progress:
    return NullProgress()


class Rate:
    """Rows per second since start and the estimated seconds left."""

    def __init__(self, total: int | None, clock: t.Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.done = 0
        self._clock = clock
        self._started = clock()

    def add(self, rows: int) -> None:
        self.done += rows

    @property
    def elapsed(self) -> float:
        return max(self._clock() - self._started, 1e-9)

    @property
    def per_second(self) -> float:
        return self.done / self.elapsed

    @property
    def eta_seconds(self) -> float | None:
        if self.total is None or self.done == 0:
            return None
        return max(self.total - self.done, 0) / self.per_second


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "--:--:--"
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
