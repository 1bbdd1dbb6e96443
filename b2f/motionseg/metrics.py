"""Mask scores: IoU and F-measure (F1) from pixel counts, so images can be scored alone or pooled."""

import numpy as np


def counts(pred: np.ndarray, truth: np.ndarray) -> dict[str, int]:
    """True positives, false positives and false negatives of a predicted mask against the truth."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    return {
        "tp": int((pred & truth).sum()),
        "fp": int((pred & ~truth).sum()),
        "fn": int((~pred & truth).sum()),
    }


def iou(c: dict[str, int]) -> float:
    """|pred ∩ truth| / |pred ∪ truth|; 1 when both are empty (nothing to find, nothing found)."""
    union = c["tp"] + c["fp"] + c["fn"]
    return c["tp"] / union if union else 1.0


def f_measure(c: dict[str, int]) -> float:
    """F1 = 2·precision·recall / (precision + recall) = 2tp / (2tp + fp + fn); 1 when both are empty."""
    total = 2 * c["tp"] + c["fp"] + c["fn"]
    return 2 * c["tp"] / total if total else 1.0
