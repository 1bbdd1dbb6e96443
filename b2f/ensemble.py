"""Self-ensemble: the flow read from an image's eight flips and quarter turns, mapped back and combined.

A blurred image shows the same motion turned or mirrored with it, so a net that has not learned that
symmetry exactly errs differently on each copy, and combining the eight readings (the dihedral group
D4, as in super-resolution's "+" models) gives a lower-variance estimate at eight times the cost. Blur
does not tell a motion from its reverse: each reading is turned to the sign of the plain one (per image,
as min-EPE scores an image) before combining, so that opposite readings of the same blur do not cancel.
Direction and length are combined apart: the direction of the readings' vector sum, the mean of their
lengths. The vector mean of readings that disagree in direction is shorter than any of them (by the
cosine of their spread), so it would read every blur shorter than the net does.
"""

import torch

TRANSFORMS = tuple((flip, turns) for flip in (False, True) for turns in range(4))  # (mirror x?, quarter turns)


def transform_image(image: torch.Tensor, flip: bool, turns: int) -> torch.Tensor:
    """``image`` (…×H×W) mirrored left-right if ``flip``, then turned ``turns`` quarter turns (torch.rot90)."""
    image = image.flip(-1) if flip else image
    return torch.rot90(image, turns, dims=(-2, -1))


def flow_back(flow: torch.Tensor, flip: bool, turns: int) -> torch.Tensor:
    """B×2×H×W flow read on ``transform_image(image, flip, turns)``, in the frame of ``image`` itself.

    One torch.rot90 turn takes pixel (y, x) to (W-1-x, y), so a motion (u, v) becomes (v, -u); undoing
    it turns the field back and maps (u', v') to (-v', u'). A mirror negates u.
    """
    for _ in range(turns):
        flow = torch.rot90(flow, -1, dims=(-2, -1))
        flow = torch.stack((-flow[:, 1], flow[:, 0]), 1)
    if flip:
        flow = flow.flip(-1)
        flow = torch.stack((-flow[:, 0], flow[:, 1]), 1)
    return flow


@torch.no_grad()
def ensemble_predict(model: torch.nn.Module, image: torch.Tensor) -> torch.Tensor:
    """B×2×H×W: the eight copies' readings of ``image`` (B×3×H×W) by ``model.predict``, each mapped back to
    the image's frame and given the sign under which it agrees with the plain reading; per pixel, the
    direction of their sum with the mean of their lengths."""
    plain = model.predict(image)
    total, length = plain.clone(), torch.linalg.vector_norm(plain, dim=1, keepdim=True)
    for flip, turns in TRANSFORMS[1:]:
        flow = flow_back(model.predict(transform_image(image, flip, turns)), flip, turns)
        agree = (flow * plain).sum(dim=(1, 2, 3), keepdim=True) >= 0
        total += torch.where(agree, flow, -flow)
        length += torch.linalg.vector_norm(flow, dim=1, keepdim=True)
    return combine(total, length / len(TRANSFORMS))


def combine(total: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """B×2×H×W: per pixel the direction of the readings' (sign-aligned) sum ``total`` with the length ``length``
    (B×1×H×W, their mean)."""
    return total / torch.linalg.vector_norm(total, dim=1, keepdim=True).clamp(min=1e-12) * length
