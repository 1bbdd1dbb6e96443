"""Options every generator accepts, declared once."""

import click

from ..device import CHOICES


def parse_size(ctx, param, value):
    """``HxW`` -> (H, W)."""
    try:
        h, w = (int(v) for v in value.lower().split("x"))
        if h < 8 or w < 8:
            raise ValueError
        return h, w
    except ValueError:
        raise click.BadParameter(f"'{value}' is not HxW with both at least 8, e.g. 256x256") from None


def generator_options(fn):
    """--out, --seed, --max-disp, --gamma, --workers, --shard-size, --keep-frames."""
    for option in reversed([
        click.option("--out", "-o", type=click.Path(file_okay=False), required=True,
                     help="Shard folder; rerunning the same command resumes it."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed for every random choice."),
        click.option("--max-disp", type=float, default=100.0, show_default=True,
                     help="Largest flow magnitude (px) a sample may have."),
        click.option("--gamma", type=float, default=None,
                     help="Average in linear light with this gamma (e.g. 2.2); default: sRGB values."),
        click.option("--workers", type=click.IntRange(1), default=1, show_default=True,
                     help="Parallel worker processes (joblib)."),
        click.option("--shard-size", type=click.IntRange(1), default=256, show_default=True,
                     help="Samples per shard file."),
        click.option("--keep-frames", is_flag=True, help="Also store the sharp first and last frames."),
    ]):
        fn = option(fn)
    return fn


def device_option(fn):
    return click.option("--device", type=click.Choice(CHOICES), default="auto", show_default=True,
                        help="Where tensors run.")(fn)
