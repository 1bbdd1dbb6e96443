"""What every console script of the project shares: the one-line error, the device option, size parsing."""

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from .device import CHOICES
from .errors import BlurgenError


def run(command: click.Command, argv: Sequence[str] | None = None) -> None:
    """Call ``command`` (a click command or group) on ``argv``; bad input is one line on stderr, never a traceback."""
    try:
        command.main(args=argv, standalone_mode=False)
    except BlurgenError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except OSError as e:  # a path that cannot be made or written (a file in the way, no permission): one line
        if e.filename is None:
            raise
        click.echo(f"error: {e.filename}: {e.strerror or e}; check the path, its permissions and free space", err=True)
        sys.exit(2)
    except click.ClickException as e:  # usage errors too: one line, not click's three
        where = f"{e.ctx.command_path}: " if getattr(e, "ctx", None) else ""
        click.echo(f"error: {where}{e.format_message()}", err=True)
        sys.exit(e.exit_code)


def device_option(fn: Callable) -> Callable:
    """``--device auto|cpu|cuda``, resolved by :func:`blurgen.core.device.resolve_device`."""
    return click.option(
        "--device", type=click.Choice(CHOICES), default="auto", show_default=True, help="Where tensors run."
    )(fn)


def parse_size(ctx: click.Context | None, param: click.Parameter | None, value: str | None) -> tuple[int, int] | None:
    """``HxW`` -> (H, W), both at least 8; None (an option not given) stays None."""
    if value is None:
        return None
    try:
        h, w = (int(v) for v in value.lower().split("x"))
        if h < 8 or w < 8:
            raise ValueError
        return h, w
    except ValueError:
        raise click.BadParameter(f"'{value}' is not HxW with both at least 8, e.g. 256x256") from None


def parse_milestones(ctx: click.Context | None, param: click.Parameter | None, value: str | None) -> list[int] | None:
    """``"100,150"`` -> [100, 150] (sorted epochs at which a learning rate steps); None stays None."""
    if value is None:
        return None
    try:
        return sorted(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a comma-separated list of epochs, e.g. 100,150") from None


def next_free(parent: str, prefix: str = "") -> str:
    """``parent/<prefix><n>`` with n one past the highest taken: a default output that never reuses a folder."""
    taken = [int(p.name[len(prefix) :]) for p in Path(parent).glob(f"{prefix}*") if p.name[len(prefix) :].isdigit()]
    return str(Path(parent) / f"{prefix}{max(taken, default=-1) + 1}")
