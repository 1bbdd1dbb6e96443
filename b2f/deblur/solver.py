"""Half-quadratic splitting for  min_x  λ/2 ‖A x − b‖² + Σ ρ(G x)  with A the line blur of a flow.

Each stage of the β schedule sets the auxiliary variable z = prox_ρ(G x, β) (the prior's step), then
solves the normal equations (AᵀA + β/λ GᵀG) x = Aᵀb + β/λ Gᵀz by conjugate gradients started from
the last x. All colour channels are solved at once, each as its own system (per-channel CG steps).
"""

from collections.abc import Callable
from typing import Protocol

import torch

from blurgen.blur import LineBlur


class Prior(Protocol):
    """What :func:`deconvolve` needs of a prior: its analysis operator G, Gᵀ, GᵀG, the z-step and schedule."""

    lam: float
    betas: tuple[float, ...]
    cg_iters: int

    def G(self, x: torch.Tensor) -> torch.Tensor: ...  # noqa: N802 - the operator's usual name

    def GT(self, g: torch.Tensor, like: torch.Tensor) -> torch.Tensor: ...  # noqa: N802 - shaped like `like`

    def gram(self, x: torch.Tensor) -> torch.Tensor: ...

    def prox(self, g: torch.Tensor, beta: float) -> torch.Tensor: ...


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-channel inner products of C×H×W tensors, shaped C×1×1 to broadcast."""
    return (a * b).sum(dim=(-2, -1), keepdim=True)


def conjugate_gradient(
    apply: Callable[[torch.Tensor], torch.Tensor], rhs: torch.Tensor, x0: torch.Tensor, iters: int, tol: float = 1e-6
) -> tuple[torch.Tensor, int]:
    """Solve apply(x) = rhs (symmetric positive definite, per channel) from ``x0``: (x, iterations run).

    Stops when every channel's residual norm is below ``tol`` times its right-hand side's.
    """
    x = x0.clone()
    r = rhs - apply(x)
    p = r.clone()
    rr = _dot(r, r)
    stop = (tol**2) * _dot(rhs, rhs)
    for it in range(1, iters + 1):
        if bool((rr <= stop).all()):
            return x, it - 1
        ap = apply(p)
        alpha = rr / _dot(p, ap).clamp(min=1e-30)
        x += alpha * p
        r -= alpha * ap
        rr_new = _dot(r, r)
        p = r + (rr_new / rr.clamp(min=1e-30)) * p
        rr = rr_new
    return x, iters


def deconvolve(blurred: torch.Tensor, flow: torch.Tensor, prior: Prior) -> tuple[torch.Tensor, dict]:
    """The latent sharp image of ``blurred`` (C×H×W in [0, 1]) under the line blur of ``flow`` (2×H×W, px).

    Runs on the tensors' device. Returns (x clamped to [0, 1], info: CG iterations per stage).
    """
    blur = LineBlur(flow.to(blurred.device))
    atb = blur.T(blurred)
    x = blurred.clone()
    iterations = []
    for beta in prior.betas:
        z = prior.prox(prior.G(x), beta)
        w = beta / prior.lam
        rhs = atb + w * prior.GT(z, x)
        x, its = conjugate_gradient(lambda v, w=w: blur.T(blur(v)) + w * prior.gram(v), rhs, x, prior.cg_iters)
        iterations.append(its)
    return x.clamp(0, 1), {"cg_iterations": iterations, "nnz": blur.nnz}
