"""`blurgen monkaa`: the paper's synthetic data set, blur from Monkaa frame pairs and their exact flow."""

from collections import Counter

import click

from ..core.cli import device_option
from ..interp import METHODS
from ..sources.monkaa import CAMERAS, PASSES, MonkaaOptions, make_monkaa, parse_split
from .options import announce_default_out, generator_options


def _names(ctx, param, value):
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def _split(ctx, param, value):
    try:
        return parse_split(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


@click.command("monkaa")
@click.argument("root", type=click.Path(exists=True, file_okay=False))
@generator_options("monkaa")
@device_option
@click.option(
    "--pass",
    "pass_",
    type=click.Choice(PASSES),
    default=None,
    help="Render pass [default: clean, or the pass of the scene folder ROOT is].",
)
@click.option(
    "--camera",
    type=click.Choice(CAMERAS + ("both",)),
    default="both",
    show_default=True,
    help="Which camera's frames (both: the paper's 11,200 samples need them).",
)
@click.option("--scenes", callback=_names, help="Only these scenes, comma-separated [default: all].")
@click.option(
    "--split",
    "split",
    default="train=10000,test=1200",
    show_default=True,
    callback=_split,
    help="Pairs per split, NAME=COUNT,…, drawn at random (--seed) from all pairs. A pair dropped "
    "for s > --max-disp is recorded, not replaced. With fewer pairs than asked (a small tree, "
    "--scenes, --limit) every split gets its share in proportion, at least one each.",
)
@click.option(
    "--test-scenes",
    callback=_names,
    help="Split by scene instead: 'test' draws only from these scenes, the other splits never do.",
)
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=None,
    help="At most N pairs in total, shared between the splits in proportion (quick runs).",
)
@click.option(
    "--interp",
    type=click.Choice(METHODS),
    default="flow",
    show_default=True,
    help="flow: warp both frames with the ground-truth flows (offline, occlusion-aware); "
    "superslomo: the paper's interpolator, needs --ckpt.",
)
@click.option(
    "--ckpt",
    type=click.Path(dir_okay=False),
    default=None,
    help="Super SloMo weights (the public SuperSloMo.ckpt) for --interp superslomo.",
)
@click.option(
    "--on-error",
    type=click.Choice(("fail", "skip")),
    default="fail",
    show_default=True,
    help="On an unreadable or missing frame or flow file: stop, or record the pair as skipped and go on.",
)
def command(
    out, workers, scheduler, part, shard_size, keep_frames, device, on_error, pass_, scenes, test_scenes, **options
):
    """Blur each Monkaa pair (t, t+1) from n = max(ceil(s), 5) interpolated frames, s being the largest
    forward flow (px); label it with the PFM flows of t (into_future) and t+1 (into_past)."""
    announce_default_out(out)
    options = MonkaaOptions(pass_=pass_, scenes=tuple(scenes), test_scenes=tuple(test_scenes), **options)
    made = make_monkaa(
        out,
        options,
        workers=workers,
        scheduler=scheduler,
        part=part,
        shard_size=shard_size,
        keep_frames=keep_frames,
        device=device,
        on_error=on_error,
    )
    _report(made)


def _report(made):
    """Per scene: pairs, dropped for motion, skipped as unreadable (stderr; stdout has the total only)."""
    tally = Counter()
    for name, tasks in made.splits.items():
        for pair in tasks:
            tally[pair.scene, "pairs"] += 1
        for skip in made.manifest["splits"][name]["skipped"]:
            tally[tasks[skip["task"]].scene, skip["reason"].split(":")[0]] += 1
    for scene in sorted({scene for scene, _ in tally}):
        click.echo(
            f"  {scene}: {tally[scene, 'pairs']} pairs, {tally[scene, 'max-disp']} dropped (s > max-disp), "
            f"{tally[scene, 'unreadable']} unreadable",
            err=True,
        )
    click.echo(f"{made.out}: {made.samples} samples in {len(made.manifest['shards'])} shards")
