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
def test_perfect_prediction_costs_zero(masked):
    """A constant motion (a different one per sample) is that motion / 2^s in level-s pixels at every pixel of
    every level, masked or not: predicting exactly that costs nothing. (Built by hand, not with resize_target.)"""
    motion = torch.tensor([[12.8, -6.4], [-3.0, 5.5]])
    target = motion[:, :, None, None].expand(2, 2, H, W).contiguous()
    valid = (torch.rand(2, H, W, generator=torch.Generator().manual_seed(1)) > 0.3) if masked else None
    flows = [motion[:, :, None, None].expand(2, 2, h, w) / 2**s for (h, w), s in zip(SIZES, range(6, 0, -1))]
    assert multiscale_loss(flows, target, valid).item() == pytest.approx(0, abs=1e-4)
    # and one level-pixel off anywhere is not free
    flows[-1] = flows[-1] + 1
    assert multiscale_loss(flows, target, valid).item() > 0.005 * PIXELS[-1] * 0.3 * math.sqrt(2) * 2 / 20


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
    """u = 1 on every s-th column, 0 elsewhere: an antialiased (triangle, s wide) resize gives each coarse
    pixel the mean of its cell, 1/s, i.e. 1/s² in level pixels; plain bilinear sampling falls between two
    zero columns (s·X + (s − 1)/2) and gives 0. A ramp cannot tell the two apart; this pattern can."""
    target = torch.zeros(1, 2, H, W)
    target[:, 0, :, ::8] = 1.0
    for s in (4, 8):
        pattern = torch.zeros(1, 2, H, W)
        pattern[:, 0, :, ::s] = 1.0
        gt, _ = resize_target(pattern, (H // s, W // s))
        torch.testing.assert_close(gt[0, 0, 1:-1, 1:-1], torch.full((H // s - 2, W // s - 2), 1 / s**2))
        assert gt[0, 1].abs().max() == 0
        plain = torch.nn.functional.interpolate(pattern, size=(H // s, W // s), mode="bilinear", align_corners=False)
        assert plain.abs().max() == 0  # what a non-antialiased resize would have produced


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


def test_min_direction_loss_matches_the_per_sample_loop():
    """B2FModule's "min" loss (one batched pass over both targets) equals the mean over samples of
    min(loss vs flow_fwd, loss vs flow_bwd) computed one sample at a time, with masks."""
    from helpers import tiny_model_config

    from b2f.lightning_module import B2FModule

    gen = torch.Generator().manual_seed(7)
    fwd, bwd = random_flow(8, batch=3), random_flow(9, batch=3)
    valid = torch.rand(3, H, W, generator=gen) > 0.2
    flows = [torch.randn(3, 2, h, w, generator=gen) for h, w in SIZES]
    flows[-1][1] = resize_target(bwd[1:2], SIZES[-1])[0][0]  # sample 1 is closer to its backward flow
    loop = [
        min(multiscale_loss([f[i : i + 1] for f in flows], t[i : i + 1], valid[i : i + 1]).item() for t in (fwd, bwd))
        for i in range(3)
    ]
    module = B2FModule(tiny_model_config(), direction="min")
    batch = {"flow_fwd": fwd, "flow_bwd": bwd, "valid": valid, "image": torch.zeros(3, 3, H, W)}
    assert module.loss(flows, batch).item() == pytest.approx(sum(loop) / 3, rel=1e-5)


def test_loss_copies_nothing_from_the_host():
    """No tensor is made from Python numbers per call (a host-to-device copy, and a sync, on a GPU)."""
    target = random_flow(10)
    valid = torch.ones(2, H, W, dtype=torch.bool)
    flows = [torch.zeros(2, 2, h, w) for h, w in SIZES]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        multiscale_loss(flows, target, valid)
    assert not {"aten::lift_fresh", "aten::scalar_tensor"} & {e.name for e in prof.events()}


def test_needs_six_levels():
    target = random_flow(5)
    with pytest.raises(ValueError, match="6 flows"):
        multiscale_loss([resize_target(target, size)[0] for size in SIZES[1:]], target)
