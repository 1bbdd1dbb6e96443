"""`blurgen highspeed`: 240 fps videos cut into N-frame windows, averaged, labelled by a flow network."""

import click

from ..core.cli import device_option
from ..labels import DIS
from ..sources import highspeed as hs
from ..sources.highspeed import make_highspeed
from .options import announce_default_out, generator_options


def _list_flows(ctx, param, value):
    if value:
        from ..core.quiet import quiet_import

        click.echo("\n".join([DIS, *quiet_import("ptlflow").get_model_names()]))
        ctx.exit()


@click.command("highspeed")
@click.argument("root", type=click.Path())
@generator_options("highspeed")
@device_option
@click.option("--layout", type=click.Choice(hs.LAYOUTS), default=None, help="Input layout [default: detected].")
@click.option(
    "--window", type=click.IntRange(2), default=7, show_default=True, help="Frames averaged per blurred image."
)
@click.option(
    "--stride", type=click.IntRange(1), default=None, help="Frames between window starts [default: --window]."
)
@click.option(
    "--split-file",
    type=click.Path(dir_okay=False),
    default=None,
    help='JSON {"train": [sequence names], "test": [...]} [default: seeded split by sequence].',
)
@click.option(
    "--train-share",
    type=click.FloatRange(0, 1),
    default=None,
    help="Share of sequences for training [default: the paper's, 25/33 GoPro, 0.7 otherwise].",
)
@click.option("--flow", default="pwcnet", show_default=True, help="Labeller: a ptlflow model name or opencv-dis.")
@click.option(
    "--ckpt",
    default="things",
    show_default=True,
    help="ptlflow weights: a local checkpoint file, a ptlflow checkpoint name (downloads), or 'random'.",
)
@click.option(
    "--batch",
    type=click.IntRange(1),
    default=4,
    show_default=True,
    help="Windows per labeller call (2 image pairs each: forward and backward).",
)
@click.option(
    "--fb-threshold",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Forward-backward check: valid where the round trip ends within this many px.",
)
@click.option(
    "--corr-chunk",
    type=click.IntRange(1),
    default=21,
    show_default=True,
    help="Correlation displacements computed at once (bounds FlowNet/PWC-Net memory).",
)
@click.option(
    "--on-error",
    type=click.Choice(("fail", "skip")),
    default="fail",
    show_default=True,
    help="On an unreadable or missing frame: stop, or record its window as skipped and go on.",
)
@click.option(
    "--list-flows",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_list_flows,
    help="Print the labeller names and exit.",
)
def command(out, workers, scheduler, part, shard_size, keep_frames, device, batch, corr_chunk, on_error, **options):
    """Average WINDOW-frame windows of the high-speed videos in ROOT into blurred images labelled with
    flow(frame 1, frame N) and flow(frame N, frame 1) by a pretrained network (pseudo ground truth)."""
    announce_default_out(out)
    made = make_highspeed(
        out,
        hs.HighspeedOptions(**options),
        workers=workers,
        scheduler=scheduler,
        part=part,
        shard_size=shard_size,
        keep_frames=keep_frames,
        device=device,
        batch=batch,
        corr_chunk=corr_chunk,
        on_error=on_error,
    )
    windows = [t for tasks in made.splits.values() for t in tasks]
    config = made.manifest["config"]
    click.echo(
        f"{made.out}: {made.samples} samples of {len(windows)} windows ({config['layout']}, "
        f"{len({t.sequence for t in windows})} sequences, {config['flow']}) in {len(made.manifest['shards'])} shards"
    )
