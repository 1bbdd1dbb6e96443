"""Fault injection (issue 16): kills at random points, concurrent writers of one folder, a full disk.

Every case ends the same way: one clear line where a run fails, nothing half-written, and a rerun of
the same command that finishes with the bytes of an uninterrupted run.
"""

import errno
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import blurgen, error_line, invoke

from blurgen.shards import writer as shard_writer
from blurgen.shards.verify import verify

ARGS = ["--count", "120", "--size", "64x64", "--max-disp", "6", "--shard-size", "3"]  # 40 shards
CLI = [sys.executable, "-c", "from blurgen.cli import main; main()", "synthetic"]


def hashes(out):
    return [(s["file"], s["xxh3_128"]) for s in json.loads((out / "manifest.json").read_text())["shards"]]


def leftovers(out):
    """Files of a writer that only an interrupted write leaves (partial shards, a partial manifest)."""
    return [p.name for p in out.iterdir() if p.name.startswith((".blurgen-partial-", ".manifest.partial"))]


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    from blurgen.cli import main

    out = tmp_path_factory.mktemp("whole") / "o"
    main(["synthetic", "--out", str(out), *ARGS])
    return out


def _wait_for(predicate, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def _shards_listed(out):
    try:
        return len(json.loads((out / "manifest.json").read_text())["shards"])
    except (OSError, ValueError):
        return 0


def test_kills_at_random_points_resume_to_the_uninterrupted_bytes(whole, tmp_path, capsys):
    out = tmp_path / "o"
    rng = np.random.default_rng(16)
    kills = 0
    for _ in range(3):  # each run is killed at a random moment, 1-5 shards after it started writing
        target = _shards_listed(out) + int(rng.integers(1, 6))  # 3 runs x 5 shards leave 25 of 40 to write
        proc = subprocess.Popen([*CLI, "--out", str(out), *ARGS], stderr=subprocess.DEVNULL)
        _wait_for(lambda: _shards_listed(out) >= target or proc.poll() is not None)  # noqa: B023
        time.sleep(rng.uniform(0, 0.01))  # within the next shard: anywhere in a sample or a rename
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        complete = json.loads((out / "manifest.json").read_text())["splits"]["train"]["complete"]
        code, _, err = blurgen(capsys, "verify", out)
        assert code == (0 if complete else 1) and ("is incomplete" in err) != complete  # said so, non-zero
    assert kills == 3, "a run finished before it could be killed"
    code, _, err = blurgen(capsys, "synthetic", "--out", out, *ARGS)
    assert code == 0, err
    assert hashes(out) == hashes(whole) and verify(out) == {} and leftovers(out) == []


def test_a_second_writer_is_refused_naming_the_first_and_a_kill_releases_the_lock(whole, tmp_path, capsys):
    out = tmp_path / "o"
    # the first writer: a process in the middle of writing this folder (it holds it as long as it lives)
    holder = """if True:
        import sys, time
        from blurgen.shards import ShardWriter
        writer = ShardWriter(sys.argv[1], "synthetic", {})
        print("writing", flush=True)
        time.sleep(600)
    """
    first = subprocess.Popen([sys.executable, "-c", holder, str(out)], stdout=subprocess.PIPE, text=True)
    assert first.stdout.readline() == "writing\n"
    for args in (ARGS, [*ARGS, "--seed", "3"]):  # the same command, and one of another config
        code, out_, err = blurgen(capsys, "synthetic", "--out", out, *args)
        assert code == 2 and err.count("\n") == 1, err
        assert f"another run is writing this folder (pid {first.pid}: -c {out})" in error_line(err)
    assert sorted(p.name for p in out.iterdir()) == [".blurgen.lock"]  # the refused runs wrote nothing
    first.send_signal(signal.SIGKILL)  # the kernel drops its lock with it
    first.wait()
    code, _, err = blurgen(capsys, "synthetic", "--out", out, *ARGS)
    assert code == 0, err
    assert hashes(out) == hashes(whole) and verify(out) == {} and leftovers(out) == []


@pytest.mark.parametrize("where", ["shard", "manifest"])
def test_a_full_disk_is_one_line_leaves_nothing_half_written_and_a_rerun_finishes(
    whole, tmp_path, capsys, monkeypatch, where
):
    out = tmp_path / "o"
    calls = {"n": 0}

    def full_after(fn, n):
        def inject(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] > n:
                raise OSError(errno.ENOSPC, "No space left on device")
            return fn(*args, **kwargs)

        return inject

    if where == "shard":  # h5py's write of the 8th sample fails
        monkeypatch.setattr(shard_writer.ShardWriter, "_append", full_after(shard_writer.ShardWriter._append, 7))
    else:  # the manifest after the 2nd shard cannot be saved
        monkeypatch.setattr(shard_writer.mf, "save", full_after(shard_writer.mf.save, 3))
    code, _, err = blurgen(capsys, "synthetic", "--out", out, *ARGS)
    line = error_line(err)
    assert code == 2 and "No space left on device" in line and "rerun the same command" in line
    named = out / (".blurgen-partial-train-00002.h5" if where == "shard" else "manifest.json")  # 3 a shard
    assert line.startswith(f"error: {named}: cannot write")
    assert leftovers(out) == [] and verify(out) == {}  # what the manifest lists is whole
    monkeypatch.undo()
    code, _, err = blurgen(capsys, "synthetic", "--out", out, *ARGS)
    assert code == 0, err
    assert hashes(out) == hashes(whole) and leftovers(out) == []


def test_train_and_eval_outputs_that_cannot_be_made_are_one_line(make_synthetic, tmp_path, capsys):
    from helpers import tiny_model_config

    from b2f import cli
    from b2f.checkpoint import save_model
    from b2f.model import build_model
    from blurgen.core.images import write_image

    shards = make_synthetic(2, size=(64, 64), test_count=1)
    (tmp_path / "file").write_text("in the way")
    save_model(tmp_path / "m.pt", build_model(tiny_model_config()), tiny_model_config())
    write_image(tmp_path / "x.png", np.zeros((64, 64, 3), np.uint8))
    for command, args, says in (
        (
            cli.train,
            [shards, "--out", tmp_path / "file" / "run", "--epochs", "1", "--crop", "64", "--workers", "0"],
            "Not a directory",
        ),
        (cli.predict, [tmp_path / "m.pt", tmp_path / "x.png", "-o", tmp_path / "file" / "out"], "cannot create"),
        (cli.evaluate, [tmp_path / "m.pt", shards, "--json", tmp_path / "file" / "r.json", "--workers", "0"], "cannot"),
    ):
        code, _, err = invoke(command, capsys, *args)
        line = error_line(err)
        assert code == 2 and f"{tmp_path / 'file'}" in line and says in line, err
    assert (tmp_path / "file").read_text() == "in the way"


def test_training_on_an_interrupted_folder_is_refused_in_one_line(tmp_path, capsys):
    from b2f import cli
    from blurgen.generate import generate
    from blurgen.sources.synthetic import render_task, synthetic_splits

    splits = synthetic_splits(6, seed=0, size=(64, 64), max_disp=6.0)

    def killed_at_4(task):
        if task.index == 4:
            raise KeyboardInterrupt
        return render_task(task)

    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path / "s", "t", {}, splits, killed_at_4, shard_size=2)
    try:
        cli.train([str(tmp_path / "s"), "--out", str(tmp_path / "run"), "--crop", "64", "--workers", "0"])
        code = 0
    except SystemExit as e:
        code = e.code
    line = error_line(capsys.readouterr().err)
    assert code == 2 and "split 'train' is incomplete (4 of 6 tasks generated" in line and "--allow-incomplete" in line
    assert not (tmp_path / "run").exists()
