"""Tiled reading (b2f.tiles) with its tiles read one per pass beside several per pass, and the image read
whole, in one run: seconds per image, speed-up over one tile per pass, and how far the batched reading is
from the one-tile reading (float rounding only: a batch element is read as it is alone).

    python bench/tiles.py [--device auto|cpu|cuda] [--sizes 256x256,448x1024] [--tile 128x128]
                          [--batches 1,4,16,64] [--width 0.5] [--ensemble] [--threads 1] [--repeats 3]

B2F-net with random weights at ``--width`` (the generalization recipe's 0.5 by default; a reading's cost
does not depend on its weights). The alternatives' passes are interleaved, so load from other processes
hits them alike: compare within one run.
"""

import argparse
import functools
import statistics
import time

import torch
from measure import sync

from b2f.model import B2FNet, ModelConfig
from b2f.tiles import estimate_flow, reader, tile_starts, tiled_predict
from blurgen.core.cli import parse_size
from blurgen.core.device import resolve_device


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--sizes", default="256x256,448x1024")
    parser.add_argument("--tile", default="128x128")
    parser.add_argument("--batches", default="1,4,16,64", help="tiles per pass to compare; the first is the reference")
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--ensemble", action="store_true", help="read each tile on its eight flips and turns")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    tile = parse_size(None, None, args.tile)
    batches = [int(b) for b in args.batches.split(",")]
    torch.manual_seed(0)
    model = B2FNet(ModelConfig().narrowed(args.width)).to(device).eval()
    read = reader(model, args.ensemble)

    print(
        f"device {device}, width {args.width}, {'ensemble' if args.ensemble else 'plain'}, tile {args.tile}, "
        f"torch threads {torch.get_num_threads()}, median of {args.repeats}"
    )
    print(f"{'size':>9} {'tiles':>5} {'read':>12} {'s / image':>9} {'speed-up':>8} {'max |diff| px':>13}")
    for size in args.sizes.split(","):
        height, width = map(int, size.split("x"))
        image = torch.rand(1, 3, height, width, device=device)
        runs = {f"{b} per pass": functools.partial(tiled_predict, read, image, tile, b) for b in batches}
        runs["whole"] = functools.partial(estimate_flow, model, image, args.ensemble)
        flows = {name: run() for name, run in runs.items()}  # warm-up, and the readings compared
        times = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, run in runs.items():
                sync(device)
                start = time.perf_counter()
                run()
                sync(device)
                times[name].append(time.perf_counter() - start)
        count = len(tile_starts(height, tile[0])) * len(tile_starts(width, tile[1]))
        ref = f"{batches[0]} per pass"
        for name in runs:
            seconds = statistics.median(times[name])
            diff = "" if name == "whole" else f"{(flows[name] - flows[ref]).abs().max().item():13.1e}"
            speedup = statistics.median(times[ref]) / seconds
            print(f"{size:>9} {count:>5} {name:>12} {seconds:9.3f} {speedup:8.2f} {diff:>13}", flush=True)


if __name__ == "__main__":
    main()
