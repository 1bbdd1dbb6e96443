"""b2f-train: a run folder with checkpoints, CSV and TensorBoard logs, and the final ``model.pt``.

RUN/config.json      every option that shapes the result (a resumed run must match it, except --epochs)
RUN/checkpoints/     last.ckpt after every epoch (what --resume continues from), best.ckpt with --val
RUN/csv, RUN/tb      logs; a resumed run writes the next version_N
RUN/model.pt         config + weights, written when training ends
"""

import contextlib
import json
import logging
import sys
import warnings
from datetime import timedelta
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import LambdaCallback, LearningRateMonitor, ModelCheckpoint, Timer
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from blurgen.core.device import resolve_device
from blurgen.core.errors import BlurgenError
from blurgen.core.files import atomic_write_text

from .checkpoint import load_into, read_weights, save_model
from .data import EVAL_FIELDS, TRAIN_FIELDS, ShardDataModule, ShardDataset, loader_workers
from .lightning_module import B2FModule
from .run_config import check_resume, run_config


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

    def load_state_dict(self, state_dict):
        pass


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
    shards,
    out,
    model_config,
    *,
    resume=False,
    device="auto",
    devices="auto",
    num_nodes=1,
    workers=None,
    max_minutes=None,
    progress=True,
    allow_incomplete=False,
    **options,
):
    """Train into the run folder ``out``; returns the trained LightningModule (on rank 0 also RUN/model.pt).

    ``options`` are those of :func:`run_config`. With ``resume`` the run continues exactly from
    RUN/checkpoints/last.ckpt (the end of the last finished epoch) up to ``epochs``. ``max_minutes``
    stops at the first epoch end past that time (a later --resume continues exactly).
    """
    out = Path(out)
    config = run_config(shards, model_config, **options)
    if resume:
        config = check_resume(out, config)
    elif (out / "checkpoints").exists() or (out / "config.json").exists():
        raise BlurgenError(f"{out}: already holds a run; pass --resume to continue it or choose another --out")
    hardware = _hardware(device, devices, num_nodes)
    crop = tuple(config["crop"])
    train_set = ShardDataset(
        config["shards"],
        config["split"],
        crop=crop,
        random_crop=config["random_crop"],
        flip=config["flip"],
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
    module = B2FModule(config["model"], lr=config["lr"], milestones=config["milestones"], direction=config["direction"])
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
        if trainer.is_global_zero and not resume:
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
        callbacks=[
            *checkpoints,
            LearningRateMonitor("epoch"),
            LambdaCallback(on_fit_start=record),
            *([_JobTimer(timedelta(minutes=max_minutes), interval="epoch")] if max_minutes else []),
        ],
        logger=[CSVLogger(out, name="csv"), TensorBoardLogger(out, name="tb", default_hp_metric=False)],
    )
    with contextlib.redirect_stdout(sys.stderr):  # Lightning's bars print to stdout; ours stays for results
        trainer.fit(
            module, datamodule=data, ckpt_path=out / "checkpoints" / "last.ckpt" if resume else None, weights_only=True
        )
    if trainer.is_global_zero:
        save_model(out / "model.pt", module.model, config["model"])
    return module
