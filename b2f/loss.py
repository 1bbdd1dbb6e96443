"""The paper's multi-scale EPE loss (Eq. 6): Σ_l w_l · Σ over valid pixels of ‖f^l − f̂^l‖₂ / (20 · batch).

f̂^l is the full-resolution ground truth resized bilinearly to level l's size and expressed in that
level's pixels (B2FNet.forward's unit): u is scaled by w_l / W and v by h_l / H. Resizing is antialiased
(a triangle filter as wide as the scale factor), so a coarse target is the mean motion of its cell
rather than the flow at the few full-resolution pixels that plain bilinear sampling would pick.

Scale: PWC-Net's, for which the paper's weights and weight decay 4e-4 were chosen: errors in full-resolution
pixels / 20, summed over a level's pixels, divided by the batch size (a mean in level pixels made the
gradients ~100× smaller than Adam's L2 decay, which then held most weights at zero).
"""

import torch
import torch.nn.functional as F

WEIGHTS = (0.32, 0.08, 0.04, 0.02, 0.01, 0.005)  # coarsest (1/64) to finest (1/2)
FLOW_DIV = 20.0  # PWC-Net's flow scale


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
    height, width = target.shape[-2:]
    total = target.new_zeros(())
    for weight, flow in zip(WEIGHTS, flows):
        gt, mask = resize_target(target, flow.shape[-2:], valid)
        # level pixels -> full-resolution pixels / FLOW_DIV
        scale = target.new_tensor([width / flow.shape[-1], height / flow.shape[-2]]).view(1, 2, 1, 1) / FLOW_DIV
        epe = torch.linalg.vector_norm((flow - gt) * scale, dim=1)
        total = total + weight * (epe.sum() if mask is None else (epe * mask).sum())
    return total / len(target)
