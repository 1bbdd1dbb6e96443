"""`blurgen synthetic`: the built-in source, exact ground truth, no data set needed."""

import click

from ..core.cli import parse_size
from ..sources.synthetic import DISP_LAWS, FRAME_LAYOUTS, TEXTURE_KINDS, SyntheticOptions, make_synthetic
from .options import announce_default_out, generator_options


@click.command("synthetic")
@generator_options("synthetic")
@click.option(
    "--count",
    type=click.IntRange(1),
    default=200,
    show_default=True,
    help="Training samples (sequences with --frames-out).",
)
@click.option(
    "--test-count", type=click.IntRange(0), default=0, show_default=True, help="Held-out test samples (other scenes)."
)
@click.option("--size", default="256x256", show_default=True, callback=parse_size, help="HxW of every image.")
@click.option(
    "--textures",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Folder of photos for the layers (default: scikit-image's bundled photos).",
)
@click.option(
    "--frames-out",
    type=click.Path(file_okay=False),
    default=None,
    help="Also write each scene's sharp frames as a 240 fps-style tree (see --frames-layout); "
    "each sample is then one window of it.",
)
@click.option(
    "--frames-layout",
    type=click.Choice(FRAME_LAYOUTS),
    default="gopro",
    show_default=True,
    help="Layout of the --frames-out tree: gopro (<split>/<seq>/000001.png), nfs (<seq>/240/<seq>/00001.png, "
    "for `blurgen highspeed`) or sceneflow (Monkaa's frames_cleanpass/<seq>/left/0000.png with the exact "
    "PFM flow of every frame pair, for `blurgen monkaa --camera left`).",
)
@click.option(
    "--window", type=click.IntRange(2), default=7, show_default=True, help="Frames per window (--frames-out)."
)
@click.option(
    "--min-disp",
    type=click.FloatRange(0),
    default=None,
    help="Lower bound of each sample's largest stored |flow| (px; with --frames-out, of the largest window "
    "of a sequence)  [default: 0.05 x --max-disp].",
)
@click.option(
    "--disp-law",
    type=click.Choice(DISP_LAWS),
    default=None,
    help="How each sample's largest |flow| is drawn in [--min-disp, --max-disp]: uniform, or log (log(1 + s) "
    "uniform: as many scenes per doubling of the blur's length) or mixed (either, at even odds)  "
    "[default: uniform].",
)
@click.option(
    "--windows", type=click.IntRange(1), default=4, show_default=True, help="Windows per sequence (--frames-out)."
)
@click.option(
    "--objects",
    type=click.IntRange(0),
    default=4,
    show_default=True,
    help="Most moving photo patches per scene, each drawn in 0..N (0: camera motion only).",
)
@click.option(
    "--texture-kind",
    type=click.Choice(TEXTURE_KINDS),
    default=None,
    help="photos (of --textures); procedural or leaves: fresh textures drawn per scene, no photo at all "
    "(leaves: dead leaves in defocused depth layers, patterns, gradients)  [default: photos].",
)
@click.option(
    "--noise",
    type=click.FloatRange(0),
    default=None,
    help="Sensor noise: each sample's sigma (8-bit levels) drawn uniformly in [0, NOISE]  [default: none].",
)
@click.option(
    "--min-frames",
    type=click.IntRange(0),
    default=None,
    help="Fewest frames between an exposure's ends: each sample's count drawn in [N, max(ceil(s), 5)], "
    "from separate copies to a continuous blur  [default: always max(ceil(s), 5)].",
)
@click.option(
    "--texture-zoom",
    type=click.FloatRange(1),
    default=None,
    help="Magnify each scene's background beyond what covers the frame by a factor drawn log-uniformly in "
    "[1, Z]: fewer, larger and softer structures per frame, as in close-ups and photos  [default: 1].",
)
@click.option(
    "--flat",
    type=click.FloatRange(0, 1),
    default=None,
    help="Share of drawn textures (--texture-kind procedural or leaves) without grain: flat areas, as sky "
    "and walls in photos, where blur shows only at edges  [default: none].",
)
def command(
    out: str,
    workers: int,
    scheduler: str | None,
    part: tuple[int, int] | None,
    shard_size: int,
    keep_frames: bool,
    **options,
) -> None:
    """Render layered scenes with exact, occlusion-correct flow into shards in OUT."""
    announce_default_out(out)
    made = make_synthetic(
        out,
        SyntheticOptions(**options),
        workers=workers,
        scheduler=scheduler,
        part=part,
        shard_size=shard_size,
        keep_frames=keep_frames,
    )
    frames_out = options["frames_out"]
    click.echo(
        f"{out}: {made.samples} samples in {len(made.manifest['shards'])} shards"
        + (f"; frames in {frames_out}" if frames_out else "")
    )
