"""One training step (forward, loss, backward, Adam) of B2F-net beside ptlflow's PWC-Net with its own
training loss, in one run: ms per step, images/s, GFLOP (forward + backward) and GFLOP/s, ops launched per
step, peak memory; then how much of a B2F-net step is spent waiting for the real DataLoader fed from shards.

    python bench/train_step.py [--device auto|cpu|cuda] [--batch 4] [--size 256] [--precision 32-true]
                               [--compile] [--corr auto|windows|rows] [--threads 1] [--repeats 3]
                               [--workers 2] [--loader-steps 8] [--models b2f,pwcnet]

--models b2f@W,...: B2F-net at width W (ModelConfig.narrowed, as the recipes' `width`), e.g.
`--models b2f@0.5,b2f@0.35` to see whether a narrower net buys steps; a `+compile` suffix compiles that
model alone, e.g. `--models b2f@0.5,b2f@0.5+compile` (its first steps, which compile, are not timed).

Ops per step: the aten operators one step dispatches from Python and from autograd's engine (top level of
the profiler's operator tree; what an operator runs inside itself, e.g. a CPU convolution's im2col or the
per-tensor loop of a CPU foreach op, is its own business), leaving out those that only make views or empty
tensors: on a GPU each is one or a few kernel launches. With --device cuda the CUDA kernels are counted too. FLOPs come
from torch.utils.flop_counter (convolutions and matmuls; correlation, grid sampling and elementwise ops
are not counted, but their time is). Peak memory: CPU = growth of the peak RSS over the step (VmHWM, reset
through /proc/self/clear_refs), in a fresh process per model, uncompiled (cpu_peak_mb); CUDA =
torch.cuda.max_memory_allocated over the step. The two models' steps are interleaved, so load from other
processes on a shared machine hits them alike: compare within one run.
The B2F-net row is what b2f-train runs: its LightningModule's loss and optimizer; PWC-Net's is ptlflow's
pwcnet with its MultiScale loss and the same Adam settings (foreach, as b2f-train's). Precision:
torch.autocast as Lightning's "bf16-mixed"/"16-mixed" (fp16 without a grad scaler here: the step's cost,
not its convergence).
"""

import argparse
import dataclasses
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's packages, not an installed copy

import torch  # noqa: E402
from measure import status_kb, sync
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import b2f.model.estimator as estimator  # noqa: E402
from b2f.lightning_module import B2FModule  # noqa: E402
from b2f.model import ModelConfig  # noqa: E402
from b2f.model.correlation import correlation  # noqa: E402
from b2f.run_config import WEIGHT_DECAY  # noqa: E402
from blurgen.core.device import resolve_device  # noqa: E402
from blurgen.core.quiet import quiet_import  # noqa: E402

# operators that only make a new view or an empty tensor: no kernel
METADATA = {
    f"aten::{name}"
    for name in (
        "view as_strided slice select unsqueeze squeeze expand permute transpose t unfold alias detach "
        "_reshape_alias reshape _unsafe_view split narrow flatten empty empty_strided empty_like lift_fresh "
        "resolve_conj resolve_neg"
    ).split()
}
DTYPES = {"32-true": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def _image_input(image):
    """uint8 crops are converted on the device (b2f.data.to_input); older loaders gave floats already."""
    return image.float().div(255) if image.dtype == torch.uint8 else image


def build(name, batch, size, device, compile_model, corr):
    """(model, step(batch_dict) -> None running forward, loss, backward and the optimizer)."""
    name, _, suffix = name.partition("+")
    compile_model = compile_model or suffix == "compile"
    if name == "pwcnet":
        model = quiet_import("ptlflow").get_model("pwcnet").to(device).train()
        params = model.parameters()
        optimizer = torch.optim.Adam(params, lr=1e-4, betas=(0.9, 0.999), weight_decay=WEIGHT_DECAY, foreach=True)

        def loss_of(data):
            image = _image_input(data["image"])
            inputs = {"images": torch.stack((image, image.flip(-1)), 1), "flows": data["flow_fwd"][:, None]}
            return model.loss_fn(model(inputs), inputs)

    else:
        if corr != "auto":
            estimator.correlation = functools.partial(correlation, method=corr)
        width = float(name.partition("@")[2] or 1.0)
        module = B2FModule(dataclasses.asdict(ModelConfig().narrowed(width))).to(device).train()
        model = module.model
        optimizer = module.configure_optimizers()["optimizer"]

        def loss_of(data):
            return module.loss(model(_image_input(data["image"])), data)

    if compile_model:
        model.compile()
    return model, optimizer, loss_of


def make_step(model, optimizer, loss_of, device, precision):
    dtype = DTYPES[precision]

    def step(data):
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = loss_of(data)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)  # here, so that no step starts holding the last one's gradients

    return step


def random_batch(batch, size, device):
    gen = torch.Generator().manual_seed(0)
    return {
        "image": torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=gen).to(device),
        "flow_fwd": (8 * torch.randn(batch, 2, size, size, generator=gen)).to(device),
        "flow_bwd": (8 * torch.randn(batch, 2, size, size, generator=gen)).to(device),
        "valid": torch.ones(batch, size, size, dtype=torch.bool).to(device),
    }


def _inside_op(event):
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("aten::"):
            return True
        parent = parent.cpu_parent
    return False


def count_ops(step, data, device):
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        step(data)
        sync(device)
    events = prof.events()
    ops = sum(e.name.startswith("aten::") and e.name not in METADATA and not _inside_op(e) for e in events)
    kernels = sum(e.device_type == torch.autograd.DeviceType.CUDA for e in events) if device.type == "cuda" else None
    return ops, kernels


def peak_mb(step, data, device):
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        step(data)
        sync(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS
    base = status_kb("VmRSS")
    step(data)
    return (status_kb("VmHWM") - base) / 1024


def cpu_peak_mb(name):
    """peak_mb in a fresh process whose glibc maps every allocation over 64 KiB afresh and unmaps it when
    freed, so that memory the timed steps left in the allocator cannot hide the peak; the steps are not
    timed there, each large tensor paying an mmap and its page faults, which training does not."""
    argv = [arg for arg in sys.argv[1:] if arg != "--compile"]  # compiling on a CPU takes minutes
    cmd = [sys.executable, __file__, *argv, "--peak-of", name.partition("+")[0]]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        sys.exit(f"peak memory of {name} failed:\n{proc.stderr}")
    return float(proc.stdout.strip().splitlines()[-1])


def gflops(step, data):
    with FlopCounterMode(display=False) as counter:
        step(data)
    return counter.get_total_flops() / 1e9


def loader_wait(step, args, device):
    """(ms waiting for the next batch, ms per step) over --loader-steps steps fed from synthetic shards by
    b2f's ShardDataModule loader (random crops, flips, --workers processes, pinned memory on a GPU)."""
    from b2f.data import ShardDataModule, ShardDataset
    from blurgen.generate import generate
    from blurgen.sources.synthetic import render_task, synthetic_splits

    with tempfile.TemporaryDirectory() as tmp:
        count = args.batch * (args.loader_steps + 2)
        size = (args.size + 64, args.size + 64)
        splits = synthetic_splits(count, 0, seed=0, size=size, max_disp=12.0)
        generate(Path(tmp), "synthetic", {"bench": 1}, splits, render_task, shard_size=16)
        dataset = ShardDataset(tmp, "train", crop=(args.size, args.size), random_crop=True, flip=True)
        data = ShardDataModule(dataset, batch_size=args.batch, workers=args.workers, pin_memory=device.type == "cuda")
        data.trainer = type("T", (), {"world_size": 1, "global_rank": 0, "current_epoch": 0})()
        loader = iter(data.train_dataloader())
        batch = next(loader)  # workers started, first batch made
        waits, steps = [], []
        for _ in range(args.loader_steps):
            begin = time.perf_counter()
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items() if k != "index"}
            step(batch)
            sync(device)
            middle = time.perf_counter()
            batch = next(loader)
            end = time.perf_counter()
            steps.append(end - begin)
            waits.append(end - middle)
        return 1000 * statistics.median(waits), 1000 * statistics.median(steps)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=256, help="square crop side, a multiple of 64")
    parser.add_argument("--precision", choices=tuple(DTYPES), default="32-true")
    parser.add_argument("--compile", action="store_true", help="torch.compile both models (Module.compile)")
    parser.add_argument("--corr", choices=("auto", "windows", "rows"), default="auto", help="B2F-net's cost volume")
    parser.add_argument("--models", default="b2f,pwcnet")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers for the loader-wait row")
    parser.add_argument("--loader-steps", type=int, default=6, help="steps fed from shards (0: skip)")
    parser.add_argument("--peak-of", help=argparse.SUPPRESS)  # a model name: print its step's peak memory
    args = parser.parse_args()
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = True
    names = args.models.split(",")
    torch.manual_seed(0)
    data = random_batch(args.batch, args.size, device)
    if args.peak_of:
        step = make_step(
            *build(args.peak_of, args.batch, args.size, device, args.compile, args.corr), device, args.precision
        )
        step(data)
        print(peak_mb(step, data, device))
        return
    steps, rows = {}, {}
    for name in names:
        model, optimizer, loss_of = build(name, args.batch, args.size, device, args.compile, args.corr)
        steps[name] = make_step(model, optimizer, loss_of, device, args.precision)
        steps[name](data)  # warm-up (and compilation)
        ops, kernels = count_ops(steps[name], data, device)
        rows[name] = {"gflops": gflops(steps[name], data), "ops": ops, "kernels": kernels}
    times = {name: [] for name in names}
    for _ in range(args.repeats):  # interleaved: the machine's load hits both alike
        for name in names:
            sync(device)
            start = time.perf_counter()
            steps[name](data)
            sync(device)
            times[name].append(time.perf_counter() - start)
    for name in names:
        rows[name]["peak_mb"] = peak_mb(steps[name], data, device) if device.type == "cuda" else cpu_peak_mb(name)
    print(
        f"device {device}, batch {args.batch} x {args.size}x{args.size}, {args.precision}, "
        f"compile {args.compile}, b2f correlation {args.corr}, torch threads {torch.get_num_threads()}, "
        f"median of {args.repeats} steps"
    )
    print(
        f"{'model':>9} {'ms/step':>9} {'img/s':>7} {'GFLOP':>7} {'GFLOP/s':>8} {'vs pwcnet':>9} {'ops/step':>9}"
        f"{' kernels' if device.type == 'cuda' else ''} {'peak MB':>8}"
    )
    for name in names:
        r = rows[name]
        r["ms"] = 1000 * statistics.median(times[name])
        r["rate"] = r["gflops"] / r["ms"] * 1000
    ref = rows["pwcnet"]["rate"] if "pwcnet" in rows else float("nan")
    for name, r in rows.items():
        kernels = f" {r['kernels']:7d}" if device.type == "cuda" else ""
        print(
            f"{name:>9} {r['ms']:9.0f} {args.batch / r['ms'] * 1000:7.2f} {r['gflops']:7.1f} {r['rate']:8.1f} "
            f"{r['rate'] / ref:9.2f} {r['ops']:9d}{kernels} {r['peak_mb']:8.0f}",
            flush=True,
        )
    if args.loader_steps and "b2f" in steps:
        wait, step_ms = loader_wait(steps["b2f"], args, device)
        print(
            f"\nb2f fed from shards ({args.workers} workers, random {args.size}² crops + flips): "
            f"{step_ms:.0f} ms per step, of which {wait:.1f} ms waiting for the loader ({100 * wait / step_ms:.1f}%)"
        )


if __name__ == "__main__":
    main()
