"""Cost volume of PWC-Net: correlation of two feature maps over a (2r+1)² window of integer shifts.

Written by hand because ptlflow's pure-PyTorch ``IterSpatialCorrelationSampler`` grid-samples 81 copies
of the second map and is several times slower on CPU (bench/model.py measures both); the CUDA extension it
wraps is not installed. Plain tensor ops, so it runs (and back-propagates) on every device. Two
formulations give the same numbers (tests/b2f/model/test_correlation.py holds them to 1e-5, gradients too):

- "windows": every (2r+1)² neighbourhood as a strided view of the padded second map, one broadcast
  multiply and one channel sum: ~10 ops forward and ~20 backward per call, so a GPU is not left waiting
  on kernel launches. Its transient product holds (2r+1)² × the features' size (B·C·81·H·W floats at r=4:
  340 MB at level 1 of a batch of 4 256² crops, C = 16), freed after the sum; backward needs as much again.
- "shifts": one multiply-and-sum per shift (81 at r=4: ~330 ops forward, ~730 backward), each on a
  working set of one feature map, which stays in a CPU's caches: on a CPU a whole training step runs
  faster with it (bench/train_step.py --corr compares them), so "auto" takes it there and "windows"
  everywhere else.
"""

import torch
import torch.nn.functional as F

METHODS = ("auto", "windows", "shifts")


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
        method = "shifts" if feat1.device.type == "cpu" else "windows"
    with torch.autocast(feat1.device.type, enabled=False):
        feat1 = _at_least_fp32(feat1) / feat1.shape[1]
        padded = F.pad(_at_least_fp32(feat2), (radius, radius, radius, radius))
        return (_windows if method == "windows" else _shifts)(feat1, padded, radius)


def _at_least_fp32(x):
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _windows(feat1, padded, radius):
    batch, _, height, width = feat1.shape
    size = 2 * radius + 1
    windows = padded.unfold(2, size, 1).unfold(3, size, 1)  # B×C×H×W×dy×dx, a view
    costs = (windows * feat1[..., None, None]).sum(1)  # B×H×W×dy×dx
    return costs.permute(0, 3, 4, 1, 2).reshape(batch, size * size, height, width)


def _shifts(feat1, padded, radius):
    _, _, height, width = feat1.shape
    size = 2 * radius + 1
    costs = [
        (feat1 * padded[:, :, dy : dy + height, dx : dx + width]).sum(1) for dy in range(size) for dx in range(size)
    ]
    return torch.stack(costs, 1)
