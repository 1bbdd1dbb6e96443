"""b2f-eval: per-image flow errors of a checkpoint on a shard split, beside the zero-flow baseline, and the
predicted / true flow length ratio."""

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
from blurgen.shards import ShardReader, sample_key

from .checkpoint import load_model
from .data import EVAL_FIELDS, ShardDataset, loader_workers, to_input
from .metrics import MIN_LENGTH, NAMES, flow_metrics, length_ratio, length_slope, median_lengths
from .tiles import estimate_flow


def _summary(rows, true_lengths):
    """Mean of each metric over the images that have valid pixels, the median of their length ratios (a
    ratio's outliers, an image with little motion, would pull a mean), None when no image has one; and the
    length slope over the images (``true_lengths``: theirs, in order)."""
    out = {}
    for name, average in {**dict.fromkeys(NAMES, np.nanmean), "length_ratio": np.nanmedian}.items():
        values = np.array([np.nan if r[name] is None else r[name] for r in rows], np.float64)
        out[name] = float(average(values)) if np.isfinite(values).any() else None
    out["length_slope"] = length_slope(true_lengths, [r["length"] for r in rows])
    return out


def _scores(pred, batch):
    """flow_metrics, the length ratio and the median predicted length (``length``) against the direction
    min-EPE chose (ties: fwd, as flow_metrics), and the median true length of that direction."""
    m = flow_metrics(pred, batch["flow_fwd"], batch["flow_bwd"], batch["valid"])
    truth = torch.where((m["epe_bwd"] < m["epe_fwd"])[:, None, None, None], batch["flow_bwd"], batch["flow_fwd"])
    true_length, length = median_lengths(pred, truth, batch["valid"])
    return {**m, "length_ratio": length_ratio(pred, truth, batch["valid"]), "length": length}, true_length


class _Truth:
    """The flow_fwd, flow_bwd and valid of another shard folder's samples, found by :func:`sample_key`."""

    def __init__(self, root, shards):
        self.root, self.reader = root, ShardReader(root)
        self.index = {sample_key(self.reader.meta(i)): i for i in range(len(self.reader))}
        self.shards = shards

    def replace(self, batch: dict, meta: dict) -> dict:
        j = self.index.get(sample_key(meta))
        if j is None:
            raise BlurgenError(
                f"{self.shards}: sample {meta.get('sequence')} frames {meta.get('frames')} has no twin in {self.root}; "
                "pass the exact shards of the frames these were made from"
            )
        s = self.reader.read(j, fields=("flow_fwd", "flow_bwd", "valid"), meta=False)
        if s["valid"].shape != tuple(batch["image"].shape[2:]):
            raise BlurgenError(
                f"{self.shards}: sample {meta.get('sequence')} is {tuple(batch['image'].shape[2:])} but its twin in "
                f"{self.root} is {s['valid'].shape}; pass the exact shards of the same frames"
            )
        flows = {k: torch.from_numpy(s[k]).permute(2, 0, 1)[None] for k in ("flow_fwd", "flow_bwd")}
        return {**batch, **flows, "valid": torch.from_numpy(s["valid"] != 0)[None]}


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
    truth: str | os.PathLike | None = None,
    ensemble: bool = False,
    tile: tuple[int, int] | None = None,
) -> dict:
    """The report: summary means for the model and for zero flow, and every image's numbers.

    Whole images go through ``model.predict`` one at a time, so shards of any sizes can be mixed. A
    split whose generation did not finish is refused unless ``allow_incomplete``. Metrics of images
    without valid pixels are None (JSON null), and so are means over no image. ``length_ratio``: per
    image the median |pred| / |true| over valid pixels whose true flow is at least ``MIN_LENGTH`` px
    (against the direction min-EPE chose), summarised by the median over images; ``length`` and
    ``true_length``: the image's median |pred| and |true| over the same pixels; ``length_slope``: the
    least-squares slope of the one on the other over the images (1: the reading grows with the blur).

    ``truth``: shards with the exact flow of the same samples (``blurgen synthetic --frames-out``'s),
    scored instead of the shards' own labels; samples are matched as `blurgen audit` matches them.
    ``ensemble``: each image's flow is read on its eight flips and turns, combined (b2f.ensemble); ``tile``:
    in tiles of that (h, w), blended (b2f.tiles).
    """
    dev = resolve_device(device)
    model, config = load_model(ckpt, dev)
    dataset = ShardDataset(shards, split, crop=None, fields=EVAL_FIELDS, allow_incomplete=allow_incomplete)
    workers = loader_workers() if workers is None else workers
    loader = DataLoader(dataset, batch_size=1, num_workers=workers, pin_memory=dev.type == "cuda")
    exact = None if truth is None else _Truth(truth, shards)
    per_image = []
    for batch in tqdm(loader, desc=f"eval {split}", unit="img", disable=not progress):
        index = int(batch["index"][0])
        meta = dataset.reader.meta(index)
        if exact is not None:
            batch = exact.replace(batch, meta)
        batch = {k: v.to(dev) for k, v in batch.items()}
        image = to_input(batch["image"])
        pred = estimate_flow(model, image, ensemble, tile)
        scores, true_length = _scores(pred, batch)
        scores = {"model": scores, "zero_flow": _scores(torch.zeros_like(pred), batch)[0]}
        per_image.append(
            {
                "index": index,
                "sequence": meta.get("sequence"),
                "true_length": _number(true_length[0]),
                **{who: {k: _number(v[0]) for k, v in m.items()} for who, m in scores.items()},
            }
        )
    true_lengths = [r["true_length"] for r in per_image]  # of the direction the model's min-EPE chose
    return {
        "checkpoint": str(Path(ckpt).resolve()),
        "shards": str(Path(shards).resolve()),
        "split": split,
        "truth": None if truth is None else str(Path(truth).resolve()),
        "ensemble": ensemble,
        "tile": None if tile is None else list(tile),
        "model_config": config,
        "images": len(per_image),
        "without_valid_pixels": sum(r["model"]["epe_min"] is None for r in per_image),
        **{who: _summary([r[who] for r in per_image], true_lengths) for who in ("model", "zero_flow")},
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

    def ratio(value):
        return f"{'n/a':>10}" if value is None else f"{value:10.2f}"

    header = (
        f"{'':10}{'EPE min':>9}{'EPE fwd':>9}{'EPE bwd':>9}{'<1px':>8}{'<3px':>8}{'<5px':>8}{'|pred|/|gt|':>12}"
        f"{'slope':>7}"
    )
    against = f", flow of {report['truth']}" if report.get("truth") else ""
    against += ", combined over 8 flips and turns" if report.get("ensemble") else ""
    against += ", read in {}x{} tiles".format(*report["tile"]) if report.get("tile") else ""
    lines = [f"{report['shards']} [{report['split']}]: {report['images']} images{against}", header]
    for label, key in (("model", "model"), ("zero flow", "zero_flow")):
        m = report[key]
        lines.append(
            f"{label:10}"
            + "".join(epe(m[name]) for name in ("epe_min", "epe_fwd", "epe_bwd"))
            + "".join(share(m[f"acc{t}"]) for t in (1, 3, 5))
            + f"{'':2}{ratio(m.get('length_ratio'))}"
            + ("    n/a" if m.get("length_slope") is None else f"{m['length_slope']:7.2f}")
        )
    lines.append(
        f"|pred|/|gt|: per image the median over valid pixels with |gt| >= {MIN_LENGTH:g} px (the direction EPE min "
        "scores), median over images"
    )
    lines.append(
        "slope: the least-squares slope of an image's median |pred| on its median |gt| over the images (1: the "
        "reading grows with the blur; 0: the same length whatever the blur)"
    )
    empty = report["without_valid_pixels"]
    if empty:
        lines.append(
            f"note: {empty} of {report['images']} images have no valid pixels and are left out of the means"
            + ("; no image has any, so there is nothing to score (n/a)" if empty == report["images"] else "")
        )
    return "\n".join(lines)
