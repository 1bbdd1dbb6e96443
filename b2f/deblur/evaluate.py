"""Table 2: PSNR/SSIM of deconvolution with different flows on Gong-style shards (``blurgen gong``)."""

from pathlib import Path

import cv2
import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from tqdm import tqdm

from blurgen.core.device import resolve_device
from blurgen.core.images import write_image
from blurgen.core.viz import flow_to_color, stack_rows
from blurgen.shards import ShardReader

from ..predict import predict_flow
from .run import deblur_image, make_prior

# The paper's Table 2 (PSNR dB / SSIM, 300 BSD images of 480×320 each); DESIGN.md.
PAPER = {
    "bsd-m": {
        "Sun et al. (paper)": (22.97, 0.674),
        "Gong et al. (paper)": (23.88, 0.718),
        "B2F (paper)": (25.23, 0.786),
    },
    "bsd-s": {
        "Sun et al. (paper)": (20.53, 0.530),
        "Gong et al. (paper)": (21.85, 0.625),
        "B2F (paper)": (23.41, 0.714),
    },
}
ROWS = {
    "blurred": "blurred input",
    "gt": "deconvolution, ground-truth flow",
    "b2f": "deconvolution, B2F-net flow",
    "uniform": "deconvolution, one uniform kernel (mean GT flow)",
}


def scores(sharp: np.ndarray, image: np.ndarray) -> dict:
    """PSNR (dB) and SSIM of uint8 RGB ``image`` against ``sharp`` (scikit-image, data range 255, SSIM per channel)."""
    return {
        "psnr": float(peak_signal_noise_ratio(sharp, image, data_range=255)),
        "ssim": float(structural_similarity(sharp, image, data_range=255, channel_axis=2)),
    }


def evaluate_deblur(
    shards: str | Path,
    split: str = "test",
    *,
    ckpt: str | Path | None = None,
    prior: str = "hyper-laplacian",
    gmm: str | Path | None = None,
    device: str = "auto",
    limit: int | None = None,
    figure: str | Path | None = None,
    figure_rows: int = 3,
    progress: bool = True,
) -> dict:
    """Deblur every sample of ``shards`` (with ``sharp``) with the ground-truth flow, B2F-net's (``ckpt``)
    and one uniform kernel of the mean ground-truth flow; PSNR/SSIM of each and of the blurred input.

    ``figure``: a PNG of the first ``figure_rows`` samples, blurred | flow | deblurred | sharp (the flow and
    deblurring of B2F-net with ``ckpt``, else of the ground truth). Returns the report (means and per image).
    """
    reader = ShardReader(shards, split)
    preset = reader.manifest["config"].get("preset")
    chosen = make_prior(prior, gmm)
    dev = resolve_device(device)
    model = None
    if ckpt is not None:
        from ..checkpoint import load_model

        model, _ = load_model(ckpt, dev)
    count = len(reader) if limit is None else min(limit, len(reader))
    per_image, panels = [], []
    for i in tqdm(range(count), desc=f"deblur {split}", unit="img", disable=not progress):
        s = reader.read(i, fields=("blurred", "flow_fwd", "sharp"))
        flows = {"gt": s["flow_fwd"]}
        if model is not None:
            flows["b2f"] = predict_flow(model, s["blurred"], dev)
        flows["uniform"] = np.broadcast_to(s["flow_fwd"].reshape(-1, 2).mean(axis=0), s["flow_fwd"].shape).copy()
        row = {"index": i, "sequence": s["meta"].get("sequence"), "blurred": scores(s["sharp"], s["blurred"])}
        restored = {}
        for name, flow in flows.items():
            restored[name] = deblur_image(s["blurred"], flow, chosen, dev)
            row[name] = scores(s["sharp"], restored[name])
        per_image.append(row)
        if figure is not None and i < figure_rows:
            shown = "b2f" if model is not None else "gt"
            panels.append([s["blurred"], flow_to_color(flows[shown]), restored[shown], s["sharp"]])
    names = [n for n in ROWS if per_image and n in per_image[0]]
    summary = {
        n: {m: float(np.mean([r[n][m] for r in per_image])) if per_image else float("nan") for m in ("psnr", "ssim")}
        for n in names
    }
    if figure is not None and panels:
        _write_figure(figure, panels)
    return {
        "shards": str(Path(shards).resolve()),
        "split": split,
        "preset": preset,
        "images": len(per_image),
        "prior": prior,
        "ckpt": None if ckpt is None else str(Path(ckpt).resolve()),
        "rows": summary,
        "paper": {k: {"psnr": v[0], "ssim": v[1]} for k, v in PAPER.get(preset, {}).items()},
        "per_image": per_image,
    }


def _write_figure(path: str | Path, panels: list) -> None:
    """Rows of equal-height panels (resized to the first's height), 2 px white between rows."""
    height = panels[0][0].shape[0]
    rows = []
    for row in panels:
        row = [cv2.resize(p, (round(p.shape[1] * height / p.shape[0]), height)) for p in row]
        rows.append(np.concatenate(row, axis=1))
    write_image(path, stack_rows(rows))


def format_table(*reports: dict) -> str:
    """A Markdown table, one PSNR/SSIM column pair per report (e.g. BSD-M and BSD-S), the paper's rows after."""
    head = "| method | " + " | ".join(f"{r['preset']} PSNR | {r['preset']} SSIM" for r in reports) + " |"
    lines = [head, "|---|" + "---:|---:|" * len(reports)]
    for key, label in ROWS.items():
        if all(key in r["rows"] for r in reports):
            cells = " | ".join(f"{r['rows'][key]['psnr']:.2f} | {r['rows'][key]['ssim']:.3f}" for r in reports)
            lines.append(f"| {label} | {cells} |")
    for label in reports[0]["paper"]:
        if all(label in r["paper"] for r in reports):
            cells = " | ".join(f"{r['paper'][label]['psnr']:.2f} | {r['paper'][label]['ssim']:.3f}" for r in reports)
            lines.append(f"| {label} | {cells} |")
    return "\n".join(lines)
