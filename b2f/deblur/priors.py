"""Image priors for :func:`b2f.deblur.deconvolve`: a hyper-Laplacian on gradients (Krishnan and Fergus
2009) and the EPLL Gaussian-mixture patch prior (Zoran and Weiss 2011), whose mixture is fitted here with
scikit-learn from any photos (``b2f-fit-prior``) and kept in a ``.npz`` file."""

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from blurgen.core.errors import BlurgenError
from blurgen.core.files import atomic_path
from blurgen.core.images import read_image


def _schedule(start: float, rate: float, stop: float) -> tuple[float, ...]:
    return tuple(start * rate**k for k in range(int(math.floor(math.log(stop / start, rate) + 1e-9)) + 1))


@dataclass(frozen=True)
class HyperLaplacian:
    """ρ(g) = |g|^α on horizontal and vertical forward differences (zero across the far edge).

    Defaults (images in [0, 1]): λ = 2000, α = 2/3, β = 1, 2√2, 8, … up to 256 (6 stages, K&F's), at most
    ``cg_iters`` CG steps per stage. The z-step is the generalised shrinkage of Zuo et al. (2013), three
    fixed-point steps: α = 2/3 has a closed form too, but this one works for any α.
    """

    lam: float = 2000.0
    alpha: float = 2 / 3
    beta0: float = 1.0
    beta_rate: float = 2 * math.sqrt(2)
    beta_max: float = 256.0
    cg_iters: int = 25

    @property
    def betas(self) -> tuple[float, ...]:
        return _schedule(self.beta0, self.beta_rate, self.beta_max)

    def G(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802
        """C×2×H×W: x[i, j+1] - x[i, j] and x[i+1, j] - x[i, j], 0 in the last column/row."""
        dx = F.pad(x[..., :, 1:] - x[..., :, :-1], (0, 1))
        dy = F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))
        return torch.stack([dx, dy], dim=-3)

    def GT(self, g: torch.Tensor, like: torch.Tensor | None = None) -> torch.Tensor:  # noqa: N802
        gx, gy = g[..., 0, :, :-1], g[..., 1, :-1, :]
        return F.pad(gx, (1, 0)) - F.pad(gx, (0, 1)) + F.pad(gy, (0, 0, 1, 0)) - F.pad(gy, (0, 0, 0, 1))

    def gram(self, x: torch.Tensor) -> torch.Tensor:
        return self.GT(self.G(x))

    def prox(self, g: torch.Tensor, beta: float) -> torch.Tensor:
        """argmin_w β/2 (w - g)² + |w|^α per element."""
        a, lam = self.alpha, 1.0 / beta
        base = 2 * lam * (1 - a)
        tau = base ** (1 / (2 - a)) + lam * a * base ** ((a - 1) / (2 - a))
        mag = g.abs()
        t = mag.clone()
        for _ in range(3):
            t = mag - lam * a * t.clamp(min=1e-12) ** (a - 1)
        return torch.where(mag > tau, torch.sign(g) * t, torch.zeros_like(g))


# -- the Gaussian mixture of patches --------------------------------------------------------------
def _patches(gray: np.ndarray, patch: int, count: int, rng: np.random.Generator) -> np.ndarray:
    h, w = gray.shape
    ys = rng.integers(0, h - patch + 1, count)
    xs = rng.integers(0, w - patch + 1, count)
    offsets = np.arange(patch)
    rows = (ys[:, None, None] + offsets[None, :, None]) * w + (xs[:, None, None] + offsets[None, None, :])
    return gray.reshape(-1)[rows.reshape(count, -1)]


def fit_prior(
    images: list,
    out: str | Path,
    components: int = 20,
    patch: int = 8,
    samples: int = 20000,
    max_iter: int = 100,
    seed: int = 0,
) -> dict:
    """Fit a zero-mean Gaussian mixture to ``samples`` random ``patch``² patches (each colour channel a
    grey patch, DC removed) of ``images`` (paths or uint8 arrays); write it to ``out`` (.npz); return it.

    Zoran and Weiss use 200 components on 2·10⁶ patches; the defaults here fit on a CPU in about a minute.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits

    arrays = [read_image(p) if not isinstance(p, np.ndarray) else p for p in images]
    if not arrays:
        raise BlurgenError("no images to fit the patch prior to; pass some photos")
    rng = np.random.default_rng(seed)
    per = -(-samples // (3 * len(arrays)))
    data = []
    for rgb in arrays:
        if min(rgb.shape[:2]) < patch:
            raise BlurgenError(f"an image of {rgb.shape[0]}x{rgb.shape[1]} is smaller than the {patch}px patches")
        for c in range(rgb.shape[2] if rgb.ndim == 3 else 1):
            gray = (rgb[..., c] if rgb.ndim == 3 else rgb).astype(np.float64) / 255
            data.append(_patches(gray, patch, per, rng))
    data = np.concatenate(data)
    data -= data.mean(axis=1, keepdims=True)
    gmm = GaussianMixture(components, covariance_type="full", max_iter=max_iter, random_state=seed, reg_covar=1e-6)
    # one BLAS thread: on a shared CPU, EM's many small products run >10x slower with spinning threads
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # recorded in the file as `converged`
        gmm.fit(data)
    # zero-mean components (Zoran and Weiss): the fitted means of DC-free patches are ~0 and are dropped
    covariances = 0.5 * (gmm.covariances_ + gmm.covariances_.transpose(0, 2, 1))
    prior = {"weights": gmm.weights_.astype(np.float64), "covariances": covariances, "patch": np.int64(patch)}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        np.savez(tmp, **prior, samples=np.int64(len(data)), converged=np.bool_(gmm.converged_))
    return prior


def load_prior(path: str | Path) -> dict:
    """The mixture written by :func:`fit_prior` (weights K, covariances K×p²×p², patch p)."""
    path = Path(path)
    try:
        with np.load(path) as f:
            prior = {"weights": f["weights"], "covariances": f["covariances"], "patch": int(f["patch"])}
    except FileNotFoundError:
        raise BlurgenError(f"{path}: patch prior not found; fit one with `b2f-fit-prior PHOTOS… -o {path}`") from None
    except Exception as e:  # zip, pickle and key errors alike: not a file of ours
        raise BlurgenError(f"{path}: not a patch prior from b2f-fit-prior ({type(e).__name__}); refit it") from None
    k, d = len(prior["weights"]), prior["patch"] ** 2
    if prior["covariances"].shape != (k, d, d):
        raise BlurgenError(f"{path}: covariances {prior['covariances'].shape} do not fit {k} components of {d} values")
    return prior


@dataclass
class EPLL:
    """Expected patch log-likelihood under a zero-mean GMM (Zoran and Weiss 2011), per colour channel.

    The z-step gives each ``patch``² patch (every ``stride`` pixels, the last row/column always) the
    Wiener estimate under its most likely component at noise 1/β. Defaults follow Gong et al.'s code
    (λ 1.5e5 … see DESIGN.md): β = 50·2^k, k = 0…4; ``stride`` 1 is their all-overlapping patches,
    2 quarters the cost.
    """

    gmm: dict
    lam: float = 1.5e5
    betas: tuple[float, ...] = (50.0, 100.0, 200.0, 400.0, 800.0)
    cg_iters: int = 25
    stride: int = 2
    chunk: int = 16384  # patches per step of the z-step, bounding its memory
    _cache: dict = field(default_factory=dict, repr=False)

    def _index(self, h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(L×p² pixel indices of the patches, per-pixel patch counts) for an H×W image."""
        key = (h, w, str(device))
        if key not in self._cache:
            p = self.gmm["patch"]
            if h < p or w < p:
                raise BlurgenError(f"image {h}x{w} is smaller than the prior's {p}px patches")
            ys = sorted(set(range(0, h - p + 1, self.stride)) | {h - p})
            xs = sorted(set(range(0, w - p + 1, self.stride)) | {w - p})
            y0 = torch.tensor(ys, device=device)[:, None, None, None]
            x0 = torch.tensor(xs, device=device)[None, :, None, None]
            off = torch.arange(p, device=device)
            idx = ((y0 + off[:, None]) * w + x0 + off[None, :]).reshape(-1, p * p)
            counts = torch.bincount(idx.reshape(-1), minlength=h * w).to(torch.float32).reshape(h, w)
            cov = torch.as_tensor(self.gmm["covariances"], dtype=torch.float64)
            e, u = torch.linalg.eigh(cov)
            self._cache[key] = (idx, counts)
            self._cache["eig"] = (e.clamp(min=0).float().to(device), u.float().to(device))
            self._cache["logw"] = torch.as_tensor(np.log(self.gmm["weights"]), dtype=torch.float32, device=device)
        return self._cache[key]

    def G(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802
        idx, _ = self._index(*x.shape[-2:], x.device)
        return x.reshape(x.shape[0], -1)[:, idx]  # C×L×p²

    def GT(self, z: torch.Tensor, like: torch.Tensor) -> torch.Tensor:  # noqa: N802
        """Patches summed back into an image shaped like ``like`` (the adjoint of :meth:`G`)."""
        idx, _ = self._index(*like.shape[-2:], like.device)
        flat = torch.zeros(like.shape[0], like.shape[-2] * like.shape[-1], dtype=z.dtype, device=z.device)
        return flat.index_add_(1, idx.reshape(-1), z.reshape(z.shape[0], -1)).reshape(like.shape)

    def gram(self, x: torch.Tensor) -> torch.Tensor:
        _, counts = self._index(*x.shape[-2:], x.device)
        return counts * x

    def prox(self, patches: torch.Tensor, beta: float) -> torch.Tensor:
        e, u = self._cache["eig"]
        logw = self._cache["logw"]
        var = 1.0 / beta
        shape = patches.shape
        flat = patches.reshape(-1, shape[-1])
        mean = flat.mean(dim=1, keepdim=True)
        y = flat - mean
        out = torch.empty_like(y)
        gain = e / (e + var)  # K×p²
        const = logw - 0.5 * torch.log(e + var).sum(dim=1)  # K
        for s in range(0, len(y), self.chunk):
            yc = y[s : s + self.chunk]
            proj = torch.einsum("lp,kpq->klq", yc, u)  # K×l×p²: coordinates in each component's eigenbasis
            score = const[:, None] - 0.5 * (proj.square() / (e + var)[:, None, :]).sum(dim=2)
            best = score.argmax(dim=0)
            zc = torch.empty_like(yc)
            for k in torch.unique(best).tolist():
                m = best == k
                zc[m] = (proj[k][m] * gain[k]) @ u[k].T
            out[s : s + self.chunk] = zc
        return (out + mean).reshape(shape)
