"""The downstream task as stages: moving-object segmentation from B2F-net's flow, against exact masks.

Synthetic shards with moving patches (their ``moving`` masks are exact), B2F-net trained on the train
split, and `b2f.motionseg.evaluate.evaluate_segmentation` on the test split: the method on the
ground-truth flow (its upper bound) and on B2F-net's flow, and two baselines (no object, largest blur).
The paper shows this task in pictures only (its Fig. 7, FusionSeg on the flow), so no paper numbers stand
beside ours.
"""

import dataclasses
import json
from pathlib import Path

from b2f.motionseg.evaluate import evaluate_segmentation, format_table
from b2f.motionseg.segmentation import DEFAULTS
from blurgen.core.files import atomic_write_text
from blurgen.sources.synthetic import SyntheticOptions

from .report import Table
from .scale import Scale
from .stage import Stage, folder, recorded, result
from .steps import Hardware, synthetic_shards, train_stage

REPORT, FIGURE = "segmentation.json", "segmentation.png"


def segment_stage(label: str, trained: Stage, shards: Stage, hw: Hardware) -> Stage:
    """`evaluate_segmentation` of the trained model.pt's flow on the test split; out/segmentation.json
    holds the report, out/segmentation.png its figure."""

    def action(out: Path, inputs: dict[str, Path]) -> dict:
        out.mkdir(parents=True, exist_ok=True)
        report = evaluate_segmentation(
            inputs["shards"],
            "test",
            ckpt=inputs["model"] / "model.pt",
            device=hw.device,
            figure=out / FIGURE,
            progress=hw.progress,
        )
        atomic_write_text(out / REPORT, json.dumps(report, indent=1) + "\n")
        return {k: report[k] for k in ("split", "images", "with_objects", "moving_share", "methods")}

    config = {"split": "test", "options": dataclasses.asdict(DEFAULTS)}
    return Stage("segment", label, config, action, {"model": trained, "shards": shards})


def _render(run: Path, table: Table) -> list[str]:
    """b2f.motionseg's table, then the data and steps behind it and the figure."""
    (stage,) = table.extra
    if result(run, stage) is None:
        return ["Not run (the segmentation stage has not finished)."]
    report = json.loads((folder(run, stage) / "out" / REPORT).read_text())
    (test,) = recorded(run, stage.inputs["shards"], "samples.test")
    samples, epochs, steps = recorded(run, stage.inputs["model"], "train_samples", "epochs", "steps")
    lines = format_table({**report, "shards": stage.inputs["shards"].name}).splitlines()  # not ".../out"
    lines.append(
        f"\n- Test data: {test} synthetic scenes (`{stage.inputs['shards'].name}`); B2F-net trained on "
        f"{samples} other scenes of the same source × {epochs} epochs "
        f"({steps} steps), from scratch (`{stage.inputs['model'].name}`); `{stage.name}`"
    )
    if "figure" in report:
        path = (Path("stages") / stage.name / "out" / FIGURE).as_posix()
        lines.append(f"\n  ![segmentation]({path})")
    return lines


def segmentation(scale: Scale, roots: dict, hw: Hardware) -> Table:
    options = SyntheticOptions(seed=scale.seed, **scale.segmentation)
    shards = synthetic_shards("synthetic-moving", options, hw)
    trained = train_stage("train-synthetic-moving", shards, scale.model, scale.train_options("finetune"), hw)
    stage = segment_stage("segment-synthetic-moving", trained, shards, hw)
    h, w = options.size
    low = "up to" if options.min_disp is None else f"{options.min_disp:g} to"
    notes = [
        f"Data: `blurgen synthetic`, {h}×{w} scenes, camera motion plus up to {options.objects} independently "
        f"moving patches, largest flow {low} {options.max_disp:g} px; the `moving` masks are exact. B2F-net: the "
        f"fine-tune schedule ({scale.epochs['finetune']} epochs) from scratch on the train split, central crops of "
        f"{scale.crop[0]}×{scale.crop[1]}.",
        "Masks: `b2f.motionseg.segment` (the camera's motion fitted robustly by RANSAC, the residual flow "
        "thresholded and cleaned) on the ground-truth flow (the method's upper bound) and on B2F-net's flow; "
        "baselines: no object anywhere, and the pixels of largest ground-truth |flow| in the split's share of "
        "moving pixels.",
        "The paper shows this task in pictures only (Fig. 7, FusionSeg's motion stream on the flow), so there "
        "are no paper numbers to stand beside these.",
        "Figure: the first test images with a moving object, blurred | GT flow | mask | B2F flow | mask | truth.",
    ]
    title = "Downstream: moving-object segmentation from the flow (IoU / F1, %)"
    return Table("segmentation", title, [], {}, notes, [stage], _render)
