"""Multi-scale EPE: zero for a perfect prediction, the paper's weights, per-level units, PWC-Net's scale
(full-resolution px / 20, summed over pixels, per sample), valid masks."""

import math

import pytest
import torch

from b2f.loss import FLOW_DIV, WEIGHTS, multiscale_loss, resize_target

H, W = 128, 192
SIZES = [(H >> s, W >> s) for s in range(6, 0, -1)]  # coarsest first, as the model returns them
PIXELS = [h * w for h, w in SIZES]


def random_flow(seed, batch=2):
    return 10 * torch.randn(batch, 2, H, W, generator=torch.Generator().manual_seed(seed))


def test_weights_are_the_papers():
    assert WEIGHTS == (0.32, 0.08, 0.04, 0.02, 0.01, 0.005)


@pytest.mark.parametrize("masked", [False, True])
def test_perfect_prediction_costs_exactly_zero(masked):
    target = random_flow(0)
    valid = (torch.rand(2, H, W, generator=torch.Generator().manual_seed(1)) > 0.3) if masked else None
    flows = [resize_target(target, size, valid)[0] for size in SIZES]
    assert multiscale_loss(flows, target, valid).item() == 0.0


def test_constant_flow_is_expressed_in_each_levels_pixels():
    """A uniform (12.8, -6.4) px motion is (12.8, -6.4) / 2^l px at level l; predicting zero everywhere costs
    Σ w_l · (pixels of level l) · |(12.8, -6.4)| / 20 per sample."""
    target = torch.tensor([12.8, -6.4]).view(1, 2, 1, 1).expand(2, 2, H, W).contiguous()
    for (h, w), shift in zip(SIZES, range(6, 0, -1)):
        gt, _ = resize_target(target, (h, w))
        torch.testing.assert_close(gt, target[:, :, :h, :w] / 2**shift)
    zeros = [torch.zeros(2, 2, h, w) for h, w in SIZES]
    assert FLOW_DIV == 20
    expected = sum(wt * n * math.hypot(12.8, -6.4) / 20 for wt, n in zip(WEIGHTS, PIXELS))
    assert multiscale_loss(zeros, target).item() == pytest.approx(expected, rel=1e-5)


def test_resizing_averages_the_cell():
    """u = x (a ramp): coarse pixel X covers fine pixels s·X .. s·X + s - 1, whose mean is s·X + (s - 1)/2,
    i.e. X + (s - 1)/(2s) in level pixels (away from the borders, where the filter is cut)."""
    target = torch.zeros(1, 2, H, W)
    target[:, 0] = torch.arange(W, dtype=torch.float32)
    for s in (2, 4, 8):
        gt, _ = resize_target(target, (H // s, W // s))
        xs = torch.arange(W // s, dtype=torch.float32)
        torch.testing.assert_close(gt[0, 0, :, 2:-2], (xs + (s - 1) / (2 * s)).expand(H // s, -1)[:, 2:-2])
        assert gt[0, 1].abs().max() == 0


def test_one_wrong_level_costs_its_weight_times_the_summed_error():
    """A (3, 4) level-pixel error is 5 · 2^l full-resolution px, i.e. 5 · 2^l / 20 at each of the level's pixels."""
    target = random_flow(2)
    for level, shift in zip(range(6), range(6, 0, -1)):
        flows = [resize_target(target, size)[0] for size in SIZES]
        flows[level] = flows[level] + torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)
        expected = WEIGHTS[level] * PIXELS[level] * 5.0 * 2**shift / 20
        assert multiscale_loss(flows, target).item() == pytest.approx(expected, rel=1e-5)


def test_loss_is_per_sample_and_sums_pixels():
    """Repeating the batch leaves the loss unchanged; an error on only one sample of two costs half its sum."""
    target = random_flow(6, batch=1)
    flows = [resize_target(target, size)[0] + 1.0 for size in SIZES]
    one = multiscale_loss(flows, target).item()
    assert multiscale_loss([f.repeat(3, 1, 1, 1) for f in flows], target.repeat(3, 1, 1, 1)).item() == pytest.approx(
        one, rel=1e-5
    )
    perfect = [resize_target(target, size)[0] for size in SIZES]
    mixed = [torch.cat([f, p]) for f, p in zip(flows, perfect)]
    assert multiscale_loss(mixed, target.repeat(2, 1, 1, 1)).item() == pytest.approx(one / 2, rel=1e-5)


def test_invalid_pixels_do_not_matter():
    """Whatever sits under valid == 0 (even NaN) changes nothing; cells that are wholly invalid are not scored."""
    target = random_flow(3)
    valid = torch.ones(2, H, W)
    valid[:, :, : W // 2] = 0
    flows = [torch.randn(2, 2, h, w, generator=torch.Generator().manual_seed(h)) for h, w in SIZES]
    garbage = target.clone()
    garbage[:, :, :, : W // 2] = float("nan")
    loss = multiscale_loss(flows, target, valid)
    assert torch.isfinite(loss)
    assert multiscale_loss(flows, garbage, valid).item() == pytest.approx(loss.item(), rel=1e-6)
    # errors confined to the invalid half cost nothing
    shifted = [f.clone() for f in flows]
    for f in shifted:
        f[:, :, :, : f.shape[-1] // 2 - 1] += 100
    assert multiscale_loss(shifted, target, valid).item() == pytest.approx(loss.item(), rel=1e-6)
    _, coarse_valid = resize_target(target, (H // 4, W // 4), valid)
    assert not coarse_valid[:, :, : W // 8 - 1].any() and coarse_valid[:, :, W // 8 + 1 :].all()


def test_gradient_of_a_perfect_prediction_is_finite():
    target = random_flow(4)
    flows = [resize_target(target, size)[0].requires_grad_() for size in SIZES]
    multiscale_loss(flows, target).backward()
    assert all(torch.isfinite(f.grad).all() for f in flows)


def test_needs_six_levels():
    target = random_flow(5)
    with pytest.raises(ValueError, match="6 flows"):
        multiscale_loss([resize_target(target, size)[0] for size in SIZES[1:]], target)
