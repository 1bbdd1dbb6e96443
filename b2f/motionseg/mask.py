"""From residual flow to a clean binary mask: an adaptive threshold, morphology, small parts dropped."""

import cv2
import numpy as np

from .fit import RAYLEIGH_MEDIAN


def residual_threshold(residual: np.ndarray, min_residual: float = 1.0, k: float = 3.5) -> float:
    """The residual magnitude (px) above which a pixel moves on its own.

    The background's residual is the flow's noise: its magnitude is about Rayleigh-distributed, so the
    median over the frame (mostly background) gives its σ, and ``k`` σ leaves ~exp(-k²/2) of the
    background above (0.2 % for 3.5). ``min_residual`` is the floor for exact flows, whose σ is ~0.
    """
    sigma = float(np.median(residual)) / RAYLEIGH_MEDIAN
    return max(min_residual, k * sigma)


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _drop_small(mask: np.ndarray, min_area: int) -> np.ndarray:
    """``mask`` without the 8-connected components smaller than ``min_area`` pixels."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = np.zeros(count, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    return keep[labels]


def clean_mask(mask: np.ndarray, radius: int | None = None, min_area: int | None = None) -> np.ndarray:
    """Open then close with a disk, drop specks and fill holes smaller than ``min_area`` (bool H×W).

    Defaults scale with the frame: radius 1 px per 128 px of its shorter side (at least 1), ``min_area``
    0.2 % of its pixels (at least 16).
    """
    h, w = mask.shape
    radius = max(1, round(min(h, w) / 128)) if radius is None else radius
    min_area = max(16, round(0.002 * h * w)) if min_area is None else min_area
    m = mask.astype(np.uint8)
    if radius > 0:
        m = cv2.morphologyEx(m, cv2.MORPH_OPEN, _disk(radius))
        m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, _disk(radius))
    kept = _drop_small(m > 0, min_area)
    return ~_drop_small(~kept, min_area)  # holes: the small parts of the complement
