"""``python -m flask_difylogstore``: the demo and small helper commands."""

from __future__ import annotations

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


@main.command("demo", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def demo(ctx: click.Context) -> None:
    """Run the whole mission on this machine with nothing configured (see the README)."""
    from flask_difylogstore.demo import run_demo_command

    ctx.exit(run_demo_command(ctx.args))


if __name__ == "__main__":
    main()
