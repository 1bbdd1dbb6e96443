"""Moving-object masks from a flow field: fit the camera's motion robustly, keep what does not follow it."""

from .segmentation import Segmentation, SegmentOptions, segment

__all__ = ["SegmentOptions", "Segmentation", "segment"]
