"""Operations on flow fields, one copy each: backward warping, the inside-the-frame test, EPE, the
largest displacement and the forward-backward check.

Flows are in pixels, ``u`` right and ``v`` down: numpy arrays H×W×2 or torch tensors B×2×H×W.
"""

import numpy as np
import torch
import torch.nn.functional as F


def _grid(flow, width, height):
    """Pixel x and y coordinates broadcastable against ``flow``'s u and v (numpy or torch)."""
    if isinstance(flow, torch.Tensor):
        return (
            torch.arange(width, device=flow.device, dtype=flow.dtype).view(1, -1),
            torch.arange(height, device=flow.device, dtype=flow.dtype).view(-1, 1),
        )
    return np.arange(width, dtype=np.float32)[None, :], np.arange(height, dtype=np.float32)[:, None]


def _components(flow):
    """(u, v, H, W) of an H×W×2 array or a …×2×H×W tensor."""
    if isinstance(flow, torch.Tensor):
        return flow[..., 0, :, :], flow[..., 1, :, :], flow.shape[-2], flow.shape[-1]
    return flow[..., 0], flow[..., 1], flow.shape[0], flow.shape[1]


def warp(src: torch.Tensor, flow: torch.Tensor, padding_mode: str = "zeros") -> torch.Tensor:
    """Sample ``src`` (B or 1 × C × H × W) at ``p + flow(p)`` for every pixel p, bilinearly.

    ``flow``: B×2×H×W in pixels of ``src``'s grid. Pixel centres sit at integer coordinates
    (align_corners=False), so a 1-pixel-wide map is well defined. ``padding_mode``: "zeros" (outside is 0)
    or "border" (the edge pixel repeats). The grid is built in float32 whatever the input's dtype: a
    bf16 coordinate cannot tell neighbouring columns apart past 256 pixels.
    """
    u, v, height, width = _components(flow.float())
    xs, ys = _grid(u, width, height)
    gx = (2 * (xs + u) + 1) / width - 1
    gy = (2 * (ys + v) + 1) / height - 1
    grid = torch.stack((gx, gy), -1)
    src32 = src.float().expand(flow.shape[0], -1, -1, -1)
    with torch.autocast(src.device.type, enabled=False):
        out = F.grid_sample(src32, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)
    return out.to(src.dtype) if src.dtype.is_floating_point else out


def inside(flow: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Where ``p + flow(p)`` lands inside the frame (between the outer pixels' centres): a bool array
    H×W for an H×W×2 array, a bool tensor B×H×W for a B×2×H×W tensor."""
    u, v, height, width = _components(flow)
    xs, ys = _grid(flow, width, height)
    x1, y1 = xs + u, ys + v
    return (x1 >= 0) & (x1 <= width - 1) & (y1 >= 0) & (y1 <= height - 1)


def magnitude(flow: np.ndarray) -> np.ndarray:
    """|flow| per pixel of an H×W×2 array (px)."""
    return np.linalg.norm(flow, axis=-1)


def max_flow(flow: np.ndarray, valid: np.ndarray | None = None) -> float:
    """The largest |flow| (px) over the pixels where ``valid`` is nonzero (all if None); 0 if none."""
    mag = magnitude(flow)
    mag = mag if valid is None else mag[valid > 0]
    return float(mag.max()) if mag.size else 0.0


def epe(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean end-point error (px) of H×W×2 flows over ``mask`` (all pixels if None); NaN if it is empty."""
    err = magnitude(np.asarray(pred, np.float64) - target)
    err = err if mask is None else err[mask]
    return float(err.mean()) if err.size else float("nan")


def fb_valid(flow_fwd: np.ndarray, flow_bwd: np.ndarray, threshold: float = 1.0) -> np.ndarray:
    """uint8 H×W, 1 where p + flow_fwd(p) lands inside the frame and flow_bwd there (bilinear, edge
    repeated) leads back to within ``threshold`` px of p: occluded and mismatched pixels get 0.

    Not ptlflow's ``fb_check``: its strict bounds reject the image's outermost pixel ring even at zero flow.
    """
    fwd = torch.from_numpy(np.ascontiguousarray(flow_fwd, np.float32)).permute(2, 0, 1)[None]
    bwd = torch.from_numpy(np.ascontiguousarray(flow_bwd, np.float32)).permute(2, 0, 1)[None]
    back = warp(bwd, fwd, padding_mode="border")
    ok = (torch.linalg.vector_norm(fwd + back, dim=1) < threshold) & inside(fwd)
    return ok[0].numpy().astype(np.uint8)
