"""b2f-predict: flow files and colour pictures for blurred images of any size."""

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from blurgen.core.device import resolve_device
from blurgen.core.errors import BlurgenError
from blurgen.core.files import atomic_path
from blurgen.core.flow_io import write_flow
from blurgen.core.images import read_image, write_image
from blurgen.core.viz import flow_to_color

from .checkpoint import load_model

FORMATS = ("flo", "png", "npy")


def estimate_flow(model: torch.nn.Module, rgb: np.ndarray, device: torch.device) -> np.ndarray:
    """Flow H×W×2 float32 of one uint8 RGB image of any size, by ``model.predict`` on ``device``."""
    image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float().div(255)
    return model.predict(image.to(device))[0].permute(1, 2, 0).cpu().numpy()


def output_paths(image, out, fmt):
    stem = Path(image).stem
    return out / f"{stem}.{fmt}", out / f"{stem}_color.png"


def predict(ckpt, images, out, fmt="flo", device="auto", progress=True):
    """Write OUT/<stem>.<fmt> and OUT/<stem>_color.png per image; returns the flow paths.

    Every input is checked (readable, distinct names) before anything is written.
    """
    if fmt not in FORMATS:
        raise BlurgenError(f"unknown flow format '{fmt}'; use one of {', '.join(FORMATS)}")
    out = Path(out)
    stems = {}
    for image in images:
        read_image(image)  # fails here, with its path, rather than after half the outputs exist
        other = stems.setdefault(Path(image).stem, image)
        if other != image:
            raise BlurgenError(f"{image}: same name as {other}, both would write {Path(image).stem}.{fmt}; rename one")
    dev = resolve_device(device)
    model, _ = load_model(ckpt, dev)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for image in tqdm(images, desc="predict", unit="img", disable=not progress):
        flow = estimate_flow(model, read_image(image), dev)
        flow_path, color_path = output_paths(image, out, fmt)
        with atomic_path(flow_path) as tmp:
            write_flow(tmp, flow, fmt=fmt)
        with atomic_path(color_path) as tmp:
            write_image(tmp, flow_to_color(flow))
        written.append(flow_path)
    return written
