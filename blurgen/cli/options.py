"""Options every generator accepts, declared once."""

from collections.abc import Callable

import click

from ..parallel import ENV


def parse_part(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    """``--part i/N`` -> (i, N) with 0 <= i < N."""
    if value is None:
        return None
    i, _, n = value.partition("/")
    if not (i.isdigit() and n.isdigit() and int(i) < int(n)):
        raise click.BadParameter(f"'{value}': expected i/N with 0 <= i < N, e.g. 0/8 … 7/8")
    return int(i), int(n)


def cluster_options(fn: Callable) -> Callable:
    """--workers, --scheduler and --part: where the tasks run, and which slice of them."""
    for option in reversed(
        [
            click.option(
                "--workers",
                type=click.IntRange(1),
                default=1,
                show_default=True,
                help="Parallel worker processes on this host (joblib).",
            ),
            click.option(
                "--scheduler",
                default=None,
                help=f"Run the tasks on a Dask cluster: its scheduler's ADDRESS (tcp://host:8786), or local:N for "
                f"N worker processes here  [default: ${ENV}, else --workers].",
            ),
            click.option(
                "--part",
                default=None,
                callback=parse_part,
                help="Make only the i-th of N slices of the task lists (an array job's task, 0-based) into --out; "
                "join the N folders with `blurgen merge`.",
            ),
        ]
    ):
        fn = option(fn)
    return fn


def generator_options(source: str) -> Callable:
    """--out (default ``shards/<source>``), --seed, --max-disp, --gamma, --workers, --scheduler, --part,
    --shard-size, --keep-frames."""

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
                cluster_options,
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
