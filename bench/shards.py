"""Random 256×256 crop reads: shards vs. a folder of PNG + .flo files (what RAFT-style loaders read).

    python bench/shards.py [--samples 24 --size 540x960 --reads 200]

Both hold the same samples (blurred, flow_fwd, flow_bwd, valid); the folder loader reads whole files
and crops, as RAFT's and torchvision's loaders do. Bytes read per crop: for shards, the stored (compressed)
bytes of the HDF5 chunks the crop touches; for the folder, the files' sizes.
"""

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from blurgen.core.flow_io import read_flow, write_flow
from blurgen.core.images import read_image, write_image
from blurgen.generate import generate
from blurgen.shards import ShardReader
from blurgen.sources.synthetic import render_task, synthetic_splits

FIELDS = ("blurred", "flow_fwd", "flow_bwd", "valid")


def chunk_bytes(f, name, i, y, x, c):
    """Stored bytes of the chunks of dataset ``name`` that the crop (y, x, c×c) of sample i touches."""
    ds = f[name]
    th, tw = ds.chunks[1:3]
    total = 0
    for cy in range(y // th, (y + c - 1) // th + 1):
        for cx in range(x // tw, (x + c - 1) // tw + 1):
            offset = (i, cy * th, cx * tw) + (0,) * (ds.ndim - 3)
            total += ds.id.get_chunk_info_by_coord(offset).size
    return total


def folder_read(folder, i, y, x, c):
    img = read_image(folder / f"{i:05d}_blurred.png")[y : y + c, x : x + c]
    fwd = read_flow(folder / f"{i:05d}_fwd.flo")[0][y : y + c, x : x + c]
    bwd = read_flow(folder / f"{i:05d}_bwd.flo")[0][y : y + c, x : x + c]
    valid = read_image(folder / f"{i:05d}_valid.png")[y : y + c, x : x + c, 0]
    return img, fwd, bwd, valid


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=24)
    ap.add_argument("--size", default="540x960")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--reads", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    h, w = map(int, args.size.split("x"))
    c = args.crop
    with tempfile.TemporaryDirectory(prefix="bench_shards_") as tmp:  # ~0.5 GB, removed afterwards
        run(Path(tmp), args, h, w, c)


def run(tmp, args, h, w, c):
    shards, folder = tmp / "shards", tmp / "folder"
    t0 = time.perf_counter()
    generate(
        shards,
        "synthetic",
        {"bench": True},
        synthetic_splits(args.samples, seed=0, size=(h, w), max_disp=20.0),
        render_task,
        workers=args.workers,
    )
    reader = ShardReader(shards, "train")
    folder.mkdir()
    for i in range(len(reader)):
        s = reader.read(i)
        write_image(folder / f"{i:05d}_blurred.png", s["blurred"])
        write_flow(folder / f"{i:05d}_fwd.flo", s["flow_fwd"])
        write_flow(folder / f"{i:05d}_bwd.flo", s["flow_bwd"])
        write_image(folder / f"{i:05d}_valid.png", np.dstack([s["valid"] * 255] * 3))
    print(f"made {args.samples} samples of {h}x{w} in {time.perf_counter() - t0:.1f} s ({tmp})")

    rng = np.random.default_rng(0)
    picks = [
        (int(rng.integers(len(reader))), int(rng.integers(h - c + 1)), int(rng.integers(w - c + 1)))
        for _ in range(args.reads)
    ]
    crop_bytes = c * c * (3 + 8 + 8 + 1)

    # warm both (page cache), then time
    for i, y, x in picks[:10]:
        reader.read(i, crop=(y, x, c, c))
        folder_read(folder, i, y, x, c)
    t = time.perf_counter()
    for i, y, x in picks:
        reader.read(i, crop=(y, x, c, c))
    shard_rate = len(picks) / (time.perf_counter() - t)
    t = time.perf_counter()
    for i, y, x in picks:
        folder_read(folder, i, y, x, c)
    folder_rate = len(picks) / (time.perf_counter() - t)

    files = {}
    shard_read = []
    for i, y, x in picks:
        k, j = reader._locate(i)
        path = shards / reader.shards[k]["file"]
        if path not in files:
            files[path] = h5py.File(path, "r")
        shard_read.append(sum(chunk_bytes(files[path], name, j, y, x, c) for name in FIELDS))
    folder_bytes = [
        sum((folder / f"{i:05d}_{n}").stat().st_size for n in ("blurred.png", "fwd.flo", "bwd.flo", "valid.png"))
        for i, _, _ in picks
    ]

    print(f"\n{c}x{c} random crops from {h}x{w} samples, {args.reads} reads, one process")
    print(f"{'loader':<22}{'crops/s':>10}{'speed-up':>10}{'KB read/crop':>14}{'x crop bytes':>14}")
    for name, rate, nbytes in (
        ("shards (HDF5 tiles)", shard_rate, np.mean(shard_read)),
        ("folder PNG + .flo", folder_rate, np.mean(folder_bytes)),
    ):
        print(f"{name:<22}{rate:>10.1f}{rate / folder_rate:>10.2f}{nbytes / 1024:>14.0f}{nbytes / crop_bytes:>14.2f}")
    print(f"(crop's own bytes: {crop_bytes / 1024:.0f} KB = blurred 3 + flows 2x8 + valid 1 bytes/pixel)")


if __name__ == "__main__":
    main()
