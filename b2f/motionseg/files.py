"""b2f-segment's work: masks and overlays for image files, from flow files or from B2F-net.

Every input is read and checked (readable, same size as its flow, finite flow, distinct names, no
output that would replace an input) before anything is written; each output is written atomically.
"""

from pathlib import Path

import cv2
import numpy as np

from blurgen.core.device import resolve_device
from blurgen.core.errors import BlurgenError
from blurgen.core.files import atomic_path
from blurgen.core.images import read_image, write_image

from ..checkpoint import load_model
from ..flow_source import check_sources, check_stems, read_dense_flow
from ..predict import predict_flow
from .segmentation import DEFAULTS, SegmentOptions, check_flow, segment
from .viz import mask_image, overlay

MIN_SIZE = 8  # px: a smaller frame has too few flow samples to fit a camera motion


def output_paths(image: str | Path, out: str | Path) -> tuple[Path, Path]:
    """``(OUT/<stem>_mask.png, OUT/<stem>_overlay.png)``."""
    stem = Path(image).stem
    return Path(out) / f"{stem}_mask.png", Path(out) / f"{stem}_overlay.png"


def write_mask(path: str | Path, mask: np.ndarray) -> None:
    """A one-channel 8-bit image, 255 where ``mask``, else 0, written atomically."""
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), mask_image(mask)):
            raise BlurgenError(f"{path}: could not write the mask (check the folder)")


def _read_flow(path: str | Path, size: tuple[int, int], image: str | Path) -> np.ndarray:
    return check_flow(read_dense_flow(path, image, size), str(path))


def _check_names(images: list, out: Path, inputs: list) -> None:
    check_stems(images, "_mask.png")
    taken = {Path(p).resolve() for p in inputs}
    for image in images:
        for path in output_paths(image, out):
            if path.resolve() in taken:
                raise BlurgenError(f"{path}: is an input and would be overwritten; pass another --out folder")


def segment_files(
    images: list[str | Path],
    out: str | Path,
    flows: list[str | Path] | None = None,
    ckpt: str | Path | None = None,
    device: str = "auto",
    options: SegmentOptions = DEFAULTS,
) -> list[Path]:
    """Write OUT/<stem>_mask.png (0/255) and OUT/<stem>_overlay.png per image; returns the mask paths.

    The flow of ``images[i]`` is the file ``flows[i]``, or B2F-net's estimate with ``ckpt``.
    """
    images, flows, out = list(images), list(flows or []), Path(out)
    check_sources(images, flows, ckpt)
    _check_names(images, out, images + flows)
    for i, image in enumerate(images):  # fail here, naming the file, rather than after half the outputs exist
        size = read_image(image).shape[:2]
        if min(size) < MIN_SIZE:
            raise BlurgenError(f"{image}: {size[1]}x{size[0]} is too small; segmentation needs at least {MIN_SIZE} px")
        if flows:
            _read_flow(flows[i], size, image)
    if ckpt is not None:
        dev = resolve_device(device)
        model, _ = load_model(ckpt, dev)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, image in enumerate(images):
        rgb = read_image(image)
        flow = _read_flow(flows[i], rgb.shape[:2], image) if flows else predict_flow(model, rgb, dev)
        mask = segment(flow, options).mask
        mask_path, overlay_path = output_paths(image, out)
        write_mask(mask_path, mask)
        with atomic_path(overlay_path) as tmp:
            write_image(tmp, overlay(rgb, mask))
        written.append(mask_path)
    return written
