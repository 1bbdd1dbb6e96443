"""Gong et al.'s motion-flow synthesis: parameter ranges, the displacement bounds, the flow's parts, shards."""

import math
from dataclasses import asdict

import numpy as np
import pytest
import skimage.data
from helpers import blurgen, error_line

from blurgen.blur import line_blur
from blurgen.core.images import write_image
from blurgen.shards import ShardReader
from blurgen.sources.gong import PRESETS, MotionParams, draw_flow, draw_params, motion_flow


@pytest.mark.parametrize("preset", ["bsd-m", "bsd-s"])
def test_parameters_span_their_ranges(preset):
    ranges = PRESETS[preset]
    rng = np.random.default_rng(0)
    draws = [asdict(draw_params(rng, ranges)) for _ in range(2000)]
    limits = {
        "tx": ranges.tx,
        "ty": ranges.ty,
        "tx_acc": ranges.tx_acc,
        "ty_acc": ranges.ty_acc,
        "tz": ranges.tz,
        "center_dx": ranges.center_shift,
        "center_dy": ranges.center_shift,
        "rot_z": ranges.rot_z,
    }
    for name, limit in limits.items():
        values = np.array([d[name] for d in draws])
        assert np.abs(values).max() <= limit
        assert values.min() < -0.95 * limit and values.max() > 0.95 * limit  # uniform over all of ±max
        assert abs(values.mean()) < 0.05 * limit


def test_gong_et_al_parameter_sets():
    mild, strong = PRESETS["bsd-m"], PRESETS["bsd-s"]
    assert (mild.tx, mild.tx_acc, mild.tz, mild.center_shift, mild.rot_z, mild.max_disp) == (
        19,
        0.25,
        2e-3,
        5,
        math.pi / 120,
        17,
    )
    assert (strong.tx, strong.tx_acc, strong.tz, strong.center_shift, strong.rot_z, strong.max_disp) == (
        27,
        0.3,
        5e-3,
        15,
        math.pi / 70,
        36,
    )


@pytest.mark.parametrize(("preset", "bound"), [("bsd-m", 17.0), ("bsd-s", 36.0)])
@pytest.mark.parametrize("round_flow", [False, True])
def test_largest_displacement_stays_within_the_bound(preset, bound, round_flow):
    rng = np.random.default_rng(1)
    largest = []
    for _ in range(60):
        flow, _, _ = draw_flow(rng, 321, 481, PRESETS[preset], round_flow)
        largest.append(np.linalg.norm(flow, axis=2).max())
        if round_flow:
            assert np.array_equal(flow, np.round(flow))
    assert max(largest) <= bound
    assert max(largest) > 0.8 * bound  # the bound binds: draws reach close to it


def test_zero_parameters_give_zero_flow():
    assert not motion_flow(32, 48, MotionParams()).any()


def test_each_motion_part_matches_its_definition():
    h, w = 41, 61
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    # translation ramp: u = tx (1 - a/2) at the left edge's outside, tx (1 + a/2) at x = W (1-based)
    flow = motion_flow(h, w, MotionParams(tx=10, tx_acc=0.2))
    np.testing.assert_allclose(flow[:, -1, 0], 10 * 1.1, rtol=1e-6)
    np.testing.assert_allclose(flow[:, 0, 0], 10 * (0.9 + 0.2 / w), rtol=1e-6)
    assert not flow[..., 1].any()
    flow = motion_flow(h, w, MotionParams(ty=-6))
    np.testing.assert_allclose(flow[..., 1], -6)
    # rotation about the jittered centre: perpendicular to the radius, length tan(θ)·r
    cx, cy = (w - 1) / 2 + 3, (h - 1) / 2 - 2
    radius = np.stack([xs - cx, ys - cy], axis=-1)
    r = np.linalg.norm(radius, axis=2)
    flow = motion_flow(h, w, MotionParams(rot_z=0.05, center_dx=3, center_dy=-2))
    np.testing.assert_allclose((flow * radius).sum(axis=2), 0, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(flow, axis=2), math.tan(0.05) * r, rtol=1e-5, atol=1e-5)
    # zoom: along the radius, length tz·r^1.5
    flow = motion_flow(h, w, MotionParams(tz=2e-3, center_dx=3, center_dy=-2))
    np.testing.assert_allclose(flow[..., 0] * radius[..., 1] - flow[..., 1] * radius[..., 0], 0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(flow, axis=2), 2e-3 * r**1.5, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def bsds(tmp_path_factory):
    """A tiny BSDS500 tree: scikit-image photos shrunk into train/, val/ and test/."""
    import cv2

    root = tmp_path_factory.mktemp("bsds")
    photos = {"train": ["astronaut"], "val": ["coffee", "chelsea"], "test": ["rocket"]}
    for split, names in photos.items():
        for name in names:
            image = cv2.resize(getattr(skimage.data, name)(), (72, 48), interpolation=cv2.INTER_AREA)
            write_image(root / "BSR/BSDS500/data/images" / split / f"{name}.jpg", image)
    return root


def test_bsds_layout_makes_shards_with_the_sharp_image(capsys, bsds, tmp_path):
    out = tmp_path / "gong"
    code, stdout, _ = blurgen(capsys, "gong", bsds, "--preset", "bsd-s", "--per-image", "2", "--out", out)
    assert code == 0, stdout
    test, train = ShardReader(out, "test"), ShardReader(out, "train")
    assert (len(train), len(test)) == (2, 6)  # train/: 1 photo, val/ + test/: 3 photos, 2 flows each
    for i in range(len(test)):
        s = test.read(i, fields=("blurred", "flow_fwd", "flow_bwd", "valid", "sharp"))
        assert np.array_equal(s["flow_bwd"], -s["flow_fwd"])
        assert np.linalg.norm(s["flow_fwd"], axis=2).max() <= 36
        assert np.array_equal(s["blurred"], line_blur(s["sharp"], s["flow_fwd"]))
        assert s["blurred"].shape == s["sharp"].shape == (48, 72, 3)
        assert s["valid"].any() and not s["valid"].all()  # border pixels whose segments leave the frame
    # a rerun resumes: nothing to do, the same samples
    code, stdout, _ = blurgen(capsys, "gong", bsds, "--preset", "bsd-s", "--per-image", "2", "--out", out)
    assert code == 0 and "8 samples" in stdout


def test_plain_folder_count_and_round_flow(capsys, bsds, tmp_path):
    out = tmp_path / "plain"
    folder = bsds / "BSR/BSDS500/data/images/val"
    args = ["gong", folder, "--round-flow", "--split", "train", "--count", "1", "--out", out]
    code, stdout, _ = blurgen(capsys, *args)
    assert code == 0, stdout
    s = ShardReader(out, "train").read(0)
    assert len(ShardReader(out)) == 1 and np.array_equal(s["flow_fwd"], np.round(s["flow_fwd"]))


def test_folder_without_images_is_one_line(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = blurgen(capsys, "gong", tmp_path / "empty", "--out", tmp_path / "o")
    assert code == 2 and "no images" in error_line(err)
    assert not (tmp_path / "o").exists()
