"""The stage kinds every table uses, each a thin call of the package's own function (never a CLI).

Devices, worker counts and progress bars come from :class:`Hardware`; they are captured by the
action, not stored in the stage's config, because they do not change what a stage computes.
"""

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from b2f.checkpoint import load_model
from b2f.evaluate import evaluate, write_report
from b2f.predict import predict_flow
from b2f.train import train
from blurgen.audit import audit
from blurgen.core.device import resolve_device
from blurgen.core.errors import BlurgenError
from blurgen.core.files import file_digest
from blurgen.core.images import write_image
from blurgen.core.viz import flow_to_color
from blurgen.shards import ShardReader
from blurgen.sources.highspeed import HighspeedOptions, make_highspeed
from blurgen.sources.monkaa import MonkaaOptions, make_monkaa
from blurgen.sources.synthetic import SyntheticOptions, make_synthetic

from .stage import Stage


@dataclass(frozen=True)
class Hardware:
    """Where and how wide stages run: ``device`` as --device, ``devices`` Lightning's (training),
    ``workers`` processes for rendering and loading (1: everything in this process)."""

    device: str = "auto"
    devices: str | int = "auto"
    workers: int = 1
    progress: bool = True

    @property
    def loader_workers(self) -> int:
        return 0 if self.workers <= 1 else self.workers


def _samples(made) -> dict:
    return {split: s["samples"] for split, s in made.manifest["splits"].items()}


def synthetic_tree(label: str, options: SyntheticOptions, hw: Hardware) -> Stage:
    """Exact-flow shards (``out/exact``) and, with ``options.frames_out`` set to any marker, the sharp
    frame tree they were averaged from (``out/frames``), in the layout the options name."""
    config = dataclasses.asdict(dataclasses.replace(options, frames_out=None))

    def action(out: Path, inputs: dict[str, Path]) -> dict:
        made = make_synthetic(
            out / "exact", dataclasses.replace(options, frames_out=str(out / "frames")), workers=hw.workers
        )
        return {"samples": _samples(made)}

    return Stage("synthetic", label, {**config, "frames": True}, action)


def _data_set_shards(label: str, root: str | Stage, options: dict, hw: Hardware, make: Callable, kind: type) -> Stage:
    """``make(out, kind(root=…, **options))`` on a data set ROOT, or on a :func:`synthetic_tree` frame tree."""
    tree = root if isinstance(root, Stage) else None
    config = {**options, "root": None if tree else str(Path(root).resolve())}

    def action(out: Path, inputs: dict[str, Path]) -> dict:
        where = inputs["tree"] / "frames" if tree else root
        made = make(out, kind(root=str(where), **options), workers=hw.workers, device=hw.device)
        return {"samples": _samples(made)}

    return Stage("shards", label, config, action, {"tree": tree} if tree else {})


def highspeed_shards(label: str, root: str | Stage, options: dict, hw: Hardware) -> Stage:
    """`blurgen highspeed` on a data set ROOT, or on the frame tree a :func:`synthetic_tree` wrote."""
    return _data_set_shards(label, root, options, hw, make_highspeed, HighspeedOptions)


def monkaa_shards(label: str, root: str | Stage, options: dict, hw: Hardware) -> Stage:
    """`blurgen monkaa` on a SceneFlow ROOT, or on the SceneFlow-layout tree a :func:`synthetic_tree` wrote."""
    return _data_set_shards(label, root, options, hw, make_monkaa, MonkaaOptions)


def synthetic_shards(label: str, options: SyntheticOptions, hw: Hardware) -> Stage:
    """`blurgen synthetic` shards (no frame tree): exact flow, independent samples."""

    def action(out: Path, inputs: dict[str, Path]) -> dict:
        return {"samples": _samples(make_synthetic(out, options, workers=hw.workers))}

    return Stage("shards", label, dataclasses.asdict(options), action)


def train_stage(
    label: str, shards: Stage, model: dict, options: dict, hw: Hardware, init: Stage | None = None
) -> Stage:
    """b2f.train.train on the shards' train split; an interrupted run resumes from its last.ckpt."""

    def action(out: Path, inputs: dict[str, Path]) -> dict:
        resume = (out / "checkpoints" / "last.ckpt").is_file()  # else train() starts again (no epoch finished)
        init_path = inputs["init"] / "model.pt" if init else None
        module = train(
            inputs["shards"],
            out,
            model,
            resume=resume,
            init=init_path,
            device=hw.device,
            devices=hw.devices,
            workers=hw.loader_workers,
            progress=hw.progress,
            **options,
        )
        return {
            "epochs": module.trainer.current_epoch,
            "steps": module.trainer.global_step,
            "train_samples": len(ShardReader(inputs["shards"], "train")),
            "init": init.name if init else None,
            "resumed": resume,
        }

    config = {"model": model, **options}
    return Stage("train", label, config, action, {"shards": shards, **({"init": init} if init else {})})


def eval_stage(
    label: str,
    trained: Stage | str | os.PathLike,
    shards: Stage,
    hw: Hardware,
    split: str = "test",
    truth: Stage | None = None,
    ensemble: bool = False,
    tile: tuple[int, int] | None = None,
) -> Stage:
    """b2f.evaluate.evaluate of the trained model.pt (or of a checkpoint file, named in the config with its
    digest) on a split: model and zero flow, per image in out/eval.json. ``truth``: a :func:`synthetic_tree`
    whose exact flow is scored instead of the shards' labels; ``ensemble``: the model's readings on each image's
    flips and turns, combined; ``tile``: read in tiles of that size (each its own stage; a plain, whole reading
    keeps the name it had)."""
    ckpt = None if isinstance(trained, Stage) else Path(trained).resolve()
    if ckpt is not None and not ckpt.is_file():
        raise BlurgenError(f"{trained}: no such checkpoint; pass a b2f-train model.pt or .ckpt file")

    def action(out: Path, inputs: dict[str, Path]) -> dict:
        report = evaluate(
            ckpt or inputs["model"] / "model.pt",
            inputs["shards"],
            split,
            device=hw.device,
            workers=hw.loader_workers,
            progress=hw.progress,
            truth=inputs["truth"] / "exact" if truth else None,
            ensemble=ensemble,
            tile=tile,
        )
        write_report(report, out / "eval.json")
        return {k: report[k] for k in ("split", "images", "without_valid_pixels", "model", "zero_flow")}

    config = {"split": split, **({"ckpt": str(ckpt), "sha256": file_digest(ckpt)} if ckpt else {})}
    config["ensemble"] = True if ensemble else None  # None entries are left out of the stage's name
    config["tile"] = None if tile is None else list(tile)
    inputs = {"shards": shards, **({"model": trained} if ckpt is None else {}), **({"truth": truth} if truth else {})}
    return Stage("eval", label, config, action, inputs)


def audit_stage(label: str, labelled: Stage, tree: Stage) -> Stage:
    """blurgen.audit.audit: the labeller's flow on true sharp end frames against exact flow."""

    def action(out: Path, inputs: dict[str, Path]) -> dict:
        report = audit(inputs["labelled"], inputs["tree"] / "exact")
        return {k: v for k, v in report.items() if k not in ("samples", "shards")}

    return Stage("audit", label, {}, action, {"labelled": labelled, "tree": tree})


def figure_stage(label: str, trained: Stage, shards: Stage, hw: Hardware, index: int = 0) -> Stage:
    """out/figure.png: one test image | its (pseudo-)ground truth | the prediction | the error, the truth
    drawn in the direction nearer the prediction (the one min(fwd, bwd) scores) and on its colour scale."""

    def action(out: Path, inputs: dict[str, Path]) -> dict:
        reader = ShardReader(inputs["shards"], "test")
        s = reader.read(index, fields=("blurred", "flow_fwd", "flow_bwd", "valid"))
        dev = resolve_device(hw.device)
        model, _ = load_model(inputs["model"] / "model.pt", dev)
        pred = predict_flow(model, s["blurred"], dev)
        errors = {k: np.linalg.norm(pred - s[k], axis=2) for k in ("flow_fwd", "flow_bwd")}
        valid = s["valid"] > 0
        nearer = min(errors, key=lambda k: errors[k][valid].mean() if valid.any() else errors[k].mean())
        truth, error = s[nearer], errors[nearer] * valid
        radius = max(float(np.linalg.norm(truth, axis=2).max()), 1e-6)
        heat = np.clip(error / radius * 255, 0, 255).astype(np.uint8)
        panels = [s["blurred"], flow_to_color(truth, radius), flow_to_color(pred, radius), np.dstack([heat] * 3)]
        out.mkdir(parents=True, exist_ok=True)
        write_image(out / "figure.png", np.concatenate(panels, axis=1))
        return {
            "index": index,
            "sequence": reader.meta(index).get("sequence"),
            "direction": nearer,
            "epe": float(error[valid].mean()) if valid.any() else None,
            "max_flow": radius,
        }

    return Stage("figure", label, {"index": index, "split": "test"}, action, {"model": trained, "shards": shards})
