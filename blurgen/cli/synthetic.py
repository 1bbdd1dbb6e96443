"""`blurgen synthetic`: the built-in source, exact ground truth, no data set needed."""

import click

from ..errors import BlurgenError
from ..generate import generate
from ..sources.synthetic import cached_textures, render_task, synthetic_splits
from .options import generator_options, parse_size


@click.command("synthetic")
@generator_options
@click.option("--count", type=click.IntRange(1), default=200, show_default=True, help="Training samples (sequences with --frames-out).")
@click.option("--test-count", type=click.IntRange(0), default=0, show_default=True, help="Held-out test samples (other scenes).")
@click.option("--size", default="256x256", show_default=True, callback=parse_size, help="HxW of every image.")
@click.option("--textures", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder of photos for the layers (default: scikit-image's bundled photos).")
@click.option("--frames-out", type=click.Path(file_okay=False), default=None,
              help="Also write each scene's sharp frames as a 240 fps-style tree (GoPro layout); "
                   "each sample is then one window of it.")
@click.option("--window", type=click.IntRange(2), default=7, show_default=True, help="Frames per window (--frames-out).")
@click.option("--min-disp", type=click.FloatRange(0), default=None,
              help="Lower bound of each sample's largest displacement (px)  [default: 0.05 x --max-disp].")
@click.option("--windows", type=click.IntRange(1), default=4, show_default=True, help="Windows per sequence (--frames-out).")
@click.option("--objects", type=click.IntRange(0), default=4, show_default=True,
              help="Most moving photo patches per scene, each drawn in 0..N (0: camera motion only).")
def command(out, seed, max_disp, gamma, workers, shard_size, keep_frames, count, test_count, size,
            textures, frames_out, window, min_disp, windows, objects):
    """Render layered scenes with exact, occlusion-correct flow into shards in OUT."""
    if min_disp is not None and min_disp > max_disp:
        raise BlurgenError(f"--min-disp {min_disp} exceeds --max-disp {max_disp}; lower it")
    opts = dict(seed=seed, size=size, max_disp=max_disp, gamma=gamma, textures=textures,
                frames_out=frames_out, window=window, windows=windows, min_disp=min_disp, objects=objects)
    config = {**opts, "count": count, "test_count": test_count}
    cached_textures(textures)  # a bad --textures folder fails here, before anything is written
    manifest = generate(out, "synthetic", config, synthetic_splits(count, test_count, **opts), render_task,
                        shard_size=shard_size, workers=workers, keep_frames=keep_frames)
    total = sum(s["samples"] for s in manifest["splits"].values())
    click.echo(f"{out}: {total} samples in {len(manifest['shards'])} shards"
               + (f"; frames in {frames_out}" if frames_out else ""))
