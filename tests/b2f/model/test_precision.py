"""Mixed precision: sampling grids, warping, the cost volume and the loss stay in float32 under autocast,
checked against closed forms; a bf16 forward and loss stay within a stated bound of float32."""

import pytest
import torch
from helpers import tiny_model_config

from b2f.loss import multiscale_loss
from b2f.model import build_model
from b2f.model.correlation import correlation
from b2f.model.decoder import STN
from blurgen.core.flow import warp

WIDTH = 512  # past 256 columns a bf16 coordinate cannot tell neighbouring pixels apart


def ramp(height=4, width=WIDTH):
    """A feature map whose value is its column: bilinear sampling at x returns x."""
    return torch.arange(width, dtype=torch.float32).expand(1, 1, height, width).contiguous()


def test_stn_samples_in_float32_under_bf16_autocast():
    """theta = [[a, 0, t], [0, 1, 0]] samples column x at x' = ((a·x_n + t) + 1)·W/2 − 1/2 with
    x_n = (2x + 1)/W − 1 (align_corners=False); on a ramp the output is x' itself."""
    torch.manual_seed(0)
    stn = STN(1, 8)
    a, t = 1.01, 3.3 / WIDTH
    with torch.no_grad():
        stn.theta.bias.copy_(torch.tensor([a, 0.0, t, 0.0, 1.0, 0.0]))
    x = torch.arange(WIDTH, dtype=torch.float64)
    expected = ((a * ((2 * x + 1) / WIDTH - 1) + t) + 1) * WIDTH / 2 - 0.5
    inside = (expected >= 0) & (expected <= WIDTH - 1)
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        out = stn(ramp())
    assert out.dtype == torch.float32
    err = (out[0, 0, 1].double() - expected)[inside].abs().max().item()
    assert err < 1e-3, f"STN under bf16 autocast is {err:.3f} px off the closed form"


def test_stn_taps_that_only_see_padding_get_no_gradient_under_bf16_autocast():
    """A 2×2 map (the coarsest level of a 128² crop) leaves the STN's second stride-2 conv a 1×1 map: only
    its centre tap meets a pixel, the other eight multiply zero padding, so their gradient is exactly 0.
    Under CPU bf16 autocast torch returned garbage there (most tries), which turned those weights NaN."""
    torch.manual_seed(0)
    stn = STN(96, 32)  # the widths of the half-width net's coarsest level
    torch.nn.init.normal_(stn.theta.weight, std=0.1)  # let the loss reach the localisation net
    off_centre = torch.ones(3, 3, dtype=torch.bool)
    off_centre[1, 1] = False
    for _ in range(5):
        stn.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = stn(torch.randn(4, 96, 2, 2))
        out.square().sum().backward()
        grad = stn.features[1][0].weight.grad
        assert (grad[..., off_centre] == 0).all() and (grad[..., 1, 1] != 0).any()


def test_warp_samples_in_float32_under_bf16_autocast():
    flow = torch.zeros(1, 2, 4, WIDTH)
    flow[:, 0] = 0.3
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = warp(ramp(), flow)
    expected = torch.arange(WIDTH - 1, dtype=torch.float32) + 0.3
    torch.testing.assert_close(out[0, 0, :, :-1], expected.expand(4, -1), rtol=0, atol=1e-4)


@pytest.mark.parametrize("method", ["windows", "rows"])
def test_correlation_of_float16_features_does_not_overflow(method):
    """Features of 300: every product is 90,000, past float16's largest number (65,504)."""
    feat = torch.full((1, 8, 6, 6), 300.0, dtype=torch.float16)
    out = correlation(feat, feat, 2, method=method)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert (out[:, :, 2:-2, 2:-2] == 90000).all()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = correlation(feat.float() + 0.25, feat.float(), 2, method=method)
    assert out.dtype == torch.float32 and (out[:, :, 2:-2, 2:-2] == 300.25 * 300).all()  # exact in float32


def test_bf16_forward_and_loss_stay_close_to_float32():
    """A small B2F-net on a 64×512 image with non-identity STNs: under bf16 autocast (as Lightning's
    "bf16-mixed" runs it) every level's flow is within 2% of the float32 flows' largest value, and the loss
    within 1%. The convolutions themselves run in bf16 (3 significant digits); what must not happen is
    the grids' and cost volume's error on top."""
    torch.manual_seed(1)
    model = build_model(tiny_model_config())
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("theta.bias"):
                p.add_(torch.tensor([0.01, 0.0, 0.007, 0.0, -0.01, 0.003]))
            if name.endswith("theta.weight"):
                p.normal_(0, 1e-3)
    image = torch.rand(2, 3, 64, WIDTH, generator=torch.Generator().manual_seed(2))
    target = 4 * torch.randn(2, 2, 64, WIDTH, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = model(image)
        ref_loss = multiscale_loss(ref, target)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(image)
            loss = multiscale_loss(out, target)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert abs(loss.item() - ref_loss.item()) <= 0.01 * ref_loss.item()
    for level, (a, b) in enumerate(zip(out, ref)):
        err = (a.float() - b).abs().max().item()
        assert err <= 0.02 * b.abs().max().item(), f"level {6 - level}: {err} vs max {b.abs().max().item()}"
