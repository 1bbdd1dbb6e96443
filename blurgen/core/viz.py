"""Pictures of flow: the Middlebury colour wheel (via ptlflow's flowpy) and contact sheets."""

import cv2
import numpy as np


def flow_to_color(flow: np.ndarray, max_radius: float | None = None) -> np.ndarray:
    """uint8 RGB colour coding of an H×W×2 flow; ``max_radius`` fixes the scale (default: the flow's max)."""
    from .quiet import quiet_import

    flowpy = quiet_import("ptlflow.utils.external.flowpy")
    return flowpy.flow_to_rgb(np.asarray(flow, np.float32), flow_max_radius=max_radius)


def label_image(img: np.ndarray, text: str) -> np.ndarray:
    """A copy of ``img`` with ``text`` in its top-left corner, white on a dark outline (readable on any picture)."""
    img = img.copy()
    cv2.putText(img, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def contact_sheet(samples: list[dict], tile: int = 256) -> np.ndarray:
    """One row per sample: blurred | flow_fwd | flow_bwd, each flow pair on one colour scale.

    ``samples`` are dicts with ``blurred``, ``flow_fwd``, ``flow_bwd`` (shard layout); rows are
    resized to ``tile`` pixels high so shards of different sizes fit on one sheet.
    """
    rows = []
    for i, s in enumerate(samples):
        radius = max(
            float(np.linalg.norm(s["flow_fwd"], axis=2).max()), float(np.linalg.norm(s["flow_bwd"], axis=2).max()), 1e-6
        )
        h, w = s["blurred"].shape[:2]
        size = (max(1, round(w * tile / h)), tile)
        panels = [
            label_image(cv2.resize(s["blurred"], size, interpolation=cv2.INTER_AREA), f"#{i} blurred"),
            label_image(
                cv2.resize(flow_to_color(s["flow_fwd"], radius), size, interpolation=cv2.INTER_NEAREST),
                f"flow_fwd (max {radius:.1f}px)",
            ),
            label_image(
                cv2.resize(flow_to_color(s["flow_bwd"], radius), size, interpolation=cv2.INTER_NEAREST), "flow_bwd"
            ),
        ]
        rows.append(np.concatenate(panels, axis=1))
    return stack_rows(rows)


def stack_rows(rows: list[np.ndarray], gap: int = 2) -> np.ndarray:
    """Picture rows of possibly different widths, left-aligned on white, ``gap`` white pixels below each."""
    width = max(r.shape[1] for r in rows)
    return np.concatenate([np.pad(r, ((0, gap), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
