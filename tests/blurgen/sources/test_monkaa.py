"""`blurgen monkaa` on tiny trees in the real SceneFlow layout, written here from the formats' definitions."""

import json
import math
import shutil

import cv2
import numpy as np
import pytest
import torch
from helpers import blurgen, error_line

from blurgen.core.errors import BlurgenError
from blurgen.interp.superslomo import SuperSloMo
from blurgen.shards import ShardReader
from blurgen.sources.monkaa import allocate, list_pairs, split_pairs

H, W = 48, 64
YY, XX = np.mgrid[0:H, 0:W].astype(np.float64)


def texture(x, y):
    """A smooth RGB pattern, defined everywhere, so shifted frames have an exact value at every point."""
    v = (
        128
        + 60 * np.sin(2 * np.pi * x / 29 + 0.3) * np.cos(2 * np.pi * y / 23)
        + 40 * np.cos(2 * np.pi * (x + 2 * y) / 37)
    )
    return np.stack([v, 255 - v, 0.5 * v + 40], -1)


def shifted(d):
    """The texture moved by ``d`` = (dx, dy): a frame of a camera pan."""
    return texture(XX - d[0], YY - d[1])


def write_pfm(path, flow):
    """SceneFlow's PFM: 'PF' (3 channels, the third 0), negative scale = little-endian, rows bottom-to-top."""
    data = np.zeros(flow.shape[:2] + (3,), "<f4")
    data[..., :2] = flow
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PF\n%d %d\n-1.0\n" % (flow.shape[1], flow.shape[0]) + data[::-1].tobytes())


def write_png(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.clip(rgb + 0.5, 0, 255).astype(np.uint8)[..., ::-1])


def write_scene(root, scene, frames, fwd, bwd, cameras=("left", "right")):
    """``frames[t]`` RGB; ``fwd[t]`` = into_future of t; ``bwd[t]`` = into_past of t+1."""
    for cam in cameras:
        for t, img in enumerate(frames):
            write_png(root / "frames_cleanpass" / scene / cam / f"{t:04d}.png", img)
        flow = root / "optical_flow" / scene
        for t in range(len(frames) - 1):
            write_pfm(flow / "into_future" / cam / f"OpticalFlowIntoFuture_{t:04d}_{cam[0].upper()}.pfm", fwd[t])
            write_pfm(flow / "into_past" / cam / f"OpticalFlowIntoPast_{t + 1:04d}_{cam[0].upper()}.pfm", bwd[t])


PAN = (5.0, -3.0)  # px per frame: asymmetric, so a flipped sign or row order shows
FAST = (14.0, 6.0)  # s = 15.2


def const(d):
    return np.broadcast_to(np.float32(d), (H, W, 2))


def warp_field():
    """A flow whose u grows along x and v along y (a row flip or a sign error changes it); s = |(4.7, -2)|."""
    u = (-1.6 + 0.1 * XX).astype(np.float32)
    v = (-2.0 + 0.07 * YY).astype(np.float32)
    return np.stack([u, v], -1), np.stack([-u * 0.5, v + 1.0], -1)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("monkaa")
    write_scene(
        root,
        "pan",
        [shifted((k * PAN[0], k * PAN[1])) for k in range(3)],
        [const(PAN)] * 2,
        [const((-PAN[0], -PAN[1]))] * 2,
    )
    still = shifted((0, 0))
    write_scene(root, "still", [still, still], [const((0, 0))], [const((0, 0))])
    write_scene(root, "fast", [shifted((0, 0)), shifted(FAST)], [const(FAST)], [const((-FAST[0], -FAST[1]))])
    rng = np.random.default_rng(1)
    fwd, bwd = warp_field()
    write_scene(root, "warp", list(rng.uniform(0, 255, (2, H, W, 3))), [fwd], [bwd])
    return root


def samples(out, split=None):
    reader = ShardReader(out, split)
    return [
        reader.read(
            i,
            fields=("blurred", "flow_fwd", "flow_bwd", "valid", "first", "last")
            if "first" in reader.fields(i)
            else ("blurred", "flow_fwd", "flow_bwd", "valid"),
        )
        for i in range(len(reader))
    ]


def by_scene(out):
    return {(s["meta"]["scene"], s["meta"]["frames"][0]): s for s in samples(out)}


ALL = ("--split", "train=100", "--camera", "left")  # every pair of the left camera into one split


def test_labels_are_the_pfm_flows_and_n_follows_s(tree, tmp_path, capsys):
    code, out, err = blurgen(capsys, "monkaa", tree, "--out", tmp_path, *ALL, "--device", "cpu")
    assert code == 0, err
    got = by_scene(tmp_path)
    assert sorted(got) == [("fast", 0), ("pan", 0), ("pan", 1), ("still", 0), ("warp", 0)]
    fwd, bwd = warp_field()
    expect = {("warp", 0): (fwd, bwd), ("pan", 0): (const(PAN), -const(PAN)), ("fast", 0): (const(FAST), -const(FAST))}
    for key, (f, b) in expect.items():
        s = got[key]
        assert s["flow_fwd"].dtype == np.float32 and np.array_equal(s["flow_fwd"], f)
        assert np.array_equal(s["flow_bwd"], b)
        assert s["valid"].all() and s["blurred"].shape == (H, W, 3)
        smax = float(np.linalg.norm(f, axis=2).max())
        assert s["meta"]["s"] == pytest.approx(smax, abs=1e-3)
        assert s["meta"]["n_interp"] == max(math.ceil(smax), 5)
        assert s["meta"]["camera"] == "left" and s["meta"]["frames"] == [key[1], key[1] + 1]
    assert got[("warp", 0)]["meta"]["n_interp"] == 6  # s = 5.11
    assert got[("fast", 0)]["meta"]["n_interp"] == 16
    assert got[("still", 0)]["meta"]["n_interp"] == 5 and got[("still", 0)]["meta"]["s"] == 0
    assert "5 samples" in out and "pan: 2 pairs, 0 dropped" in err


def test_pairs_over_max_disp_are_dropped_and_recorded_per_scene(tree, tmp_path, capsys):
    code, out, err = blurgen(capsys, "monkaa", tree, "--out", tmp_path, *ALL, "--max-disp", "15")
    assert code == 0, err
    assert sorted(by_scene(tmp_path)) == [("pan", 0), ("pan", 1), ("still", 0), ("warp", 0)]
    skipped = json.loads((tmp_path / "manifest.json").read_text())["splits"]["train"]["skipped"]
    assert [s["reason"] for s in skipped] == ["max-disp: fast/left 0000-0001: s=15.2>15"]
    assert "fast: 1 pairs, 1 dropped" in err and "4 samples" in out


@pytest.mark.parametrize("gamma", [None, 2.2])
def test_zero_flow_pair_gives_the_frame_itself(tree, tmp_path, capsys, gamma):
    extra = ("--gamma", gamma) if gamma else ()
    code, _, err = blurgen(
        capsys, "monkaa", tree, "--out", tmp_path, *ALL, "--scenes", "still", "--keep-frames", *extra
    )
    assert code == 0, err
    (s,) = samples(tmp_path)
    frame = cv2.imread(str(tree / "frames_cleanpass/still/left/0000.png"))[..., ::-1]
    assert np.array_equal(s["blurred"], frame) and np.array_equal(s["first"], frame)


@pytest.mark.parametrize("gamma", [None, 2.2])
def test_translation_pair_gives_the_blur_of_that_translation(tree, tmp_path, capsys, gamma):
    extra = ("--gamma", gamma) if gamma else ()
    code, _, err = blurgen(capsys, "monkaa", tree, "--out", tmp_path, *ALL, "--scenes", "pan", *extra)
    assert code == 0, err
    for (_, t), s in by_scene(tmp_path).items():
        n = s["meta"]["n_interp"]
        assert n == 6  # ceil(|(5, -3)|) = ceil(5.83)
        frames = np.stack([shifted(((t + k / (n + 1)) * PAN[0], (t + k / (n + 1)) * PAN[1])) for k in range(n + 2)])
        if gamma:
            expect = 255 * ((np.clip(frames, 0, 255) / 255) ** gamma).mean(0) ** (1 / gamma)
        else:
            expect = frames.mean(0)
        err_px = np.abs(s["blurred"] - expect)
        # Bilinear resampling of the texture and uint8 frames cost well under a level on average;
        # the corners, seen in neither end frame at some times, are excluded from the maximum.
        assert err_px.mean() < 0.6
        assert err_px[4:-4, 6:-6].max() < 2.5
        wrong = np.stack([shifted(((t + k / (n + 1)) * PAN[0], (t - k / (n + 1)) * PAN[1])) for k in range(n + 2)])
        assert np.abs(s["blurred"] - wrong.mean(0)).mean() > 3 * err_px.mean()  # the test can tell a sign error


def copy_tree(tree, dst, scenes=("pan", "still")):
    for scene in scenes:
        for top in ("frames_cleanpass", "optical_flow"):
            shutil.copytree(tree / top / scene, dst / top / scene)
    return dst


# case: (file, how to damage it, the pairs of scene pan it spoils)
DAMAGE = {
    "truncated into_future PFM": (
        "optical_flow/pan/into_future/left/OpticalFlowIntoFuture_0001_L.pfm",
        lambda p: p.write_bytes(p.read_bytes()[:-100]),
        [1],
    ),
    "missing into_past PFM": (
        "optical_flow/pan/into_past/left/OpticalFlowIntoPast_0002_L.pfm",
        lambda p: p.unlink(),
        [1],
    ),
    "corrupt PNG": (
        "frames_cleanpass/pan/left/0002.png",
        lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(50)),
        [1],
    ),
    "missing PNG": ("frames_cleanpass/pan/left/0001.png", lambda p: p.unlink(), [0, 1]),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_bad_file_is_one_line_naming_it_or_a_recorded_skip(tree, tmp_path, capsys, case):
    root = copy_tree(tree, tmp_path / "root")
    rel, damage, spoilt = DAMAGE[case]
    damage(root / rel)
    code, out, err = blurgen(capsys, "monkaa", root, "--out", tmp_path / "fail", *ALL)
    assert code == 2 and out == ""
    line = error_line(err)
    assert str(root / rel) in line and "--on-error skip" in line
    code, out, err = blurgen(capsys, "monkaa", root, "--out", tmp_path / "skip", *ALL, "--on-error", "skip")
    assert code == 0, err
    assert sorted(by_scene(tmp_path / "skip")) == sorted(
        [("pan", t) for t in (0, 1) if t not in spoilt] + [("still", 0)]
    )
    skipped = json.loads((tmp_path / "skip/manifest.json").read_text())["splits"]["train"]["skipped"]
    assert [s["reason"].split(str(root / rel))[0] for s in skipped] == [
        f"unreadable: pan/left {t:04d}-{t + 1:04d}: " for t in spoilt
    ]
    assert f"pan: 2 pairs, 0 dropped (s > max-disp), {len(spoilt)} unreadable" in err


def test_default_split_shrinks_in_proportion_and_is_deterministic(tree, tmp_path, capsys):
    pairs = list_pairs(tree, cameras=("left", "right"))
    assert len(pairs) == 10
    a = split_pairs(pairs, {"train": 10000, "test": 1200}, seed=0)
    assert {k: len(v) for k, v in a.items()} == {"train": 9, "test": 1}  # 10 * 10000/11200 = 8.9
    assert a == split_pairs(pairs, {"train": 10000, "test": 1200}, seed=0)
    assert not set(a["train"]) & set(a["test"])
    assert any(split_pairs(pairs, {"train": 10000, "test": 1200}, seed=s)["test"] != a["test"] for s in range(1, 6))
    assert allocate({"train": 10000, "test": 1200}, 2) == {"train": 1, "test": 1}  # every split gets one
    assert allocate({"train": 10000, "test": 1200}, 20000) == {"train": 10000, "test": 1200}
    limited = split_pairs(pairs, {"train": 10000, "test": 1200}, seed=0, limit=4)
    assert {k: len(v) for k, v in limited.items()} == {"train": 3, "test": 1}
    by_scene_ = split_pairs(pairs, {"train": 10000, "test": 1200}, seed=0, test_scenes=["pan"])
    assert {p.scene for p in by_scene_["test"]} == {"pan"} and len(by_scene_["test"]) == 4
    assert len(by_scene_["train"]) == 6 and "pan" not in {p.scene for p in by_scene_["train"]}
    # the command with its defaults (both cameras): a train and a test split on this tiny tree
    code, _, err = blurgen(capsys, "monkaa", tree, "--out", tmp_path)
    assert code == 0, err
    assert len(ShardReader(tmp_path, "train")) == 9 and len(ShardReader(tmp_path, "test")) == 1


def test_root_may_be_one_scene_folder(tree, tmp_path, capsys):
    for folder in ("frames_cleanpass/pan", "optical_flow/pan"):
        pairs = list_pairs(tree / folder, cameras=("left",))
        assert [(p.scene, p.t) for p in pairs] == [("pan", 0), ("pan", 1)]
    with pytest.raises(BlurgenError, match="frames_finalpass"):
        list_pairs(tree, pass_="final")
    code, out, err = blurgen(capsys, "monkaa", tree / "frames_cleanpass", "--out", tmp_path)
    assert code == 2 and err.count("\n") == 1 and "not a Monkaa/SceneFlow folder" in error_line(err)
    code, _, err = blurgen(capsys, "monkaa", tree, "--out", tmp_path, "--scenes", "pan,nope")
    assert code == 2 and err.count("\n") == 1 and "no scene nope" in error_line(err)


def test_two_workers_give_the_same_shards_and_the_same_error_line(tree, tmp_path, capsys):
    args = ("--split", "train=100", "--camera", "both", "--scenes", "pan,warp")
    assert blurgen(capsys, "monkaa", tree, "--out", tmp_path / "w1", *args)[0] == 0
    assert blurgen(capsys, "monkaa", tree, "--out", tmp_path / "w2", *args, "--workers", 2)[0] == 0
    files = [json.loads((tmp_path / w / "manifest.json").read_text())["shards"] for w in ("w1", "w2")]
    assert [s["xxh3_128"] for s in files[0]] == [s["xxh3_128"] for s in files[1]] and files[0][0]["samples"] == 6
    root = copy_tree(tree, tmp_path / "root")
    bad = root / DAMAGE["corrupt PNG"][0]
    DAMAGE["corrupt PNG"][1](bad)
    code, _, err = blurgen(capsys, "monkaa", root, "--out", tmp_path / "w3", *args[:2], "--workers", 2)
    assert code == 2 and str(bad) in error_line(err)


def test_superslomo_needs_a_fitting_checkpoint_and_runs_with_one(tree, tmp_path, capsys):
    code, _, err = blurgen(capsys, "monkaa", tree, "--out", tmp_path / "a", "--interp", "superslomo")
    assert code == 2 and err.count("\n") == 1 and "--ckpt" in err
    bad = tmp_path / "bad.ckpt"
    torch.save({"state_dictFC": {"conv1.weight": torch.zeros(32, 6, 7, 7)}, "state_dictAT": {}}, bad)
    code, _, err = blurgen(capsys, "monkaa", tree, "--out", tmp_path / "b", "--interp", "superslomo", "--ckpt", bad)
    assert code == 2 and err.count("\n") == 1 and "state_dictFC" in err and str(bad) in err
    assert not (tmp_path / "b").exists()  # refused before anything is written
    torch.manual_seed(0)
    model = SuperSloMo()
    good = tmp_path / "good.ckpt"
    torch.save({"state_dictFC": model.flow_comp.state_dict(), "state_dictAT": model.arb_time.state_dict()}, good)
    code, _, err = blurgen(
        capsys,
        "monkaa",
        tree,
        "--out",
        tmp_path / "c",
        *ALL,
        "--scenes",
        "still",
        "--interp",
        "superslomo",
        "--ckpt",
        good,
        "--device",
        "cpu",
    )
    assert code == 0, err
    (s,) = samples(tmp_path / "c")
    assert s["blurred"].shape == (H, W, 3) and s["meta"]["interp"] == "superslomo" and s["meta"]["n_interp"] == 5
    assert np.array_equal(s["flow_fwd"], const((0, 0)))


def test_nan_in_an_into_past_pfm_is_invalid_not_zero_flow(tree, tmp_path, capsys):
    root = tmp_path / "root"
    shutil.copytree(tree, root)
    bwd = -const(PAN).copy()
    bwd[5:9, 10:20] = np.nan  # SceneFlow marks unknown vectors NaN
    path = root / "optical_flow/pan/into_past/left/OpticalFlowIntoPast_0001_L.pfm"
    write_pfm(path, bwd)
    code, out, err = blurgen(capsys, "monkaa", root, "--out", tmp_path / "o", *ALL, "--scenes", "pan")
    assert code == 0, err
    s = by_scene(tmp_path / "o")[("pan", 0)]
    expect = np.ones((H, W), np.uint8)
    expect[5:9, 10:20] = 0
    assert np.array_equal(s["valid"], expect) and np.array_equal(s["flow_bwd"][5:9, 10:20], np.zeros((4, 10, 2)))
    assert by_scene(tmp_path / "o")[("pan", 1)]["valid"].all()
