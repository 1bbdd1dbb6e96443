"""b2f-predict: flow files and colour pictures for blurred images of any size.

It never writes over an input, nor over a file it did not make: the names it made in a folder are
listed in ``OUT/.b2f-predict-made`` so a rerun may replace its own outputs and nothing else.
"""

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from blurgen.core.device import resolve_device
from blurgen.core.errors import BlurgenError, first_line
from blurgen.core.files import atomic_path, atomic_write_text
from blurgen.core.flow_io import write_flow
from blurgen.core.images import read_image, write_image
from blurgen.core.viz import flow_to_color

from .checkpoint import load_model
from .flow_source import check_stems
from .tiles import estimate_flow

FORMATS = ("flo", "png", "npy")
MADE = ".b2f-predict-made"  # names this command wrote in its output folder, one a line


def output_paths(image: str | os.PathLike, out: Path, fmt: str) -> tuple[Path, Path]:
    stem = Path(image).stem
    return out / f"{stem}.{fmt}", out / f"{stem}_color.png"


def fit_side(height: int, width: int, max_side: int | None) -> tuple[int, int]:
    """(h, w) of the image the network sees: the input's, or scaled so the longer side is ``max_side``."""
    if max_side is None or max(height, width) <= max_side:
        return height, width
    scale = max_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def rescale_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A flow (h×w×2, px of its grid) on an image of ``size`` (H, W): resampled bilinearly (pixel centres
    aligned, as cv2.resize does for the image) and its u, v scaled by W/w and H/h."""
    (height, width), (h, w) = size, flow.shape[:2]
    if (h, w) == (height, width):
        return flow
    big = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
    return (big * np.array([width / w, height / h], np.float32)).astype(np.float32)


def predict_flow(
    model: torch.nn.Module,
    rgb: np.ndarray,
    device: torch.device,
    max_side: int | None = None,
    ensemble: bool = False,
    tile: tuple[int, int] | None = None,
) -> np.ndarray:
    """H×W×2 flow of a uint8 RGB image, the network run at most ``max_side`` px on the longer side (on its
    eight flips and turns, combined, with ``ensemble``; in ``tile`` (h, w) tiles of that input, blended)."""
    height, width = rgb.shape[:2]
    h, w = fit_side(height, width, max_side)
    small = rgb if (h, w) == (height, width) else cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    image = torch.from_numpy(np.ascontiguousarray(small)).permute(2, 0, 1)[None].float().div(255)
    image = image.to(device)
    with torch.no_grad():
        flow = estimate_flow(model, image, ensemble, tile)
    flow = flow[0].permute(1, 2, 0).cpu().numpy()
    return rescale_flow(flow, (height, width))


def _out_of_memory(error: BaseException) -> bool:
    if isinstance(error, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)


def _check_outputs(images: Sequence[str], out: Path, fmt: str) -> None:
    """Refuse before writing anything: an output that is an input, or an existing file we did not make."""
    inputs = {Path(i).resolve() for i in images}
    made = set((out / MADE).read_text().split("\n")) if (out / MADE).is_file() else set()
    for image in images:
        for path in output_paths(image, out, fmt):
            if path.resolve() in inputs:
                raise BlurgenError(f"{path}: is an input and would be overwritten by a flow file; pass another --out")
            if path.exists() and path.name not in made:
                raise BlurgenError(
                    f"{path}: exists and was not written by b2f-predict; pass another --out or move the file"
                )


def predict(
    ckpt: str | os.PathLike,
    images: Sequence[str],
    out: str | os.PathLike,
    fmt: str = "flo",
    device: str = "auto",
    progress: bool = True,
    max_side: int | None = None,
    ensemble: bool = False,
    tile: tuple[int, int] | None = None,
) -> list[Path]:
    """Write OUT/<stem>.<fmt> and OUT/<stem>_color.png per image; returns the flow paths.

    Every input is checked (readable, distinct names, no output over an input or a file of someone
    else's) before anything is written. ``max_side`` bounds the network's input (memory grows with
    the pixel count); the flow is scaled back to each input's grid. ``ensemble``: each image read on its
    eight flips and turns, combined (b2f.ensemble); ``tile``: in tiles of that (h, w), blended (b2f.tiles).
    """
    if fmt not in FORMATS:
        raise BlurgenError(f"unknown flow format '{fmt}'; use one of {', '.join(FORMATS)}")
    out = Path(out)
    for image in images:
        read_image(image)  # fails here, with its path, rather than after half the outputs exist
    check_stems(images, f".{fmt}")
    _check_outputs(images, out, fmt)
    dev = resolve_device(device)
    model, _ = load_model(ckpt, dev)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BlurgenError(f"{out}: cannot create the output folder ({e.strerror}); pass another --out") from None
    made = set((out / MADE).read_text().split("\n")) if (out / MADE).is_file() else set()
    written = []
    for image in tqdm(images, desc="predict", unit="img", disable=not progress):
        rgb = read_image(image)
        try:
            flow = predict_flow(model, rgb, dev, max_side, ensemble, tile)
        except Exception as e:
            if not _out_of_memory(e):
                raise
            h, w = fit_side(*rgb.shape[:2], max_side)
            raise BlurgenError(
                f"{image}: out of memory running B2F-net on {w}x{h} pixels on {dev} ({first_line(e, 80)}); "
                f"pass --max-side {max(64, max(h, w) // 2)} (the flow is scaled back to the full image)"
            ) from None
        flow_path, color_path = output_paths(image, out, fmt)
        target = out / MADE
        try:
            made |= {flow_path.name, color_path.name}
            atomic_write_text(out / MADE, "\n".join(sorted(made)) + "\n")  # first: a kill leaves no stranger
            target = flow_path
            with atomic_path(flow_path) as tmp:
                write_flow(tmp, flow, fmt=fmt)
            target = color_path
            with atomic_path(color_path) as tmp:
                write_image(tmp, flow_to_color(flow))
        except (OSError, BlurgenError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else first_line(e)
            raise BlurgenError(f"{target}: cannot write ({reason}); free space or fix permissions and rerun") from None
        written.append(flow_path)
    return written
