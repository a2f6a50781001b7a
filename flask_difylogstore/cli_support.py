"""What every ``flask logstore`` command shares: error reporting and JSON / table output.

Both :mod:`flask_difylogstore.cli` and :mod:`flask_difylogstore.migration.commands` use it, so neither
imports the other.
"""

from __future__ import annotations

import functools
import typing as t

import click
import orjson

from flask_difylogstore.errors import DifyLogStoreError
from flask_difylogstore.settings import mask_url_credentials

__all__ = ["F", "catch_errors", "echo_json", "echo_table"]

F = t.TypeVar("F", bound=t.Callable[..., t.Any])


def catch_errors(func: F) -> F:
    """Report the package's errors as ``Error: <message>`` with exit status 1, without a traceback."""

    @functools.wraps(func)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        try:
            return func(*args, **kwargs)
        except DifyLogStoreError as exc:
            lines = [line.strip(" -") for line in mask_url_credentials(str(exc)).splitlines() if line.strip()]
            raise click.ClickException("; ".join(lines)) from None

    return t.cast(F, wrapper)


def echo_json(data: t.Any) -> None:
    click.echo(mask_url_credentials(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode()))


def echo_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=False)]
    for line in [headers, *rows]:
        click.echo(
            "  ".join(
                str(c).ljust(w) if i == 0 else str(c).rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=False))
            ).rstrip()
        )
