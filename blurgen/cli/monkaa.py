"""`blurgen monkaa`: the paper's synthetic data set, blur from Monkaa frame pairs and their exact flow."""

from collections import Counter
from pathlib import Path

import click

from ..errors import BlurgenError
from ..generate import generate
from ..interp import METHODS, check_method
from ..sources.monkaa import CAMERAS, PASSES, MonkaaRender, find_layout, list_pairs, parse_split, split_pairs
from .options import device_option, generator_options


def _names(ctx, param, value):
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def _split(ctx, param, value):
    try:
        return parse_split(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


@click.command("monkaa")
@click.argument("root", type=click.Path(exists=True, file_okay=False))
@generator_options
@device_option
@click.option("--pass", "pass_", type=click.Choice(PASSES), default=None,
              help="Render pass [default: clean, or the pass of the scene folder ROOT is].")
@click.option("--camera", type=click.Choice(CAMERAS + ("both",)), default="both", show_default=True,
              help="Which camera's frames (both: the paper's 11,200 samples need them).")
@click.option("--scenes", callback=_names, help="Only these scenes, comma-separated [default: all].")
@click.option("--split", "split", default="train=10000,test=1200", show_default=True, callback=_split,
              help="Pairs per split, NAME=COUNT,…, drawn at random (--seed) from all pairs. A pair dropped "
                   "for s > --max-disp is recorded, not replaced. With fewer pairs than asked (a small tree, "
                   "--scenes, --limit) every split gets its share in proportion, at least one each.")
@click.option("--test-scenes", callback=_names,
              help="Split by scene instead: 'test' draws only from these scenes, the other splits never do.")
@click.option("--limit", type=click.IntRange(1), default=None,
              help="At most N pairs in total, shared between the splits in proportion (quick runs).")
@click.option("--interp", type=click.Choice(METHODS), default="flow", show_default=True,
              help="flow: warp both frames with the ground-truth flows (offline, occlusion-aware); "
                   "superslomo: the paper's interpolator, needs --ckpt.")
@click.option("--ckpt", type=click.Path(dir_okay=False), default=None,
              help="Super SloMo weights (the public SuperSloMo.ckpt) for --interp superslomo.")
@click.option("--on-error", type=click.Choice(("fail", "skip")), default="fail", show_default=True,
              help="On an unreadable or missing frame or flow file: stop, or record the pair as skipped and go on.")
def command(root, out, seed, max_disp, gamma, workers, shard_size, keep_frames, device, pass_, camera, scenes,
            split, test_scenes, limit, interp, ckpt, on_error):
    """Blur each Monkaa pair (t, t+1) from n = max(ceil(s), 5) interpolated frames, s being the largest
    forward flow (px); label it with the PFM flows of t (into_future) and t+1 (into_past)."""
    if interp == "superslomo" and not ckpt:
        raise BlurgenError("--interp superslomo needs --ckpt PATH/TO/SuperSloMo.ckpt (the public Super SloMo weights)")
    if interp != "superslomo" and ckpt:
        raise BlurgenError("--ckpt is only used with --interp superslomo; drop it or add --interp superslomo")
    ckpt = str(Path(ckpt).resolve()) if ckpt else None
    check_method(interp, ckpt, device)  # a bad checkpoint fails here, once, before any output
    pass_ = find_layout(root, pass_)[3]
    cameras = CAMERAS if camera == "both" else (camera,)
    pairs = list_pairs(root, pass_, cameras, scenes)
    splits = split_pairs(pairs, split, seed, test_scenes, limit)
    config = {"root": str(Path(root).resolve()), "pass": pass_, "camera": camera, "scenes": scenes,
              "split": split, "test_scenes": test_scenes, "limit": limit, "interp": interp, "ckpt": ckpt,
              "seed": seed, "max_disp": max_disp, "gamma": gamma}
    render = MonkaaRender(interp, max_disp, gamma, ckpt, device, on_error)
    manifest = generate(out, "monkaa", config, splits, render, shard_size=shard_size, workers=workers,
                        keep_frames=keep_frames)
    _report(out, manifest, splits)


def _report(out, manifest, splits):
    """Per scene: pairs, dropped for motion, skipped as unreadable (stderr; stdout has the total only)."""
    tally = Counter()
    for name, tasks in splits.items():
        for pair in tasks:
            tally[pair.scene, "pairs"] += 1
        for skip in manifest["splits"][name]["skipped"]:
            tally[tasks[skip["task"]].scene, skip["reason"].split(":")[0]] += 1
    for scene in sorted({scene for scene, _ in tally}):
        click.echo(f"  {scene}: {tally[scene, 'pairs']} pairs, {tally[scene, 'max-disp']} dropped (s > max-disp), "
                   f"{tally[scene, 'unreadable']} unreadable", err=True)
    total = sum(s["samples"] for s in manifest["splits"].values())
    click.echo(f"{out}: {total} samples in {len(manifest['shards'])} shards")
