"""Tiled reading: tiles of the asked size that cover the image, a pixel's readings blended where they are read
best, and readings of either sign joined without cancelling."""

import itertools

import pytest
import torch

from b2f.tiles import tile_starts, tiled_predict


def local(image: torch.Tensor) -> torch.Tensor:
    """A reading that depends on each pixel alone (its first two channels, ×10): every tile reads a pixel alike."""
    return image[:, :2] * 10


@pytest.fixture
def image():
    return torch.rand(2, 3, 200, 300, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


@pytest.mark.parametrize(
    ("length", "tile", "starts"),
    [(256, 128, [0, 64, 128]), (300, 128, [0, 57, 115, 172]), (128, 128, [0]), (100, 128, [0]), (129, 128, [0, 1])],
)
def test_tiles_cover_the_side_and_overlap_by_half(length, tile, starts):
    assert tile_starts(length, tile) == starts
    assert starts[0] == 0 and min(length, starts[-1] + tile) == length  # covered, never past the end
    assert all(b - a <= tile // 2 for a, b in itertools.pairwise(starts))


@pytest.mark.parametrize(("batch", "passes"), [(1, [1] * 12), (5, [5, 5, 2]), (16, [12])])
def test_a_pixel_read_alike_by_every_tile_keeps_its_reading(image, batch, passes):
    """12 tiles (rows start at 0, 36, 72; columns at 0, 57, 115, 172), ``batch`` of them per pass, each with
    both images."""
    shapes = []

    def read(x):
        shapes.append(tuple(x.shape))
        return local(x)

    torch.testing.assert_close(tiled_predict(read, image, (128, 128), batch), local(image), rtol=0, atol=1e-12)
    assert shapes == [(2 * n, 3, 128, 128) for n in passes]


def test_an_image_no_larger_than_the_tile_is_read_whole(image):
    calls = []

    def read(x):
        calls.append(tuple(x.shape[-2:]))
        return local(x)

    torch.testing.assert_close(tiled_predict(read, image, (256, 512)), local(image), rtol=0, atol=0)
    assert calls == [(200, 300)]


@pytest.mark.parametrize("batch", [1, 16])
def test_tiles_read_reversed_are_turned_to_the_first_tiles_sign(image, batch):
    """Every other tile reads the motion reversed (as blur allows), whether tiles are read one or many per pass:
    blended, the first tile's sign everywhere, at full length, not a cancelled 0."""
    signs = itertools.cycle((1.0, -1.0))

    def read(x):
        per_tile = torch.tensor([next(signs) for _ in range(len(x) // len(image))], dtype=x.dtype)
        return per_tile.repeat_interleave(len(image))[:, None, None, None] * local(x)

    out = tiled_predict(read, image, (96, 128), batch)
    torch.testing.assert_close(out, local(image), rtol=0, atol=1e-12)


def test_a_tiles_border_counts_least(image):
    """A reader that reads twice the length within 16 px (an eighth) of its tile's edge: away from the image's own
    edge every pixel is central in some tile, and the blend stays within 1% of the truth (an unweighted mean of
    the tiles would be 50% long at a pixel on one tile's border and in another's middle)."""

    def read(x):
        border = torch.ones_like(x[:, :1])
        border[..., 16:-16, 16:-16] = 0
        return local(x) * (1 + border)

    out, truth = tiled_predict(read, image, (128, 128)), local(image)
    error = (torch.linalg.vector_norm(out, dim=1) / torch.linalg.vector_norm(truth, dim=1) - 1)[:, 16:-16, 16:-16]
    assert 0 < error.max() < 0.01
