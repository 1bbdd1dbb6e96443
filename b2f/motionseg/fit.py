"""The dominant (camera) motion of a flow field, fitted robustly with OpenCV's estimators.

A flow gives one correspondence per pixel, ``p -> p + flow(p)``; a sample of them on a regular grid goes
to ``cv2.findHomography`` or ``cv2.estimateAffine2D``. The RANSAC inlier threshold adapts to the flow's
noise: a least-median-of-squares fit first measures the background's spread (it needs no threshold and
tolerates up to half the samples moving otherwise), then RANSAC runs with a threshold a few times that.
"""

import cv2
import numpy as np

from blurgen.core.errors import BlurgenError

MODELS = ("homography", "affine")
MAX_SAMPLES = 4096  # correspondences per fit: plenty for 8 parameters, and a fit stays a few milliseconds
RAYLEIGH_MEDIAN = float(np.sqrt(2 * np.log(2)))  # median of |e| for 2-D Gaussian e of unit σ per axis


def sample_correspondences(flow: np.ndarray, max_samples: int = MAX_SAMPLES) -> tuple[np.ndarray, np.ndarray]:
    """``(src, dst)`` float32 N×2: pixel centres on a regular grid and where the flow takes them."""
    h, w = flow.shape[:2]
    step = max(1, int(np.ceil(np.sqrt(h * w / max_samples))))
    ys, xs = np.mgrid[step // 2 : h : step, step // 2 : w : step]
    src = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
    dst = src + flow[ys.ravel(), xs.ravel()]
    return src, dst.astype(np.float32)


def _estimate(src: np.ndarray, dst: np.ndarray, model: str, method: int, threshold: float) -> np.ndarray | None:
    if model == "homography":
        matrix, _ = cv2.findHomography(src, dst, method, threshold, maxIters=2000, confidence=0.999)
        return matrix
    matrix, _ = cv2.estimateAffine2D(
        src, dst, method=method, ransacReprojThreshold=threshold, maxIters=2000, confidence=0.999
    )
    return None if matrix is None else np.vstack([matrix, [0.0, 0.0, 1.0]])


def transfer_error(matrix: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """|matrix(src) - dst| per point (px): how far each correspondence is from the model."""
    projected = cv2.perspectiveTransform(src[:, None].astype(np.float64), matrix)[:, 0]
    return np.linalg.norm(projected - dst, axis=1)


def fit_dominant_motion(
    flow: np.ndarray, model: str = "homography", min_threshold: float = 0.5, max_samples: int = MAX_SAMPLES
) -> tuple[np.ndarray, float]:
    """``(3×3 matrix, RANSAC threshold px)`` of the motion most of the frame follows.

    ``min_threshold``: the smallest RANSAC inlier distance (px), the floor for exact or near-exact flows.
    """
    if model not in MODELS:
        raise BlurgenError(f"unknown motion model '{model}'; use one of {', '.join(MODELS)}")
    src, dst = sample_correspondences(flow, max_samples)
    if len(src) < 8:
        raise BlurgenError(f"a {flow.shape[1]}x{flow.shape[0]} flow is too small to fit a camera motion to")
    rough = _estimate(src, dst, model, cv2.LMEDS, min_threshold)
    spread = 0.0 if rough is None else float(np.median(transfer_error(rough, src, dst))) / RAYLEIGH_MEDIAN
    threshold = max(min_threshold, 3.0 * spread)
    matrix = _estimate(src, dst, model, cv2.RANSAC, threshold)
    if matrix is None:  # degenerate samples (e.g. collinear): no model explains the frame
        raise BlurgenError(f"no {model} fits the flow's dominant motion (degenerate flow field)")
    return matrix, threshold


def model_flow(matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The flow H×W×2 that ``matrix`` (3×3, pixel coordinates) induces on a frame of ``size`` (H, W)."""
    h, w = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    points = np.stack([xs, ys], axis=-1).reshape(-1, 1, 2)
    moved = cv2.perspectiveTransform(points, matrix).reshape(h, w, 2)
    return (moved - np.stack([xs, ys], axis=-1)).astype(np.float32)
