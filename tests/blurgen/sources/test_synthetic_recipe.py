"""The synthetic source's training-recipe options: procedural textures, sensor noise, sparse sub-frames,
displacements down to 0, and folders made before the options existed."""

import json

import cv2
import numpy as np
import pytest
from helpers import blurgen

from blurgen.core.errors import BlurgenError
from blurgen.core.images import write_image
from blurgen.shards import ShardReader
from blurgen.sources.synthetic import (
    SyntheticOptions,
    SyntheticTask,
    add_noise,
    leaves_texture,
    make_synthetic,
    procedural_texture,
    render_exposure,
    render_frame,
    render_task,
    scene_for,
    scene_textures,
    stored_displacement,
)
from blurgen.sources.synthetic.scenes import draw_displacement
from blurgen.sources.synthetic.textures import _leaf_radius

from .test_synthetic import TEXTURES, translation_scene


@pytest.fixture(scope="module")
def flat_textures(tmp_path_factory):
    """A folder with one uniform grey photo: every blur of it is that grey, so what varies is noise."""
    folder = tmp_path_factory.mktemp("flat")
    write_image(folder / "grey.png", np.full((200, 200, 3), 100, np.uint8))
    return str(folder)


def test_add_noise_has_the_sigma_asked_for_on_a_flat_image():
    out = add_noise(np.full((300, 300, 3), 128, np.uint8), 5.0, np.random.default_rng(0))
    # rounding to integers adds a uniform error of variance 1/12
    assert out.astype(float).std() == pytest.approx(np.sqrt(25 + 1 / 12), rel=0.02)
    assert out.astype(float).mean() == pytest.approx(128, abs=0.05)


def test_each_sample_gets_its_own_noise_sigma_in_range_and_the_image_shows_it(flat_textures):
    sigmas = []
    for index in range(8):
        task = SyntheticTask("train", index, 0, (96, 96), 10.0, textures=flat_textures, objects=0, noise=8.0)
        sample = render_task(task)
        sigma = sample["meta"]["noise"]
        measured = sample["blurred"].astype(float).std()
        assert measured == pytest.approx(np.sqrt(sigma**2 + 1 / 12), rel=0.05, abs=0.05)
        sigmas.append(sigma)
    assert 0 <= min(sigmas) and max(sigmas) <= 8.0 and np.ptp(sigmas) > 2.0


def test_displacements_are_drawn_over_the_whole_range_down_to_zero():
    spans = ((0.0, 1.0),)
    s = [
        stored_displacement(scene_for(4, i, (48, 48), TEXTURES, 20.0, min_disp=0.0, objects=0), spans)
        for i in range(40)
    ]
    assert 0 <= min(s) and max(s) <= 20.0
    # uniform on [0, 20]: 40 draws leave no gap as wide as 6 px (chance of one about 40 * 0.7**40)
    gaps = np.diff(np.sort([0.0, *s, 20.0]))
    assert gaps.max() < 6.0 and min(s) < 3.0


def test_no_frames_between_the_ends_is_the_mean_of_the_two_end_frames():
    sample, _, n = render_exposure(translation_scene((48, 64), (9.0, 0.0)), frames=lambda dense: 0)
    assert n == 0
    first, last = sample["first"].astype(int), sample["last"].astype(int)
    assert np.array_equal(sample["blurred"], (first + last + 1) // 2)  # round half up, as average_frames


def test_min_frames_draws_each_samples_count_between_it_and_the_dense_count():
    counts = []
    for index in range(10):
        meta = render_task(SyntheticTask("train", index, 1, (64, 64), 24.0, min_frames=2, objects=0))["meta"]
        dense = max(int(np.ceil(meta["s"])), 5)
        assert 2 <= meta["n_interp"] <= dense and meta["frames"] == [0, meta["n_interp"] + 1]
        counts.append(meta["n_interp"] / dense)
    assert min(counts) < 0.5 < max(counts)  # sparse and dense ones both occur


def test_procedural_textures_are_a_pure_function_of_the_generator():
    a, b = (procedural_texture(np.random.default_rng(5), size=128) for _ in range(2))
    c = procedural_texture(np.random.default_rng(6), size=128)
    assert a.dtype == np.uint8 and a.shape == (128, 128, 3)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # texture at fine scale: neighbouring pixels differ somewhere by several levels
    assert np.abs(np.diff(a.astype(int), axis=1)).mean() > 2


def _flat_share(texture: np.ndarray) -> float:
    """The share of pixels where the grey image's Laplacian is within 1 level of 0: those of flat areas."""
    grey = cv2.cvtColor(texture, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float((np.abs(cv2.Laplacian(grey, cv2.CV_32F)) <= 1).mean())


def test_flat_textures_come_without_grain_at_the_odds_asked():
    """Grain puts a second difference of several levels almost everywhere; without it the filled shapes and the
    smooth colour field are flat, the Laplacian zero but at edges (leaves keep their speckled and patterned
    shapes, so only their mean moves)."""
    shares = {
        (draw, grain): [_flat_share(draw(np.random.default_rng(i), grain=grain)) for i in range(20)]
        for draw in (procedural_texture, leaves_texture)
        for grain in (True, False)
    }
    assert max(shares[procedural_texture, True]) < 0.5 < min(shares[procedural_texture, False])
    assert np.mean(shares[leaves_texture, True]) < 0.2 and np.mean(shares[leaves_texture, False]) > 0.3
    textures = scene_textures("procedural", None, np.random.default_rng(0), 200, flat=0.5)
    assert 65 <= sum(_flat_share(t) > 0.5 for t in textures) <= 135  # Binomial(200, 0.5): mean 100, σ 7.1
    for flat in (None, 0.0):  # no draw: the textures of scenes made before the option
        again = scene_textures("procedural", None, np.random.default_rng(0), 3, flat=flat)
        rng = np.random.default_rng(0)
        assert all(np.array_equal(a, procedural_texture(rng)) for a in again)


def test_leaves_textures_are_a_pure_function_of_the_generator():
    a, b = (leaves_texture(np.random.default_rng(5), size=128) for _ in range(2))
    c = leaves_texture(np.random.default_rng(6), size=128)
    assert a.dtype == np.uint8 and a.shape == (128, 128, 3)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_leaf_radii_follow_the_dead_leaves_law():
    """Density ∝ r⁻³ on [lo, hi]: the CDF is (lo⁻² − r⁻²) / (lo⁻² − hi⁻²) (Kolmogorov–Smirnov distance)."""
    rng, lo, hi = np.random.default_rng(0), 2.0, 128.0
    radii = np.sort([_leaf_radius(rng, lo, hi) for _ in range(20000)])
    cdf = (lo**-2 - radii**-2) / (lo**-2 - hi**-2)
    empirical = np.arange(1, len(radii) + 1) / len(radii)
    assert lo <= radii[0] and radii[-1] <= hi
    assert np.abs(cdf - empirical).max() < 0.015  # KS 1 % critical value at n = 20,000 is 0.0115


def test_log_and_mixed_displacement_laws_follow_their_cdfs():
    """law "log": log(1 + s) uniform on [log 1, log 37], CDF (log1p(s) − log1p(lo)) / (log1p(hi) − log1p(lo))."""
    rng, lo, hi = np.random.default_rng(1), 0.0, 36.0
    draws = np.sort([draw_displacement(rng, lo, hi, "log") for _ in range(20000)])
    cdf = (np.log1p(draws) - np.log1p(lo)) / (np.log1p(hi) - np.log1p(lo))
    assert lo <= draws[0] and draws[-1] <= hi
    assert np.abs(cdf - np.arange(1, len(draws) + 1) / len(draws)).max() < 0.015
    assert 4.5 < np.median(draws) < 5.7  # expm1(log(37) / 2) = 5.08; a uniform draw's median would be 18
    # "mixed": the mean of the uniform and the log CDFs
    mixed = np.sort([draw_displacement(rng, lo, hi, "mixed") for _ in range(20000)])
    log_cdf = (np.log1p(mixed) - np.log1p(lo)) / (np.log1p(hi) - np.log1p(lo))
    cdf = 0.5 * (mixed - lo) / (hi - lo) + 0.5 * log_cdf
    assert np.abs(cdf - np.arange(1, len(mixed) + 1) / len(mixed)).max() < 0.015
    # scenes drawn with it keep the range: stored displacement inside [0, 12]
    s = [
        render_task(SyntheticTask("train", i, 7, (32, 32), 12.0, min_disp=0.0, objects=0, disp_law="log"))["meta"]["s"]
        for i in range(12)
    ]
    assert max(s) <= 12.0 and np.median(s) < 6


def _square_width(zoom: float | None, index: int) -> int:
    """Pixels across the middle row of frame 0 (no motion yet: the texture as placed) that show the
    40-texel white square centred in a black 400² texture."""
    texture = np.zeros((400, 400, 3), np.uint8)
    texture[180:220, 180:220] = 255
    scene = scene_for(5, index, (128, 128), [texture], 8.0, objects=0, texture_zoom=zoom)
    return int((render_frame(scene, 0.0)[64, :, 0] > 127.5).sum())


def test_texture_zoom_magnifies_the_background_log_uniformly_up_to_its_largest():
    plain = {_square_width(None, i) for i in range(20)}
    assert len(plain) == 1  # without the option every scene shows the texture at the scale that covers the frame
    (base,) = plain
    widths = np.array([_square_width(4.0, i) for i in range(200)])
    # 1 px of slack each side for where the square's edges fall on the pixel grid
    assert base - 1 <= widths.min() and widths.max() <= 4 * base + 1
    # log-uniform in [1, 4]: half the draws under 2x (the median), a quarter under sqrt(2)x, the rest above
    assert np.mean(widths < 2 * base) == pytest.approx(0.5, abs=0.1)
    assert np.mean(widths < np.sqrt(2) * base) == pytest.approx(0.25, abs=0.08)
    assert widths.max() > 3.4 * base and widths.min() < 1.15 * base


def test_procedural_scenes_read_no_photo_and_are_a_pure_function_of_seed_and_index(tmp_path):
    kw = dict(size=(64, 64), max_disp=12.0, objects=2, texture_kind="procedural")
    nowhere = str(tmp_path / "no-such-folder")  # photos from here would fail to load
    procedural = render_task(SyntheticTask("train", 3, 2, textures=nowhere, **kw))
    again = render_task(SyntheticTask("train", 3, 2, **kw))
    other = render_task(SyntheticTask("train", 4, 2, **kw))
    photo = render_task(SyntheticTask("train", 3, 2, size=(64, 64), max_disp=12.0, objects=2))
    assert np.array_equal(procedural["blurred"], again["blurred"])
    assert not np.array_equal(procedural["blurred"], other["blurred"])
    assert not np.array_equal(procedural["blurred"], photo["blurred"])


def test_a_folder_made_before_the_new_options_resumes_with_their_defaults(tmp_path):
    options = SyntheticOptions(count=4, seed=0, size=(32, 32), max_disp=6.0)
    make_synthetic(tmp_path, options)
    path = tmp_path / "manifest.json"
    manifest = json.loads(path.read_text())
    for key in ("texture_kind", "noise", "min_frames", "disp_law", "texture_zoom", "flat"):
        del manifest["config"][key]  # as written before these options existed
    path.write_text(json.dumps(manifest))
    before = ShardReader(tmp_path, "train").read(3)["blurred"]
    make_synthetic(tmp_path, options)  # no "made by another config" error
    assert np.array_equal(ShardReader(tmp_path, "train").read(3)["blurred"], before)
    with pytest.raises(BlurgenError, match="--noise"):
        make_synthetic(tmp_path, SyntheticOptions(count=4, seed=0, size=(32, 32), max_disp=6.0, noise=2.0))


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"texture_kind": "clouds"}, "--texture-kind"),
        ({"noise": -1.0}, "--noise"),
        ({"min_frames": -2}, "--min-frames"),
        ({"texture_zoom": 0.5}, "--texture-zoom"),
        ({"flat": 1.5, "texture_kind": "procedural"}, "--flat"),
        ({"flat": 0.5}, "--flat"),  # photos have no grain to take off
    ],
)
def test_bad_recipe_options_fail_before_anything_is_written(tmp_path, bad, message):
    with pytest.raises(BlurgenError, match=message):
        make_synthetic(tmp_path / "out", SyntheticOptions(count=2, size=(32, 32), max_disp=6.0, **bad))
    assert not (tmp_path / "out").exists()


def test_blurgen_synthetic_takes_the_recipe_options(tmp_path, capsys):
    out = tmp_path / "o"
    args = ["synthetic", "--out", out, "--count", "3", "--size", "48x48", "--max-disp", "10", "--objects", "0"]
    extra = ["--texture-kind", "procedural", "--noise", "3", "--min-frames", "1", "--texture-zoom", "2"]
    extra += ["--flat", "0.5"]
    code, _, err = blurgen(capsys, *args, *extra)
    assert code == 0, err
    config = json.loads((out / "manifest.json").read_text())["config"]
    chosen = (config["texture_kind"], config["noise"], config["min_frames"], config["texture_zoom"], config["flat"])
    assert chosen == ("procedural", 3.0, 1, 2.0, 0.5)
    reader = ShardReader(out, "train")
    assert all(0 <= reader.meta(i)["noise"] <= 3.0 for i in range(3))
    code, _, err = blurgen(capsys, "synthetic", "--out", tmp_path / "p", "--texture-kind", "clouds")
    assert code == 2 and "clouds" in err
