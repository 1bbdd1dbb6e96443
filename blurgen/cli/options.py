"""Options every generator accepts, declared once."""

from collections.abc import Callable

import click


def generator_options(source: str) -> Callable:
    """--out (default ``shards/<source>``), --seed, --max-disp, --gamma, --workers, --shard-size, --keep-frames."""

    def decorate(fn):
        for option in reversed(
            [
                click.option(
                    "--out",
                    "-o",
                    type=click.Path(file_okay=False),
                    default=f"shards/{source}",
                    show_default=True,
                    help="Shard folder; rerunning the same command resumes it.",
                ),
                click.option("--seed", type=int, default=0, show_default=True, help="Seed for every random choice."),
                click.option(
                    "--max-disp",
                    type=click.FloatRange(min=0, min_open=True),
                    default=100.0,
                    show_default=True,
                    help="Largest flow magnitude (px) a sample may have.",
                ),
                click.option(
                    "--gamma",
                    type=click.FloatRange(min=0, min_open=True),
                    default=None,
                    help="Average in linear light with this gamma (e.g. 2.2); default: sRGB values.",
                ),
                click.option(
                    "--workers",
                    type=click.IntRange(1),
                    default=1,
                    show_default=True,
                    help="Parallel worker processes (joblib).",
                ),
                click.option(
                    "--shard-size",
                    type=click.IntRange(1),
                    default=256,
                    show_default=True,
                    help="Samples per shard file.",
                ),
                click.option("--keep-frames", is_flag=True, help="Also store the sharp first and last frames."),
            ]
        ):
            fn = option(fn)
        return fn

    return decorate


def announce_default_out(out: str) -> None:
    """Say where the shards go when --out was not given (on stderr: stdout is for results)."""
    ctx = click.get_current_context()
    if ctx.get_parameter_source("out") == click.core.ParameterSource.DEFAULT:
        click.echo(f"writing to {out} (--out)", err=True)
