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


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def _scale(flow: torch.Tensor, sx: float, sy: float) -> torch.Tensor:
    """``flow`` with u times ``sx`` and v times ``sy``, without copying factors to the device (a host sync):
    the model's levels are exact halvings, so both factors are one number and it is a plain multiply."""
    if sx == sy:
        return flow * sx
    return torch.cat((flow[:, :1] * sx, flow[:, 1:] * sy), 1)


def resize_target(
    target: torch.Tensor, size: tuple[int, int], valid: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(flow B×2×h×w in pixels of the h×w grid, valid B×h×w bool or None) for one level.

    With a mask, invalid pixels are left out of the average (normalised convolution) and a coarse pixel
    counts as valid when at least half of its weight comes from valid pixels.
    """
    height, width = target.shape[-2:]
    sx, sy = size[1] / width, size[0] / height
    if valid is None:
        return _scale(_resize(target, size), sx, sy), None
    mask = (valid != 0).to(target.dtype)[:, None]
    # invalid pixels may hold anything (NaN, 1e9): zero them so they cannot leak through the filter
    flow = torch.where(mask > 0, target, torch.zeros_like(target))
    weight = _resize(mask, size)
    flow = _resize(flow, size) / weight.clamp(min=1e-6)
    return _scale(flow, sx, sy), weight[:, 0] >= 0.5


def multiscale_loss(
    flows: list[torch.Tensor], target: torch.Tensor, valid: torch.Tensor | None = None, per_sample: bool = False
) -> torch.Tensor:
    """``flows``: B2FNet.forward's output, coarsest first; ``target``: B×2×H×W full-resolution pixels;
    ``valid``: B×H×W (nonzero = supervised) or None. The batch's loss, a scalar tensor; with ``per_sample``
    each sample's (B values, whose mean is the batch's).

    Computed in float32 (flows from a bf16 autocast are cast up), with no value copied from the host.
    """
    if len(flows) != len(WEIGHTS):
        raise ValueError(f"multiscale_loss needs {len(WEIGHTS)} flows (coarsest first), got {len(flows)}")
    target = target.float()
    height, width = target.shape[-2:]
    total = 0
    with torch.autocast(target.device.type, enabled=False):
        for weight, flow in zip(WEIGHTS, flows):
            gt, mask = resize_target(target, flow.shape[-2:], valid)
            # level pixels -> full-resolution pixels / FLOW_DIV
            sx, sy = width / flow.shape[-1] / FLOW_DIV, height / flow.shape[-2] / FLOW_DIV
            epe = torch.linalg.vector_norm(_scale(flow.float() - gt, sx, sy), dim=1)
            epe = epe if mask is None else epe * mask
            total = total + weight * epe.flatten(1).sum(1)
    return total if per_sample else total.mean()
