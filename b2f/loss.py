"""The paper's multi-scale EPE loss (Eq. 6): Σ_l w_l · mean over valid pixels of ‖f^l − f̂^l‖₂.

f̂^l is the full-resolution ground truth resized bilinearly to level l's size and expressed in that
level's pixels (B2FNet.forward's unit): u is scaled by w_l / W and v by h_l / H. Resizing is antialiased
(a triangle filter as wide as the scale factor), so a coarse target is the mean motion of its cell
rather than the flow at the few full-resolution pixels that plain bilinear sampling would pick.

With mean reduction and per-level units, w_l / 2^l is 0.005 at the coarsest level and 0.0025 at every
other, so no level drowns the others.
"""

import torch
import torch.nn.functional as F

WEIGHTS = (0.32, 0.08, 0.04, 0.02, 0.01, 0.005)  # coarsest (1/64) to finest (1/2)


def _resize(x, size):
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def resize_target(target, size, valid=None):
    """(flow B×2×h×w in pixels of the h×w grid, valid B×h×w bool or None) for one level.

    With a mask, invalid pixels are left out of the average (normalised convolution) and a coarse pixel
    counts as valid when at least half of its weight comes from valid pixels.
    """
    height, width = target.shape[-2:]
    scale = target.new_tensor([size[1] / width, size[0] / height]).view(1, 2, 1, 1)
    if valid is None:
        return _resize(target, size) * scale, None
    mask = (valid != 0).to(target.dtype)[:, None]
    # invalid pixels may hold anything (NaN, 1e9): zero them so they cannot leak through the filter
    flow = torch.where(mask > 0, target, torch.zeros_like(target))
    weight = _resize(mask, size)
    flow = _resize(flow, size) / weight.clamp(min=1e-6)
    return flow * scale, weight[:, 0] >= 0.5


def multiscale_loss(flows, target, valid=None):
    """``flows``: B2FNet.forward's output, coarsest first; ``target``: B×2×H×W full-resolution pixels;
    ``valid``: B×H×W (nonzero = supervised) or None. A scalar tensor."""
    if len(flows) != len(WEIGHTS):
        raise ValueError(f"multiscale_loss needs {len(WEIGHTS)} flows (coarsest first), got {len(flows)}")
    total = target.new_zeros(())
    for weight, flow in zip(WEIGHTS, flows):
        gt, mask = resize_target(target, flow.shape[-2:], valid)
        epe = torch.linalg.vector_norm(flow - gt, dim=1)
        if mask is None:
            total = total + weight * epe.mean()
        else:
            # pooled over the batch: every valid pixel counts the same
            total = total + weight * (epe * mask).sum() / mask.sum().clamp(min=1)
    return total
