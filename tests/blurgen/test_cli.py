import json

import numpy as np
import pytest
from helpers import blurgen, error_line

from blurgen.blur import average_frames
from blurgen.core.device import resolve_device
from blurgen.core.errors import BlurgenError
from blurgen.core.images import read_image
from blurgen.shards import ShardReader


@pytest.mark.parametrize(
    "args, says",
    [
        (["synthetic", "--out", "{tmp}/o", "--size", "12"], "'12' is not HxW"),
        (["synthetic", "--out", "{tmp}/o", "--count", "0"], "--count"),
        (["synthetic", "--out", "{tmp}/o", "--textures", "{tmp}"], "no images"),
        (["synthetic", "--out", "{tmp}/o", "--min-disp", "20", "--max-disp", "10"], "--min-disp 20.0 exceeds"),
        (["inspect", "{tmp}"], "no shard manifest"),
        (["verify", "{tmp}/missing"], "no shard manifest"),
        (["nonsense"], "No such command"),
    ],
)
def test_bad_input_gives_one_line_and_writes_nothing(run, tmp_path, args, says):
    p = run("blurgen", *[a.format(tmp=tmp_path) for a in args])
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith("error: ") and p.stderr.count("\n") == 1 and says in p.stderr, p.stderr
    assert p.stdout == "" and not (tmp_path / "o" / "manifest.json").exists()


def test_frames_out_tree_matches_its_truth_shards(run, tmp_path):
    frames, truth = tmp_path / "frames", tmp_path / "truth"
    run(
        "blurgen",
        "synthetic",
        "--out",
        truth,
        "--frames-out",
        frames,
        "--count",
        "2",
        "--test-count",
        "1",
        "--size",
        "40x56",
        "--windows",
        "3",
        "--max-disp",
        "8",
        check=True,
    )
    seqs = sorted(p.relative_to(frames).as_posix() for p in frames.glob("*/*"))
    assert seqs == ["test/synthetic_000002", "train/synthetic_000000", "train/synthetic_000001"]
    assert sorted(p.name for p in (frames / seqs[1]).iterdir()) == [f"{i:06d}.png" for i in range(1, 22)]
    reader = ShardReader(truth, "train")
    assert len(reader) == 6
    s = reader.read(4)
    assert s["meta"]["sequence"] == "synthetic_000001" and s["meta"]["frames"] == list(range(8, 15))
    window = np.stack([read_image(frames / "train/synthetic_000001" / f"{i:06d}.png") for i in range(8, 15)])
    assert np.array_equal(s["blurred"], average_frames(window))
    assert all(reader.meta(i)["s"] <= 8 for i in range(len(reader)))


def test_inspect_summarises_and_draws(run, make_synthetic, tmp_path):
    root = make_synthetic(6, test_count=2)
    p = run("blurgen", "inspect", root, "--json", "--sheet", tmp_path / "sheet.png", "--rows", "3", check=True)
    info = json.loads(p.stdout)
    assert info["samples"] == 8 and info["splits"]["train"]["samples"] == 6
    assert info["splits"]["test"]["sizes"] == {"64x64": 2}
    assert 0 < info["flow_fwd_magnitude_px"]["max"] <= 12
    sheet = read_image(tmp_path / "sheet.png")
    assert sheet.shape == (3 * 258, 3 * 256, 3)  # 3 rows of blurred | fwd | bwd tiles, 2 px gaps


def test_average_frames_rounds_exactly():
    frames = np.array([[[[0, 1, 2]]], [[[1, 1, 3]]]], np.uint8)  # means 0.5, 1, 2.5
    assert average_frames(frames).ravel().tolist() == [1, 1, 3]
    assert average_frames(np.full((7, 1, 1, 3), 200, np.uint8), gamma=2.2).ravel().tolist() == [200] * 3
    dark_bright = np.array([[[[0] * 3]], [[[255] * 3]]], np.uint8)
    assert average_frames(dark_bright, gamma=2.2).ravel()[0] == round(255 * 0.5 ** (1 / 2.2))


def test_device_resolution(monkeypatch):
    """auto is CUDA exactly when torch sees a GPU (both cases forced); cuda without one is an error."""
    import torch

    for present, expected in ((True, "cuda"), (False, "cpu")):
        monkeypatch.setattr(torch.cuda, "is_available", lambda present=present: present)
        assert resolve_device("auto") == torch.device(expected)
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(BlurgenError, match="no CUDA device"):
        resolve_device("cuda")  # torch.cuda.is_available() is still forced False here
    with pytest.raises(BlurgenError, match="no CUDA device"):
        resolve_device("cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(BlurgenError, match="unknown device"):
        resolve_device("tpu")


@pytest.mark.parametrize(
    "args, option",
    [
        (["synthetic", "--gamma", "0"], "--gamma"),
        (["synthetic", "--gamma", "-1"], "--gamma"),
        (["synthetic", "--max-disp", "-5"], "--max-disp"),
        (["synthetic", "--max-disp", "0"], "--max-disp"),
        (["monkaa", "{tmp}", "--gamma", "-2.2"], "--gamma"),
        (["highspeed", "{tmp}", "--fb-threshold", "-1"], "--fb-threshold"),
        (["highspeed", "{tmp}", "--max-disp", "-5"], "--max-disp"),
    ],
)
def test_numeric_options_out_of_range_are_one_line(capsys, tmp_path, args, option):
    code, out, err = blurgen(capsys, *[a.format(tmp=tmp_path) for a in args], "--out", tmp_path / "o")
    assert code == 2 and out == "" and f"Invalid value for '{option}'" in error_line(err)
    assert err.count("\n") == 1 and not (tmp_path / "o").exists()
