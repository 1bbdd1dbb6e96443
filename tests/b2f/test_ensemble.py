"""The self-ensemble: each copy's reading mapped back exactly, equivariant readers unchanged, signs aligned."""

import itertools
import math

import pytest
import torch
from torch import nn

from b2f.ensemble import TRANSFORMS, ensemble_predict, flow_back, transform_image


def gradient(image: torch.Tensor) -> torch.Tensor:
    """B×2×H×W (d/dx, d/dy) of the first channel by central differences: a field that turns and mirrors
    with the image, as a motion does."""
    d_dy, d_dx = torch.gradient(image[:, 0], dim=(1, 2))
    return torch.stack((d_dx, d_dy), 1)


class GradientReader(nn.Module):
    """Reads the image's gradient as its flow; with ``alternate``, every other call reads it reversed; with
    ``turn``, every reading is turned by that many radians (anticlockwise in x right, y down)."""

    def __init__(self, alternate: bool = False, turn: float = 0.0):
        super().__init__()
        self.signs = itertools.cycle((1, -1) if alternate else (1,))
        self.cos, self.sin = math.cos(turn), math.sin(turn)

    def predict(self, image: torch.Tensor) -> torch.Tensor:
        u, v = (next(self.signs) * gradient(image)).unbind(1)
        return torch.stack((self.cos * u + self.sin * v, -self.sin * u + self.cos * v), 1)


@pytest.fixture
def image():
    return torch.rand(2, 3, 9, 14, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_the_eight_transforms_are_the_dihedral_group(image):
    copies = [transform_image(image, flip, turns) for flip, turns in TRANSFORMS]
    assert len(TRANSFORMS) == 8
    assert all(not torch.equal(a, b) for a, b in itertools.combinations(copies, 2))
    assert [c.shape[-2:] for c in copies[:2]] == [(9, 14), (14, 9)]  # a quarter turn swaps the sides


@pytest.mark.parametrize(("flip", "turns"), TRANSFORMS)
def test_flow_back_maps_a_copys_reading_to_the_image_frame(image, flip, turns):
    back = flow_back(gradient(transform_image(image, flip, turns)), flip, turns)
    torch.testing.assert_close(back, gradient(image), rtol=0, atol=1e-12)


def test_an_equivariant_reader_is_its_own_ensemble(image):
    torch.testing.assert_close(ensemble_predict(GradientReader(), image), gradient(image), rtol=0, atol=1e-12)


def test_a_turned_reading_is_set_straight_and_keeps_its_length(image):
    """A reader that errs 30° the same way on every copy errs +30° on the four unmirrored and -30° on the four
    mirrored ones once mapped back: their directions sum to the truth's, and their mean length is the
    truth's, where the vector mean would be cos 30° = 0.87 of it."""
    torch.testing.assert_close(
        ensemble_predict(GradientReader(turn=math.pi / 6), image), gradient(image), rtol=0, atol=1e-12
    )


def test_readings_of_opposite_sign_do_not_cancel(image):
    """Four of the eight copies read the motion reversed (as blur allows): combined, they give the plain one, not 0."""
    torch.testing.assert_close(
        ensemble_predict(GradientReader(alternate=True), image), gradient(image), rtol=0, atol=1e-12
    )
