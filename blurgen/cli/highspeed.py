"""`blurgen highspeed`: 240 fps videos cut into N-frame windows, averaged, labelled by a flow network."""

import json
from pathlib import Path

import click

from ..generate import generate
from ..labels import DIS, make_labeller
from ..sources import highspeed as hs
from .options import device_option, generator_options


def _list_flows(ctx, param, value):
    if value:
        from ..quiet import quiet_import

        click.echo("\n".join([DIS, *quiet_import("ptlflow").get_model_names()]))
        ctx.exit()


@click.command("highspeed")
@click.argument("root", type=click.Path())
@generator_options
@device_option
@click.option("--layout", type=click.Choice(hs.LAYOUTS), default=None, help="Input layout [default: detected].")
@click.option("--window", type=click.IntRange(2), default=7, show_default=True,
              help="Frames averaged per blurred image.")
@click.option("--stride", type=click.IntRange(1), default=None,
              help="Frames between window starts [default: --window].")
@click.option("--split-file", type=click.Path(dir_okay=False), default=None,
              help='JSON {"train": [sequence names], "test": [...]} [default: seeded split by sequence].')
@click.option("--train-share", type=click.FloatRange(0, 1), default=None,
              help="Share of sequences for training [default: the paper's, 25/33 GoPro, 0.7 otherwise].")
@click.option("--flow", default="pwcnet", show_default=True, help="Labeller: a ptlflow model name or opencv-dis.")
@click.option("--ckpt", default="things", show_default=True,
              help="ptlflow weights: a local checkpoint file, a ptlflow checkpoint name (downloads), or 'random'.")
@click.option("--batch", type=click.IntRange(1), default=4, show_default=True,
              help="Windows per labeller call (2 image pairs each: forward and backward).")
@click.option("--fb-threshold", type=float, default=1.0, show_default=True,
              help="Forward-backward check: valid where the round trip ends within this many px.")
@click.option("--corr-chunk", type=click.IntRange(1), default=21, show_default=True,
              help="Correlation displacements computed at once (bounds FlowNet/PWC-Net memory).")
@click.option("--on-error", type=click.Choice(("fail", "skip")), default="fail", show_default=True,
              help="On an unreadable frame: stop, or record its window as skipped and go on.")
@click.option("--list-flows", is_flag=True, expose_value=False, is_eager=True, callback=_list_flows,
              help="Print the labeller names and exit.")
def command(root, out, seed, max_disp, gamma, workers, shard_size, keep_frames, device, layout, window, stride,
            split_file, train_share, flow, ckpt, batch, fb_threshold, corr_chunk, on_error):
    """Average WINDOW-frame windows of the high-speed videos in ROOT into blurred images labelled with
    flow(frame 1, frame N) and flow(frame N, frame 1) by a pretrained network (pseudo ground truth)."""
    layout = layout or hs.detect_layout(root)
    seqs = hs.discover(root, layout)
    groups = hs.split_sequences(seqs, layout, seed, split_file, train_share)
    splits = {name: [t for s in group for t in hs.window_tasks(s, window, stride, gamma, on_error)]
              for name, group in groups.items()}
    labeller = make_labeller(flow, None if flow == DIS else ckpt, device, corr_chunk, seed)
    config = {"root": str(Path(root).resolve()), "layout": layout, "window": window, "stride": stride or window,
              "gamma": gamma, "max_disp": max_disp, "fb_threshold": fb_threshold, "flow": flow,
              "checkpoint": labeller.checkpoint,
              "splits": json.loads(Path(split_file).read_text()) if split_file else
              {"seed": seed, "train_share": train_share if train_share is not None else hs.TRAIN_SHARE[layout]}}
    manifest = generate(out, "highspeed", config, splits, hs.decode_window, shard_size=shard_size,
                        workers=workers, keep_frames=keep_frames,
                        label=hs.label_step(labeller, fb_threshold, max_disp), label_batch=batch)
    total = sum(s["samples"] for s in manifest["splits"].values())
    windows = sum(len(t) for t in splits.values())
    click.echo(f"{out}: {total} samples of {windows} windows ({layout}, {len(seqs)} sequences, {flow}) "
               f"in {len(manifest['shards'])} shards")
