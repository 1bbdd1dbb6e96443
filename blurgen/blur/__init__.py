"""Blur synthesis: averaging sharp frames into one exposure."""

from .average import average_frames

__all__ = ["average_frames"]
