"""b2f-eval: per-image flow errors of a checkpoint on a shard split, beside the zero-flow baseline."""

import json
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from blurgen.core.device import resolve_device
from blurgen.core.errors import BlurgenError, first_line
from blurgen.core.files import atomic_write_text

from .checkpoint import load_model
from .data import EVAL_FIELDS, ShardDataset, loader_workers, to_input
from .metrics import NAMES, flow_metrics


def _summary(rows):
    """Mean of each metric over the images that have valid pixels (None when none has)."""
    out = {}
    for name in NAMES:
        values = np.array([np.nan if r[name] is None else r[name] for r in rows], np.float64)
        out[name] = float(np.nanmean(values)) if np.isfinite(values).any() else None
    return out


def _number(value):
    """A metric for the report: NaN (no valid pixel) is None, so the JSON holds null, never NaN."""
    value = float(value)
    return value if np.isfinite(value) else None


def evaluate(
    ckpt: str | os.PathLike,
    shards: str | os.PathLike,
    split: str = "test",
    device: str = "auto",
    workers: int | None = None,
    progress: bool = True,
    allow_incomplete: bool = False,
) -> dict:
    """The report: summary means for the model and for zero flow, and every image's numbers.

    Whole images go through ``model.predict`` one at a time, so shards of any sizes can be mixed. A
    split whose generation did not finish is refused unless ``allow_incomplete``. Metrics of images
    without valid pixels are None (JSON null), and so are means over no image.
    """
    dev = resolve_device(device)
    model, config = load_model(ckpt, dev)
    dataset = ShardDataset(shards, split, crop=None, fields=EVAL_FIELDS, allow_incomplete=allow_incomplete)
    workers = loader_workers() if workers is None else workers
    loader = DataLoader(dataset, batch_size=1, num_workers=workers, pin_memory=dev.type == "cuda")
    per_image = []
    for batch in tqdm(loader, desc=f"eval {split}", unit="img", disable=not progress):
        batch = {k: v.to(dev) for k, v in batch.items()}
        pred = model.predict(to_input(batch["image"]))
        scores = {
            "model": flow_metrics(pred, batch["flow_fwd"], batch["flow_bwd"], batch["valid"]),
            "zero_flow": flow_metrics(torch.zeros_like(pred), batch["flow_fwd"], batch["flow_bwd"], batch["valid"]),
        }
        index = int(batch["index"][0])
        per_image.append(
            {
                "index": index,
                "sequence": dataset.reader.meta(index).get("sequence"),
                **{who: {k: _number(v[0]) for k, v in m.items()} for who, m in scores.items()},
            }
        )
    return {
        "checkpoint": str(Path(ckpt).resolve()),
        "shards": str(Path(shards).resolve()),
        "split": split,
        "model_config": config,
        "images": len(per_image),
        "without_valid_pixels": sum(r["model"]["epe_min"] is None for r in per_image),
        "model": _summary([r["model"] for r in per_image]),
        "zero_flow": _summary([r["zero_flow"] for r in per_image]),
        "per_image": per_image,
    }


def default_json_path(ckpt: str | os.PathLike, shards: str | os.PathLike, split: str) -> Path:
    """Beside the checkpoint, named after it, the shard folder and the split."""
    ckpt = Path(ckpt)
    return ckpt.with_name(f"{ckpt.stem}.eval-{Path(shards).resolve().name}-{split}.json")


def write_report(report: dict, path: str | os.PathLike) -> None:
    """The report as JSON, whole or not at all; an unwritable place or a full disk is one line naming it."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(report, indent=1, allow_nan=False) + "\n")
    except OSError as e:
        raise BlurgenError(
            f"{path}: cannot write the report ({e.strerror or first_line(e)}); the table above is its summary, "
            "rerun with --json on a writable disk for the per-image numbers"
        ) from None


def format_table(report: dict) -> str:
    """The summary as a small fixed-width table: EPE in pixels, accuracies in percent (n/a: no valid pixel)."""

    def epe(value):
        return f"{'n/a':>9}" if value is None else f"{value:9.3f}"

    def share(value):
        return f"{'n/a':>8}" if value is None else f"{100 * value:7.1f}%"

    header = f"{'':10}{'EPE min':>9}{'EPE fwd':>9}{'EPE bwd':>9}{'<1px':>8}{'<3px':>8}{'<5px':>8}"
    lines = [f"{report['shards']} [{report['split']}]: {report['images']} images", header]
    for label, key in (("model", "model"), ("zero flow", "zero_flow")):
        m = report[key]
        lines.append(
            f"{label:10}"
            + "".join(epe(m[name]) for name in ("epe_min", "epe_fwd", "epe_bwd"))
            + "".join(share(m[f"acc{t}"]) for t in (1, 3, 5))
        )
    empty = report["without_valid_pixels"]
    if empty:
        lines.append(
            f"note: {empty} of {report['images']} images have no valid pixels and are left out of the means"
            + ("; no image has any, so there is nothing to score (n/a)" if empty == report["images"] else "")
        )
    return "\n".join(lines)
