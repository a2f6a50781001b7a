"""``python -m flask_difylogstore``: the demo and small helper commands."""

from __future__ import annotations

from pathlib import Path

import click

from flask_difylogstore._version import __version__


@click.group()
@click.version_option(__version__, prog_name="flask-difylogstore")
def main() -> None:
    """flask-difylogstore: Dify's workflow logs in Aliyun SLS or Elasticsearch."""


@main.command("config-reference")
def config_reference() -> None:
    """Print the configuration reference (Markdown) generated from the settings classes."""
    from flask_difylogstore._configdoc import render_configuration_reference

    click.echo(render_configuration_reference(), nl=False)


@main.command("demo")
@click.option(
    "--backend",
    type=click.Choice(["aliyun_sls", "elasticsearch", "memory"]),
    default="aliyun_sls",
    show_default=True,
    help="Which log store to run against (a local compatible server unless .env configures a real one).",
)
@click.option("--runs", type=click.IntRange(8, 1_000_000), default=120, show_default=True, help="Historic runs.")
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True, help="Concurrent live workers.")
@click.option("--workdir", type=click.Path(path_type=Path), default=None, help="Keep the demo's files here.")
@click.option("--ignore-env", is_flag=True, help="Never use real endpoints from .env.")
def demo(backend: str, runs: int, threads: int, workdir: Path | None, ignore_env: bool) -> None:
    """Run the whole mission on this machine with nothing configured (see the README)."""
    from flask_difylogstore.demo import DemoOptions, run_demo

    options = DemoOptions(backend=backend, runs=runs, threads=threads, workdir=workdir, use_env=not ignore_env)
    raise SystemExit(run_demo(options))


if __name__ == "__main__":
    main()
