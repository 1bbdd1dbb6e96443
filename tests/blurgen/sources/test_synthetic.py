import math

import cv2
import numpy as np
import pytest

from blurgen.shards import ShardReader
from blurgen.sources.synthetic import (
    Layer,
    Motion,
    Scene,
    SyntheticOptions,
    SyntheticTask,
    load_textures,
    make_synthetic,
    render_exposure,
    render_sequence,
    render_task,
    scene_for,
)

TEXTURES = load_textures()
# Smoothed photos: resampling a smooth texture twice is nearly lossless, so what is left of the
# warping error below is the flow's, not the grain's (the flow does not depend on the texture).
SMOOTH = [cv2.GaussianBlur(t, (0, 0), 2.0) for t in TEXTURES]


def warp_back(last, flow_fwd):
    """Sample the last frame where each first-frame pixel went: the first frame if flow is exact."""
    h, w = flow_fwd.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(last.astype(np.float32), xs + flow_fwd[..., 0], ys + flow_fwd[..., 1], cv2.INTER_LINEAR)


def consistent(flow_fwd, flow_bwd, tol=0.5):
    """Pixels whose point is not occluded in the last frame: the backward flow there leads back."""
    back = warp_back(flow_bwd, flow_fwd)
    return np.linalg.norm(flow_fwd + back, axis=2) < tol


def translation_scene(size, shift, object_shift=None):
    h, w = size
    bg = cv2.resize(TEXTURES[0], (w + 80, h + 80))
    place = np.array([[1, 0, -40], [0, 1, -40], [0, 0, 1]], np.float64)
    layers = [Layer(bg, place, Motion(shift=(shift, (0, 0))))]
    if object_shift is not None:
        patch = TEXTURES[1][: h // 2, : w // 2]
        alpha = np.zeros(patch.shape[:2], np.float32)
        alpha[4:-4, 4:-4] = 1
        place = np.array([[1, 0, w // 4], [0, 1, h // 4], [0, 0, 1]], np.float64)
        layers.append(Layer(patch, place, Motion(shift=(object_shift, (0, 0))), alpha))
    return Scene(size, layers)


def test_pure_translation_has_constant_flow_equal_to_the_shift():
    sample, s, n = render_exposure(translation_scene((48, 64), (7.0, -3.0)))
    assert np.allclose(sample["flow_fwd"], [7.0, -3.0], atol=1e-4)
    assert np.allclose(sample["flow_bwd"], [-7.0, 3.0], atol=1e-4)
    assert s == pytest.approx(np.hypot(7, 3), abs=1e-6) and n == 8  # ceil(7.62)
    # valid: exactly the pixels whose target x+7 <= 63 and y-3 >= 0
    assert sample["valid"].sum() == (64 - 7) * (48 - 3)
    assert sample["valid"][3:, :57].all()


def test_occluding_object_carries_its_own_motion_both_ways():
    size = (64, 64)
    sample, _, _ = render_exposure(translation_scene(size, (2.0, 0.0), object_shift=(-6.0, 4.0)))
    fwd, bwd = sample["flow_fwd"], sample["flow_bwd"]
    # object interior at t=0: rows 20..43, cols 20..43 (placed at 16, alpha from 4); at t=1 shifted by (-6, 4)
    assert np.allclose(fwd[24:40, 24:40], [-6.0, 4.0], atol=1e-4)
    assert np.allclose(bwd[28:44, 18:34], [6.0, -4.0], atol=1e-4)
    assert np.allclose(fwd[:8], [2.0, 0.0], atol=1e-4)  # background above the object
    # background uncovered behind the object at t=1 shows background flow in flow_bwd
    assert np.allclose(bwd[21:24, 38:44], [-2.0, 0.0], atol=1e-4)


@pytest.mark.parametrize("index", range(8))
def test_random_scene_flow_warps_last_frame_onto_first(index):
    scene = scene_for(seed=3, index=index, size=(96, 128), textures=SMOOTH, max_disp=20.0)
    sample, s, n = render_exposure(scene)
    fwd, bwd = sample["flow_fwd"], sample["flow_bwd"]
    assert 1.0 <= stored_max(fwd, bwd) <= 20.0 and n == max(math.ceil(stored_max(fwd, bwd)), 5)
    mask = consistent(fwd, bwd) & (sample["valid"] > 0)
    # soft object edges mix two layers; keep pixels 3 px from any flow discontinuity
    edges = cv2.dilate((cv2.Laplacian(fwd, cv2.CV_32F, ksize=1) ** 2).sum(-1).astype(np.float32), np.ones((7, 7)))
    mask &= edges < 1e-3
    assert mask.mean() > 0.3
    err = np.abs(warp_back(sample["last"], fwd) - sample["first"].astype(np.float32)).mean(axis=2)[mask]
    # measured: 0.3-1.6 grey levels; the same flow 1 px off gives 3-9x more
    assert err.mean() < 2.0, err.mean()
    off_by_one = np.abs(warp_back(sample["last"], fwd + np.float32([1, 0])) - sample["first"]).mean(axis=2)[mask]
    assert off_by_one.mean() > 3 * err.mean()


def test_translation_blur_is_the_box_filtered_first_frame_and_gamma_changes_it():
    d = 10.0
    scene = translation_scene((32, 96), (d, 0.0))
    srgb, _, n = render_exposure(scene)
    linear, _, _ = render_exposure(scene, gamma=2.2)
    assert n == 10
    # at time k/(n+1) the pixel at x shows what the first frame had at x - k*d/(n+1)
    first = srgb["first"].astype(np.float64)
    xs = np.arange(96.0)
    expected = np.mean(
        [
            [[np.interp(xs - k * d / (n + 1), xs, first[y, :, c]) for c in range(3)] for y in range(32)]
            for k in range(n + 2)
        ],
        axis=0,
    ).transpose(0, 2, 1)
    err = np.abs(srgb["blurred"] - expected)[:, 12:]  # left columns come from outside the first frame
    assert err.mean() < 1.5 and err.max() < 8
    assert np.abs(srgb["blurred"].astype(int) - linear["blurred"]).max() > 3


def test_render_is_a_pure_function_of_seed_and_index():
    task = SyntheticTask("train", 5, seed=1, size=(40, 56), max_disp=15.0)
    a, b = render_task(task), render_task(task)
    for key in ("blurred", "flow_fwd", "flow_bwd", "valid"):
        assert np.array_equal(a[key], b[key])
    c = render_task(SyntheticTask("train", 6, seed=1, size=(40, 56), max_disp=15.0))
    assert not np.array_equal(a["blurred"], c["blurred"])


def stored_max(*flows):
    """The largest |flow| over the given stored arrays, all pixels, in float64."""
    return max(float(np.linalg.norm(f.astype(np.float64), axis=-1).max()) for f in flows)


def read_all(out):
    r = ShardReader(out)
    return [r.read(i, fields=r.fields(i)) for i in range(len(r))]


@pytest.mark.parametrize("min_disp", [12.0, None])
def test_s_is_the_largest_stored_flow_and_the_range_holds_on_it(tmp_path, min_disp):
    """Issue 10: s was taken at the image corners of every layer (with patches up to 3.75x the stored
    flow; 9 of 24 samples of --min-disp 12 --max-disp 20 had a largest flow under 11.4 px)."""
    options = SyntheticOptions(count=20, test_count=4, seed=7, size=(40, 56), max_disp=20.0, min_disp=min_disp)
    samples = read_all(make_synthetic(tmp_path / "s", options).out)
    assert len(samples) == 24
    largest = []
    for s in samples:
        m = stored_max(s["flow_fwd"], s["flow_bwd"])
        largest.append(m)
        assert s["meta"]["s"] == pytest.approx(m, abs=5e-4 + 1e-6)  # stored rounded to 3 decimals
        assert (12.0 if min_disp else 1.0) <= m <= 20.0
        n = max(math.ceil(m), 5)
        assert s["meta"]["n_interp"] == n and s["meta"]["frames"] == [0, n + 1]
    assert sum(s["meta"]["layers"] > 1 for s in samples) >= 12  # most scenes have patches
    if min_disp is None:  # drawn from [1, 20]: the default range reaches below 12
        assert min(largest) < 12.0


def test_frame_tree_windows_store_their_own_s_and_the_range_holds_over_them(tmp_path):
    options = SyntheticOptions(
        count=5, seed=3, size=(40, 56), max_disp=10.0, min_disp=6.0, frames_out=str(tmp_path / "f"), window=4, windows=3
    )
    samples = read_all(make_synthetic(tmp_path / "s", options).out)
    assert len(samples) == 15
    for i in range(5):
        windows = samples[3 * i : 3 * i + 3]
        largest = [stored_max(s["flow_fwd"], s["flow_bwd"]) for s in windows]
        for s, m in zip(windows, largest):
            assert s["meta"]["s"] == pytest.approx(m, abs=5e-4 + 1e-6) and s["meta"]["n_interp"] == 2
        assert 6.0 <= max(largest) <= 10.0  # the bound is on the sequence's largest window


def test_objects_bounds_the_moving_patches():
    size = (64, 96)
    counts = [len(scene_for(2, i, size, TEXTURES, 20.0, objects=n).layers) - 1 for n in (0, 1, 4) for i in range(12)]
    assert counts[:12] == [0] * 12  # camera motion only
    assert set(counts[12:24]) == {0, 1} and max(counts[24:]) > 1 and all(c <= 4 for c in counts[24:])


def footprint(size, y0, x0, side):
    mask = np.zeros(size, np.uint8)
    mask[y0 : y0 + side, x0 : x0 + side] = 1
    return mask


def test_moving_mask_is_the_patch_footprint_in_the_first_frame():
    # the patch's alpha is 1 on texture rows/cols 4..27 and it is placed at (16, 16): image 20..43 at t=0
    sample, _, _ = render_exposure(translation_scene((64, 64), (2.0, 0.0), object_shift=(-6.0, 4.0)))
    assert sample["moving"].dtype == np.uint8
    assert np.array_equal(sample["moving"], footprint((64, 64), 20, 20, 24))
    inside_patch, background = sample["moving"] == 1, sample["moving"] == 0
    assert np.allclose(sample["flow_fwd"][inside_patch], [-6.0, 4.0], atol=1e-4)
    assert np.allclose(sample["flow_fwd"][background], [2.0, 0.0], atol=1e-4)
    alone, _, _ = render_exposure(translation_scene((64, 64), (2.0, 0.0)))
    assert not alone["moving"].any()


def test_frame_tree_windows_carry_the_mask_of_their_first_frame(tmp_path):
    # 6 frames at t = j/5; the patch moves (10, 5) over the sequence: (2j, j) px at frame j
    scene = translation_scene((64, 64), (5.0, 0.0), object_shift=(10.0, 5.0))
    task = SyntheticTask("train", 0, 0, (64, 64), 20.0, frames_out=str(tmp_path), window=3, windows=2)
    first, second = render_sequence(task, scene)
    assert np.array_equal(first["moving"], footprint((64, 64), 20, 20, 24))
    assert np.array_equal(second["moving"], footprint((64, 64), 23, 26, 24))
    assert np.allclose(second["flow_fwd"][second["moving"] == 1], [4.0, 2.0], atol=1e-4)  # 2 of 5 steps


def affine_residual(flow, fit_on):
    """|flow - the affine field fitted (least squares) to ``flow`` on the pixels ``fit_on``| everywhere."""
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    design = np.stack([xs, ys, np.ones_like(xs)], -1)
    coef, *_ = np.linalg.lstsq(design[fit_on], flow[fit_on].astype(np.float64), rcond=None)
    return np.linalg.norm(design @ coef - flow, axis=-1)


def test_stored_moving_masks_split_the_flow_into_the_camera_motion_and_the_rest(tmp_path):
    """The background is one affine layer: its flow is an exact affine field off the mask, and the
    patches' flow on the mask departs from it."""
    samples = read_all(make_synthetic(tmp_path / "s", SyntheticOptions(count=12, seed=4, size=(48, 64))).out)
    with_patches = 0
    for s in samples:
        moving = s["moving"]
        assert moving.dtype == np.uint8 and set(np.unique(moving)) <= {0, 1}
        if s["meta"]["layers"] == 1:
            assert not moving.any()
            continue
        if not moving.any() or moving.all():  # patches off the frame, or covering it
            continue
        with_patches += 1
        residual = affine_residual(s["flow_fwd"], moving == 0)
        assert residual[moving == 0].max() < 1e-3
        assert np.mean(residual[moving == 1] > 0.01) > 0.9
    assert with_patches >= 5
    camera_only = read_all(
        make_synthetic(tmp_path / "c", SyntheticOptions(count=4, seed=4, size=(48, 64), objects=0)).out
    )
    assert all(not s["moving"].any() for s in camera_only)
