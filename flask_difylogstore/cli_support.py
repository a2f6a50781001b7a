"""What every ``flask logstore`` command shares: error reporting and JSON / table output.

:mod:`flask_difylogstore.cli` and the command modules it registers (``cli_*``) use it; the library
functions the commands call return :class:`~flask_difylogstore.migration.output.CommandOutput` or
tables and lines, which are printed here.
"""

from __future__ import annotations

import functools
import typing as t

import click
import orjson

from flask_difylogstore.errors import DifyLogStoreError
from flask_difylogstore.migration.output import Block, CommandOutput, Table
from flask_difylogstore.settings import mask_url_credentials

__all__ = ["F", "catch_errors", "echo_blocks", "echo_json", "echo_output", "echo_table"]

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


def echo_blocks(blocks: t.Iterable[Block]) -> None:
    """Tables and lines, in order."""
    for block in blocks:
        if isinstance(block, Table):
            echo_table(block.headers, block.rows)
        else:
            click.echo(block)


def echo_output(output: CommandOutput, *, as_json: bool) -> None:
    """``--json`` data or the text blocks; then, unless it succeeded, ``Error: ...`` and its exit status."""
    if as_json:
        echo_json(output.data)
    else:
        echo_blocks(output.blocks)
    if output.exit_code:
        click.echo(f"Error: {output.error}", err=True)
        raise SystemExit(output.exit_code)
