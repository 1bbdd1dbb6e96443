"""Running a click command as a console script: a BlurgenError becomes one line and exit code 2."""

import sys

import click

from ..errors import BlurgenError


def run(command, argv=None):
    """Call ``command`` (a click command or group) on ``argv``; bad input is one line on stderr, never a traceback."""
    try:
        command.main(args=argv, standalone_mode=False)
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
