"""B2F-net: shapes and units at every level, predict() at any size, the STN's identity start, warping,
ablation parameter counts (from the layer formulas, not from the code), config round trip, learning."""

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

from b2f.loss import multiscale_loss
from b2f.model import B2FNet, ModelConfig, build_model
from b2f.model.decoder import STN
from b2f.model.layers import deconv, init_flow_upsampler
from blurgen.core.flow import warp

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
]


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {arch: B2FNet(ModelConfig(arch=arch)).eval() for arch in ("b2f", "unet")}


@pytest.mark.parametrize("arch", ["b2f", "unet"])
@pytest.mark.parametrize("size", [(64, 64), (128, 192), (192, 64)])
def test_one_flow_per_level_coarsest_first(models, arch, size):
    height, width = size
    with torch.no_grad():
        flows = models[arch](torch.rand(1, 3, height, width))
    assert [tuple(f.shape) for f in flows] == [(1, 2, height >> s, width >> s) for s in range(6, 0, -1)]
    assert all(torch.isfinite(f).all() for f in flows)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("size", [(50, 70), (100, 130)])
def test_predict_returns_full_resolution_pixels_at_any_size(models, device, size):
    model = models["b2f"].to(device)
    image = torch.rand(1, 3, *size, device=device)
    # full float32: cuDNN's TF32 convolutions (on by default) differ by up to 5e-3 px between two passes that
    # pick different algorithms (measured on an H200; 6e-6 without TF32), and this test is about the arithmetic
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        flow = model.predict(image)
        assert flow.shape == (1, 2, *size) and flow.device.type == device
        # it is the finest level, upsampled ×2 with values ×2, of the replicate-padded image
        padded = F.pad(image, (0, -size[1] % 64, 0, -size[0] % 64), mode="replicate")
        with torch.no_grad():
            finest = model(padded)[-1]
    expected = 2 * F.interpolate(finest, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(flow, expected[:, :, : size[0], : size[1]])
    model.to("cpu")


def test_forward_rejects_sizes_that_are_not_multiples_of_64(models):
    with pytest.raises(ValueError, match="divisible by 64"):
        models["b2f"](torch.rand(1, 3, 64, 100))


def test_identity_initialised_stn_leaves_features_unchanged():
    torch.manual_seed(1)
    stn = STN(16, 32)
    feat = torch.randn(2, 16, 8, 12)
    torch.testing.assert_close(stn(feat), feat, rtol=0, atol=1e-5)  # float rounding of the grid
    # and it does move features once theta says so: x-translation by 2 pixels of a 12-wide map
    with torch.no_grad():
        stn.theta.bias[2] = 2 * 2 / 12
    torch.testing.assert_close(stn(feat)[..., :-2], feat[..., 2:], rtol=0, atol=1e-5)


def test_stn_at_init_makes_no_difference_to_the_model():
    """STN switched off vs on, same other weights: identical flows, since every STN starts as identity."""
    torch.manual_seed(2)
    with_stn = B2FNet(ModelConfig()).eval()
    without = B2FNet(ModelConfig(stn=False)).eval()
    without.load_state_dict({k: v for k, v in with_stn.state_dict().items() if ".stns." not in k})
    image = torch.rand(1, 3, 64, 128)
    with torch.no_grad():
        for a, b in zip(with_stn(image), without(image)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_warp_samples_at_pixel_offsets():
    feat = torch.arange(2 * 5 * 6, dtype=torch.float32).view(1, 2, 5, 6)
    flow = torch.zeros(1, 2, 5, 6)
    torch.testing.assert_close(warp(feat, flow), feat)
    flow[:, 0], flow[:, 1] = 2, -1  # sample at (x + 2, y - 1)
    out = warp(feat, flow)
    torch.testing.assert_close(out[:, :, 1:, :-2], feat[:, :, :-1, 2:])
    assert (out[:, :, 0] == 0).all() and (out[:, :, :, -2:] == 0).all()  # outside: zeros
    flow[:, 0], flow[:, 1] = 0.5, 0  # half way between two columns
    torch.testing.assert_close(warp(feat, flow)[..., :-1], (feat[..., :-1] + feat[..., 1:]) / 2)
    # a 1-pixel-wide map (level 6 of a 64-pixel input) is well defined
    torch.testing.assert_close(warp(feat[..., :1, :1], flow[..., :1, :1] * 0), feat[..., :1, :1])


def test_flow_upsampler_starts_as_bilinear_times_two():
    layer = deconv(2, 2)
    init_flow_upsampler(layer)
    flow = torch.randn(1, 2, 6, 8)
    expected = 2 * F.interpolate(flow, scale_factor=2, mode="bilinear", align_corners=False)
    with torch.no_grad():
        torch.testing.assert_close(layer(flow)[..., 1:-1, 1:-1], expected[..., 1:-1, 1:-1])


# parameter counts of the paper's layers, written out from their shapes
def conv3(i, o):
    return 9 * i * o + o


def deconv4(i, o):
    return 16 * i * o + o


def stn_params(c, w):
    return conv3(c, w) + conv3(w, w) + (w * w + w) + (w * 6 + 6)


def rb_params(i, g, o):
    return sum(conv3(i + k * g, g) for k in range(4)) + conv3(i + 4 * g, o)


def test_ablation_switches_change_the_parameter_count_as_expected():
    cfg = ModelConfig()
    ch, last = cfg.enc_channels, len(cfg.enc_channels) - 1
    stns = 2 * sum(stn_params(c, cfg.stn_channels) for c in ch)  # two decoders (first, last frame)
    rbs = 2 * sum(rb_params((2 if l == last else 3) * c, g, c) for l, (c, g) in enumerate(zip(ch, cfg.rb_growth)))
    ups = 2 * sum(deconv4(ch[l + 1], ch[l]) for l in range(last))
    n_corr = (2 * cfg.corr_range + 1) ** 2
    # every layer that sees the cost volume: each dense-decoder conv, the prediction, ↑V_f, the context input
    corr_inputs = (
        sum(
            n_corr * 9 * sum(widths) + n_corr * 9 * 2 + (n_corr * 16 * 2 if l else 0)
            for l, widths in enumerate(cfg.flow_widths)
        )
        + n_corr * 9 * cfg.context_widths[0]
    )
    full = n_params(B2FNet(cfg))
    assert full - n_params(B2FNet(ModelConfig(stn=False))) == stns
    assert full - n_params(B2FNet(ModelConfig(rb=False))) == rbs + ups
    assert full - n_params(B2FNet(ModelConfig(stn=False, rb=False))) == stns + rbs + ups
    assert full - n_params(B2FNet(ModelConfig(arch="unet"))) == stns + rbs + ups + corr_inputs


def test_narrowed_widths_follow_the_rule():
    """Widths × 0.5 rounded down to multiples of 4, the encoder at least 8, every other conv at least 16
    (expected values worked out by hand from the paper's widths); width 1 is the paper's net."""
    half = ModelConfig().narrowed(0.5)
    assert half.enc_channels == (8, 16, 32, 48, 64, 96)  # 196 / 2 = 98 -> 96
    assert half.rb_growth == (16, 16, 16, 24, 32, 32)  # 8 -> 16
    assert half.flow_widths == ((16,) * 5, (32, 32, 24, 16, 16)) + ((64, 64, 48, 32, 16),) * 4
    assert half.context_widths == (32, 32, 32, 24, 16, 16)
    assert (half.stn_channels, half.corr_range) == (32, 4)
    assert ModelConfig().narrowed(1.0) == ModelConfig()
    # the conv weights scale with in × out widths: about a quarter of the parameters at half width
    assert 0.2 < n_params(B2FNet(half)) / n_params(B2FNet(ModelConfig())) < 0.35


def test_config_round_trips_through_json():
    cfg = ModelConfig(arch="b2f", stn=False, flow_widths=((16,) * 5,) * 6)
    stored = json.loads(json.dumps(dataclasses.asdict(cfg)))
    model = build_model(stored)
    assert model.cfg == cfg
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in B2FNet(cfg).state_dict().items()
    }
    with pytest.raises(ValueError, match="unknown model config keys"):
        build_model({**stored, "widths": 3})
    with pytest.raises(ValueError, match="unknown arch"):
        build_model({**stored, "arch": "pwc"})


@pytest.mark.parametrize("arch", ["b2f", "unet"])
def test_a_few_steps_fit_one_sample(arch):
    """Gradients reach every parameter and Adam lowers the loss on a fixed blurred image / flow pair."""
    torch.manual_seed(3)
    model = B2FNet(ModelConfig(arch=arch))
    image = torch.rand(1, 3, 64, 64)
    target = torch.zeros(1, 2, 64, 64)
    target[:, 0], target[:, 1] = 6.0, -3.0
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for step in range(10):
        opt.zero_grad()
        loss = multiscale_loss(model(image), target)
        loss.backward()
        if step == 0:
            assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
