"""B2F-net vs ptlflow's PWC-Net (random weights), side by side: parameters, GFLOPs, forward time,
achieved GFLOP/s, peak memory; then our correlation vs ptlflow's at the sizes the models use.

    python bench/model.py [--device auto|cpu|cuda] [--sizes 256x256,448x1024] [--threads 1]
                          [--models b2f,b2f-wide,unet,pwcnet] [--batch 1] [--repeats 3]

"b2f-wide" is B2F-net with PWC-Net's dense widths at every level, the alternative to the chosen widths
(b2f/model/config.py). Forward passes of the models are interleaved, so load from other processes hits
them alike; one thread by default, since two OpenMP threads on a busy 2-core machine measure the
neighbours (10-20x swings seen here).

Peak memory of one pass: CPU = growth of the peak RSS (VmHWM, reset through /proc/self/clear_refs) over
the RSS before the pass; CUDA = torch.cuda.max_memory_allocated. It is measured in a fresh subprocess per
(model, size), so memory an earlier run left in the allocator cannot hide it, with glibc's mmap threshold
fixed at 64 KiB so freed tensors leave the RSS at once (else the peak swings 460-800 MB between runs).
FLOPs come from torch.utils.flop_counter (convolutions and matmuls; the correlation and grid sampling
of both models are not counted, but their time is).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

import torch
from measure import status_kb, sync
from torch.utils.flop_counter import FlopCounterMode

from b2f.model import B2FNet, ModelConfig
from b2f.model.correlation import correlation
from blurgen.core.device import resolve_device
from blurgen.core.quiet import quiet_import

WIDE = dict(flow_widths=((128, 128, 96, 64, 32),) * 6, context_widths=(128, 128, 128, 96, 64, 32))
MODELS = {"b2f": dict(), "b2f-wide": WIDE, "unet": dict(arch="unet")}


def build(name, height, width, batch, device):
    """(model, callable running one forward pass)."""
    if name == "pwcnet":
        model = quiet_import("ptlflow").get_model("pwcnet")
        images = torch.rand(batch, 2, 3, height, width, device=device)  # BGR in [0, 1], as ptlflow expects
        inputs = {"images": images}
    else:
        model = B2FNet(ModelConfig(**MODELS[name]))
        inputs = torch.rand(batch, 3, height, width, device=device)
    model = model.to(device).eval()
    return model, lambda: model(inputs)


def peak_memory(name, height, width, batch, device):
    """MB that one forward pass of a freshly built model adds at its peak; run in a fresh process."""
    torch.manual_seed(0)
    _, run = build(name, height, width, batch, device)
    with torch.no_grad():
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            run()
            return (torch.cuda.max_memory_allocated(device) - base) / 2**20
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        base = status_kb("VmRSS")
        run()
        return (status_kb("VmHWM") - base) / 1024


def timed(run, device):
    sync(device)
    start = time.perf_counter()
    run()
    sync(device)
    return time.perf_counter() - start


def measure(names, height, width, batch, device, repeats):
    """Rows of the table for one size. The models' passes are interleaved, so a change in the load from
    other processes hits all of them alike."""
    built = {name: build(name, height, width, batch, device) for name in names}
    rows, times = {}, {name: [] for name in names}
    with torch.no_grad():
        for name, (model, run) in built.items():
            run()  # warm-up
            with FlopCounterMode(display=False) as counter:
                run()
            rows[name] = dict(params=sum(p.numel() for p in model.parameters()), gflops=counter.get_total_flops() / 1e9)
        for _ in range(repeats):
            for name, (_, run) in built.items():
                times[name].append(timed(run, device))
    for name, row in rows.items():
        row["ms"] = 1000 * statistics.median(times[name])
        row["gflops_per_s"] = row["gflops"] / row["ms"] * 1000
    return rows


def corr_rows(device, repeats):
    """Our correlation vs ptlflow's IterSpatialCorrelationSampler (max displacement 4) on feature maps
    of the sizes B2F-net's level 1 and PWC-Net's level 2 have at 448×1024."""
    sampler = quiet_import("ptlflow.utils.correlation").IterSpatialCorrelationSampler(patch_size=9)

    def theirs(a, b):
        out = sampler(a, b)
        return out.view(out.shape[0], -1, *out.shape[3:]) / a.shape[1]

    rows = []
    for channels, height, width in ((16, 224, 512), (32, 112, 256), (64, 56, 128)):
        a, b = (torch.randn(1, channels, height, width, device=device) for _ in range(2))
        result = {}
        with torch.no_grad():
            for label, fn in (
                ("ours", lambda a=a, b=b: correlation(a, b, 4)),
                ("ptlflow", lambda a=a, b=b: theirs(a, b)),
            ):
                result[label] = fn()
                result[label + "_ms"] = 1000 * statistics.median(timed(fn, device) for _ in range(repeats))
        diff = (result["ours"] - result["ptlflow"]).abs().max().item()
        rows.append((f"{channels}x{height}x{width}", result["ours_ms"], result["ptlflow_ms"], diff))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--sizes", default="256x256,448x1024")
    parser.add_argument(
        "--models", default="b2f,b2f-wide,unet,pwcnet", help=f"comma list of {', '.join(list(MODELS) + ['pwcnet'])}"
    )
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (0: torch's default); 1 keeps timings stable on a shared machine",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # "model:HxW": peak memory of one pass, printed
    args = parser.parse_args()
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        name, size = args.worker.split(":")
        print(peak_memory(name, *map(int, size.split("x")), args.batch, device))
        return

    names = args.models.split(",")
    print(
        f"device {device}, batch {args.batch}, torch threads {torch.get_num_threads()}, "
        f"median of {args.repeats} forward passes (no_grad, eval)"
    )
    print(
        f"{'size':>9} {'model':>9} {'params M':>9} {'GFLOPs':>8} {'fwd ms':>9} {'GFLOP/s':>8} "
        f"{'vs pwcnet':>9} {'peak MB':>8}"
    )
    for size in args.sizes.split(","):
        height, width = map(int, size.split("x"))
        rows = measure(names, height, width, args.batch, device, args.repeats)
        for name in names:
            cmd = [
                sys.executable,
                __file__,
                "--device",
                args.device,
                "--batch",
                str(args.batch),
                "--threads",
                str(args.threads),
                "--worker",
                f"{name}:{size}",
            ]
            proc = subprocess.run(
                cmd, capture_output=True, text=True, env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
            )
            if proc.returncode:
                sys.exit(f"{name} at {size} failed:\n{proc.stderr}")
            rows[name]["peak_mb"] = float(proc.stdout.strip().splitlines()[-1])
        ref = rows["pwcnet"]["gflops_per_s"] if "pwcnet" in rows else float("nan")
        for name, r in rows.items():
            print(
                f"{size:>9} {name:>9} {r['params'] / 1e6:9.2f} {r['gflops']:8.1f} {r['ms']:9.1f} "
                f"{r['gflops_per_s']:8.1f} {r['gflops_per_s'] / ref:9.2f} {r['peak_mb']:8.0f}",
                flush=True,
            )

    print("\ncorrelation, max displacement 4 (81 channels), forward ms")
    print(f"{'C x H x W':>12} {'ours':>8} {'ptlflow':>8} {'speed-up':>8} {'max |diff|':>10}")
    for shape, ours, theirs, diff in corr_rows(device, args.repeats):
        print(f"{shape:>12} {ours:8.1f} {theirs:8.1f} {theirs / ours:8.1f} {diff:10.1e}")


if __name__ == "__main__":
    main()
