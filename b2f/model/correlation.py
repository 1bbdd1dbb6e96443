"""Cost volume of PWC-Net: correlation of two feature maps over a (2r+1)² window of integer shifts.

Written by hand because ptlflow's pure-PyTorch ``IterSpatialCorrelationSampler`` grid-samples 81 copies
of the second map and is ~7× slower on CPU (bench/model.py measures both); the CUDA extension it
wraps is not installed. Plain tensor ops, so it runs (and back-propagates) on CPU and CUDA alike.
"""

import torch
import torch.nn.functional as F


def correlation(feat1, feat2, radius=4):
    """B×(2r+1)²×H×W: channel ``(dy + r) * (2r + 1) + (dx + r)`` holds
    ``mean_c feat1[:, c, y, x] * feat2[:, c, y + dy, x + dx]`` (0 where that falls outside ``feat2``).

    The mean over channels is PWC-Net's normalisation by the channel count.
    """
    _, channels, height, width = feat1.shape
    size = 2 * radius + 1
    padded = F.pad(feat2, (radius, radius, radius, radius))
    costs = [
        (feat1 * padded[:, :, dy : dy + height, dx : dx + width]).sum(1) for dy in range(size) for dx in range(size)
    ]
    return torch.stack(costs, 1) / channels
