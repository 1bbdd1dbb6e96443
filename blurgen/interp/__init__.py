"""Frame interpolation between two sharp frames at n evenly spaced times: from ground-truth flow
(``flow``, offline, exact motion) or with the paper's Super SloMo network (``superslomo``, needs weights)."""

from functools import lru_cache

import numpy as np

from ..core.device import resolve_device

METHODS = ("flow", "superslomo")
# Pixels × times per batch: bounds peak memory (about 0.1 GB per million for ``flow``; the U-Net's
# activations need far more) while keeping batches large enough to amortise per-call overhead.
_BATCH_PIXELS = {"flow": 4_000_000, "superslomo": 600_000}


def times(n: int) -> np.ndarray:
    """The n interior times k/(n+1), k = 1..n, between frame 0 (t=0) and frame 1 (t=1)."""
    return np.arange(1, n + 1, dtype=np.float64) / (n + 1)


@lru_cache(maxsize=2)
def _superslomo(ckpt, device):
    # One load per process and checkpoint: every pair a worker renders reuses it.
    from .superslomo import load_superslomo

    return load_superslomo(ckpt, device)


def check_method(method: str, ckpt: str | None = None, device: str = "auto") -> None:
    """Fail early, in the caller's process, on a method that cannot run (e.g. a bad checkpoint)."""
    if method == "superslomo":
        _superslomo(str(ckpt), resolve_device(device))


def interpolate(
    method: str,
    img0: np.ndarray,
    img1: np.ndarray,
    n: int,
    flow01: np.ndarray | None = None,
    flow10: np.ndarray | None = None,
    ckpt: str | None = None,
    device: str = "auto",
) -> np.ndarray:
    """The n+2 frames of an exposure as uint8 (n+2)×H×W×3: ``img0``, n frames interpolated between
    it and ``img1`` (rounded half up, as if saved), and ``img1`` (both uint8 H×W×3).

    ``flow`` needs ``flow01`` (into the future of frame 0) and ``flow10`` (into the past of frame 1),
    float H×W×2; ``superslomo`` needs ``ckpt``.
    """
    import torch

    dev = resolve_device(device)

    def tensor(a):
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).permute(2, 0, 1)[None].to(dev)

    h, w = img0.shape[:2]
    with torch.inference_mode():
        if method == "flow":
            from .flow_interp import FlowInterpolator

            frames_at = FlowInterpolator(tensor(img0), tensor(img1), tensor(flow01), tensor(flow10))
        elif method == "superslomo":
            frames_at = _superslomo(str(ckpt), dev).interpolator(tensor(img0), tensor(img1))
        else:
            raise ValueError(f"unknown interpolation method {method!r}; use one of {METHODS}")
        ts = torch.from_numpy(times(n)).float()
        step = max(1, _BATCH_PIXELS[method] // (h * w))
        out = np.empty((n + 2, h, w, 3), np.uint8)
        out[0], out[-1] = img0, img1
        for i in range(0, n, step):
            j = min(i + step, n)
            batch = frames_at(ts[i:j].to(dev))
            out[1 + i : 1 + j] = (batch + 0.5).clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return out
