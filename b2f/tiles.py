"""Reading an image in overlapping tiles of the size the net was trained on, blended.

A net's reading can depend on the input's size: one B2F-net trained on whole 128² images read the middle of
256² test images 30-38% longer than the same pixels cut out at 128² (issue 17; a larger input gives the
coarsest levels cells that training never showed). A tiled reading keeps every pass at the training size,
as FlowFormer's tiled evaluation does.
Tiles overlap by half; each tile's reading counts by a Gaussian of the distance from its centre (its
borders, where it saw the least context, count least). Blur does not tell a motion from its reverse: each
tile, in raster order, is turned to the sign of what the tiles before it read where they overlap, and, as in
:mod:`b2f.ensemble`, direction and length are blended apart so that readings that differ do not shorten.
Written here because no library blends flow tiles whose sign is ambiguous.
"""

import functools
from collections.abc import Callable

import torch

from .ensemble import combine, ensemble_predict

BATCH = 16  # tiles of an image per pass: fewer, larger passes keep a GPU busy (and cost a CPU less)
SIGMA = 0.1  # the blending weight's standard deviation, in tile sides: a pixel counts where it is most central


def tile_starts(length: int, tile: int) -> list[int]:
    """Where tiles of ``tile`` px start along a side of ``length`` px: evenly spaced from 0 to ``length -
    tile`` at most half a tile apart (neighbours overlap by at least half); [0] when one tile covers it."""
    if length <= tile:
        return [0]
    n = -(-(length - tile) // (tile // 2)) + 1  # ceil
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def tile_weight(height: int, width: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """1×1×H×W Gaussian of the distance from the tile's centre in tile sides (σ = SIGMA)."""
    y = (torch.arange(height, dtype=dtype, device=device) + 0.5) / height - 0.5
    x = (torch.arange(width, dtype=dtype, device=device) + 0.5) / width - 0.5
    return torch.exp(-0.5 * (y[:, None] ** 2 + x[None] ** 2) / SIGMA**2)[None, None]


@torch.no_grad()
def tiled_predict(
    read: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, tile: tuple[int, int], batch: int = BATCH
) -> torch.Tensor:
    """B×2×H×W: ``read`` (B×3×h×w -> B×2×h×w) on tiles of at most ``tile`` (h, w) covering ``image``, blended.
    ``batch`` tiles (of each image) go through ``read`` in one pass; an image no larger than a tile is read whole."""
    height, width = image.shape[-2:]
    th, tw = min(tile[0], height), min(tile[1], width)
    if (th, tw) == (height, width):
        return read(image)
    windows = [
        (..., slice(y, y + th), slice(x, x + tw)) for y in tile_starts(height, th) for x in tile_starts(width, tw)
    ]
    flows = []
    for i in range(0, len(windows), batch):
        flows += read(torch.cat([image[window] for window in windows[i : i + batch]])).split(image.shape[0])
    weight = tile_weight(th, tw, image.dtype, image.device)
    total = image.new_zeros(image.shape[0], 2, height, width)
    length, mass = image.new_zeros(image.shape[0], 1, height, width), image.new_zeros(1, 1, height, width)
    for window, flow in zip(windows, flows):
        agree = (flow * total[window]).sum(dim=(1, 2, 3), keepdim=True) >= 0
        total[window] += weight * torch.where(agree, flow, -flow)
        length[window] += weight * torch.linalg.vector_norm(flow, dim=1, keepdim=True)
        mass[window] += weight
    return combine(total, length / mass)


def reader(model: torch.nn.Module, ensemble: bool = False) -> Callable[[torch.Tensor], torch.Tensor]:
    """How ``model`` reads an image (B×3×H×W -> B×2×H×W): ``model.predict`` once or, with ``ensemble``, on the
    eight flips and turns combined."""
    return functools.partial(ensemble_predict, model) if ensemble else model.predict


def estimate_flow(
    model: torch.nn.Module, image: torch.Tensor, ensemble: bool = False, tile: tuple[int, int] | None = None
) -> torch.Tensor:
    """B×2×H×W: how the CLIs and pipelines read an image: ``model.predict`` once or, with ``ensemble``, on the
    eight flips and turns combined; whole or, with ``tile`` (h, w), in tiles of that size blended."""
    read = reader(model, ensemble)
    return read(image) if tile is None else tiled_predict(read, image, tile)
