"""Cost volume of PWC-Net: correlation of two feature maps over a (2r+1)² window of integer shifts.

Written by hand because ptlflow's pure-PyTorch ``IterSpatialCorrelationSampler`` grid-samples 81 copies
of the second map and is several times slower on CPU (bench/model.py measures both); the CUDA extension it
wraps is not installed. Plain tensor ops, so it runs (and back-propagates) on every device. Two
formulations give the same numbers (tests/b2f/model/test_correlation.py holds them to 1e-5, gradients too):

- "windows": every (2r+1)² neighbourhood as a strided view of the padded second map, one broadcast
  multiply and one channel sum: ~10 ops forward and ~20 backward per call, so a GPU is not left waiting
  on kernel launches. Its transient product holds (2r+1)² × the features' size (B·C·81·H·W floats at r=4:
  340 MB at level 1 of a batch of 4 256² crops, C = 16), freed after the sum; backward needs as much again.
- "rows": the same per row of shifts (2r+1 strided views, products and channel sums: ~20 ops forward
  and ~60 backward at r=4), its transient product (2r+1) × the features' size. A CPU streams through it
  as fast as through 81 one-shift products (the formulation it replaced) while launching a ninth of
  their ops: "auto" takes it on a CPU (bench/train_step.py --corr compares) and "windows" elsewhere.
"""

import torch
import torch.nn.functional as F

METHODS = ("auto", "windows", "rows")


def correlation(feat1: torch.Tensor, feat2: torch.Tensor, radius: int = 4, method: str = "auto") -> torch.Tensor:
    """B×(2r+1)²×H×W (float32 for 16-bit inputs): channel ``(dy + r) * (2r + 1) + (dx + r)`` holds
    ``mean_c feat1[:, c, y, x] * feat2[:, c, y + dy, x + dx]`` (0 where that falls outside ``feat2``).

    The mean over channels is PWC-Net's normalisation by the channel count. It runs in float32 whatever
    autocast says: in float16 a product of two features of ~300 overflows, and a sum of 16-196 products
    in bf16 keeps 3 significant digits.
    """
    if method not in METHODS:
        raise ValueError(f"unknown correlation method '{method}'; use one of {', '.join(METHODS)}")
    if method == "auto":
        method = "rows" if feat1.device.type == "cpu" else "windows"
    with torch.autocast(feat1.device.type, enabled=False):
        feat1 = _at_least_fp32(feat1) / feat1.shape[1]
        padded = F.pad(_at_least_fp32(feat2), (radius, radius, radius, radius))
        return (_windows if method == "windows" else _rows)(feat1, padded, radius)


def _at_least_fp32(x):
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _windows(feat1, padded, radius):
    batch, _, height, width = feat1.shape
    size = 2 * radius + 1
    windows = padded.unfold(2, size, 1).unfold(3, size, 1)  # B×C×H×W×dy×dx, a view
    costs = (windows * feat1[..., None, None]).sum(1)  # B×H×W×dy×dx
    return costs.permute(0, 3, 4, 1, 2).reshape(batch, size * size, height, width)


def _rows(feat1, padded, radius):
    batch, _, height, width = feat1.shape
    size = 2 * radius + 1
    f1 = feat1[..., None]
    costs = [(padded[:, :, dy : dy + height].unfold(3, size, 1) * f1).sum(1) for dy in range(size)]  # B×H×W×dx
    return torch.stack(costs, 1).permute(0, 1, 4, 2, 3).reshape(batch, size * size, height, width)
