"""`blurgen`: one click group; each subcommand lives in the module named after it."""

import sys

import click

from ..errors import BlurgenError
from . import inspect, synthetic, verify


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="blur2flow")
def cli():
    """Make motion-blur training data labelled with optical flow, as HDF5 shards."""


for module in (synthetic, inspect, verify):
    cli.add_command(module.command)


def main(argv=None):
    """Entry point: a BlurgenError becomes one line on stderr and exit code 2, never a traceback."""
    try:
        cli.main(args=argv, standalone_mode=False)
    except BlurgenError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:  # usage errors too: one line, not click's three
        where = f"{e.ctx.command_path}: " if getattr(e, "ctx", None) else ""
        click.echo(f"error: {where}{e.format_message()}", err=True)
        sys.exit(e.exit_code)
