"""Model files: Lightning checkpoints of a run, or the small exported ``model.pt``; both hold the model
config, so the model is rebuilt without flags. Loading uses ``torch.load(weights_only=True)``: a
checkpoint cannot run code."""

import os
from pathlib import Path

import torch

from blurgen.core.errors import BlurgenError, first_line
from blurgen.core.files import atomic_path

from .model import build_model

FORMAT, VERSION = "b2f-model", 1


def read_weights(path: str | os.PathLike) -> tuple[dict, dict]:
    """``(model_config dict, state_dict)`` from a Lightning checkpoint or an exported model file."""
    path = Path(path)
    if not path.is_file():
        raise BlurgenError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and torch errors alike mean "not a checkpoint we can read"
        raise BlurgenError(
            f"{path}: not a readable checkpoint ({first_line(e, 100)}); pass a .ckpt from b2f-train or its model.pt"
        ) from None
    if isinstance(ckpt, dict) and ckpt.get("format") == FORMAT:
        if ckpt.get("version") != VERSION:
            raise BlurgenError(
                f"{path}: model file version {ckpt.get('version')}, this b2f reads {VERSION}; upgrade b2f"
            )
        config, state_dict = ckpt["model_config"], ckpt["state_dict"]
    else:
        config = ckpt.get("hyper_parameters", {}).get("model_config") if isinstance(ckpt, dict) else None
        if config is None or "state_dict" not in ckpt:
            raise BlurgenError(
                f"{path}: checkpoint has no b2f model config; pass a .ckpt from b2f-train or its model.pt"
            )
        prefix = "model."
        state_dict = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    bad = nonfinite_weights(state_dict)
    if bad:
        raise BlurgenError(f"{path}: {bad} (a diverged run); use an earlier checkpoint or retrain")
    return dict(config), state_dict


def nonfinite_weights(state_dict: dict) -> str | None:
    """'weights NAME (and N more) hold NaN or inf' for training's and loading's one-line errors, or None.
    The loss does not tell: weights that the training crops never reach (taps over a coarse level's
    padding) can be NaN while it stays finite."""
    names = [k for k, v in state_dict.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if not names:
        return None
    more = f" (and {len(names) - 1} more)" if len(names) > 1 else ""
    return f"weights {names[0]}{more} hold NaN or inf"


def load_into(model: torch.nn.Module, state_dict: dict, path: str | os.PathLike) -> None:
    """Copy weights into ``model``; a file made for another architecture is a one-line error."""
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as e:
        raise BlurgenError(
            f"{path}: weights do not fit this model ({first_line(e)}); check --arch/--no-stn/--no-rb"
        ) from None


def load_model(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict]:
    """The model stored in ``path``, in eval mode on ``device``, and its config."""
    config, state_dict = read_weights(path)
    try:
        model = build_model(config)
    except (TypeError, ValueError) as e:
        raise BlurgenError(f"{path}: stored model config is not one this b2f can build ({first_line(e)})") from None
    load_into(model, state_dict, path)
    return model.eval().to(device), config


def save_model(path: str | os.PathLike, model: torch.nn.Module, config: dict) -> None:
    """Write the exported model file (config + weights only) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(
            {
                "format": FORMAT,
                "version": VERSION,
                "model_config": dict(config),
                "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            },
            tmp,
        )
