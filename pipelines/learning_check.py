"""Learning check: B2F-net trained for minutes on CPU must beat zero flow on held-out synthetic scenes.

    python -m pipelines.learning_check --out runs/learning_check

A pipeline of three stages (see pipelines.stage): a rerun skips what finished and resumes an
interrupted training. Renders synthetic shards (train and unseen test scenes; camera motion only by
default, see --objects), trains the full-size model on random crops of the 128×128 images for a fixed
number of epochs (a step budget, not a time budget, so a busy machine is slower but gets the same
numbers; the README gives the measured time), and evaluates the final model on the test split with the paper's
min(fwd, bwd) EPE beside the zero-flow baseline. Exit code 1 when the model is not clearly better.
"""

import dataclasses
import json

import click
import torch

from b2f.evaluate import format_table
from b2f.model import ModelConfig
from blurgen.core.cli import parse_milestones
from blurgen.sources.synthetic import SyntheticOptions

from .stage import folder, ordered, recorded, result, run_stages
from .steps import Hardware, eval_stage, synthetic_shards, train_stage

# Blur long enough to see at 128×128 (a scene's largest displacement in [8, 32] px), and 64×64 crops: ~2× the steps.
MAX_DISP, MIN_DISP, CROP = 32.0, 8.0, 64


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out", "-o", type=click.Path(file_okay=False), default="runs/learning_check", show_default=True)
@click.option("--count", default=300, show_default=True, help="Training samples.")
@click.option("--test-count", default=50, show_default=True, help="Held-out samples (unseen scenes).")
@click.option("--size", default=128, show_default=True, help="Image side (a multiple of 64).")
@click.option("--max-disp", default=MAX_DISP, show_default=True, help="Upper bound of a sample's largest flow (px).")
@click.option("--min-disp", default=MIN_DISP, show_default=True, help="Lower bound of a sample's largest flow (px).")
@click.option(
    "--objects",
    default=0,
    show_default=True,
    help="Most moving patches per scene (as blurgen synthetic's). Each patch's blur has its own sign "
    "ambiguity, which min(fwd, bwd) per image cannot absorb; with 0 the answer is exact up to one sign.",
)
@click.option("--crop", default=CROP, show_default=True, help="Random square training crops (a multiple of 64).")
@click.option("--batch-size", default=4, show_default=True)
@click.option("--epochs", default=20, show_default=True, help="Training epochs (count / 4 steps each).")
@click.option("--lr", default=1e-3, show_default=True, help="Initial learning rate.")
@click.option(
    "--milestones",
    default="10,14,17",
    show_default=True,
    callback=parse_milestones,
    help="Epochs at which the learning rate halves (comma-separated, as b2f-train's).",
)
@click.option(
    "--direction",
    type=click.Choice(("fwd", "min")),
    default="min",
    show_default=True,
    help="Loss target (see b2f-train --direction); random synthetic motion has no arrow of time.",
)
@click.option("--seed", default=0, show_default=True)
@click.option("--workers", default=1, show_default=True, help="Processes for rendering and for data loading.")
@click.option("--margin", default=0.8, show_default=True, help="Pass if model min-EPE < margin × zero-flow min-EPE.")
@click.option("--threads", default=2, show_default=True, help="Torch threads for training and evaluation.")
def main(
    out,
    count,
    test_count,
    size,
    max_disp,
    min_disp,
    objects,
    crop,
    batch_size,
    epochs,
    lr,
    milestones,
    direction,
    seed,
    workers,
    margin,
    threads,
):
    torch.set_num_threads(threads)
    hw = Hardware("auto", "auto", workers)
    # test scenes are other scenes than the training ones; a rerun skips what finished and resumes the rest
    shards = synthetic_shards(
        "synthetic",
        SyntheticOptions(
            count=count,
            test_count=test_count,
            seed=seed,
            size=(size, size),
            max_disp=max_disp,
            min_disp=min_disp,
            objects=objects,
        ),
        hw,
    )
    options = {
        "crop": [crop, crop],
        "random_crop": crop < size,
        "batch_size": batch_size,
        "epochs": epochs,
        "lr": lr,
        "milestones": milestones,
        "direction": direction,
        "seed": seed,
    }
    trained = train_stage("train", shards, dataclasses.asdict(ModelConfig()), options, hw)
    evaluated = eval_stage("eval", trained, shards, hw)
    run_stages(out, [evaluated])
    report = json.loads((folder(out, evaluated) / "out" / "eval.json").read_text())
    (steps,) = recorded(out, trained, "steps")
    minutes = {s.kind: done["seconds"] / 60 for s in ordered([evaluated]) if (done := result(out, s))}
    model, zero = report["model"]["epe_min"], report["zero_flow"]["epe_min"]
    click.echo(format_table(report))
    click.echo(
        f"steps {steps} in {epochs} epochs; minutes (as each stage last ran): "
        + ", ".join(f"{kind} {m:.1f}" for kind, m in minutes.items())
    )
    wins = sum(r["model"]["epe_min"] < r["zero_flow"]["epe_min"] for r in report["per_image"])
    passed = model < margin * zero
    click.echo(
        f"min-EPE {model:.3f} vs zero flow {zero:.3f} (ratio {model / zero:.2f}; the model is closer on "
        f"{wins} of {report['images']} test images): {'PASS' if passed else 'FAIL'} (needs < {margin})"
    )
    raise SystemExit(0 if passed else 1)


if __name__ == "__main__":
    main()
