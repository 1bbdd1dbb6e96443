"""B2F-net (AAAI 2021) and its ablations; see DESIGN.md "Model" and the module docstrings."""

from .b2fnet import B2FNet, build_model
from .config import ModelConfig

__all__ = ["ModelConfig", "B2FNet", "build_model"]
