"""Per-image flow errors: EPE against flow_fwd, flow_bwd and their minimum (the paper's number), and
1/3/5-px accuracy, all over valid pixels.

A blurred image looks the same played backwards, so the paper scores each image by the direction its
prediction matches better; the accuracies are taken against that same direction.
"""

import torch

THRESHOLDS = (1, 3, 5)
MIN_LENGTH = 1.0  # px: the length ratio leaves out pixels whose true flow is shorter (their ratio is noise)
NAMES = ("epe_min", "epe_fwd", "epe_bwd") + tuple(f"acc{t}" for t in THRESHOLDS)


def _masked_mean(values, mask):
    """Mean over each image's valid pixels; NaN for an image without any (it then drops out of averages)."""
    count = mask.sum(dim=(1, 2))
    total = (values * mask).sum(dim=(1, 2))
    return torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, float("nan")))


def flow_metrics(
    pred: torch.Tensor, flow_fwd: torch.Tensor, flow_bwd: torch.Tensor, valid: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """Each of ``NAMES`` as a float64 tensor of B per-image values.

    ``pred``, ``flow_fwd``, ``flow_bwd``: B×2×H×W pixels; ``valid``: B×H×W (nonzero = scored) or None.
    """
    pred, flow_fwd, flow_bwd = (t.double() for t in (pred, flow_fwd, flow_bwd))
    mask = torch.ones_like(pred[:, 0]) if valid is None else (valid != 0).double()
    err_fwd = torch.linalg.vector_norm(pred - flow_fwd, dim=1)
    err_bwd = torch.linalg.vector_norm(pred - flow_bwd, dim=1)
    epe_fwd, epe_bwd = _masked_mean(err_fwd, mask), _masked_mean(err_bwd, mask)
    # ties go to fwd; where epe_fwd is NaN (no valid pixel) the comparison is False and the result stays NaN
    use_bwd = (epe_bwd < epe_fwd)[:, None, None]
    err = torch.where(use_bwd, err_bwd, err_fwd)
    out = {"epe_min": torch.where(use_bwd[:, 0, 0], epe_bwd, epe_fwd), "epe_fwd": epe_fwd, "epe_bwd": epe_bwd}
    for t in THRESHOLDS:
        out[f"acc{t}"] = _masked_mean((err < t).double(), mask)
    return out


def length_ratio(pred: torch.Tensor, truth: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Per image, the median over valid pixels with |truth| >= ``MIN_LENGTH`` of |pred| / |truth|: 1 when
    the predicted blur is as long as the true one, whatever its direction (EPE mixes length and angle, and
    a model that learned its training set's displacement range is off in length). NaN without such pixels.

    ``pred``, ``truth``: B×2×H×W pixels; ``valid``: B×H×W (nonzero = scored) or None. float64, B values.
    """
    pred, truth = pred.double(), truth.double()
    true_len = torch.linalg.vector_norm(truth, dim=1)
    ratio = torch.linalg.vector_norm(pred, dim=1) / true_len.clamp(min=MIN_LENGTH)
    keep = true_len >= MIN_LENGTH
    if valid is not None:
        keep &= valid != 0
    # the median as numpy's (the mean of the two middle values for an even count); of nothing, NaN
    return torch.where(keep, ratio, torch.full_like(ratio, float("nan"))).flatten(1).nanquantile(0.5, dim=1)
