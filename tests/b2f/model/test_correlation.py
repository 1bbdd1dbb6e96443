"""The cost volume against a direct per-pixel computation, ptlflow's sampler, and a known shift."""

import pytest
import torch

from b2f.model.correlation import correlation
from blurgen.core.quiet import quiet_import

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
]


def direct(feat1, feat2, radius):
    """Loop over pixels and shifts: out[b, (dy+r)*(2r+1) + (dx+r), y, x] = mean_c f1[y, x] * f2[y+dy, x+dx]."""
    batch, channels, height, width = feat1.shape
    size = 2 * radius + 1
    out = torch.zeros(batch, size * size, height, width, dtype=torch.float64)
    for b in range(batch):
        for y in range(height):
            for x in range(width):
                for dy in range(-radius, radius + 1):
                    for dx in range(-radius, radius + 1):
                        if 0 <= y + dy < height and 0 <= x + dx < width:
                            dot = sum(
                                feat1[b, c, y, x].item() * feat2[b, c, y + dy, x + dx].item() for c in range(channels)
                            )
                            out[b, (dy + radius) * size + dx + radius, y, x] = dot / channels
    return out


def shifted_loop(feat1, feat2, radius):
    """The cost volume as it was computed before the windowed formulation: one product per shift."""
    _, channels, height, width = feat1.shape
    size = 2 * radius + 1
    padded = torch.nn.functional.pad(feat2, (radius,) * 4)
    costs = [
        (feat1 * padded[:, :, dy : dy + height, dx : dx + width]).sum(1) for dy in range(size) for dx in range(size)
    ]
    return torch.stack(costs, 1) / channels


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("method", ["windows", "rows"])
@pytest.mark.parametrize("radius", [1, 4])
def test_matches_direct_computation(device, method, radius):
    gen = torch.Generator().manual_seed(radius)
    feat1, feat2 = (torch.randn(2, 3, 5, 7, generator=gen) for _ in range(2))
    out = correlation(feat1.to(device), feat2.to(device), radius, method=method).cpu()
    assert out.shape == (2, (2 * radius + 1) ** 2, 5, 7)
    torch.testing.assert_close(out.double(), direct(feat1, feat2, radius), rtol=0, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("method", ["windows", "rows"])
def test_equal_to_the_shifted_loop_in_values_and_gradients(device, method):
    """float32, the sizes and widths of B2F-net's level 3 at a 256² crop: values and both inputs' gradients
    (under a random upstream gradient) within 1e-5 of the per-shift loop."""
    gen = torch.Generator().manual_seed(4)
    feat1, feat2 = (torch.randn(2, 64, 32, 32, generator=gen).to(device) for _ in range(2))
    upstream = torch.randn(2, 81, 32, 32, generator=gen).to(device)
    results = []
    for fn in (lambda a, b: correlation(a, b, 4, method=method), lambda a, b: shifted_loop(a, b, 4)):
        a, b = feat1.clone().requires_grad_(), feat2.clone().requires_grad_()
        out = fn(a, b)
        out.backward(upstream)
        results.append((out, a.grad, b.grad))
    for ours, loop in zip(*results):
        torch.testing.assert_close(ours, loop, rtol=0, atol=1e-5)


def test_auto_picks_rows_on_the_cpu():
    """Same numbers either way; "auto" is the CPU's faster one (see the module docstring)."""
    gen = torch.Generator().manual_seed(5)
    feat1, feat2 = (torch.randn(1, 4, 6, 6, generator=gen) for _ in range(2))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        correlation(feat1, feat2, 2)
    assert [e.name for e in prof.events()].count("aten::sum") == 5  # one per row of shifts
    with pytest.raises(ValueError, match="unknown correlation method"):
        correlation(feat1, feat2, 2, method="fft")


def test_matches_ptlflow_sampler():
    sampler = quiet_import("ptlflow.utils.correlation").IterSpatialCorrelationSampler(patch_size=9)
    gen = torch.Generator().manual_seed(1)
    feat1, feat2 = (torch.randn(2, 8, 12, 16, generator=gen) for _ in range(2))
    theirs = sampler(feat1, feat2)
    theirs = theirs.view(2, 81, 12, 16) / 8
    torch.testing.assert_close(correlation(feat1, feat2, 4), theirs, rtol=0, atol=1e-5)


def test_peak_at_the_true_shift():
    """feat2 is feat1 moved by (dx, dy) = (3, -2): every interior pixel's best match is that channel."""
    gen = torch.Generator().manual_seed(2)
    feat1 = torch.randn(1, 64, 20, 24, generator=gen)
    feat2 = torch.roll(feat1, shifts=(-2, 3), dims=(2, 3))  # feat2[y - 2, x + 3] = feat1[y, x]
    best = correlation(feat1, feat2, 4).argmax(1)[0, 4:-4, 4:-4]
    assert (best == (-2 + 4) * 9 + (3 + 4)).all()


def test_gradients_match_finite_differences():
    gen = torch.Generator().manual_seed(3)
    feat1, feat2 = (torch.randn(1, 2, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(2))
    for method in ("windows", "rows"):
        assert torch.autograd.gradcheck(lambda a, b, m=method: correlation(a, b, 2, method=m), (feat1, feat2))
