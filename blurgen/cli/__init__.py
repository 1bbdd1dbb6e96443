"""`blurgen`: one click group; each subcommand lives in the module named after it."""

import click

from ..core.cli import run
from . import audit, gong, highspeed, inspect, merge, monkaa, synthetic, verify


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="blur2flow")
def cli():
    """Make motion-blur training data labelled with optical flow, as HDF5 shards."""


for module in (synthetic, inspect, verify, monkaa, highspeed, gong, audit, merge):
    cli.add_command(module.command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: a BlurgenError becomes one line on stderr and exit code 2, never a traceback."""
    run(cli, argv)
