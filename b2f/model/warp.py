"""Backward warping by a flow in pixels."""

import torch
import torch.nn.functional as F


def warp(feat, flow):
    """Sample ``feat`` at ``(x + u, y + v)`` for every pixel (bilinear; zeros outside).

    ``flow``: B×2×H×W in pixels of ``feat``'s grid. Normalised with align_corners=False, so pixel centres
    sit at integer coordinates and a 1-pixel-wide map (level 6 of a 64-pixel input) is well defined.
    """
    _, _, height, width = flow.shape
    ys = torch.arange(height, device=flow.device, dtype=flow.dtype).view(1, -1, 1)
    xs = torch.arange(width, device=flow.device, dtype=flow.dtype).view(1, 1, -1)
    gx = (2 * (xs + flow[:, 0]) + 1) / width - 1
    gy = (2 * (ys + flow[:, 1]) + 1) / height - 1
    return F.grid_sample(feat, torch.stack((gx, gy), -1), mode="bilinear", padding_mode="zeros",
                         align_corners=False)
