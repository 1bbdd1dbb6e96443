"""The scene model: layered scenes with closed-form motion, rendered frames and exact flow.

A scene is a back-to-front stack of textured layers. Layer k maps texture coordinates to image
coordinates at time t by an affine matrix M_k(t), so every flow is closed-form: a pixel p of the
frame at t0 on layer k lies at M_k(t1) M_k(t0)^-1 p at t1. Each pixel's flow is that of the layer
visible there (:func:`visibility`: the front-most layer with alpha > 0.5), so occlusion is exact.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from ...blur import average_frames
from ...core.flow import inside, max_flow
from ..monkaa import n_interp


@dataclass
class Motion:
    """A similarity motion about ``center``: each parameter moves as ``p1*t + p2*t**2``.

    ``shift`` (px, x then y), ``angle`` (radians), ``log_zoom``; each a pair (p1, p2).
    """

    center: tuple = (0.0, 0.0)
    shift: tuple = ((0.0, 0.0), (0.0, 0.0))
    angle: tuple = (0.0, 0.0)
    log_zoom: tuple = (0.0, 0.0)

    def matrix(self, t: float) -> np.ndarray:
        """3×3 image-to-image transform from time 0 to time ``t``."""
        (sx1, sy1), (sx2, sy2) = self.shift
        a = self.angle[0] * t + self.angle[1] * t * t
        z = np.exp(self.log_zoom[0] * t + self.log_zoom[1] * t * t)
        cx, cy = self.center
        c, s = z * np.cos(a), z * np.sin(a)
        tx, ty = sx1 * t + sx2 * t * t, sy1 * t + sy2 * t * t
        return np.array(
            [[c, -s, cx + tx - c * cx + s * cy], [s, c, cy + ty - s * cx - c * cy], [0, 0, 1]], dtype=np.float64
        )

    def scaled(self, k: float) -> "Motion":
        """Every parameter times ``k`` (displacements scale about linearly with it)."""
        return Motion(
            self.center,
            tuple(tuple(k * v for v in p) for p in self.shift),
            tuple(k * v for v in self.angle),
            tuple(k * v for v in self.log_zoom),
        )


@dataclass
class Layer:
    """A texture placed by ``place`` (texture -> image at t=0, 3×3) and moved by ``motion``."""

    texture: np.ndarray
    place: np.ndarray
    motion: Motion = field(default_factory=Motion)
    alpha: np.ndarray = None  # float32 in [0, 1] over the texture; None: opaque background

    def __post_init__(self):
        # Colour and alpha warped in one call: half the resampling work of two.
        if self.alpha is not None:
            self.rgba = np.dstack([self.texture.astype(np.float32), self.alpha.astype(np.float32)])

    def matrix(self, t: float) -> np.ndarray:
        return self.motion.matrix(t) @ self.place


@dataclass
class Scene:
    size: tuple  # (H, W)
    layers: list  # back to front; layers[0] is the opaque background, the others moving patches


def _patch_box(layer, t, size):
    """The patch's 2×3 warp into its bounding box at ``t`` and the box (x0, y0, x1, y1), or None if off-frame.

    Patches cover a fraction of the frame: warping only their box saves most of the resampling.
    """
    h, w = size
    m = layer.matrix(t)[:2]
    th, tw = layer.alpha.shape
    corners = m @ np.array([[0, tw, 0, tw], [0, 0, th, th], [1, 1, 1, 1]], np.float64)
    x0, y0 = np.maximum(np.floor(corners.min(axis=1)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(axis=1)).astype(int) + 2, (w, h))
    if x1 <= x0 or y1 <= y0:
        return None
    return m - np.array([[0, 0, x0], [0, 0, y0]]), (x0, y0, x1, y1)


def render_frame(scene: Scene, t: float) -> np.ndarray:
    """Float32 RGB frame at time ``t``: the layers alpha-blended back to front."""
    h, w = scene.size
    frame = np.zeros((h, w, 3), np.float32)
    for layer in scene.layers:
        if layer.alpha is None:
            m = layer.matrix(t)[:2]
            frame[:] = cv2.warpAffine(
                layer.texture, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
            )
            continue
        box = _patch_box(layer, t, scene.size)
        if box is None:
            continue
        m, (x0, y0, x1, y1) = box
        rgba = cv2.warpAffine(layer.rgba, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderValue=0)
        a = rgba[..., 3:]
        view = frame[y0:y1, x0:x1]
        view += a * (rgba[..., :3] - view)
    return frame


def visibility(scene: Scene, t: float) -> np.ndarray:
    """int8 H×W: the index of the front-most layer whose alpha exceeds 0.5 at each pixel at time ``t``
    (0: the background). The flow and the ``moving`` mask both take the visible layer from here."""
    visible = np.zeros(scene.size, np.int8)
    for k, layer in enumerate(scene.layers[1:], 1):
        box = _patch_box(layer, t, scene.size)
        if box is None:
            continue
        m, (x0, y0, x1, y1) = box
        a = cv2.warpAffine(layer.alpha.astype(np.float32), m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR)
        visible[y0:y1, x0:x1][a > 0.5] = k
    return visible


def scene_flow(scene: Scene, visible: np.ndarray, t0: float, t1: float) -> np.ndarray:
    """Float32 H×W×2 flow from ``t0`` to ``t1`` at each pixel of the t0 grid: that of the layer
    ``visible`` names there (closed form from its affine map)."""
    flow = np.zeros(scene.size + (2,), np.float32)
    for k in np.unique(visible):
        layer = scene.layers[int(k)]
        a = layer.matrix(t1) @ np.linalg.inv(layer.matrix(t0)) - np.eye(3)
        ys, xs = np.nonzero(visible == k)
        flow[ys, xs, 0] = a[0, 0] * xs + a[0, 1] * ys + a[0, 2]
        flow[ys, xs, 1] = a[1, 0] * xs + a[1, 1] * ys + a[1, 2]
    return flow


def exposure_flows(scene: Scene, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(flow_fwd, flow_bwd, visible at t0)`` of the exposure [t0, t1], exact and occlusion-correct."""
    vis0 = visibility(scene, t0)
    return scene_flow(scene, vis0, t0, t1), scene_flow(scene, visibility(scene, t1), t1, t0), vis0


def moving_mask(visible: np.ndarray) -> np.ndarray:
    """The ``moving`` shard field: uint8 H×W, 1 where ``visible`` (of the first frame) shows a patch
    (any layer above the background), 0 on the background; exact, the flow's own visibility.

    "Moving" is by construction: a patch whose motion happens to equal the background's is still 1,
    though no flow-based method could tell it apart.
    """
    return (visible > 0).astype(np.uint8)


def largest_displacement(flow_fwd: np.ndarray, flow_bwd: np.ndarray) -> float:
    """The sample's ``s``: the largest |flow| of the stored ground truth, over flow_fwd and flow_bwd and
    every pixel (also those whose motion leaves the frame: they are blurred just as long)."""
    return max(max_flow(flow_fwd), max_flow(flow_bwd))


def render_exposure(
    scene: Scene, gamma: float | None = None, t0: float = 0.0, t1: float = 1.0, frames: Callable | None = None
) -> tuple:
    """Blur the exposure [t0, t1] like the Monkaa rule: the two ends plus n = max(ceil(s), 5) frames
    between them, with s = :func:`largest_displacement` of the exact flows the sample stores.
    ``frames(n)``, if given, returns the number of frames between the ends to use instead of n (fewer
    frames: a blur of separate copies, as a high-speed camera's few frames give).

    Returns ``(sample, s, n)``: the sample dict (blurred, flow_fwd, flow_bwd, valid, the sharp end
    frames, and ``moving``: see :func:`moving_mask`).
    """
    flow_fwd, flow_bwd, vis0 = exposure_flows(scene, t0, t1)
    s = largest_displacement(flow_fwd, flow_bwd)
    n = n_interp(s) if frames is None else frames(n_interp(s))
    frames = np.stack([render_frame(scene, t) for t in np.linspace(t0, t1, n + 2)])
    sample = {
        "blurred": average_frames(frames, gamma),
        "flow_fwd": flow_fwd,
        "flow_bwd": flow_bwd,
        "valid": inside(flow_fwd).astype(np.uint8),
        "first": to_uint8(frames[0]),
        "last": to_uint8(frames[-1]),
        "moving": moving_mask(vis0),
    }
    return sample, s, n


def to_uint8(frame: np.ndarray) -> np.ndarray:
    """A rendered float frame as stored: rounded and clipped to uint8."""
    return np.clip(frame + 0.5, 0, 255).astype(np.uint8)
