"""Learning check: B2F-net trained for minutes on CPU must beat zero flow on held-out synthetic scenes.

    python -m pipelines.learning_check --out runs/learning_check

Renders synthetic shards (train and unseen test scenes; camera motion only by default, see --objects),
trains the full-size model on random crops of the 128×128 images for a fixed number of epochs (~12
minutes on 2 CPU cores; a step budget, not a time budget, so a busy machine is slower but gets the same
numbers), and evaluates the final model on the test split with the paper's min(fwd, bwd) EPE beside the
zero-flow baseline. Exit code 1 when the model is not clearly better.
"""

import dataclasses
import time
from pathlib import Path

import click
import torch

from b2f.evaluate import evaluate, format_table, write_report
from b2f.model import ModelConfig
from b2f.train import train
from blurgen.core.cli import parse_milestones
from blurgen.sources.synthetic import SyntheticOptions, make_synthetic

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
    out = Path(out)
    torch.set_num_threads(threads)
    t_data = time.time()
    shards = out / "shards"  # a rerun reuses them; test scenes are other scenes than the training ones
    make_synthetic(
        shards,
        SyntheticOptions(
            count=count,
            test_count=test_count,
            seed=seed,
            size=(size, size),
            max_disp=max_disp,
            min_disp=min_disp,
            objects=objects,
        ),
        workers=workers,
    )
    t_train = time.time()
    module = train(
        shards,
        out / "run",
        dataclasses.asdict(ModelConfig()),
        crop=(crop, crop),
        random_crop=crop < size,
        batch_size=batch_size,
        epochs=epochs,
        lr=lr,
        milestones=milestones,
        direction=direction,
        seed=seed,
        workers=workers,
    )
    t_eval = time.time()
    report = evaluate(out / "run" / "model.pt", shards, "test", workers=workers)
    write_report(report, out / "eval_test.json")
    t_end = time.time()
    model, zero = report["model"]["epe_min"], report["zero_flow"]["epe_min"]
    click.echo(format_table(report))
    click.echo(
        f"steps {module.trainer.global_step} in {module.trainer.current_epoch} epochs; minutes: "
        f"data {(t_train - t_data) / 60:.1f}, training {(t_eval - t_train) / 60:.1f}, "
        f"eval {(t_end - t_eval) / 60:.1f}, total {(t_end - t_data) / 60:.1f}"
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
