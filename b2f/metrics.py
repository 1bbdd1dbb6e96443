"""Per-image flow errors: EPE against flow_fwd, flow_bwd and their minimum (the paper's number), and
1/3/5-px accuracy, all over valid pixels.

A blurred image looks the same played backwards, so the paper scores each image by the direction its
prediction matches better; the accuracies are taken against that same direction.
"""

from collections.abc import Sequence

import numpy as np
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


def _lengths(pred, truth, valid):
    """|pred| and |truth| (B×H×W, float64) and the pixels the length measures score: valid ones whose true
    flow is at least ``MIN_LENGTH`` px."""
    pred_len = torch.linalg.vector_norm(pred.double(), dim=1)
    true_len = torch.linalg.vector_norm(truth.double(), dim=1)
    keep = true_len >= MIN_LENGTH
    if valid is not None:
        keep &= valid != 0
    return pred_len, true_len, keep


def _median(values, keep):
    """Per image, the median of ``values`` where ``keep``, as numpy's (the mean of the two middle values for an
    even count); NaN where nothing is kept."""
    return torch.where(keep, values, torch.full_like(values, float("nan"))).flatten(1).nanquantile(0.5, dim=1)


def length_ratio(pred: torch.Tensor, truth: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Per image, the median over valid pixels with |truth| >= ``MIN_LENGTH`` of |pred| / |truth|: 1 when
    the predicted blur is as long as the true one, whatever its direction (EPE mixes length and angle, and
    a model that learned its training set's displacement range is off in length). NaN without such pixels.

    ``pred``, ``truth``: B×2×H×W pixels; ``valid``: B×H×W (nonzero = scored) or None. float64, B values.
    """
    pred_len, true_len, keep = _lengths(pred, truth, valid)
    return _median(pred_len / true_len.clamp(min=MIN_LENGTH), keep)


def median_lengths(
    pred: torch.Tensor, truth: torch.Tensor, valid: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, the median |truth| and the median |pred| over the pixels :func:`length_ratio` scores (NaN
    without any): what :func:`length_slope` compares across images. Shapes as length_ratio's."""
    pred_len, true_len, keep = _lengths(pred, truth, valid)
    return _median(true_len, keep), _median(pred_len, keep)


def length_slope(true_lengths: Sequence[float | None], pred_lengths: Sequence[float | None]) -> float | None:
    """The least-squares slope of the images' predicted length on their true length (:func:`median_lengths`),
    over the images that have both: 1 for a model whose reading grows with the blur, 0 for one that gives the
    same length whatever the blur (its training prior), which a length ratio near 1 can hide. None with fewer
    than two such images or no spread in their true lengths."""
    pairs = np.array(
        [(t, p) for t, p in zip(true_lengths, pred_lengths, strict=True) if t is not None and p is not None], float
    ).reshape(-1, 2)
    pairs = pairs[np.isfinite(pairs).all(axis=1)]
    if len(pairs) < 2 or np.ptp(pairs[:, 0]) == 0:
        return None
    return float(np.polyfit(pairs[:, 0], pairs[:, 1], 1)[0])
