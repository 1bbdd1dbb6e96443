"""Throughput of `blurgen highspeed` on a 1280×720 tree of 7-frame windows, side by side in one run:

1. windows/s of decode + average + write (no labelling: the flows written are zeros), as the command
   runs it: joblib workers decode and average, the main process writes shards (``blurgen.generate``
   with a ``label`` step that does nothing);
2. the same for a naive loop in one process: cv2.imread, float mean, cv2.imwrite of a PNG;
3. decode only of the same frames with the same workers (the floor for 1), and decode + average
   with the results sent back but not written (what the workers cost without the writer);
then image pairs/s of the labeller: our PtlflowLabeller (batched on a GPU, a forward per pair on a
CPU, where batching is slower) vs one ptlflow call per pair (the usual IOAdapter -> model ->
unscale), and OpenCV DIS for reference.

    python bench/highspeed.py [--size 720x1280] [--sequences 4] [--windows 8] [--workers 2] [--shard-size 8]
                              [--flow pwcnet] [--pairs 4] [--batch 2] [--repeats 2] [--device auto]

The tree comes from `blurgen synthetic --frames-out` in a temporary folder. Worker processes are
started before timing; the alternatives run in turn, --repeats rounds, and each row shows its best
round: wall seconds, and CPU seconds of this process and its worker processes together (from /proc),
which a busy shared machine disturbs far less than wall time. pwcnet runs with random weights (speed
does not depend on them).
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from blurgen.cli import main as blurgen
from blurgen.core.device import resolve_device
from blurgen.core.images import read_image
from blurgen.core.quiet import quiet_import
from blurgen.generate import generate
from blurgen.labels import make_labeller
from blurgen.labels.ptlflow_labeller import load_model
from blurgen.parallel import run_tasks
from blurgen.sources.highspeed import decode_window, discover, window_tasks


def decode_only(task):
    for path in task.paths:
        read_image(path)


_ZEROS = {}  # image size -> placeholder labels


def no_label(windows):
    """Zero flows where a labeller's would go, allocated once per size: no labeller is timed here."""
    for s in windows:
        shape = s["blurred"].shape[:2]
        if shape not in _ZEROS:
            _ZEROS[shape] = {
                "flow_fwd": np.zeros((*shape, 2), np.float32),
                "flow_bwd": np.zeros((*shape, 2), np.float32),
                "valid": np.zeros(shape, np.uint8),
            }
        s.update(_ZEROS[shape])
    return windows


def naive(tasks, out):
    for i, task in enumerate(tasks):
        mean = np.mean([cv2.imread(p).astype(np.float64) for p in task.paths], axis=0)
        cv2.imwrite(str(out / f"{i:06d}.png"), (mean + 0.5).astype(np.uint8))


def cpu_seconds():
    """User + system CPU time of this process and of its live descendants (the joblib workers)."""
    # read by hand: no psutil here, and a worker's time only reaches RUSAGE_CHILDREN when it exits
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for d in Path("/proc").iterdir():
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            stats[int(d.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)  # ppid, utime+stime
        except (ValueError, OSError, IndexError):
            continue
    mine, total = {os.getpid()}, 0.0
    for pid in sorted(stats):  # children have larger pids than their parents here (no pid wrap in a run)
        if pid in mine or stats[pid][0] in mine:
            mine.add(pid)
            total += stats[pid][1]
    return total


def compare(fns, repeats):
    """{name: (best wall s, best CPU s)} running the alternatives in turn, ``repeats`` rounds."""
    wall, cpu = {k: [] for k in fns}, {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            with tempfile.TemporaryDirectory() as out:
                t, c = time.perf_counter(), cpu_seconds()
                fn(Path(out))
                wall[name].append(time.perf_counter() - t)
                cpu[name].append(cpu_seconds() - c)
    return {k: (min(wall[k]), min(cpu[k])) for k in fns}


def one_pair_at_a_time(model, pairs, device):
    """What a plain ptlflow script does: IOAdapter per pair, one forward each."""
    torch = quiet_import("torch")
    io_adapter = quiet_import("ptlflow.utils.io_adapter")
    flows = []
    for a, b in pairs:
        adapter = io_adapter.IOAdapter(model.output_stride, a.shape[:2], cuda=device.type == "cuda")
        inputs = adapter.prepare_inputs([a[..., ::-1] / 255.0, b[..., ::-1] / 255.0])  # BGR in [0, 1]
        inputs["images"] = inputs["images"].float().to(device)
        with torch.inference_mode():
            flows.append(adapter.unscale(model(inputs))["flows"][0, 0].cpu())
    return flows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="720x1280")
    ap.add_argument("--sequences", type=int, default=4)
    ap.add_argument("--windows", type=int, default=8, help="Windows per sequence.")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--shard-size",
        type=int,
        default=8,
        help="Windows per shard: a long run closes (and checksums) a shard every 256 windows while "
        "the workers go on; a short run's single shard would checksum all of it at the end.",
    )
    ap.add_argument("--flow", default="pwcnet")
    ap.add_argument("--pairs", type=int, default=4, help="Image pairs for the labeller timing (0: skip it).")
    ap.add_argument("--batch", type=int, default=2, help="Windows per labeller call (2 pairs each).")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = resolve_device(args.device)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        try:
            blurgen(
                [
                    "synthetic",
                    "--out",
                    str(tmp / "truth"),
                    "--frames-out",
                    str(tmp / "frames"),
                    "--count",
                    str(args.sequences),
                    "--size",
                    args.size,
                    "--windows",
                    str(args.windows),
                    "--max-disp",
                    "40",
                ]
            )
        except SystemExit as e:
            if e.code:
                raise
        tasks = [t for s in discover(tmp / "frames", "gopro") for t in window_tasks(s)]
        n, frames = len(tasks), sum(len(t.paths) for t in tasks)
        print(
            f"tree: {n} windows of 7 frames ({frames} PNGs, {args.size}) made in {time.perf_counter() - t:.1f} s; "
            f"{args.workers} workers, best of {args.repeats}\n"
        )
        list(run_tasks(decode_window, tasks[: 2 * args.workers], args.workers))  # start the workers

        rows = compare(
            {
                "decode only (floor)": lambda out: list(run_tasks(decode_only, tasks, args.workers)),
                "decode+average, results back (no write)": lambda out: list(
                    run_tasks(decode_window, tasks, args.workers)
                ),
                "decode+average+write (ours)": lambda out: generate(
                    out,
                    "bench",
                    {},
                    {"train": tasks},
                    decode_window,
                    shard_size=args.shard_size,
                    workers=args.workers,
                    label=no_label,
                    label_batch=args.batch,
                ),
                "naive loop (imread, float mean, imwrite)": lambda out: naive(tasks, out),
            },
            args.repeats,
        )
        wall0, cpu0 = rows["decode only (floor)"]
        print(
            f"{'pipeline, no labelling':<48} {'wall s':>7} {'windows/s':>10} {'x floor':>8} {'CPU s':>7} {'x floor':>8}"
        )
        for name, (wall, cpu) in rows.items():
            print(f"{name:<48} {wall:7.2f} {n / wall:10.2f} {wall / wall0:8.2f} {cpu:7.2f} {cpu / cpu0:8.2f}")

        if not args.pairs:
            return
        firsts = [read_image(t.paths[0]) for t in tasks]
        lasts = [read_image(t.paths[-1]) for t in tasks]
        pairs = [(firsts[i % n], lasts[i % n]) for i in range(args.pairs)]
        labeller = make_labeller(args.flow, "random", str(device))
        dis = make_labeller("opencv-dis")
        a, b = [p[0] for p in pairs], [p[1] for p in pairs]
        per_call = 2 * args.batch

        def ours(out):
            return [labeller.flows(a[i : i + per_call], b[i : i + per_call]) for i in range(0, len(a), per_call)]

        plain = load_model(args.flow, "random")[0].to(device)  # as ptlflow gives it: correlation unbounded
        labeller.flows(a[:1], b[:1])  # first calls: allocator and kernel warm-up
        one_pair_at_a_time(plain, pairs[:1], device)
        per_forward = labeller.pairs_per_forward or per_call
        rows = compare(
            {
                f"{args.flow}, ours ({per_call} pairs per call, {per_forward} per forward)": ours,
                f"{args.flow}, one ptlflow call per pair": lambda out: one_pair_at_a_time(plain, pairs, device),
                "opencv-dis, one pair at a time": lambda out: dis.flows(a, b),
            },
            args.repeats,
        )
        title = f"labeller on {device.type} ({len(pairs)} pairs)"
        print(f"\n{title:<48} {'wall s':>7} {'pairs/s':>10} {'CPU s':>7}")
        for name, (wall, cpu) in rows.items():
            print(f"{name:<48} {wall:7.2f} {len(pairs) / wall:10.3f} {cpu:7.2f}")


if __name__ == "__main__":
    main()
