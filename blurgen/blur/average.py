"""Averaging sharp frames into one blurred image, in sRGB values or in linear light."""

from collections.abc import Iterable

import cv2
import numpy as np

_MAX_U16_FRAMES = 257  # 257 * 255 = 65535: up to this many uint8 frames sum exactly in uint16
_LINEAR = {}  # gamma -> 256-entry table: a lookup is far cheaper than a power per pixel


def _to_linear(gamma):
    if gamma not in _LINEAR:
        _LINEAR[gamma] = ((np.arange(256, dtype=np.float64) / 255.0) ** gamma).astype(np.float32)
    return _LINEAR[gamma]


def _round_mean(total, n):
    """``floor(total/n + 1/2)`` as uint8 for uint16 sums of n <= 257 uint8 frames, in one SIMD pass:
    ``t/n + 1/(4n)`` rounded to nearest is it (non-ties lie >= 1/(2n) from a half, ties get nudged
    up, and float32 errs by < 1e-4; the tests check every sum for every n)."""
    return cv2.convertScaleAbs(total, alpha=1 / n, beta=1 / (4 * n)).reshape(total.shape)


def _mean_uint8(first, rest):
    """Round-half-up mean of uint8 frames, summed one at a time in place in uint16 (no N-frame stack,
    no uint32 temporaries)."""
    total, n = first.astype(np.uint16), 1
    for frame in rest:
        if n == _MAX_U16_FRAMES:
            total = total.astype(np.uint32)
        np.add(total, frame, out=total)
        n += 1
    if total.dtype == np.uint32:
        return ((2 * total + n) // (2 * n)).astype(np.uint8)  # floor(total/n + 1/2)
    return _round_mean(total, n)


def average_frames(frames: np.ndarray | Iterable[np.ndarray], gamma: float | None = None) -> np.ndarray:
    """Mean of N uint8 (or float, 0..255) RGB frames as uint8; ``frames``: an N×H×W×3 array or any
    iterable of H×W×3 frames (uint8 ones in sRGB mode are summed as they come, so a generator of
    decoded frames never holds more than one).

    sRGB mode (``gamma=None``) averages the stored values and rounds half up, exactly, in integers
    for uint8 input. ``gamma=2.2`` averages ``(v/255)**gamma`` and encodes the mean back, which is
    how a sensor integrates light.
    """
    rest = iter(frames)
    first = next(rest, None)
    if first is None:
        raise ValueError("average_frames: no frames")
    first = np.asarray(first)
    if gamma is None and first.dtype == np.uint8:
        return _mean_uint8(first, rest)
    frames = frames if isinstance(frames, np.ndarray) else np.stack([first, *rest])
    if gamma is None:
        return np.clip(frames.mean(axis=0) + 0.5, 0, 255).astype(np.uint8)
    if frames.dtype == np.uint8:
        linear = _to_linear(gamma)[frames].mean(axis=0)
    else:
        linear = ((np.clip(frames, 0, 255) / 255.0) ** gamma).mean(axis=0)
    return np.clip(255.0 * linear ** (1.0 / gamma) + 0.5, 0, 255).astype(np.uint8)
