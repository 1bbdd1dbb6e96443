"""Blur synthesis: averaging sharp frames into one exposure; the per-pixel line-kernel blur of a flow."""

from .average import average_frames
from .line import LineBlur, line_blur, line_entries

__all__ = ["LineBlur", "average_frames", "line_blur", "line_entries"]
