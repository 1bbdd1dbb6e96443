"""b2f-train: a run folder with checkpoints, CSV and TensorBoard logs, and the final ``model.pt``.

RUN/config.json      every option that shapes the result (a resumed run must match it, except --epochs and
                     --compile), with the world size and global batch it ran on
RUN/checkpoints/     last.ckpt after every epoch (what --resume continues from), best.ckpt with --val; each
                     written under a temporary name in that folder and renamed, so a kill or a full disk
                     leaves the previous one whole
RUN/csv, RUN/tb      logs; a resumed run writes the next version_N
RUN/model.pt         config + weights, written when training ends

A run folder is always resumable or restartable: with a finished epoch (last.ckpt) --resume continues it
and a plain rerun is refused; without one (the run failed or was killed in its first epoch) a rerun starts
it again and --resume starts it from the first epoch.
"""

import contextlib
import json
import logging
import os
import sys
import warnings
from datetime import timedelta
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import (
    Callback,
    EMAWeightAveraging,
    LambdaCallback,
    LearningRateMonitor,
    ModelCheckpoint,
    Timer,
)
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO

from blurgen.core.device import resolve_device
from blurgen.core.errors import BlurgenError
from blurgen.core.files import atomic_path, atomic_write_text

from .checkpoint import load_into, nonfinite_weights, read_weights, save_model
from .data import EVAL_FIELDS, TRAIN_FIELDS, ShardDataModule, ShardDataset, loader_workers
from .lightning_module import B2FModule
from .run_config import check_resume, run_config


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints complete or absent: written (and fsynced) under a hidden temporary name in their own
    folder, then renamed over the old one. Lightning's own writer serialises to memory and then writes the
    target in place, so a kill or a full disk mid-write left a truncated last.ckpt that nothing could load."""

    def save_checkpoint(self, checkpoint: dict, path: str | os.PathLike, storage_options: object = None) -> None:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise BlurgenError(
                f"{path}: cannot write the checkpoint ({e.strerror or e}); the previous one is kept: "
                "make room and continue with --resume"
            ) from None


def check_checkpoint(path: Path) -> int:
    """The epoch a run continues with from checkpoint ``path`` (saved at an epoch's end); a one-line error
    if it is not one that --resume can continue from."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        ok = isinstance(ckpt, dict) and {"state_dict", "epoch", "loops", "optimizer_states"} <= set(ckpt)
        reason = "not a b2f-train checkpoint"
    except Exception as e:  # truncated zip, bad pickle, empty file: all "cannot be read"
        ok, reason = False, f"unreadable: {type(e).__name__}"
    if not ok:
        raise BlurgenError(
            f"{path}: damaged checkpoint ({reason}); delete it to start the run again from its first epoch "
            "(b2f-train without --resume), or put back a good copy"
        )
    return ckpt["epoch"] + 1


def _hardware(device, devices, num_nodes):
    """Lightning's accelerator/devices from our --device (through blurgen.core.device) and --devices."""
    dev = resolve_device(device)
    if dev.type != "cuda":
        return {"accelerator": "cpu", "devices": 1 if devices == "auto" else devices, "num_nodes": num_nodes}
    if dev.index is not None:  # cuda:N names one GPU
        devices = [dev.index]
    return {"accelerator": "gpu", "devices": devices, "num_nodes": num_nodes}


class _JobTimer(Timer):
    """Lightning's Timer, but a resumed run gets a fresh budget (it is a job's time limit, not the run's)."""

    def load_state_dict(self, state_dict: dict) -> None:
        pass


class _FiniteWeights(Callback):
    """Stops a run whose weights hold NaN or inf at the end of that epoch, before its checkpoint is written
    (Lightning runs checkpoint callbacks after the others), so last.ckpt keeps the last good epoch."""

    def _check(self, trainer, module):
        bad = nonfinite_weights(module.model.state_dict())
        if bad:
            raise BlurgenError(
                f"training diverged in epoch {trainer.current_epoch + 1}: {bad}; "
                "the checkpoints hold only earlier epochs (try a lower --lr)"
            )

    def on_validation_start(self, trainer, module):
        self._check(trainer, module)

    def on_train_epoch_end(self, trainer, module):
        self._check(trainer, module)


def _check_world_size(out, config, world_size, allow_change):
    """Record the world size and global batch in ``config``; True when a resumed run changes them (refused
    unless ``allow_change``: each step then averages another number of samples, and the epoch's order of
    samples per process differs from the uninterrupted run's)."""
    stored = config.get("world_size")
    config["world_size"], config["global_batch"] = world_size, world_size * config["batch_size"]
    if stored is None or stored == world_size:  # None: a new run, or one recorded before the world size was
        return False
    if not allow_change:
        raise BlurgenError(
            f"{out}: run was trained on {stored} processes (global batch {stored * config['batch_size']}), "
            f"this one has {world_size}; pass --new-world-size to continue anyway, or match --devices/--num-nodes"
        )
    _say(f"{out}: continuing on {world_size} processes instead of {stored}; global batch now {config['global_batch']}")
    return True


def _say(line):
    if int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", 0))) == 0:
        print(line, file=sys.stderr)


def _quiet_lightning():
    """Keep the console to the progress bar: no accelerator banners, no advice we have already taken."""
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch.accelerators.cuda").setLevel(logging.WARNING)
    for message in (
        ".*does not have many workers.*",
        ".*exists and is not empty.*",
        ".*number of training batches.*smaller than the logging interval.*",
        ".*isinstance.treespec, LeafSpec.*",
    ):
        warnings.filterwarnings("ignore", message=message)


def train(
    shards: str | os.PathLike,
    out: str | os.PathLike,
    model_config: dict,
    *,
    resume: bool = False,
    device: str = "auto",
    devices: int | str = "auto",
    num_nodes: int = 1,
    workers: int | None = None,
    max_minutes: float | None = None,
    progress: bool = True,
    new_world_size: bool = False,
    allow_incomplete: bool = False,
    **options: object,
) -> B2FModule:
    """Train into the run folder ``out``; returns the trained LightningModule (on rank 0 also RUN/model.pt).

    ``options`` are those of :func:`run_config`. With ``resume`` the run continues exactly from
    RUN/checkpoints/last.ckpt (the end of the last finished epoch) up to ``epochs``; on another world size
    (devices × nodes) only with ``new_world_size``, since the samples each step sees change. ``max_minutes``
    stops at the first epoch end past that time (a later --resume continues exactly). With ``ema`` (a
    decay) the weights kept are an exponential moving average of every step's.
    """
    out = Path(out)
    config = run_config(shards, model_config, **options)
    last, start_epoch = out / "checkpoints" / "last.ckpt", 0
    started = (out / "config.json").exists() or (out / "checkpoints").exists()
    if resume:
        if not (out / "config.json").is_file():
            raise BlurgenError(f"{out}: no config.json, nothing to resume; drop --resume to start a run there")
        config = check_resume(out, config)
        if last.exists():
            start_epoch = check_checkpoint(last)
        else:
            _say(f"{out}: no epoch finished before it stopped; starting from the first")
            resume = False
    elif started:
        if last.exists():
            raise BlurgenError(f"{out}: already holds a run; pass --resume to continue it or choose another --out")
        _say(f"{out}: an earlier start finished no epoch; starting again")
    ckpt_path = last if resume else None
    hardware = _hardware(device, devices, num_nodes)
    crop = tuple(config["crop"])
    train_set = ShardDataset(
        config["shards"],
        config["split"],
        crop=crop,
        random_crop=config["random_crop"],
        flip=config["flip"],
        scale=config["scale"],
        photometric=config["photometric"],
        seed=config["seed"],
        fields=TRAIN_FIELDS if config["direction"] == "fwd" else EVAL_FIELDS,
        allow_incomplete=allow_incomplete,
    )
    val_set = (
        None
        if config["val"] is None
        else ShardDataset(
            config["val"], config["val_split"], crop=crop, fields=EVAL_FIELDS, allow_incomplete=allow_incomplete
        )
    )
    L.seed_everything(config["seed"], workers=True, verbose=False)
    module = B2FModule(
        config["model"],
        lr=config["lr"],
        milestones=config["milestones"],
        lr_policy=config["lr_policy"],
        direction=config["direction"],
        weight_decay=config["weight_decay"],
        bias_decay=config["bias_decay"],
    )
    if config["init"] and not resume:
        _, state_dict = read_weights(config["init"])
        load_into(module.model, state_dict, config["init"])
    data = ShardDataModule(
        train_set,
        val_set,
        batch_size=config["batch_size"],
        workers=loader_workers() if workers is None else workers,
        seed=config["seed"],
        pin_memory=hardware["accelerator"] == "gpu",
        start_epoch=start_epoch,
    )
    # last.ckpt: overwritten after every epoch, what --resume continues from; best.ckpt: lowest val min-EPE
    checkpoints = [ModelCheckpoint(dirpath=out / "checkpoints", filename="last", enable_version_counter=False)]
    if val_set is not None:
        checkpoints.append(
            ModelCheckpoint(
                dirpath=out / "checkpoints",
                filename="best",
                monitor="val/epe_min",
                mode="min",
                enable_version_counter=False,
            )
        )

    def record(trainer, _):
        # written once every process is past the "already holds a run" check (fit starts after DDP's rendezvous)
        if trainer.is_global_zero and (not resume or changed_world):
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / "config.json", json.dumps(config, indent=2) + "\n")

    _quiet_lightning()
    trainer = L.Trainer(
        **hardware,
        precision=config["precision"],
        max_epochs=config["epochs"],
        limit_train_batches=config["limit_batches"],
        limit_val_batches=0 if val_set is None else config["limit_batches"],
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        enable_model_summary=False,
        enable_progress_bar=progress,
        log_every_n_steps=min(50, len(train_set) // config["batch_size"] or 1),
        benchmark=True,  # cudnn picks the fastest convolution algorithms for the fixed crop size
        plugins=[AtomicCheckpointIO()],
        callbacks=[
            *checkpoints,
            _FiniteWeights(),
            LearningRateMonitor(),  # at each scheduler's interval: epochs (multistep), steps (onecycle)
            LambdaCallback(on_fit_start=record),
            *([_JobTimer(timedelta(minutes=max_minutes), interval="epoch")] if max_minutes else []),
            # validation, the checkpoints' state_dict and model.pt hold the average; last.ckpt also the
            # current weights, so --resume continues both
            *([EMAWeightAveraging(decay=config["ema"])] if config["ema"] else []),
        ],
        logger=[CSVLogger(out, name="csv"), TensorBoardLogger(out, name="tb", default_hp_metric=False)],
    )
    changed_world = _check_world_size(out, config, trainer.world_size, new_world_size)
    if config["compile"]:
        module.model.compile()  # in place: the state_dict keeps its key names (no "_orig_mod." prefix)
    with contextlib.redirect_stdout(sys.stderr):  # Lightning's bars print to stdout; ours stays for results
        trainer.fit(module, datamodule=data, ckpt_path=ckpt_path, weights_only=True)
    if trainer.is_global_zero:
        save_model(out / "model.pt", module.model, config["model"])
    return module
