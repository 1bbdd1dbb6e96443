"""Scale and photometric augmentation: exact flow targets, known curves and noise, determinism, recorded options."""

import json

import numpy as np
import pytest
import torch

from b2f import cli
from b2f.data import EVAL_FIELDS, Photometric, ShardDataset, resample
from b2f.run_config import check_resume, run_config
from blurgen.core.errors import BlurgenError
from blurgen.shards import ShardReader, ShardWriter

FLOW = (3.0, -2.0)  # every pixel's motion in the shards below


@pytest.fixture(scope="module")
def constant_flow(tmp_path_factory):
    """Two 128×128 samples whose flow is FLOW everywhere (and -FLOW backwards), all valid."""
    root = tmp_path_factory.mktemp("constant")
    rng = np.random.default_rng(0)
    flow = np.broadcast_to(np.array(FLOW, np.float32), (128, 128, 2)).copy()
    with ShardWriter(root, "test", {}) as w:
        for i in range(2):
            image = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
            sample = {"blurred": image, "flow_fwd": flow, "flow_bwd": -flow, "valid": np.ones((128, 128), np.uint8)}
            w.add("train", i, [{**sample, "meta": {}}])
        w.finish_split("train", 2)
    return root


def test_resample_scales_a_constant_flow_by_the_size_ratios():
    flow = np.broadcast_to(np.array(FLOW, np.float32), (80, 120, 2)).copy()
    sample = {"blurred": np.zeros((80, 120, 3), np.uint8), "flow_fwd": flow, "valid": np.ones((80, 120), np.uint8)}
    out = resample(sample, (64, 64))  # height 80 -> 64 (0.8), width 120 -> 64 (8/15)
    assert out["blurred"].shape == (64, 64, 3) and out["valid"].shape == (64, 64)
    assert np.allclose(out["flow_fwd"][..., 0], 3.0 * 64 / 120, atol=1e-5)
    assert np.allclose(out["flow_fwd"][..., 1], -2.0 * 64 / 80, atol=1e-5)


def test_scale_augmentation_scales_the_flow_target_exactly_and_deterministically(constant_flow):
    data = ShardDataset(constant_flow, "train", crop=(64, 64), random_crop=True, scale=(0.5, 2.0), fields=EVAL_FIELDS)
    factors = []
    for epoch in range(12):
        item = data[(1, epoch)]
        u, v = item["flow_fwd"][0], item["flow_fwd"][1]
        fu, fv = float(u.mean()) / FLOW[0], float(v.mean()) / FLOW[1]
        # constant over the crop, the same factor for u and v (square windows), and the window is a whole
        # number of pixels: 64 / f is an integer between 32 and 128
        assert torch.allclose(u, torch.full_like(u, fu * FLOW[0]), atol=1e-4) and fu == pytest.approx(fv, abs=1e-5)
        assert 64 / fu == pytest.approx(round(64 / fu), abs=1e-3) and 32 <= round(64 / fu) <= 128
        assert torch.equal(item["flow_bwd"], -item["flow_fwd"])
        assert torch.equal(item["image"], data[(1, epoch)]["image"])  # a pure function of (index, epoch)
        factors.append(fu)
    assert min(factors) < 0.8 and max(factors) > 1.25  # both shrinking and growing occur


def test_photometric_gamma_gains_and_offset_follow_their_formula_exactly():
    values = np.array([0, 64, 128, 255], np.uint8).reshape(1, 4, 1).repeat(3, axis=2)
    rng = np.random.default_rng(0)
    squared = Photometric(gamma=2.0).apply(values, rng)[0, :, 0]
    assert squared.tolist() == [0, 16, 64, 255]  # round(255 * (v/255)**2): 16.06, 64.25
    shifted = Photometric(gains=(0.5, 1.0, 2.0), offset=0.1).apply(values, rng)[0, 2]
    assert shifted.tolist() == [90, 154, 255]  # 128: 64 + 25.5, 128 + 25.5, clipped


def test_photometric_noise_has_its_sigma_on_a_flat_image():
    flat = np.full((200, 200, 3), 120, np.uint8)
    out = Photometric(noise=6.0).apply(flat, np.random.default_rng(1)).astype(float)
    assert out.std() == pytest.approx(np.sqrt(36 + 1 / 12), rel=0.02) and out.mean() == pytest.approx(120, abs=0.1)


def test_photometric_changes_the_image_per_epoch_not_the_flow(constant_flow):
    plain = ShardDataset(constant_flow, "train", crop=(64, 64), fields=EVAL_FIELDS)
    data = ShardDataset(constant_flow, "train", crop=(64, 64), photometric=True, fields=EVAL_FIELDS)
    a, b, again = data[(0, 0)], data[(0, 1)], data[(0, 0)]
    assert torch.equal(a["image"], again["image"]) and not torch.equal(a["image"], b["image"])
    assert not torch.equal(a["image"], plain[0]["image"])
    assert torch.equal(a["flow_fwd"], plain[0]["flow_fwd"])


def test_without_the_new_options_items_are_those_of_before(constant_flow):
    # the options draw after the crop and flips, so a run without them sees the same crops as before
    old = ShardDataset(constant_flow, "train", crop=(64, 64), random_crop=True, flip=True, fields=EVAL_FIELDS)
    h, w = 64, 64
    rng = np.random.default_rng([0, 3, 1])
    y, x = int(rng.integers(0, 128 - h + 1)), int(rng.integers(0, 128 - w + 1))
    window = ShardReader(constant_flow, "train").read(1, crop=(y, x, h, w))["blurred"]
    image = old[(1, 3)]["image"].permute(1, 2, 0).numpy()
    flips = [np.flip(window, 1), np.flip(window, 0), np.flip(np.flip(window, 0), 1), window]
    assert any(np.array_equal(image, f) for f in flips)


def test_run_config_records_the_augmentations_and_old_runs_resume(tmp_path):
    config = run_config(tmp_path, {}, scale=(0.5, 1.5), photometric=True)
    assert config["scale"] == [0.5, 1.5] and config["photometric"] is True
    old = run_config(tmp_path, {})
    stored = {k: v for k, v in old.items() if k not in ("scale", "photometric")}  # a run recorded before them
    (tmp_path / "config.json").write_text(json.dumps(stored))
    assert check_resume(tmp_path, old)["scale"] is None
    with pytest.raises(BlurgenError, match="photometric"):
        check_resume(tmp_path, run_config(tmp_path, {}, photometric=True))
    with pytest.raises(BlurgenError, match="--scale"):
        run_config(tmp_path, {}, scale=(1.5, 0.5))


def test_train_cli_takes_scale_and_photometric(make_synthetic, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["--epochs", "1", "--crop", "64", "--limit-batches", "1", "--workers", "0", "--device", "cpu"]
    shards = str(make_synthetic(4, size=(128, 128)))
    cli.train([shards, "--out", str(run), "--random-crop", "--scale", "0.5,1.5", "--photometric", *args])
    config = json.loads((run / "config.json").read_text())
    assert config["scale"] == [0.5, 1.5] and config["photometric"] is True
    with pytest.raises(SystemExit) as e:
        cli.train([shards, "--out", str(tmp_path / "other"), "--scale", "2,1"])
    assert e.value.code == 2 and "0 < LO <= HI" in capsys.readouterr().err
