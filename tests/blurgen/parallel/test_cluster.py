"""Generation on a Dask cluster: the same bytes as a local run, bounded, and whole after a lost worker or a kill."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import dask
import numpy as np
import pytest
from helpers import blurgen, error_line

from blurgen.core.errors import BlurgenError
from blurgen.generate import generate
from blurgen.labels import DIS
from blurgen.parallel import cluster, resolve_scheduler, task_runner
from blurgen.shards import ShardReader
from blurgen.shards.writer import lock_folder
from blurgen.sources.highspeed import HighspeedOptions, make_highspeed
from blurgen.sources.synthetic import SyntheticOptions, make_synthetic, render_task, synthetic_splits

SYNTHETIC = SyntheticOptions(count=7, test_count=2, size=(32, 48), max_disp=10.0)


@pytest.fixture(scope="module")
def address():
    """A cluster of two worker processes as `--scheduler local:2` starts it, started once: runs pass its
    address as --scheduler (each local:2 run would start its own)."""
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    runner = cluster.DaskRunner("local:2")
    try:
        yield runner.connect().scheduler.address
    finally:
        runner.close()


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The same synthetic folder made in this process: the reference every cluster run must equal."""
    out = tmp_path_factory.mktemp("local") / "shards"
    make_synthetic(out, SYNTHETIC, shard_size=3)
    return out


def samples(out):
    r = ShardReader(out)
    return [r.read(i, fields=r.fields(i)) for i in range(len(r))]


def assert_same_samples(a, b):
    sa, sb = samples(a), samples(b)
    assert len(sa) == len(sb) > 0
    for x, y in zip(sa, sb):
        assert x.keys() == y.keys() and x["meta"] == y["meta"]
        for k in x.keys() - {"meta"}:
            assert x[k].dtype == y[k].dtype and x[k].tobytes() == y[k].tobytes(), k


def same_files(a, b):
    """Every shard file and the manifest's shard list byte-equal (HDF5 keeps no timestamps)."""
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
    return ma["shards"] == mb["shards"] and all(
        (a / e["file"]).read_bytes() == (b / e["file"]).read_bytes() for e in ma["shards"]
    )


def test_two_dask_workers_make_the_same_synthetic_shards_as_one_process(address, local_run, tmp_path):
    made = make_synthetic(tmp_path / "dask", SYNTHETIC, scheduler=address, shard_size=3)
    assert made.samples == 9
    assert_same_samples(tmp_path / "dask", local_run)
    assert same_files(tmp_path / "dask", local_run)


@pytest.fixture(scope="module")
def gopro(tmp_path_factory):
    root = tmp_path_factory.mktemp("gopro")
    options = SyntheticOptions(count=2, test_count=1, size=(32, 48), max_disp=6.0, windows=2, window=3)
    make_synthetic(root / "truth", SyntheticOptions(**{**options.__dict__, "frames_out": str(root / "frames")}))
    return root / "frames"


def test_highspeed_on_dask_workers_equals_a_local_run(address, gopro, tmp_path):
    options = HighspeedOptions(root=str(gopro), window=3, flow=DIS, max_disp=6.0)
    make_highspeed(tmp_path / "local", options, device="cpu", batch=2, shard_size=2)
    made = make_highspeed(tmp_path / "dask", options, scheduler=address, device="cpu", batch=2, shard_size=2)
    assert made.samples == 6  # 3 sequences of 6 frames, 2 windows each
    assert_same_samples(tmp_path / "dask", tmp_path / "local")
    assert same_files(tmp_path / "dask", tmp_path / "local")


class DiesOnce:
    """``render_task``, except that the worker running task ``index`` dies the first time (os._exit)."""

    def __init__(self, marker, index):
        self.marker, self.index = str(marker), index

    def __call__(self, task):
        if task.index == self.index and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(1)
        return render_task(task)


def test_a_worker_killed_mid_run_changes_no_sample(address, local_run, tmp_path):
    splits = synthetic_splits(7, 2, seed=0, size=(32, 48), max_disp=10.0)
    reference = tmp_path / "reference"
    generate(reference, "synthetic", {}, splits, render_task, shard_size=3, extra_fields=("moving",))
    die = DiesOnce(tmp_path / "died", 4)
    generate(tmp_path / "dask", "synthetic", {}, splits, die, shard_size=3, scheduler=address, extra_fields=("moving",))
    assert (tmp_path / "died").exists()  # a worker did die
    assert_same_samples(tmp_path / "dask", reference)
    assert same_files(tmp_path / "dask", reference)


def test_a_run_killed_mid_way_and_rerun_ends_with_the_same_shards(address, local_run, tmp_path):
    out = tmp_path / "killed"
    args = ["synthetic", "--out", out, "--count", 7, "--test-count", 2, "--size", "32x48", "--max-disp", 10]
    args += ["--shard-size", 3, "--scheduler", address]
    code = f"import time, blurgen.generate as g; from blurgen.cli import main; main({list(map(str, args))!r})"
    # each sample waits 0.3 s before the writer takes it, so the kill lands mid-run
    code = code.replace(
        "; from", "; w = g.ShardWriter.add; g.ShardWriter.add = lambda *a: time.sleep(0.3) or w(*a); from"
    )
    run = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):  # the first shard is listed: the run is mid-way
            if (out / "manifest.json").exists() and json.loads((out / "manifest.json").read_text())["shards"]:
                break
            time.sleep(0.05)
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait()
    manifest = json.loads((out / "manifest.json").read_text())
    assert not manifest["splits"]["train"]["complete"]
    make_synthetic(out, SYNTHETIC, scheduler=address, shard_size=3)
    assert same_files(out, local_run)


def test_a_second_run_on_the_folder_is_refused_before_any_cluster_starts(tmp_path, monkeypatch):
    (tmp_path / "out").mkdir()
    monkeypatch.setattr(cluster.DaskRunner, "connect", lambda self: pytest.fail("started a cluster"))
    with lock_folder(tmp_path / "out"):  # another run holds the folder
        with pytest.raises(BlurgenError, match="another run is writing this folder"):
            make_synthetic(tmp_path / "out", SYNTHETIC, scheduler="local:2")


def test_the_environment_names_the_scheduler_and_bad_choices_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(cluster.ENV, "tcp://10.0.0.1:8786")
    assert resolve_scheduler() == "tcp://10.0.0.1:8786" and resolve_scheduler("local:3") == "local:3"
    args = ["synthetic", "--count", 2, "--size", "32x48"]
    cases = [
        (["--frames-out", tmp_path / "frames"], "--frames-out with --scheduler tcp://10.0.0.1:8786"),
        (["--workers", 2], "--workers 2 with --scheduler tcp://10.0.0.1:8786"),
        (["--scheduler", "local:0"], "expected local:N with N >= 1"),
    ]
    for extra, says in cases:
        code, _, err = blurgen(capsys, *args, "--out", tmp_path / "out", *extra)
        assert code == 2 and says in error_line(err)
        assert not (tmp_path / "out").exists() and not (tmp_path / "frames").exists()
    monkeypatch.delenv(cluster.ENV)
    assert resolve_scheduler() is None


def test_an_unreachable_scheduler_is_one_line_and_nothing_is_written(tmp_path, capsys):
    with dask.config.set({"distributed.comm.timeouts.connect": "0.5s"}):
        code, _, err = blurgen(capsys, "synthetic", "--out", tmp_path / "out", "--scheduler", "tcp://127.0.0.1:1")
    assert code == 2 and "--scheduler tcp://127.0.0.1:1: cannot reach a Dask scheduler" in error_line(err)
    assert not (tmp_path / "out").exists()


def slow_square(i):
    Path(os.environ["BLURGEN_TEST_STARTED"], str(i)).touch()
    return {"x": np.full((300, 300), i, np.int64), "meta": {"i": i}}  # 720 KB: through shared memory


def test_results_come_back_in_order_with_at_most_the_bound_in_flight(address, tmp_path, monkeypatch):
    from distributed import Client

    with Client(address) as client:  # the workers' environment says where to mark a started task
        client.run(lambda d: os.environ.__setitem__("BLURGEN_TEST_STARTED", d), str(tmp_path))
    with task_runner(scheduler=address) as run:
        for taken, result in enumerate(run(slow_square, list(range(14)), ahead=2), 1):
            assert result["meta"] == {"i": taken - 1} and (result["x"] == taken - 1).all()
            time.sleep(0.2)  # a slow consumer: the workers could run far ahead
            started = len(list(tmp_path.iterdir()))
            assert started <= taken + 4  # 2 workers: max(ahead, 2 x threads) not yet taken
    assert len(list(tmp_path.iterdir())) == 14


def fails_at_3(i):
    if i == 3:
        raise BlurgenError(f"frame {i}: unreadable")
    return {"meta": {"i": i}}


def test_a_workers_error_reaches_the_main_process_as_it_was_raised(address):
    with task_runner(scheduler=address) as run, pytest.raises(BlurgenError, match="^frame 3: unreadable$"):
        list(run(fails_at_3, list(range(8))))
