"""The progress bars ``flask logstore`` shows for long jobs: a click bar with rows/s and the time left.

The migration jobs take any :data:`~flask_difylogstore.migration.progress.ProgressFactory`; the
commands pass :func:`click_progress` so the library itself never draws on a terminal.
"""

from __future__ import annotations

import sys
import typing as t

import click

from flask_difylogstore.migration.progress import Progress, Rate, format_seconds

__all__ = ["ClickProgress", "click_progress"]


class ClickProgress:
    """A click progress bar on stderr (stdout stays clean for ``--json``): position, rows/s, ETA."""

    def __init__(self, label: str, total: int | None) -> None:
        self.rate = Rate(total)
        self._bar: t.Any = click.progressbar(
            length=total if total else 1,
            label=label,
            show_eta=False,
            show_pos=True,
            item_show_func=self._describe,
            file=sys.stderr,
        )
        self._bar.__enter__()

    def _describe(self, _item: t.Any) -> str:
        return f"{self.rate.per_second:,.0f} rows/s  ETA {format_seconds(self.rate.eta_seconds)}"

    def advance(self, rows: int) -> None:
        self.rate.add(rows)
        self._bar.update(rows, rows)

    def close(self) -> None:
        self._bar.__exit__(None, None, None)


def click_progress(label: str, total: int | None) -> Progress:
    return ClickProgress(label, total)
