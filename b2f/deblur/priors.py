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


@dataclass(frozen=True)
class FlatTail:
    """A zero-mean Gaussian mixture whose covariances keep their top ``rank`` eigenpairs and replace the
    rest by one isotropic variance, their mean (Parameswaran et al. 2019's flat tail).

    With Σ'_k = U_k diag(e_k) U_kᵀ + t_k (I − U_k U_kᵀ), the patch score log w_k + log N(y; 0, Σ'_k + vI)
    and the Wiener estimate Σ'_k (Σ'_k + vI)⁻¹ y need only the r projections c = U_kᵀ y:
        score = log w_k − ½[Σ log(e + v) + m log(t + v)] − ½[‖y‖²/(t + v) − Σ c² (1/(t + v) − 1/(e + v))],
        wiener = U_k diag(e/(e + v) − t/(t + v)) c + t/(t + v) y,
    m the tail's dimension (constants common to all components left out). With m = 0 both are the full
    covariance's (t is then any value: y lies in the span of U_k). ``null``: a direction absent from every
    patch (the constant patch, for DC-free patches), projected out of the covariances and out of the tail.
    """

    logw: torch.Tensor  # K
    values: torch.Tensor  # K×r, descending
    vectors: torch.Tensor  # K×d×r
    tail: torch.Tensor  # K
    tail_dims: int

    @classmethod
    def of(cls, weights: np.ndarray, covariances: np.ndarray, rank: int, null: np.ndarray | None = None) -> "FlatTail":
        """From mixture weights (K) and covariances (K×d×d), in float64 on the CPU (see :meth:`to`)."""
        cov = torch.as_tensor(covariances, dtype=torch.float64)
        dims = cov.shape[-1]
        e, u = torch.linalg.eigh(cov)
        if null is not None:
            n = torch.as_tensor(null, dtype=torch.float64)
            proj = torch.eye(dims, dtype=torch.float64) - torch.outer(n, n) / n.dot(n)
            e, u = torch.linalg.eigh(proj @ cov @ proj)
            # the null direction is an eigenvector of P Σ P (eigenvalue 0): drop it wherever it sorts
            keep = (n @ u).abs().argsort(dim=-1)[:, :-1].sort(dim=-1).values
            e, u = e.gather(1, keep), u.gather(2, keep[:, None, :].expand(-1, dims, -1))
            dims -= 1
        e, u = e.flip(-1).clamp(min=0), u.flip(-1)  # descending
        rank = min(rank, dims)
        # no tail: any t works for patches in the span; the smallest kept value keeps the weights below ≥ 0
        tail = e[:, rank:].mean(dim=1) if rank < dims else e[:, -1]
        logw = torch.as_tensor(np.log(weights), dtype=torch.float64)
        return cls(logw, e[:, :rank], u[:, :, :rank], tail, dims - rank)

    def coefficients(self, var: float) -> dict[str, torch.Tensor]:
        """The per-component coefficients at noise variance ``var`` (float64, then the vectors' dtype)."""
        e, t = self.values.double(), self.tail.double()
        inv_tail = 1 / (t + var)
        shrink = t * inv_tail
        const = self.logw.double() - 0.5 * (torch.log(e + var).sum(dim=1) + self.tail_dims * torch.log(t + var))
        weight = (inv_tail[:, None] - 1 / (e + var)).clamp(min=0)  # ≥ 0: the kept values are the largest
        gain = e / (e + var) - shrink[:, None]
        dtype = self.vectors.dtype
        return {
            "const": const.to(dtype),
            "inv_tail": inv_tail.to(dtype),
            "scaled": (self.vectors * weight.sqrt().to(dtype)[:, None, :]),
            "gain": gain.to(dtype),
            "shrink": shrink.to(dtype),
        }

    def to(self, device: torch.device, dtype: torch.dtype = torch.float32) -> "FlatTail":
        """The same mixture on ``device`` in ``dtype`` (the patch step runs in float32)."""
        return FlatTail(
            *(x.to(device, dtype) for x in (self.logw, self.values, self.vectors, self.tail)), self.tail_dims
        )

    def scores(self, y: torch.Tensor, var: float, terms: dict | None = None) -> torch.Tensor:
        """L×K: log w_k + log N(y; 0, Σ'_k + var·I) of each of the L×d patches, up to a common constant."""
        terms = terms or self.coefficients(var)
        k, d, r = self.vectors.shape
        scaled = terms["scaled"].permute(1, 0, 2).reshape(d, k * r)
        quad = (y @ scaled).square_().reshape(len(y), k, r).sum(dim=2)
        quad.addmm_(y.square().sum(dim=1, keepdim=True), terms["inv_tail"][None, :], alpha=-1)
        return quad.mul_(0.5).add_(terms["const"])

    def _grouped(self, y: torch.Tensor, comp: torch.Tensor, each, repeats: int = 1) -> torch.Tensor:
        """``each(k, rows)`` on the rows of ``y`` whose component is k, for every k; results in comp's order.

        ``comp`` may name ``repeats`` components per row (row i's at i·repeats, …).
        """
        order = comp.argsort()
        grouped = y[order // repeats if repeats > 1 else order]
        parts, start = [], 0
        for k, n in enumerate(torch.bincount(comp, minlength=len(self.logw)).tolist()):
            if n:
                parts.append(each(k, grouped[start : start + n]))
                start += n
        out = torch.cat(parts)
        return torch.empty_like(out).index_copy_(0, order, out)

    def candidate_scores(
        self, y: torch.Tensor, cand: torch.Tensor, var: float, terms: dict | None = None
    ) -> torch.Tensor:
        """L×m: the scores of :meth:`scores` for m candidate components per patch (L×m ints) alone."""
        terms = terms or self.coefficients(var)
        quad = self._grouped(
            y, cand.reshape(-1), lambda k, yk: (yk @ terms["scaled"][k]).square_().sum(dim=1), cand.shape[1]
        ).reshape(cand.shape)
        quad -= terms["inv_tail"][cand] * y.square().sum(dim=1, keepdim=True)
        return quad.mul_(0.5).add_(terms["const"][cand])

    def wiener(self, y: torch.Tensor, comp: torch.Tensor, var: float, terms: dict | None = None) -> torch.Tensor:
        """L×d: Σ'_k (Σ'_k + var·I)⁻¹ y of each patch under its component ``comp`` (L ints)."""
        terms = terms or self.coefficients(var)

        def estimate(k: int, yk: torch.Tensor) -> torch.Tensor:
            u = self.vectors[k]
            return torch.addmm(yk, (yk @ u) * terms["gain"][k], u.T, beta=float(terms["shrink"][k]))

        return self._grouped(y, comp, estimate)


@dataclass
class EPLL:
    """Expected patch log-likelihood under a zero-mean GMM (Zoran and Weiss 2011), per colour channel.

    The z-step gives each ``patch``² patch (every ``stride`` pixels, the last row/column always) the
    Wiener estimate under its most likely component at noise 1/β. β = 50·2^k, k = 0…4, as Gong et al.'s
    code (DESIGN.md). Two of Parameswaran et al. (2019)'s accelerations: patches every 3 px (Gong et al.
    take all, stride 1) and covariances through their top ``rank`` eigenpairs and a flat tail
    (:class:`FlatTail`; ``rank`` p² − 1 is exact for the DC-free patches); and a fast component choice:
    the ``candidates`` best components under a rank-``select_rank`` flat tail, rescored at ``rank``
    (``candidates`` 0: all components at ``rank``). The prior's weight grows with
    the patches per pixel (p²/stride²), so λ scales with 1/stride² to keep a given balance: the default
    6.67e4 at stride 3 weighs the prior as the earlier default, λ 1.5e5 (Gong et al.'s value) at stride 2.
    """

    gmm: dict
    lam: float = 1.5e5 * 4 / 9
    betas: tuple[float, ...] = (50.0, 100.0, 200.0, 400.0, 800.0)
    cg_iters: int = 25
    stride: int = 3
    rank: int = 32
    select_rank: int = 8
    candidates: int = 3
    chunk: int = 16384  # patches scored at once, bounding the memory of the z-step
    _cache: dict = field(default_factory=dict, repr=False)

    def _starts(self, n: int) -> tuple[int, bool]:
        """Patch starts along a side of n pixels: (how many every ``stride`` from 0, whether n − p follows)."""
        p = int(self.gmm["patch"])
        return (n - p) // self.stride + 1, (n - p) % self.stride != 0

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
            self._cache[key] = (idx, counts)
        return self._cache[key]

    def mixture(self, device: torch.device, rank: int | None = None) -> FlatTail:
        """The mixture's flat-tail form at ``rank`` (default :attr:`rank`) on ``device`` (float32), built once."""
        rank = self.rank if rank is None else rank
        if (rank, str(device)) not in self._cache:
            d = self.gmm["patch"] ** 2
            mix = FlatTail.of(self.gmm["weights"], self.gmm["covariances"], rank, null=np.ones(d))
            self._cache[rank, str(device)] = mix.to(device)
        return self._cache[rank, str(device)]

    def _choose(self, y: torch.Tensor, var: float, terms: dict) -> torch.Tensor:
        """L: each patch's most likely component (see the class's note on ``candidates``)."""
        mix = self.mixture(y.device)
        if not 0 < self.candidates < len(mix.logw):
            return mix.scores(y, var, terms).argmax(dim=1)
        cand = self.mixture(y.device, self.select_rank).scores(y, var).topk(self.candidates, dim=1).indices
        return cand.gather(1, mix.candidate_scores(y, cand, var, terms).argmax(dim=1, keepdim=True))[:, 0]

    def G(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802
        """C×L×p²: the patches, row-major over their top-left corners (the order of :meth:`_index`)."""
        h, w = x.shape[-2:]
        self._index(h, w, x.device)  # checks the size
        p, s = int(self.gmm["patch"]), self.stride
        # copies out of a strided view of all patches (faster than gathering through the index table)
        view = x.unfold(-2, p, 1).unfold(-2, p, 1)  # C×(H−p+1)×(W−p+1)×p×p, no copy

        def pieces(n: int) -> list[tuple[slice, slice]]:  # (rows of `out`, rows of `view`) along a side
            regular, last = self._starts(n)
            return [(slice(0, regular), slice(0, n - p + 1, s))] + [(slice(regular, None), slice(n - p, None))] * last

        out = x.new_empty(x.shape[0], *(sum(self._starts(n)) for n in (h, w)), p, p)
        for dy, sy in pieces(h):
            for dx, sx in pieces(w):
                out[:, dy, dx].copy_(view[:, sy, sx])
        return out.reshape(x.shape[0], -1, p * p)

    def GT(self, z: torch.Tensor, like: torch.Tensor) -> torch.Tensor:  # noqa: N802
        """Patches summed back into an image shaped like ``like`` (the adjoint of :meth:`G`)."""
        idx, _ = self._index(*like.shape[-2:], like.device)
        flat = torch.zeros(like.shape[0], like.shape[-2] * like.shape[-1], dtype=z.dtype, device=z.device)
        return flat.index_add_(1, idx.reshape(-1), z.reshape(z.shape[0], -1)).reshape(like.shape)

    def gram(self, x: torch.Tensor) -> torch.Tensor:
        _, counts = self._index(*x.shape[-2:], x.device)
        return counts * x

    def prox(self, patches: torch.Tensor, beta: float) -> torch.Tensor:
        """Each patch's Wiener estimate at noise 1/β under its most likely component (DC kept as is)."""
        mix = self.mixture(patches.device)
        var = 1.0 / beta
        terms = mix.coefficients(var)
        shape = patches.shape
        flat = patches.reshape(-1, shape[-1])
        mean = flat.mean(dim=1, keepdim=True)
        y = flat - mean
        best = torch.cat([self._choose(y[s : s + self.chunk], var, terms) for s in range(0, len(y), self.chunk)])
        return (mix.wiener(y, best, var, terms) + mean).reshape(shape)
