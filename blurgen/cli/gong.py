"""`blurgen gong`: Gong et al.'s motion-flow blur of photos (BSD-M / BSD-S), with the sharp image kept."""

import click

from ..sources.gong import PRESETS, GongOptions, make_gong
from .options import announce_default_out, cluster_options


@click.command("gong")
@click.argument("root", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--preset",
    type=click.Choice(tuple(PRESETS)),
    default="bsd-m",
    show_default=True,
    help="bsd-m: their mild motion, largest displacement 17 px; bsd-s: strong, 36 px.",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False),
    default="shards/gong",
    show_default=True,
    help="Shard folder; rerunning the same command resumes it.",
)
@click.option("--per-image", type=click.IntRange(1), default=1, show_default=True, help="Motion flows per photo.")
@click.option("--count", type=click.IntRange(1), default=None, help="At most N samples per split [all].")
@click.option(
    "--split",
    default="test",
    show_default=True,
    help="Split name for a plain image folder (BSDS500's layout gives train and test = val + test).",
)
@click.option("--round-flow", is_flag=True, help="Round the flow to integers, as Gong et al. do.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for every random choice.")
@cluster_options
@click.option("--shard-size", type=click.IntRange(1), default=256, show_default=True, help="Samples per shard file.")
def command(out, workers, scheduler, part, shard_size, **options):
    """Blur the photos in ROOT (any image folder, or BSDS500: BSR/BSDS500/data/images/...) into shards."""
    announce_default_out(out)
    made = make_gong(
        out, GongOptions(**options), workers=workers, scheduler=scheduler, part=part, shard_size=shard_size
    )
    click.echo(f"{out}: {made.samples} samples in {len(made.manifest['shards'])} shards ({options['preset']})")
