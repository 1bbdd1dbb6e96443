"""Averaging sharp frames into one blurred image, in sRGB values or in linear light."""

import numpy as np

_LINEAR = {}  # gamma -> 256-entry table: a lookup is far cheaper than a power per pixel


def _to_linear(gamma):
    if gamma not in _LINEAR:
        _LINEAR[gamma] = ((np.arange(256, dtype=np.float64) / 255.0) ** gamma).astype(np.float32)
    return _LINEAR[gamma]


def average_frames(frames, gamma=None):
    """Mean of N uint8 (or float, 0..255) RGB frames as uint8.

    sRGB mode (``gamma=None``) averages the stored values and rounds half up, exactly, in integers
    for uint8 input. ``gamma=2.2`` averages ``(v/255)**gamma`` and encodes the mean back, which is
    how a sensor integrates light.
    """
    frames = np.asarray(frames)
    n = frames.shape[0]
    if gamma is None:
        if frames.dtype == np.uint8:
            total = frames.sum(axis=0, dtype=np.uint32)
            return ((2 * total + n) // (2 * n)).astype(np.uint8)  # floor(total/n + 1/2)
        return np.clip(frames.mean(axis=0) + 0.5, 0, 255).astype(np.uint8)
    if frames.dtype == np.uint8:
        linear = _to_linear(gamma)[frames].mean(axis=0)
    else:
        linear = ((np.clip(frames, 0, 255) / 255.0) ** gamma).mean(axis=0)
    return np.clip(255.0 * linear ** (1.0 / gamma) + 0.5, 0, 255).astype(np.uint8)
