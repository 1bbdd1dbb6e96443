"""b2f-eval: per-image flow errors of a checkpoint on a shard split, beside the zero-flow baseline."""

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from blurgen.core.device import resolve_device
from blurgen.core.files import atomic_write_text

from .checkpoint import load_model
from .data import EVAL_FIELDS, ShardDataset, loader_workers, to_input
from .metrics import NAMES, flow_metrics


def _summary(rows):
    """Mean of each metric over the images that have valid pixels."""
    out = {}
    for name in NAMES:
        values = np.array([r[name] for r in rows], np.float64)
        out[name] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    return out


def evaluate(ckpt, shards, split="test", device="auto", workers=None, progress=True):
    """The report: summary means for the model and for zero flow, and every image's numbers.

    Whole images go through ``model.predict`` one at a time, so shards of any sizes can be mixed.
    """
    dev = resolve_device(device)
    model, config = load_model(ckpt, dev)
    dataset = ShardDataset(shards, split, crop=None, fields=EVAL_FIELDS)
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
                **{who: {k: float(v[0]) for k, v in m.items()} for who, m in scores.items()},
            }
        )
    return {
        "checkpoint": str(Path(ckpt).resolve()),
        "shards": str(Path(shards).resolve()),
        "split": split,
        "model_config": config,
        "images": len(per_image),
        "without_valid_pixels": sum(bool(np.isnan(r["model"]["epe_min"])) for r in per_image),
        "model": _summary([r["model"] for r in per_image]),
        "zero_flow": _summary([r["zero_flow"] for r in per_image]),
        "per_image": per_image,
    }


def default_json_path(ckpt, shards, split):
    """Beside the checkpoint, named after it, the shard folder and the split."""
    ckpt = Path(ckpt)
    return ckpt.with_name(f"{ckpt.stem}.eval-{Path(shards).resolve().name}-{split}.json")


def write_report(report, path):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(report, indent=1) + "\n")


def format_table(report):
    """The summary as a small fixed-width table: EPE in pixels, accuracies in percent."""
    header = f"{'':10}{'EPE min':>9}{'EPE fwd':>9}{'EPE bwd':>9}{'<1px':>8}{'<3px':>8}{'<5px':>8}"
    lines = [f"{report['shards']} [{report['split']}]: {report['images']} images", header]
    for label, key in (("model", "model"), ("zero flow", "zero_flow")):
        m = report[key]
        lines.append(
            f"{label:10}{m['epe_min']:9.3f}{m['epe_fwd']:9.3f}{m['epe_bwd']:9.3f}"
            + "".join(f"{100 * m[f'acc{t}']:7.1f}%" for t in (1, 3, 5))
        )
    return "\n".join(lines)
