"""Pictures of masks: the overlay b2f-segment writes and the rows of the evaluation figure."""

import cv2
import numpy as np

from blurgen.core.viz import flow_to_color, label_image

TINT = np.array([255, 40, 40], np.float32)  # red: moving


def mask_image(mask: np.ndarray) -> np.ndarray:
    """uint8 H×W: 255 where ``mask``, else 0."""
    return np.where(mask, 255, 0).astype(np.uint8)


def overlay(rgb: np.ndarray, mask: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """``rgb`` with the masked pixels tinted red and the mask's outline drawn."""
    out = rgb.astype(np.float32)
    out[mask] = (1 - alpha) * out[mask] + alpha * TINT
    out = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    contours, _ = cv2.findContours(mask_image(mask), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, tuple(int(v) for v in TINT), 1)
    return out


def figure_row(panels: list[tuple[str, np.ndarray]], height: int = 160) -> np.ndarray:
    """Labelled panels side by side, each resized to ``height``: images (H×W×3), flows (H×W×2, colour-coded
    on one scale per row) or masks (H×W bool)."""
    flows = [p for _, p in panels if p.ndim == 3 and p.shape[2] == 2]
    radius = max([float(np.linalg.norm(f, axis=2).max()) for f in flows] + [1e-6])
    tiles = []
    for name, p in panels:
        if p.ndim == 2:
            p = np.dstack([mask_image(p)] * 3)
        elif p.shape[2] == 2:
            p = flow_to_color(p, radius)
        h, w = p.shape[:2]
        tile = cv2.resize(p, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_NEAREST)
        tiles.append(label_image(tile, name))
    return np.concatenate([np.pad(t, ((0, 2), (0, 2), (0, 0)), constant_values=255) for t in tiles], axis=1)
