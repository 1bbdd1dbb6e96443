"""The line-kernel blur operator against definitions computed another way (scipy filters, inner products)."""

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from blurgen.blur import LineBlur, line_blur, line_entries


def _random_flow(seed, h, w, scale):
    """A smooth random field (a few sinusoids) with lengths from 0 up to about ``scale`` px."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    flow = np.zeros((2, h, w), np.float32)
    for c in range(2):
        for _ in range(3):
            fx, fy, phase = rng.uniform(0, 0.3, 3)
            flow[c] += rng.uniform(-1, 1) * np.sin(fx * xs + fy * ys + 6 * phase)
    return torch.from_numpy(scale * flow / np.abs(flow).max())


@pytest.mark.parametrize(("seed", "scale"), [(0, 3.0), (1, 9.5), (2, 17.0), (3, 36.0)])
def test_adjoint_matches_inner_products(seed, scale):
    h, w = 23, 31
    blur = LineBlur(_random_flow(seed, h, w, scale))
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.rand(3, h, w, generator=gen), torch.rand(3, h, w, generator=gen)
    lhs = (blur(x).double() * y.double()).sum().item()
    rhs = (x.double() * blur.T(y).double()).sum().item()
    assert abs(lhs - rhs) <= 1e-5 * abs(lhs)
    # rows are averages: a constant image stays constant, whatever the flow
    assert torch.allclose(blur(torch.ones(1, h, w)), torch.ones(1, h, w), atol=1e-6)


def test_zero_flow_is_the_identity():
    x = torch.rand(3, 12, 17)
    assert torch.equal(LineBlur(torch.zeros(2, 12, 17))(x), x)
    assert torch.equal(LineBlur(torch.zeros(2, 12, 17)).T(x), x)


@pytest.mark.parametrize("length", [3, 5, 8, 11])
@pytest.mark.parametrize("axis", [0, 1])
def test_uniform_integer_flow_is_a_box_filter_away_from_borders(length, axis):
    rng = np.random.default_rng(length)
    image = rng.random((2, 40, 44)).astype(np.float32)
    flow = torch.zeros(2, 40, 44)
    flow[1 - axis] = float(length)  # u (index 0) blurs along x (array axis 1 of each channel)
    got = LineBlur(flow)(torch.from_numpy(image)).numpy()
    if length % 2:  # odd: the segment covers exactly L pixels
        want = ndi.uniform_filter1d(image, length, axis=axis + 1)
    else:  # even: L-1 whole pixels and half of each end pixel (the anti-aliased ends)
        weights = np.r_[0.5, np.ones(length - 1), 0.5] / length
        want = ndi.correlate1d(image, weights, axis=axis + 1)
    m = length // 2 + 1
    inner = (slice(None), slice(m, -m), slice(None)) if axis == 0 else (slice(None), slice(None), slice(m, -m))
    np.testing.assert_allclose(got[inner], want[inner], atol=1e-5)


def test_flow_and_its_negative_blur_the_same():
    flow = _random_flow(4, 30, 26, 12.0)
    x = torch.rand(3, 30, 26)
    torch.testing.assert_close(LineBlur(flow)(x), LineBlur(-flow)(x), atol=1e-6, rtol=0)


def test_borders_replicate_and_uint8_blur_rounds():
    # a vertical edge at x = 0 blurred horizontally by 5: the clamped left border repeats column 0
    image = np.zeros((6, 10, 3), np.uint8)
    image[:, 0] = 250
    flow = np.zeros((6, 10, 2), np.float32)
    flow[..., 0] = 5
    out = line_blur(image, flow)
    np.testing.assert_array_equal(out[0, :4, 0], [150, 100, 50, 0])  # 3/5, 2/5, 1/5 of 250 from column 0
    assert out.dtype == np.uint8 and out.shape == image.shape


@pytest.mark.parametrize(("seed", "h", "w", "scale"), [(5, 9, 13, 6.0), (6, 11, 7, 36.0), (7, 3, 4, 80.0)])
def test_the_adjoint_matrix_is_the_dense_transpose(seed, h, w, scale):
    blur = LineBlur(_random_flow(seed, h, w, scale))
    dense = blur.matrix.to_dense()
    assert torch.equal(blur.matrix_t.to_dense(), dense.T)  # built by a sort of the entries, not by torch
    crow, cols = blur.matrix_t.crow_indices(), blur.matrix_t.col_indices().long()
    key = torch.repeat_interleave(torch.arange(h * w), crow.diff()) * h * w + cols
    assert bool((key[1:] > key[:-1]).all())  # each row's columns sorted, as CSR products expect
    assert blur.nnz == int((dense != 0).sum())  # one stored entry per nonzero of the matrix


def test_entries_are_canonical_one_per_pixel_pair():
    flow = _random_flow(8, 17, 19, 20.0)
    rows, cols, weights = line_entries(flow)
    n = 17 * 19
    key = rows * n + cols
    assert bool((key[1:] > key[:-1]).all())  # sorted by row then column, no pair twice
    assert bool((weights > 0).all())
    # a horizontal line of 5 px at the left border: taps at x = -2…2 clamp to columns 0, 0, 0, 1, 2
    flow = torch.zeros(2, 4, 6)
    flow[0] = 5.0
    rows, cols, weights = line_entries(flow)
    first = rows == 0
    assert cols[first].tolist() == [0, 1, 2]
    torch.testing.assert_close(weights[first], torch.tensor([3.0, 1.0, 1.0]) / 5)


def test_lines_far_longer_than_the_frame():
    # 45001 px on a 2×3 frame: every tap clamps to a border column (the wide-index path of the entries)
    length = 45001
    flow = torch.zeros(2, 2, 3)
    flow[0] = float(length)
    rows, cols, weights = line_entries(flow)
    dense = torch.zeros(6, 6).index_put_((rows, cols), weights)
    # from x = 0: taps k <= 0 read column 0, k = 1 column 1, k >= 2 column 2, each the segment's share
    want = torch.tensor([length / 2 + 0.5, 1.0, length / 2 - 1.5]) / length
    # tolerance: float32 sums of ~22500 taps
    torch.testing.assert_close(dense[0, :3], want, atol=1e-3, rtol=0)
    torch.testing.assert_close(dense[3, 3:], want, atol=1e-3, rtol=0)  # second row, same line
    assert bool((dense[0, 3:] == 0).all())


def test_size_mismatch_is_refused():
    with pytest.raises(ValueError, match="flow"):
        LineBlur(torch.zeros(2, 8, 8))(torch.zeros(3, 8, 9))
