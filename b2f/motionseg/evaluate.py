"""Moving-object segmentation scored against the exact ``moving`` masks of a shard split.

Rows: the method on the ground-truth flow (its upper bound), on B2F-net's flow (with a checkpoint), and
two baselines that need no method: no object anywhere, and the largest-blur pixels (the pixels of
largest ground-truth |flow|, as many as the split's share of moving pixels: a baseline told how much
moves, not where).
"""

import dataclasses
from pathlib import Path

import numpy as np
from tqdm import tqdm

from blurgen.core.device import resolve_device
from blurgen.core.errors import BlurgenError
from blurgen.core.files import atomic_path
from blurgen.core.images import write_image
from blurgen.core.viz import stack_rows
from blurgen.shards import ShardReader

from ..checkpoint import load_model
from ..predict import predict_flow
from .metrics import counts, f_measure, iou
from .segmentation import DEFAULTS, SegmentOptions, segment
from .viz import figure_row

METHODS = {
    "gt_flow": "flow: ground truth",
    "b2f_flow": "flow: B2F-net",
    "no_object": "baseline: no object",
    "largest_blur": "baseline: largest blur",
}


def largest_blur(flow: np.ndarray, share: float) -> np.ndarray:
    """The ``share`` of pixels with the largest |flow| (bool H×W)."""
    magnitude = np.linalg.norm(flow, axis=-1)
    if share <= 0:
        return np.zeros(magnitude.shape, bool)
    return magnitude >= np.quantile(magnitude, 1 - share)


def _summary(rows: list[dict], per_image: list[dict]) -> dict:
    """Pooled scores (pixel counts summed over the split), per-image means over the images that hold a
    moving object, and the share of pixels marked in the images that hold none."""
    pooled = {k: sum(r[k] for r in rows) for k in ("tp", "fp", "fn")}
    with_objects = [r for r, p in zip(rows, per_image) if p["moving_pixels"]]
    empty = [r["fp"] / p["pixels"] for r, p in zip(rows, per_image) if not p["moving_pixels"]]
    mean = lambda values: float(np.mean(values)) if values else float("nan")  # noqa: E731
    return {
        "iou": iou(pooled),
        "f": f_measure(pooled),
        "mean_iou": mean([r["iou"] for r in with_objects]),
        "mean_f": mean([r["f"] for r in with_objects]),
        "false_alarm": mean(empty),
        **pooled,
    }


def _score(mask: np.ndarray, truth: np.ndarray) -> dict:
    c = counts(mask, truth)
    return {**c, "iou": iou(c), "f": f_measure(c)}


def evaluate_segmentation(
    shards: str | Path,
    split: str = "test",
    ckpt: str | Path | None = None,
    device: str = "auto",
    options: SegmentOptions = DEFAULTS,
    figure: str | Path | None = None,
    figure_rows: int = 4,
    progress: bool = False,
) -> dict:
    """The report: per method the pooled IoU and F1, per-image means and false alarms, and every image's
    numbers. ``figure``: also write a PNG of the first ``figure_rows`` images with a moving object
    (blurred | flow | mask | … | truth)."""
    reader = ShardReader(shards, split)
    if not len(reader):
        raise BlurgenError(f"{shards}: split '{split}' holds no samples")
    if "moving" not in reader.fields(0):
        raise BlurgenError(
            f"{shards}: split '{split}' has no 'moving' masks; make the shards with a source that writes them "
            "(blurgen synthetic)"
        )
    model = None
    if ckpt is not None:
        dev = resolve_device(device)
        model, _ = load_model(ckpt, dev)
    truths = [reader.read(i, fields=("moving",))["moving"] > 0 for i in range(len(reader))]
    share = sum(int(t.sum()) for t in truths) / sum(t.size for t in truths)

    per_image, figure_panels = [], []
    for i in tqdm(range(len(reader)), desc=f"segment {split}", unit="img", disable=not progress):
        sample = reader.read(i, fields=("blurred", "flow_fwd"))
        truth = truths[i]
        masks = {"gt_flow": segment(sample["flow_fwd"], options).mask}
        if model is not None:
            b2f_flow = predict_flow(model, sample["blurred"], dev)
            masks["b2f_flow"] = segment(b2f_flow, options).mask
        masks["no_object"] = np.zeros_like(truth)
        masks["largest_blur"] = largest_blur(sample["flow_fwd"], share)
        per_image.append(
            {
                "index": i,
                "sequence": sample["meta"].get("sequence"),
                "pixels": int(truth.size),
                "moving_pixels": int(truth.sum()),
                **{name: _score(mask, truth) for name, mask in masks.items()},
            }
        )
        if figure is not None and truth.any() and len(figure_panels) < figure_rows:
            panels = [("blurred", sample["blurred"]), ("GT flow", sample["flow_fwd"]), ("mask", masks["gt_flow"])]
            if model is not None:
                panels += [("B2F flow", b2f_flow), ("mask", masks["b2f_flow"])]
            figure_panels.append([*panels, ("truth", truth)])
    methods = [m for m in METHODS if m in per_image[0]]
    report = {
        "shards": str(Path(shards).resolve()),
        "split": split,
        "checkpoint": None if ckpt is None else str(Path(ckpt).resolve()),
        "options": dataclasses.asdict(options),
        "images": len(per_image),
        "with_objects": sum(1 for p in per_image if p["moving_pixels"]),
        "moving_share": share,
        "methods": {m: _summary([p[m] for p in per_image], per_image) for m in methods},
        "per_image": per_image,
    }
    if figure is not None and figure_panels:
        write_figure(figure, figure_panels)
        report["figure"] = str(figure)
    return report


def write_figure(path: str | Path, rows: list[list[tuple[str, np.ndarray]]]) -> None:
    """One labelled row per image (see :func:`figure_row`), written atomically as an image file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        write_image(tmp, stack_rows([figure_row(r) for r in rows], gap=0))  # rows end in their own gap


def format_table(report: dict) -> str:
    """The summary as a Markdown table: IoU and F1 in percent."""
    lines = [
        f"{report['images']} images of {Path(report['shards']).name} [{report['split']}], "
        f"{report['with_objects']} with moving objects ({100 * report['moving_share']:.1f}% of pixels move)",
        "",
        "| mask from | IoU | F1 | mean IoU | mean F1 | false alarm |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, m in report["methods"].items():
        cells = [100 * m[k] for k in ("iou", "f", "mean_iou", "mean_f", "false_alarm")]
        lines.append(f"| {METHODS[name]} | " + " | ".join(f"{v:.1f}" for v in cells) + " |")
    lines += [
        "",
        "IoU, F1: pixels pooled over the split; mean: per image over the images with a moving object; "
        "false alarm: share of pixels marked in the images without one (all in %).",
    ]
    return "\n".join(lines)
