"""b2f-deblur: sharp images from blurred ones and a flow (a file per image, or B2F-net's prediction)."""

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from blurgen.core.device import resolve_device
from blurgen.core.errors import BlurgenError
from blurgen.core.files import atomic_path
from blurgen.core.flow_io import read_flow
from blurgen.core.images import read_image, write_image

from ..flow_source import check_sources, check_stems, read_dense_flow
from .priors import EPLL, HyperLaplacian, load_prior
from .solver import Prior, deconvolve

PRIORS = ("hyper-laplacian", "epll")


def make_prior(name: str = "hyper-laplacian", gmm: str | Path | None = None) -> Prior:
    """The prior by name; EPLL needs the mixture file written by ``b2f-fit-prior``."""
    if name == "hyper-laplacian":
        return HyperLaplacian()
    if name == "epll":
        if gmm is None:
            raise BlurgenError("--prior epll needs --gmm FILE; fit one with `b2f-fit-prior PHOTOS… -o prior.npz`")
        return EPLL(load_prior(gmm))
    raise BlurgenError(f"unknown prior '{name}'; use one of {', '.join(PRIORS)}")


def to_tensor(image: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 H×W×3 -> float 3×H×W in [0, 1] on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).to(device, torch.float32) / 255


def to_image(x: torch.Tensor) -> np.ndarray:
    """float C×H×W in [0, 1] -> uint8 H×W×C, rounded."""
    return (x.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def deblur_image(image: np.ndarray, flow: np.ndarray, prior: Prior, device: torch.device | str = "cpu") -> np.ndarray:
    """Deconvolve a uint8 H×W×3 image with the line blur of ``flow`` (H×W×2 px); uint8 H×W×3."""
    if flow.shape[:2] != image.shape[:2]:
        raise BlurgenError(f"flow is {flow.shape[0]}x{flow.shape[1]}, the image {image.shape[0]}x{image.shape[1]}")
    flow_t = torch.from_numpy(np.ascontiguousarray(flow, np.float32)).permute(2, 0, 1)
    x, _ = deconvolve(to_tensor(image, device), flow_t.to(device), prior)
    return to_image(x)


def deblur(
    images: list,
    out: str | Path,
    *,
    flows: list | None = None,
    ckpt: str | Path | None = None,
    prior: str = "hyper-laplacian",
    gmm: str | Path | None = None,
    device: str = "auto",
    progress: bool = True,
) -> list[Path]:
    """Write OUT/<stem>_sharp.png per image, deblurred with ``flows`` (one file per image) or with the flow
    B2F-net in ``ckpt`` predicts (then also OUT/<stem>.flo and OUT/<stem>_color.png, as b2f-predict writes).

    Every input is checked before anything is written.
    """
    check_sources(images, flows, ckpt)
    check_stems(images, "_sharp.png")
    pictures = [read_image(p) for p in images]
    chosen = make_prior(prior, gmm)
    dev = resolve_device(device)
    if flows:
        fields = [read_dense_flow(f, p, img.shape) for f, p, img in zip(flows, images, pictures)]
    else:
        from ..predict import predict

        written = predict(ckpt, images, out, fmt="flo", device=device, progress=progress)
        fields = [read_flow(p)[0] for p in written]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for path, picture, flow in tqdm(
        list(zip(images, pictures, fields)), desc="deblur", unit="img", disable=not progress
    ):
        sharp = deblur_image(picture, flow, chosen, dev)
        target = out / f"{Path(path).stem}_sharp.png"
        with atomic_path(target) as tmp:
            write_image(tmp, sharp)
        results.append(target)
    return results
