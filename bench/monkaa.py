"""Throughput of `blurgen monkaa`: samples/s and the share of time in read, interpolate, average and
write, for 960×540 pairs at s≈20 and s≈90 (n = 20 and 90 interpolated frames), with 1 and 2 workers.

    python bench/monkaa.py [--pairs 2] [--size 540x960] [--device cpu]

The pairs are a camera pan over a smooth random texture, written in the SceneFlow layout to a
temporary folder. Rendering is the real `MonkaaRender`, with its read, interpolate and average calls
wrapped in timers (inside the worker processes too); writing is the real ShardWriter in the main process,
driven as `blurgen.generate` drives it. Shares are of the summed stage times; with 2 workers, the
workers' stages overlap one another and the main process's writing.
"""

import argparse
import tempfile
import time
from collections import Counter
from functools import wraps
from pathlib import Path

import cv2
import numpy as np

from blurgen.core.flow_io import write_flow
from blurgen.core.images import write_image
from blurgen.parallel import run_tasks
from blurgen.shards.writer import ShardWriter
from blurgen.sources import monkaa
from blurgen.sources.monkaa import MonkaaRender, list_pairs

CASES = {"s20": (16.0, 12.0), "s90": (72.0, 54.0)}  # px per frame: |d| = 20 and 90
STAGES = ("read", "interpolate", "average", "write")


def make_tree(root, size, pairs, seed=0):
    h, w = size
    rng = np.random.default_rng(seed)
    for scene, (dx, dy) in CASES.items():
        dx, dy = int(dx), int(dy)
        big = (h + dy * pairs, w + dx * pairs)
        texture = cv2.resize(
            rng.uniform(0, 255, (big[0] // 8, big[1] // 8, 3)).astype(np.float32),
            big[::-1],
            interpolation=cv2.INTER_CUBIC,
        )
        fwd = np.broadcast_to(np.float32([dx, dy]), (h, w, 2))
        flows = root / "optical_flow" / scene
        for d in ("into_future", "into_past"):
            (flows / d / "left").mkdir(parents=True, exist_ok=True)  # write_flow, unlike write_image, needs it
        for t in range(pairs + 1):  # the camera pans: the content moves by (dx, dy) per frame
            y0, x0 = dy * (pairs - t), dx * (pairs - t)
            write_image(
                root / "frames_cleanpass" / scene / "left" / f"{t:04d}.png",
                np.clip(texture[y0 : y0 + h, x0 : x0 + w] + 0.5, 0, 255).astype(np.uint8),
            )
            if t < pairs:
                write_flow(flows / "into_future/left" / f"OpticalFlowIntoFuture_{t:04d}_L.pfm", fwd)
            if t > 0:
                write_flow(flows / "into_past/left" / f"OpticalFlowIntoPast_{t:04d}_L.pfm", -fwd)


def _timed(name, fn, times):
    @wraps(fn)
    def run(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            times[name] += time.perf_counter() - start

    return run


def _instrument():
    """Once per process: time the calls MonkaaRender makes (module globals of blurgen.sources.monkaa)."""
    if not hasattr(monkaa, "_bench_times"):
        times = monkaa._bench_times = Counter()
        for attr, stage in (
            ("read_flow", "read"),
            ("read_image", "read"),
            ("interpolate", "interpolate"),
            ("average_frames", "average"),
        ):
            setattr(monkaa, attr, _timed(stage, getattr(monkaa, attr), times))
    return monkaa._bench_times


class TimedRender:
    def __init__(self, render):
        self.render = render

    def __call__(self, pair):
        times = _instrument()
        before = Counter(times)
        return self.render(pair), times - before


def _warm(_):
    """Load torch and ptlflow in a worker before the clock starts (a long run pays this once)."""
    from blurgen.core.flow_io import _flowutils
    from blurgen.interp import interpolate

    _flowutils()
    img = np.zeros((8, 8, 3), np.uint8)
    interpolate("flow", img, img, 1, np.zeros((8, 8, 2), np.float32), np.zeros((8, 8, 2), np.float32), device="cpu")
    return 0


def run(pairs, workers, out, device):
    render = TimedRender(MonkaaRender(device=device))
    stages = Counter()
    start = time.perf_counter()
    with ShardWriter(out, "bench", {}, shard_size=len(pairs)) as writer:
        for i, (sample, times) in enumerate(run_tasks(render, pairs, workers)):
            stages += times
            t = time.perf_counter()
            writer.add("train", i, [sample])
            stages["write"] += time.perf_counter() - t
        t = time.perf_counter()
        writer.finish_split("train", len(pairs))
        stages["write"] += time.perf_counter() - t
    return time.perf_counter() - start, stages, sample["meta"]["n_interp"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=2, help="pairs per case (one per worker with --workers 2)")
    ap.add_argument("--size", default="540x960", help="HxW")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    import torch

    size = tuple(int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_tree(tmp / "tree", size, args.pairs)
        print(
            f"blurgen monkaa, {size[1]}x{size[0]}, {args.pairs} pairs per case, --interp flow, device "
            f"{args.device}, torch threads {torch.get_num_threads()} (1 per worker with --workers 2)"
        )
        print(
            f"{'case':<5} {'n':>3} {'workers':>7} {'wall s':>7} {'samples/s':>9} "
            + " ".join(f"{s + ' %':>13}" for s in STAGES)
        )
        for workers in (1, 2):
            if workers > 1:
                list(run_tasks(_warm, range(workers), workers))
            for case in CASES:
                pairs = list_pairs(tmp / "tree", cameras=("left",), scenes=[case])
                wall, stages, n = run(pairs, workers, tmp / f"out-{case}-{workers}", args.device)
                total = sum(stages[s] for s in STAGES)
                print(
                    f"{case:<5} {n:>3} {workers:>7} {wall:>7.1f} {len(pairs) / wall:>9.3f} "
                    + " ".join(f"{100 * stages[s] / total:>6.1f} ({stages[s] / len(pairs):>4.2f}s)" for s in STAGES)
                )
        print("(stage: share of the summed stage time, and seconds per sample)")


if __name__ == "__main__":
    main()
