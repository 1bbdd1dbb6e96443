"""Nothing lost, nothing mixed, nothing stuck (issue 16): the writer's lock, its own files only, the
stored writer options, incomplete folders, remaking damaged shards, manifests cut short."""

import json
import os

import pytest
from helpers import blurgen, error_line

from blurgen.core.errors import BlurgenError
from blurgen.generate import generate
from blurgen.shards import ShardReader, ShardWriter
from blurgen.shards import manifest as mf
from blurgen.shards.verify import verify
from blurgen.sources.synthetic import render_task, synthetic_splits

ARGS = ["--count", "6", "--size", "32x32", "--max-disp", "6", "--shard-size", "2"]


def hashes(out):
    return {s["file"]: s["xxh3_128"] for s in json.loads((out / "manifest.json").read_text())["shards"]}


def test_a_second_writer_is_refused_naming_the_holder(capsys, tmp_path):
    with ShardWriter(tmp_path, "synthetic", {"a": 1}):
        code, out, err = blurgen(capsys, "synthetic", "--out", tmp_path, *ARGS)
        assert code == 2
        line = error_line(err)
        assert f"pid {os.getpid()}" in line and "another run is writing this folder" in line
        assert not (tmp_path / "manifest.json").exists()
    code, out, err = blurgen(capsys, "synthetic", "--out", tmp_path, *ARGS)  # released: it goes ahead
    assert code == 0 and len(ShardReader(tmp_path)) == 6


def test_a_foreign_folder_is_refused_and_left_as_it_was(capsys, tmp_path):
    (tmp_path / "thesis.tex").write_text("mine")
    (tmp_path / ".draft.tmp").write_text("also mine")  # the old writer deleted any .*.tmp here
    code, _, err = blurgen(capsys, "synthetic", "--out", tmp_path, *ARGS)
    assert code == 2 and "holds no manifest.json" in error_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".draft.tmp", "thesis.tex"]


def test_a_shard_folder_keeps_the_users_own_hidden_files(capsys, tmp_path):
    code, *_ = blurgen(capsys, "synthetic", "--out", tmp_path, *ARGS)
    (tmp_path / ".notes.tmp").write_text("mine")
    (tmp_path / ".blurgen-partial-train-00009.h5").write_text("a killed run's")
    (tmp_path / ".train-00009.h5.tmp").write_text("a killed run's, of a writer before the lock")
    code, *_ = blurgen(capsys, "synthetic", "--out", tmp_path, *ARGS)
    assert code == 0 and (tmp_path / ".notes.tmp").read_text() == "mine"
    assert (
        not (tmp_path / ".blurgen-partial-train-00009.h5").exists() and not (tmp_path / ".train-00009.h5.tmp").exists()
    )


@pytest.mark.parametrize(
    "change, option",
    [(["--keep-frames"], "--keep-frames"), (["--shard-size", "3"], "--shard-size"), (["--seed", "4"], "--seed")],
)
def test_a_rerun_with_another_writing_option_is_refused_naming_it(capsys, tmp_path, change, option):
    assert blurgen(capsys, "synthetic", "--out", tmp_path, *ARGS)[0] == 0
    before = hashes(tmp_path)
    code, _, err = blurgen(capsys, "synthetic", "--out", tmp_path, *ARGS, *change)
    line = error_line(err)
    assert code == 2 and f"({option}: " in line and "another command or config" in line
    assert "; --" not in line  # only the option that differs is named
    assert hashes(tmp_path) == before


def test_an_older_folder_without_the_writer_keys_goes_on_and_checks_its_frames(capsys, tmp_path):
    # a folder made before keep_frames/shard_size were stored: its config is the source's options alone
    splits = synthetic_splits(4, seed=0, size=(32, 32), max_disp=6.0)
    generate(tmp_path, "t", {"k": 1}, {"train": splits["train"][:2]}, render_task, shard_size=2)
    m = mf.load(tmp_path)
    for key in ("keep_frames", "shard_size"):
        del m["config"][key]
    m["splits"]["train"].update(complete=False)
    del m["splits"]["train"]["tasks"]
    mf.save(tmp_path, m)
    with pytest.raises(BlurgenError, match="--keep-frames: not given there, given now"):
        generate(tmp_path, "t", {"k": 1}, splits, render_task, shard_size=2, keep_frames=True)
    generate(tmp_path, "t", {"k": 1}, splits, render_task, shard_size=2)
    assert len(ShardReader(tmp_path)) == 4 and mf.load(tmp_path)["config"] == {"k": 1}


class Stop(Exception):
    pass


def test_verify_says_an_interrupted_folder_is_incomplete(capsys, tmp_path):
    def render(task):
        if task.index == 3:
            raise Stop  # the run dies while task 3 renders: tasks 0-1 are a whole shard, 2 is lost
        return render_task(task)

    splits = synthetic_splits(6, 2, seed=0, size=(32, 32), max_disp=6.0)
    with pytest.raises(Stop):
        generate(tmp_path, "t", {}, splits, render, shard_size=2)
    assert verify(tmp_path) == {}  # what is there is sound …
    code, out, err = blurgen(capsys, "verify", tmp_path)
    assert code == 1 and out == ""  # … but the folder is not finished
    assert "split 'train' is incomplete: 2 of 6 tasks done, 2 samples" in err
    assert "split 'test' is incomplete: 0 of 2 tasks done" in err
    generate(tmp_path, "t", {}, splits, render_task, shard_size=2)
    code, out, err = blurgen(capsys, "verify", tmp_path)
    assert code == 0 and "every split complete" in out


def test_a_rerun_remakes_a_deleted_and_a_damaged_shard_to_the_same_bytes(capsys, tmp_path):
    assert blurgen(capsys, "synthetic", "--out", tmp_path, *ARGS)[0] == 0
    whole = hashes(tmp_path)
    (tmp_path / "train-00001.h5").unlink()
    victim = tmp_path / "train-00002.h5"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    code, _, err = blurgen(capsys, "synthetic", "--out", tmp_path, *ARGS)
    assert code == 0 and "train-00001.h5: missing or damaged" in err and "train-00002.h5: missing" in err
    assert hashes(tmp_path) == whole and verify(tmp_path) == {}
    assert "train-00000.h5" not in err


@pytest.mark.parametrize("cut", ["shards", "source", "shards[0].H", "splits.train.complete"])
def test_a_manifest_missing_a_key_is_one_line(capsys, tmp_path, cut):
    assert blurgen(capsys, "synthetic", "--out", tmp_path, *ARGS)[0] == 0
    m = json.loads((tmp_path / "manifest.json").read_text())
    *path, last = cut.replace("[0]", ".0").split(".")
    node = m
    for key in path:
        node = node[int(key)] if key.isdigit() else node[key]
    del node[last]
    (tmp_path / "manifest.json").write_text(json.dumps(m))
    for command in ("verify", "inspect"):
        code, _, err = blurgen(capsys, command, tmp_path)
        assert code == 2 and f"manifest lacks '{cut}'" in error_line(err)
