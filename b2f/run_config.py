"""What a training run is: the paper's schedules and every option that shapes the trained weights.

Kept free of torch and Lightning so the CLI's help and checks start fast.
"""

import json
from pathlib import Path

from blurgen.core.errors import BlurgenError

# the paper's two schedules: (epochs, epochs at which the learning rate halves), both from 1e-4
SCHEDULES = {"scratch": (300, (100, 150, 200, 250)), "finetune": (120, (60, 80, 100))}
LR = 1e-4
WEIGHT_DECAY = 4e-4  # the paper's (Adam's L2 term)
PRECISIONS = ("32-true", "16-mixed", "bf16-mixed")
DIRECTIONS = ("fwd", "min")  # the loss's target, see B2FModule
# multistep: the paper's (lr halved at the milestone epochs); onecycle: RAFT's (per step, a linear warm-up over
# the first 5% to lr, then a linear decay to lr/250,000 at the last step; milestones unused)
LR_POLICIES = ("multistep", "onecycle")
# options a resumed run may change: they do not alter what is computed (compile: up to float rounding)
FREE_ON_RESUME = ("epochs", "compile")
# recorded by train() once the trainer knows them, and checked there (a change needs --new-world-size)
RECORDED = ("world_size", "global_batch")


def run_config(
    shards: str | Path,
    model_config: dict,
    *,
    split: str = "train",
    val: str | Path | None = None,
    val_split: str = "test",
    schedule: str = "scratch",
    epochs: int | None = None,
    lr: float | None = None,
    milestones: list[int] | tuple[int, ...] | None = None,
    lr_policy: str = "multistep",
    batch_size: int = 4,
    crop: tuple[int, int] = (256, 256),
    random_crop: bool = False,
    flip: bool = False,
    scale: tuple[float, float] | None = None,
    photometric: bool = False,
    init: str | Path | None = None,
    seed: int = 0,
    precision: str = "32-true",
    limit_batches: int | None = None,
    direction: str = "fwd",
    compile: bool = False,
    ema: float | None = None,
    weight_decay: float = WEIGHT_DECAY,
    bias_decay: bool = True,
) -> dict:
    """Everything that decides the trained weights, with the schedule preset filled in, as JSON-able dict.

    ``weight_decay``: Adam's L2 term (the paper's 4e-4); ``bias_decay=False`` leaves the biases out of it, as
    PWC-Net's Caffe training did (``decay_mult: 0`` on each bias): decayed, the STNs' identity bias shrinks
    towards a transform of zero scale, where every output pixel samples the map's centre.
    """
    if schedule not in SCHEDULES:
        raise BlurgenError(f"unknown schedule '{schedule}'; use one of {', '.join(SCHEDULES)}")
    if direction not in DIRECTIONS:
        raise BlurgenError(f"unknown loss direction '{direction}'; use one of {', '.join(DIRECTIONS)}")
    if lr_policy not in LR_POLICIES:
        raise BlurgenError(f"unknown lr policy '{lr_policy}'; use one of {', '.join(LR_POLICIES)}")
    if (epochs is not None and epochs < 1) or batch_size < 1 or (lr is not None and lr <= 0):
        raise BlurgenError(f"epochs {epochs}, batch size {batch_size}, lr {lr}: each must be positive")
    if weight_decay < 0:
        raise BlurgenError(f"--weight-decay {weight_decay}: must be zero or positive")
    if ema is not None and not 0 < ema < 1:
        raise BlurgenError(f"--ema {ema}: the average's decay must lie strictly between 0 and 1 (e.g. 0.999)")
    if scale is not None and not 0 < scale[0] <= scale[1]:
        raise BlurgenError(f"--scale {scale[0]},{scale[1]}: needs 0 < low <= high")
    if crop[0] % 64 or crop[1] % 64:
        raise BlurgenError(f"--crop {crop[0]}x{crop[1]}: B2F-net needs multiples of 64 (6 stride-2 levels)")
    preset_epochs, preset_milestones = SCHEDULES[schedule]
    config = {
        "shards": _absolute(shards),
        "split": split,
        "val": _absolute(val),
        "val_split": val_split,
        "schedule": schedule,
        "epochs": epochs or preset_epochs,
        "lr": lr or LR,
        "milestones": [] if lr_policy == "onecycle" else list(preset_milestones if milestones is None else milestones),
        "lr_policy": lr_policy,
        "batch_size": batch_size,
        "crop": list(crop),
        "random_crop": random_crop,
        "flip": flip,
        "scale": None if scale is None else list(scale),
        "photometric": photometric,
        "init": _absolute(init),
        "seed": seed,
        "precision": precision,
        "direction": direction,
        "limit_batches": limit_batches,
        "compile": compile,
        "ema": ema,
        "weight_decay": weight_decay,
        "bias_decay": bias_decay,
        "model": dict(model_config),
    }
    return json.loads(json.dumps(config))  # as it will read back from config.json (tuples become lists)


def _absolute(path):
    return None if path is None else str(Path(path).resolve())


def _differences(stored, given, prefix=""):
    """``key=stored, not given`` for each differing leaf (``model.stn``, not the whole model dict)."""
    for k in sorted(set(stored) | set(given)):
        a, b = stored.get(k), given.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            yield from _differences(a, b, f"{prefix}{k}.")
        elif a != b:
            yield f"{prefix}{k}={a!r}, not {b!r}"


def check_resume(out: Path, config: dict) -> dict:
    """The stored config of RUN, after checking the new one only differs where that is harmless."""
    path = Path(out) / "config.json"
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise BlurgenError(f"{path}: cannot read the run's config ({e}); start a new --out") from None
    # runs recorded before these options existed trained without them
    later = {
        "compile": False,
        "scale": None,
        "photometric": False,
        "lr_policy": "multistep",
        "ema": None,
        "weight_decay": WEIGHT_DECAY,
        "bias_decay": True,
    }
    stored, config = {**later, **stored}, {**later, **config}
    if stored["lr_policy"] == "onecycle" and stored["epochs"] != config["epochs"]:
        raise BlurgenError(
            f"{out}: --epochs {config['epochs']}, not {stored['epochs']}: a onecycle run's schedule spans its "
            "epochs; resume with the same --epochs or start a new --out"
        )
    changed = [k for k in stored if k not in FREE_ON_RESUME + RECORDED and stored[k] != config.get(k)]
    if changed:
        differences = list(_differences({k: stored[k] for k in changed}, {k: config.get(k) for k in changed}))
        raise BlurgenError(
            f"{out}: run was started with {'; '.join(differences)}; resume with the same options or start a new --out"
        )
    return {**stored, **{k: config[k] for k in FREE_ON_RESUME}}
