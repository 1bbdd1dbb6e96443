"""`--part i/N` runs joined by `blurgen merge`: one run's samples in its order, or one line and nothing written."""

import errno
import json
import os
import shutil

import pytest
from helpers import blurgen, error_line

from blurgen.core.errors import BlurgenError
from blurgen.shards import ShardReader
from blurgen.shards.manifest import part_range
from blurgen.sources.synthetic import SyntheticOptions, make, make_synthetic

OPTIONS = SyntheticOptions(count=5, test_count=2, size=(32, 48), max_disp=10.0)
ARGS = ["synthetic", "--count", 5, "--test-count", 2, "--size", "32x48", "--max-disp", 10, "--shard-size", 3]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One whole run, and the same command as three parts: train's 5 tasks split 1 + 2 + 2 (a shard of 3
    in the whole run spans the first slice boundary), test's 2 tasks 0 + 1 + 1 (part 0 has none)."""
    root = tmp_path_factory.mktemp("parts")
    make_synthetic(root / "whole", OPTIONS, shard_size=3)
    for i in range(3):
        make_synthetic(root / f"part{i}", OPTIONS, part=(i, 3), shard_size=3)
    return root


def samples(out, split=None):
    r = ShardReader(out, split)
    return [r.read(i, fields=r.fields(i)) for i in range(len(r))]


def assert_same_samples(a, b, split=None):
    sa, sb = samples(a, split), samples(b, split)
    assert len(sa) == len(sb) > 0
    for x, y in zip(sa, sb):
        assert x.keys() == y.keys() and x["meta"] == y["meta"]
        assert all(x[k].tobytes() == y[k].tobytes() for k in x.keys() - {"meta"})


def manifest(out):
    return json.loads((out / "manifest.json").read_text())


def test_slices_are_contiguous_disjoint_and_cover_the_list():
    for n in range(12):
        for count in range(1, 6):
            ranges = [part_range(n, i, count) for i in range(count)]
            assert ranges[0][0] == 0 and ranges[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
            assert max(b - a for a, b in ranges) - min(b - a for a, b in ranges) <= 1  # even shares


def test_merged_parts_read_verify_and_resume_as_the_whole_run(runs, tmp_path, capsys):
    parts = [runs / f"part{i}" for i in (2, 0, 1)]  # any order
    code, out, err = blurgen(capsys, "merge", *parts, "--out", tmp_path / "merged")
    assert code == 0, err
    merged = tmp_path / "merged"
    assert "7 samples in 5 shards hard-linked from 3 parts" in out
    assert_same_samples(merged, runs / "whole")
    for split in ("train", "test"):
        assert_same_samples(merged, runs / "whole", split)
    m, whole = manifest(merged), manifest(runs / "whole")
    assert m["config"] == whole["config"] and m["splits"] == whole["splits"] and "part" not in m
    assert [(e["split"], e["task_start"], e["task_end"]) for e in m["shards"]] == [
        ("train", 0, 1),
        ("train", 1, 3),
        ("train", 3, 5),
        ("test", 0, 1),
        ("test", 1, 2),
    ]
    linked = {os.stat(runs / "part1" / "train-00000.h5").st_ino, os.stat(merged / "train-00001.h5").st_ino}
    assert len(linked) == 1  # a hard link: the part keeps its file

    assert blurgen(capsys, "verify", merged)[0] == 0
    before = {p.name: p.read_bytes() for p in merged.glob("*.h5")}
    code, out, err = blurgen(capsys, *ARGS, "--out", merged)  # the whole run's command: nothing left to do
    assert code == 0 and {p.name: p.read_bytes() for p in merged.glob("*.h5")} == before
    (merged / "train-00001.h5").unlink()  # a lost shard is made again from its task range
    assert blurgen(capsys, *ARGS, "--out", merged)[0] == 0
    assert {p.name: p.read_bytes() for p in merged.glob("*.h5")} == before
    assert blurgen(capsys, "verify", runs / "part1")[0] == 0  # and the part is as it was


def test_copy_makes_files_of_their_own(runs, tmp_path, capsys):
    code, out, _ = blurgen(capsys, "merge", *[runs / f"part{i}" for i in range(3)], "--out", tmp_path / "m", "--copy")
    assert code == 0 and "copied" in out
    assert os.stat(tmp_path / "m" / "train-00001.h5").st_ino != os.stat(runs / "part1" / "train-00000.h5").st_ino
    assert_same_samples(tmp_path / "m", runs / "whole")


def test_a_part_folder_keeps_its_slice(runs):
    with pytest.raises(BlurgenError, match="holds part 0/3 of the task lists, not part 1/3 of the task lists"):
        make_synthetic(runs / "part0", OPTIONS, part=(1, 3), shard_size=3)
    with pytest.raises(BlurgenError, match="holds part 0/3 of the task lists, not the whole task lists"):
        make_synthetic(runs / "part0", OPTIONS, shard_size=3)


@pytest.fixture(scope="module")
def bad_parts(tmp_path_factory):
    """Part 1 of another seed; and, one sample a shard, parts 0 and 2 and a part 1 whose run died at task 2."""
    root = tmp_path_factory.mktemp("bad")
    make_synthetic(root / "seed1", SyntheticOptions(**{**OPTIONS.__dict__, "seed": 1}), part=(1, 3), shard_size=3)
    for i in (0, 2):
        make_synthetic(root / f"part{i}", OPTIONS, part=(i, 3), shard_size=1)
    render = make.render_task

    def dies_at_2(task):
        if task.index == 2:
            raise RuntimeError("killed")
        return render(task)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(make, "render_task", dies_at_2)
        with pytest.raises(RuntimeError, match="killed"):
            make_synthetic(root / "killed", OPTIONS, part=(1, 3), shard_size=1)
    return root


@pytest.mark.parametrize(
    ("given", "says"),
    [
        (
            ["part0", "bad/seed1", "part2"],
            "seed1: made by another command or config than {runs}/part0 (--seed: 0 there, 1",
        ),
        (["part0", "part2"], "slice 1/3 missing (1 of 3 parts absent)"),
        (["part0", "part1", "part1", "part2"], "part1: slice 1/3 given twice"),
        (
            ["bad/part0", "bad/killed", "bad/part2"],
            "train' is incomplete: 1 of its 2 tasks (1-3) done, 1 samples); rerun its command to finish it",
        ),
        (["part0", "whole"], "whole: a whole run's folder, not a part"),
    ],
)
def test_merge_refuses_parts_that_are_not_one_whole_run(runs, bad_parts, tmp_path, capsys, given, says):
    folders = [bad_parts / name[4:] if name.startswith("bad/") else runs / name for name in given]
    code, _, err = blurgen(capsys, "merge", *folders, "--out", tmp_path / "merged")
    assert code == 2 and says.format(runs=runs) in error_line(err)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a staging folder


def test_merge_writes_only_into_a_new_or_empty_folder(runs, tmp_path, capsys):
    (tmp_path / "merged").mkdir()
    (tmp_path / "merged" / "mine.txt").write_text("the user's")
    code, _, err = blurgen(capsys, "merge", *[runs / f"part{i}" for i in range(3)], "--out", tmp_path / "merged")
    assert code == 2 and "exists and is not an empty folder" in error_line(err)
    assert [p.name for p in (tmp_path / "merged").iterdir()] == ["mine.txt"]
    code, _, err = blurgen(capsys, "synthetic", "--part", "3/3", "--out", tmp_path / "x")
    assert code == 2 and "expected i/N with 0 <= i < N" in err and not (tmp_path / "x").exists()


def test_a_link_that_fails_midway_leaves_nothing_and_points_to_copy(runs, tmp_path, capsys, monkeypatch):
    link, made = os.link, []

    def link_once(src, dst):  # the second shard lies on another filesystem
        if made:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        made.append(dst)
        link(src, dst)

    monkeypatch.setattr(os, "link", link_once)
    code, _, err = blurgen(capsys, "merge", *[runs / f"part{i}" for i in range(3)], "--out", tmp_path / "merged")
    assert code == 2 and "cannot hard-link it into --out (another filesystem); pass --copy" in error_line(err)
    assert len(made) == 1 and list(tmp_path.iterdir()) == []


def test_a_part_killed_mid_way_and_rerun_merges_into_the_whole_run(runs, bad_parts, tmp_path, capsys):
    shutil.copytree(bad_parts, tmp_path / "bad")
    make_synthetic(tmp_path / "bad" / "killed", OPTIONS, part=(1, 3), shard_size=1)  # the rerun goes on
    parts = [tmp_path / "bad" / name for name in ("part0", "killed", "part2")]
    assert blurgen(capsys, "merge", *parts, "--out", tmp_path / "merged")[0] == 0
    assert_same_samples(tmp_path / "merged", runs / "whole")  # one sample a shard there, three here
