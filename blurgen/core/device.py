"""The one place that turns ``--device auto|cpu|cuda`` into a torch device."""

from typing import TYPE_CHECKING

from .errors import BlurgenError

if TYPE_CHECKING:  # torch is imported when a device is asked for, not when a CLI starts
    import torch

CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> "torch.device":
    """``auto`` picks CUDA when present; asking for CUDA without a GPU is a clear error, not a fallback."""
    import torch

    if name not in CHOICES and not str(name).startswith("cuda:"):
        raise BlurgenError(f"unknown device '{name}'; use one of {', '.join(CHOICES)}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(name).startswith("cuda") and not torch.cuda.is_available():
        raise BlurgenError("--device cuda: no CUDA device is visible to torch; use --device cpu or auto")
    return torch.device(name)
