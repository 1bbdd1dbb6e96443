"""What the training stages of a pipeline will cost on this machine: seconds per step, measured, times
the steps each stage takes (training dominates a full run; data making and evaluation are not counted)."""

import math
import time
from pathlib import Path

import torch

from b2f.lightning_module import B2FModule
from blurgen.core.device import resolve_device

from .stage import Stage, ordered, result


def seconds_per_step(model: dict, batch_size: int, crop: tuple, device: str = "auto", steps: int = 5) -> float:
    """Mean wall time of a training step (forward, multi-scale loss, backward, Adam) on random data, after
    two warm-up steps (allocator, cuDNN autotuning)."""
    dev = resolve_device(device)
    module = B2FModule(model).to(dev)
    optimizer = module.configure_optimizers()["optimizer"]
    h, w = crop
    batch = {
        "image": torch.rand(batch_size, 3, h, w, device=dev),
        "flow_fwd": 5 * torch.randn(batch_size, 2, h, w, device=dev),
        "valid": torch.ones(batch_size, h, w, dtype=torch.bool, device=dev),
    }
    for i in range(2 + steps):
        if i == 2:
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        module.loss(module.model(batch["image"]), batch).backward()
        optimizer.step()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return (time.perf_counter() - start) / steps


def _train_samples(run: Path, stage: Stage) -> int | None:
    """Training samples of a train stage: from its finished shards stage, else from the split the shards
    config asks for (Monkaa), else unknown until the shards are made."""
    shards = stage.inputs["shards"]
    done = result(run, shards)
    if done is not None:
        return done["summary"]["samples"].get("train")
    return (shards.config.get("split") or {}).get("train")


def estimate(run: str | Path, stages: list[Stage], device: str = "auto") -> list[dict]:
    """One row per training stage: samples, epochs, steps, measured s/step and the hours it makes."""
    measured, rows = {}, []
    for stage in ordered(stages):
        if stage.kind != "train":
            continue
        c = stage.config
        key = (repr(c["model"]), c["batch_size"], tuple(c["crop"]))
        if key not in measured:
            measured[key] = seconds_per_step(c["model"], c["batch_size"], tuple(c["crop"]), device)
        samples = _train_samples(Path(run), stage)
        steps = None if samples is None else math.ceil(samples / c["batch_size"]) * c["epochs"]
        rows.append(
            {
                "stage": stage.name,
                "samples": samples,
                "epochs": c["epochs"],
                "steps": steps,
                "s_per_step": measured[key],
                "hours": None if steps is None else steps * measured[key] / 3600,
            }
        )
    return rows


def format_estimate(rows: list[dict], device: str) -> str:
    """A markdown table of :func:`estimate`'s rows."""
    lines = [
        f"Training cost on {device}, estimated: measured seconds per step (random data, after warm-up) × steps.",
        "",
        "| Stage | Train samples | Epochs | Steps | s/step (measured) | Hours (estimate) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        samples = "after its shards stage" if r["samples"] is None else f"{r['samples']:,}"
        steps = "—" if r["steps"] is None else f"{r['steps']:,}"
        hours = "—" if r["hours"] is None else f"{r['hours']:.1f}"
        lines.append(f"| `{r['stage']}` | {samples} | {r['epochs']} | {steps} | {r['s_per_step']:.3f} | {hours} |")
    return "\n".join(lines)
