import cv2
import numpy as np
import pytest

from blurgen.sources.synthetic import (
    Layer,
    Motion,
    Scene,
    SyntheticTask,
    load_textures,
    max_displacement,
    render_exposure,
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
    assert s <= 20.0 and n == max(int(np.ceil(s)), 5)
    fwd, bwd = sample["flow_fwd"], sample["flow_bwd"]
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
    assert a["meta"]["n_interp"] == max(int(np.ceil(a["meta"]["s"])), 5)


def test_min_disp_bounds_the_largest_displacement_from_below():
    """s is drawn from [min_disp, max_disp] (to the rescaling's 5 %); by default from [0.05, 1] · max_disp."""
    size = (64, 96)
    lifted = [max_displacement(scene_for(2, i, size, TEXTURES, 20.0, min_disp=12.0)) for i in range(12)]
    assert all(0.95 * 12.0 <= s <= 20.0 for s in lifted), lifted
    default = [max_displacement(scene_for(2, i, size, TEXTURES, 20.0)) for i in range(12)]
    assert min(default) < 12.0 * 0.95 and all(s <= 20.0 for s in default), default


def test_objects_bounds_the_moving_patches():
    size = (64, 96)
    counts = [len(scene_for(2, i, size, TEXTURES, 20.0, objects=n).layers) - 1 for n in (0, 1, 4) for i in range(12)]
    assert counts[:12] == [0] * 12  # camera motion only
    assert set(counts[12:24]) == {0, 1} and max(counts[24:]) > 1 and all(c <= 4 for c in counts[24:])
