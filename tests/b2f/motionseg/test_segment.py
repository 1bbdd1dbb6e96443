"""b2f.motionseg on exact flows of scenes with a known motion (blurgen's synthetic layers, closed form)."""

import numpy as np
import pytest

from b2f.motionseg import SegmentOptions, segment
from b2f.motionseg.fit import fit_dominant_motion, model_flow
from b2f.motionseg.mask import clean_mask
from b2f.motionseg.metrics import counts, iou
from blurgen.core.errors import BlurgenError

CAMERA_ONLY = ("translation", "rotation", "zoom", "all three")
WITH_PATCHES = ("square patch", "spinning ellipse", "two patches")
BOTH_MODELS = [SegmentOptions(model="homography"), SegmentOptions(model="affine")]


@pytest.mark.parametrize("options", BOTH_MODELS, ids=lambda o: o.model)
@pytest.mark.parametrize("name", CAMERA_ONLY)
def test_camera_motion_alone_gives_an_empty_mask(scenes, name, options):
    _, flow, truth = scenes[name]
    assert not truth.any() and np.abs(flow).max() > 4  # the camera does move (≥ 4 px somewhere)
    assert segment(flow, options).mask.sum() <= 0.001 * flow.shape[0] * flow.shape[1]


def test_a_projective_camera_is_explained_by_the_homography_not_by_the_affine_model():
    h, w = 96, 128
    camera = np.array([[1.02, 0.03, 2.0], [-0.02, 0.99, -3.0], [4e-4, -3e-4, 1.0]])  # a tilt: w varies ±4 %
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    den = camera[2, 0] * xs + camera[2, 1] * ys + 1
    flow = np.stack(
        [
            (camera[0, 0] * xs + camera[0, 1] * ys + 2.0) / den - xs,
            (camera[1, 0] * xs + camera[1, 1] * ys - 3.0) / den - ys,
        ],
        axis=-1,
    ).astype(np.float32)
    assert segment(flow).mask.sum() == 0
    assert segment(flow, SegmentOptions(model="affine")).mask.sum() > 0.05 * h * w  # a wrong model shows up


@pytest.mark.parametrize("name", WITH_PATCHES)
def test_patches_moving_otherwise_are_found(scenes, name):
    _, flow, truth = scenes[name]
    result = segment(flow)
    assert iou(counts(result.mask, truth)) >= 0.9


def test_the_camera_is_recovered(scenes):
    scene, flow, _ = scenes["two patches"]  # ~13 % of the frame moves otherwise
    matrix, _ = fit_dominant_motion(flow)
    truth = scene.layers[0].motion.matrix(1.0)  # the background's motion from t=0 to t=1, closed form
    assert np.abs(model_flow(matrix, flow.shape[:2]) - model_flow(truth, flow.shape[:2])).max() < 0.01


@pytest.mark.parametrize("name", CAMERA_ONLY + WITH_PATCHES)
def test_negated_flow_gives_the_same_mask(scenes, name):
    _, flow, _ = scenes[name]
    noisy = flow + np.random.default_rng(1).normal(0, 0.7, flow.shape).astype(np.float32)
    for f in (flow, noisy):
        assert np.array_equal(segment(f).mask, segment(-f).mask)


def test_the_threshold_follows_the_flow_noise(scenes):
    rng = np.random.default_rng(0)
    for name in ("all three", "square patch"):
        _, flow, truth = scenes[name]
        noisy = flow + rng.normal(0, 1.0, flow.shape).astype(np.float32)  # σ = 1 px per component
        result = segment(noisy)
        # Rayleigh: the noise magnitude's median is 1.18 px, so 3.5σ is ~3.5 px (a few % from the patch)
        assert 3.2 < result.threshold < 4.0
        assert iou(counts(result.mask, truth)) >= 0.9 if truth.any() else result.mask.sum() == 0


def test_a_patch_moving_with_the_camera_is_invisible(scenes):
    """The method's limit: what moves exactly like the camera has no residual flow."""
    _, flow, truth = scenes["patch moving with the camera"]
    assert truth.sum() == 900 and segment(flow).mask.sum() == 0


def test_cleaning_drops_specks_and_fills_holes():
    mask = np.zeros((64, 64), bool)
    mask[10:40, 10:40] = True
    mask[20:23, 20:23] = False  # a 9-pixel hole
    mask[50, 50] = True  # a 1-pixel speck
    mask[55:58, 5:9] = True  # a 12-pixel blob
    cleaned = clean_mask(mask, radius=1, min_area=16)
    expected = np.zeros((64, 64), bool)
    expected[10:40, 10:40] = True
    expected[[10, 10, 39, 39], [10, 39, 10, 39]] = False  # opening by the 3×3 disk (a cross) cuts corners
    assert np.array_equal(cleaned, expected)


@pytest.mark.parametrize(
    ("flow", "message"),
    [
        (np.full((32, 32, 2), np.nan, np.float32), "1024 flow vectors are NaN"),
        (np.zeros((32, 32, 3), np.float32), "expected an H×W×2 flow"),
        (np.zeros((2, 2, 2), np.float32), "too small"),
    ],
)
def test_bad_flows_are_one_line_errors(flow, message):
    with pytest.raises(BlurgenError, match=message) as e:
        segment(flow)
    assert "\n" not in str(e.value)
