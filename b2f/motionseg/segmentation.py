"""Moving-object masks from a flow field: what does not follow the camera's motion.

A blur has no arrow of time, so a flow estimated from one may point either way; the mask must not
depend on that. The flow is first turned to a canonical sign (a statistic that flips with the flow
decides), so ``flow`` and ``-flow`` give bit-identical masks by construction.
"""

from dataclasses import dataclass

import numpy as np

from blurgen.core.errors import BlurgenError

from .fit import fit_dominant_motion, model_flow
from .mask import clean_mask, residual_threshold


@dataclass(frozen=True)
class SegmentOptions:
    """``model``: the camera motion, homography or affine; ``min_residual``: the least residual flow (px)
    that counts as moving; ``k``: the threshold in background noise σ; ``radius``/``min_area``: cleaning
    (None: scaled to the frame, see :func:`clean_mask`)."""

    model: str = "homography"
    min_residual: float = 1.0
    k: float = 3.5
    radius: int | None = None
    min_area: int | None = None


DEFAULTS = SegmentOptions()


@dataclass
class Segmentation:
    """The mask (bool H×W) and how it came about: camera matrix, residual flow magnitude, thresholds."""

    mask: np.ndarray
    residual: np.ndarray
    camera: np.ndarray
    threshold: float
    ransac_threshold: float


def canonical_sign(flow: np.ndarray) -> np.ndarray:
    """``flow`` or ``-flow``, the same array for both: the sign that makes the first nonzero of (sum u,
    sum v, the flow's values in order) positive. IEEE sums of negated values are the negated sums, so
    this is exact."""
    for value in (flow[..., 0].sum(dtype=np.float64), flow[..., 1].sum(dtype=np.float64)):
        if value != 0:
            return flow if value > 0 else -flow
    nonzero = np.flatnonzero(flow)
    return flow if not nonzero.size or flow.flat[nonzero[0]] > 0 else -flow


def check_flow(flow: np.ndarray, name: str = "flow") -> np.ndarray:
    """``flow`` as a float32 H×W×2 array of finite values, or a one-line error naming ``name``."""
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise BlurgenError(f"{name}: expected an H×W×2 flow, got shape {flow.shape}")
    bad = int((~np.isfinite(flow).all(axis=2)).sum())
    if bad:
        raise BlurgenError(f"{name}: {bad} flow vectors are NaN or infinite; segmentation needs a dense flow")
    return np.ascontiguousarray(flow, np.float32)


def segment(flow: np.ndarray, options: SegmentOptions = DEFAULTS) -> Segmentation:
    """Pixels of an H×W×2 flow that move otherwise than the dominant (camera) motion."""
    flow = canonical_sign(check_flow(flow))
    camera, ransac_threshold = fit_dominant_motion(flow, options.model, min_threshold=options.min_residual / 2)
    residual = np.linalg.norm(flow - model_flow(camera, flow.shape[:2]), axis=-1)
    threshold = residual_threshold(residual, options.min_residual, options.k)
    mask = clean_mask(residual > threshold, options.radius, options.min_area)
    return Segmentation(mask, residual.astype(np.float32), camera, threshold, ransac_threshold)
