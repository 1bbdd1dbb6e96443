"""What the Dask route costs beside joblib, and whether the main process's memory stays flat, in one run:

1. windows/s of `blurgen highspeed`'s decode + average + write (no labelling: zero flows, as in
   bench/highspeed.py) with joblib (--workers 1 and 2) and on a Dask LocalCluster of 1 and 2 worker
   processes (--scheduler), the cluster started before timing (its start-up is printed apart);
2. with a labeller made slow (a sleep per window) so that workers could run far ahead, the peak of
   the memory results take: the main process's resident memory above its start, and the result files
   in /dev/shm (the handoff: memory that is no process's RSS), joblib vs Dask, for two run lengths; a
   bounded run's peaks do not grow with the number of windows. The reference row lifts Dask's bound.
   Each memory run is a fresh process (a peak cannot be reset), sampled every 5 ms.

    PYTHONPATH=. python bench/cluster.py [--size 720x1280] [--sequences 4] [--windows 6] [--repeats 2] [--sleep 0.25]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from highspeed import compare, no_label
from measure import status_kb

from blurgen.cli import main as blurgen
from blurgen.generate import generate
from blurgen.parallel import handoff
from blurgen.parallel.cluster import DaskRunner
from blurgen.sources.highspeed import decode_window, discover, window_tasks

MEMORY_ROWS = {
    "joblib": "joblib, --workers 2",
    "dask": "Dask, local:2",
    "dask-unbounded": "Dask, local:2, no bound (reference)",
}


def make_tree(root, size, sequences, windows):
    try:
        blurgen(
            ["synthetic", "--out", str(root / "truth"), "--frames-out", str(root / "frames")]
            + ["--count", str(sequences), "--size", size, "--windows", str(windows), "--max-disp", "40"]
        )
    except SystemExit as e:
        if e.code:
            raise
    return [t for s in discover(root / "frames", "gopro") for t in window_tasks(s)]


def run(out, tasks, label=no_label, **where):
    generate(out, "bench", {}, {"train": tasks}, decode_window, shard_size=8, label=label, label_batch=2, **where)


def shared_kb():
    """Bytes (kB) of the result files in this process's handoff folders (/dev/shm: memory, no one's RSS)."""
    folders = Path(handoff.SHM).glob(f"{handoff.PREFIX}{os.getpid()}_*")
    return sum(f.stat().st_size for d in folders for f in d.iterdir() if f.is_file()) // 1024


def peaks(tasks, where, sleep):
    """Peak VmRSS above the start and peak handoff files (MB) of a run whose labeller sleeps ``sleep`` s
    per window; ``where``: joblib (2 workers), dask (local:2), or dask-unbounded (every task submitted)."""

    def slow_label(windows):
        time.sleep(sleep * len(windows))
        return no_label(windows)

    runner = DaskRunner("local:2") if where.startswith("dask") else None  # started before the baseline
    if where == "dask-unbounded":  # the reference: no bound on tasks submitted and not yet taken
        bounded = DaskRunner.run
        DaskRunner.run = lambda self, render, tasks, ahead=None: bounded(self, render, tasks, len(tasks))
    kwargs = {"scheduler": runner.connect().scheduler.address} if runner else {"workers": 2}
    base, peak, done = status_kb("VmRSS"), [0, 0], threading.Event()

    def sample():
        while not done.is_set():
            peak[:] = max(peak[0], status_kb("VmRSS")), max(peak[1], shared_kb())
            time.sleep(0.005)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    with tempfile.TemporaryDirectory() as out:
        run(Path(out), tasks, slow_label, **kwargs)
    done.set()
    watcher.join()
    if runner is not None:
        runner.close()
    return (peak[0] - base) / 1024, peak[1] / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="720x1280")
    ap.add_argument("--sequences", type=int, default=4)
    ap.add_argument("--windows", type=int, default=6, help="Windows per sequence.")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--sleep", type=float, default=0.25, help="Seconds the slow labeller spends per window.")
    ap.add_argument("--memory-run", nargs=3, metavar=("WHERE", "WINDOWS", "TREE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_run:  # a child of the memory table: one run, its peak on stdout
        where, n, tree = args.memory_run
        tasks = [t for s in discover(tree, "gopro") for t in window_tasks(s)]
        print(*(f"{mb:.1f}" for mb in peaks((tasks * 8)[: int(n)], where, args.sleep)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        tasks = make_tree(tmp, args.size, args.sequences, args.windows)
        print(
            f"tree: {len(tasks)} windows of 7 frames ({args.size}) in {time.perf_counter() - t:.1f} s; best of "
            f"{args.repeats}; a machine shared with other jobs: compare rows, not absolute figures\n"
        )
        runners, alternatives = [], {"joblib, 1 process (no workers)": {"workers": 1}}
        alternatives["joblib, 2 workers"] = {"workers": 2}
        for n in (1, 2):
            t = time.perf_counter()
            runner = DaskRunner(f"local:{n}")
            address = runner.connect().scheduler.address
            runners.append(runner)
            list(runner.run(decode_window, tasks[: 2 * n]))  # workers import the code before timing
            print(f"Dask LocalCluster of {n}: started and warm in {time.perf_counter() - t:.1f} s")
            alternatives[f"Dask LocalCluster, {n} worker{'s' * (n > 1)}"] = {"scheduler": address}
        run(tmp / "warm", tasks[:4], workers=2)
        rows = compare({k: (lambda out, w=w: run(out, tasks, **w)) for k, w in alternatives.items()}, args.repeats)
        for runner in reversed(runners):  # the first one started restores the log levels
            runner.close()
        wall0 = rows["joblib, 2 workers"][0]
        print(f"\n{'decode + average + write':<36} {'wall s':>7} {'windows/s':>10} {'vs joblib 2':>12} {'CPU s':>7}")
        for name, (wall, cpu) in rows.items():
            print(f"{name:<36} {wall:7.2f} {len(tasks) / wall:10.2f} {wall0 / wall:12.2f} {cpu:7.2f}")

        print(f"\npeak memory of results, labeller sleeping {args.sleep} s per window, 2 workers (MB):")
        print(f"{'runner':<40} {'windows':>8} {'main RSS':>9} {'/dev/shm':>9}")
        for where in ("joblib", "dask", "dask-unbounded"):
            for n in (16, 48, 96):
                child = [sys.executable, __file__, "--memory-run", where, str(n), str(tmp / "frames")]
                child += ["--sleep", str(args.sleep)]
                rss, shm = subprocess.run(child, capture_output=True, text=True, check=True).stdout.split()[-2:]
                print(f"{MEMORY_ROWS[where]:<40} {n:>8} {rss:>9} {shm:>9}")


if __name__ == "__main__":
    main()
