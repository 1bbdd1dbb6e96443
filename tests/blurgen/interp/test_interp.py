"""Interpolators: ground-truth-flow warping against exactly rendered in-between frames; Super SloMo's
layer layout, checkpoint handling and blend formula with weights whose output is known."""

import datetime

import numpy as np
import pytest
import torch

import blurgen.interp as interp
from blurgen.core.errors import BlurgenError
from blurgen.interp import interpolate, times
from blurgen.interp.superslomo import SuperSloMo, UNet, load_superslomo

H, W = 40, 56
YY, XX = np.mgrid[0:H, 0:W].astype(np.float64)


def texture(x, y):
    v = (
        128
        + 70 * np.sin(2 * np.pi * x / 31 + 0.4) * np.cos(2 * np.pi * y / 19)
        + 30 * np.cos(2 * np.pi * (2 * x - y) / 41)
    )
    return np.stack([v, 255 - v, 0.6 * v + 30], -1)


def u8(a):
    return np.clip(a + 0.5, 0, 255).astype(np.uint8)


def test_zero_flow_reproduces_the_frame_exactly():
    img = u8(texture(XX, YY))
    zero = np.zeros((H, W, 2), np.float32)
    frames = interpolate("flow", img, img, 7, zero, zero, device="cpu")
    assert frames.shape == (9, H, W, 3) and (frames == img).all()


def test_translation_frames_are_the_shifted_texture():
    d = np.array([6.0, -2.5])
    img0, img1 = u8(texture(XX, YY)), u8(texture(XX - d[0], YY - d[1]))
    flow = np.broadcast_to(d.astype(np.float32), (H, W, 2))
    frames = interpolate("flow", img0, img1, 5, flow, -flow, device="cpu")
    assert (frames[0] == img0).all() and (frames[-1] == img1).all()
    for t, frame in zip(times(5), frames[1:-1]):
        err = np.abs(frame - texture(XX - t * d[0], YY - t * d[1]))
        assert err.mean() < 0.6
        assert err[3:-3, 6:-6].max() < 2.5  # corners seen in neither end frame excluded


def square_scene(shift):
    """Static textured background, a 14×14 noise square at column 10 + shift, rows 12..25."""
    img = texture(XX, YY)
    img[12:26, 10 + shift : 24 + shift] = np.random.default_rng(3).uniform(0, 255, (14, 14, 3))
    return img


def test_occlusion_is_resolved_exactly_where_the_square_covers_and_uncovers_background():
    d = 8
    img0, img1 = u8(square_scene(0)), u8(square_scene(d))
    f01 = np.zeros((H, W, 2), np.float32)
    f01[12:26, 10:24, 0] = d
    f10 = np.zeros((H, W, 2), np.float32)
    f10[12:26, 10 + d : 24 + d, 0] = -d
    frames = interpolate("flow", img0, img1, 3, f01, f10, device="cpu")  # t = 1/4, 1/2, 3/4: whole-pixel shifts
    for t, frame in zip(times(3), frames[1:-1]):
        truth = square_scene(int(t * d))
        assert np.abs(frame - truth).max() <= 1.0  # rounding only, also at both edges of the square
        blend = (1 - t) * img0 + t * img1
        assert np.abs(blend - truth)[12:26].max() > 100  # a cross-fade would be far off there


def test_batching_does_not_change_the_frames(monkeypatch):
    rng = np.random.default_rng(0)
    img0, img1 = rng.integers(0, 256, (2, H, W, 3), dtype=np.uint8)
    f01, f10 = rng.normal(0, 3, (2, H, W, 2)).astype(np.float32)
    whole = interpolate("flow", img0, img1, 7, f01, f10, device="cpu")
    monkeypatch.setitem(interp._BATCH_PIXELS, "flow", 3 * H * W)  # batches of 3, 3, 1 times
    assert np.array_equal(interpolate("flow", img0, img1, 7, f01, f10, device="cpu"), whole)


def test_unet_has_the_public_checkpoint_layer_names_and_shapes():
    fc, at = UNet(6, 4).state_dict(), UNet(20, 5).state_dict()
    assert len(fc) == len(at) == 46  # 23 convs: 2 + 5 down × 2 + 5 up × 2 + 1
    assert fc["conv1.weight"].shape == (32, 6, 7, 7) and at["conv1.weight"].shape == (32, 20, 7, 7)
    assert fc["down1.conv1.weight"].shape == (64, 32, 5, 5) and fc["down5.conv2.weight"].shape == (512, 512, 3, 3)
    assert fc["up1.conv2.weight"].shape == (512, 1024, 3, 3) and fc["up5.conv2.weight"].shape == (32, 64, 3, 3)
    assert fc["conv3.weight"].shape == (4, 32, 3, 3) and at["conv3.bias"].shape == (5,)


def save(path, model, **extra):
    torch.save(
        {"state_dictFC": model.flow_comp.state_dict(), "state_dictAT": model.arb_time.state_dict(), **extra}, path
    )
    return path


def known_model(residual_x=0.0, visibility_logit=0.0):
    """All weights zero: no flow between the frames; the refinement outputs its conv3 bias everywhere."""
    model = SuperSloMo()
    for p in model.parameters():
        torch.nn.init.zeros_(p)
    with torch.no_grad():
        model.arb_time.conv3.bias[0] = residual_x  # refines F_t→0 (x)
        model.arb_time.conv3.bias[4] = visibility_logit  # V_t←0 = sigmoid(logit)
    return model


def test_superslomo_blend_and_warp_follow_the_public_formula(tmp_path):
    rng = np.random.default_rng(1)
    img0, img1 = rng.integers(0, 256, (2, H, W, 3), dtype=np.uint8)  # H, W not multiples of 32
    ckpt = save(tmp_path / "fade.ckpt", known_model(), timestamp=datetime.datetime(2020, 1, 1))
    frames = interpolate("superslomo", img0, img1, 3, ckpt=ckpt, device="cpu")
    assert frames.shape == (5, H, W, 3)
    for t, frame in zip(times(3), frames[1:-1]):  # V = 1/2 and no flow: (1-t)·I0 + t·I1
        assert np.abs(frame - ((1 - t) * img0 + t * img1)).max() <= 1.0
    # V_t←0 ≈ 1 and a residual flow of +3 px in x: frame 0 sampled 3 px to the right
    ckpt = save(tmp_path / "shift.ckpt", known_model(residual_x=3.0, visibility_logit=30.0))
    frames = interpolate("superslomo", img0, img1, 2, ckpt=ckpt, device="cpu")
    assert np.abs(frames[1][:, :-3].astype(int) - img0[:, 3:]).max() <= 1
    # past the right edge: the replicated last column that pads 56 to 64 columns (a multiple of 32)
    assert np.abs(frames[1][:, -3:].astype(int) - img0[:, -1:]).max() <= 1


def test_superslomo_checkpoint_errors_are_one_line(tmp_path):
    model = SuperSloMo()
    cases = {
        tmp_path / "missing.ckpt": "not found",
        tmp_path / "junk.ckpt": "not a readable torch checkpoint",
        save(tmp_path / "good.ckpt", SuperSloMo()): None,
    }
    (tmp_path / "junk.ckpt").write_bytes(b"not a zip")
    torch.save({"state_dictFC": model.flow_comp.state_dict()}, tmp_path / "half.ckpt")
    cases[tmp_path / "half.ckpt"] = "no 'state_dictAT'"
    renamed = {f"module.{k}": v for k, v in model.arb_time.state_dict().items()}
    torch.save({"state_dictFC": model.flow_comp.state_dict(), "state_dictAT": renamed}, tmp_path / "renamed.ckpt")
    cases[tmp_path / "renamed.ckpt"] = "'state_dictAT' does not fit Super SloMo's U-Net (46 missing, 46 unexpected"
    torch.save(
        {"state_dictFC": model.arb_time.state_dict(), "state_dictAT": model.arb_time.state_dict()},
        tmp_path / "shapes.ckpt",
    )
    cases[tmp_path / "shapes.ckpt"] = (
        "'state_dictFC' does not fit Super SloMo's U-Net (0 missing, 0 unexpected, 3 wrongly"
    )
    for path, expect in cases.items():
        if expect is None:
            assert isinstance(load_superslomo(path, "cpu"), SuperSloMo)
            continue
        with pytest.raises(BlurgenError) as e:
            load_superslomo(path, "cpu")
        msg = str(e.value)
        assert "\n" not in msg and msg.startswith(str(path)) and expect in msg
