"""One 480×320 RGB deconvolution per prior: the torch operator route (b2f.deblur) beside the same
half-quadratic splitting with its x-steps on an explicit scipy.sparse matrix (build, apply, scipy CG).

    python bench/deblur.py [--preset bsd-m] [--threads 1] [--repeats 3] [--priors hyper-laplacian,epll]
                           [--gmm prior.npz] [--device cpu|cuda]

Both routes run the same prior z-steps (torch), the same β schedule and the same number of CG steps per
stage, so they reach the same PSNR (printed); only the operator differs. Build = the operator from the
flow (torch: CSR of A and Aᵀ from the kernel table; scipy: the kernel table converted and assembled into
CSR, its transpose and the gradient matrix); x-steps = the CG solves; other = the rest (the prior's
z-steps, right-hand sides). One thread each by default, torch's and numpy's BLAS (scipy's sparse
products are single-threaded). Each route runs --repeats times, alternating with the other, and shows
its fastest run (the least disturbed on a shared CPU). Without --gmm the EPLL mixture is fitted first on
other scikit-image photos (time printed apart, not counted). A last row runs EPLL exactly as before its
accelerations (every covariance in full and every component scored, patches every 2 px, λ 1.5e5: the
same prior weight per pixel), torch route once, to show what the accelerations cost in PSNR. On a shared
machine quote the ratios within one run. ``--device cuda`` runs the torch route on the GPU (its clocks read
after the queued work is done); the scipy route stays on the CPU, where scipy.sparse runs.
"""

import argparse
import tempfile
import time

import cv2
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import skimage.data
import torch
from measure import sync
from skimage.metrics import peak_signal_noise_ratio
from threadpoolctl import threadpool_limits

from b2f.deblur import EPLL, HyperLaplacian, deconvolve, fit_prior, load_prior, solver
from b2f.deblur.run import to_image, to_tensor
from b2f.deblur.solver import conjugate_gradient
from blurgen.blur import LineBlur, line_blur, line_entries
from blurgen.core.device import resolve_device
from blurgen.sources.gong import PRESETS, draw_flow


def gradient_gram(h: int, w: int) -> sp.csr_matrix:
    """GᵀG of the hyper-Laplacian's forward differences (zero across the far edge) as a sparse matrix."""

    def diff(n):
        d = sp.diags([-np.ones(n), np.ones(n - 1)], [0, 1], shape=(n, n)).tolil()
        d[n - 1, n - 1] = 0
        return d.tocsr()

    dx = sp.kron(sp.identity(h), diff(w))
    dy = sp.kron(diff(h), sp.identity(w))
    return (dx.T @ dx + dy.T @ dy).tocsr()


def sparse_deconvolve(blurred: torch.Tensor, flow: torch.Tensor, prior) -> tuple[torch.Tensor, float, float, list]:
    """The HQS of b2f.deblur.deconvolve with scipy.sparse x-steps: (x, build s, x-step s, CG steps per stage)."""
    c, h, w = blurred.shape
    start = time.perf_counter()
    rows, cols, weights = (t.numpy() for t in line_entries(flow))
    a = sp.csr_matrix((weights, (rows, cols)), shape=(h * w, h * w))
    at = a.T.tocsr()
    gram = gradient_gram(h, w) if isinstance(prior, HyperLaplacian) else None
    build = time.perf_counter() - start
    b = blurred.reshape(c, -1).numpy().astype(np.float64)
    atb = np.stack([at @ b[k] for k in range(c)])
    x = blurred.clone()
    iterations, solving = [], 0.0
    for beta in prior.betas:
        z = prior.prox(prior.G(x), beta)
        rhs = atb + (beta / prior.lam) * prior.GT(z, x).reshape(c, -1).numpy()
        wt = beta / prior.lam
        if gram is None:
            counts = prior.gram(torch.ones(1, h, w)).reshape(-1).numpy().astype(np.float64)
            reg = lambda v, counts=counts: counts * v  # noqa: E731
        else:
            reg = gram.dot
        op = spla.LinearOperator((h * w, h * w), matvec=lambda v, wt=wt, reg=reg: at @ (a @ v) + wt * reg(v))
        out, steps = [], 0
        start = time.perf_counter()
        for k in range(c):
            count = [0]
            xk, _ = spla.cg(
                op,
                rhs[k],
                x0=x[k].reshape(-1).numpy().astype(np.float64),
                rtol=1e-6,
                maxiter=prior.cg_iters,
                callback=lambda _, count=count: count.__setitem__(0, count[0] + 1),
            )
            out.append(xk)
            steps = max(steps, count[0])
        solving += time.perf_counter() - start
        iterations.append(steps)
        x = torch.from_numpy(np.stack(out).reshape(c, h, w)).float()
    return x.clamp(0, 1), build, solving, iterations


def built(flow: torch.Tensor) -> LineBlur:
    """The operator with its transpose (built on first use), as deconvolve uses them: the torch route's build."""
    blur = LineBlur(flow)
    _ = blur.matrix_t  # built now, so that it counts here
    return blur


class Clock:
    """A function that adds up the seconds spent in it (its GPU work included): the torch route's pieces,
    timed inside its run."""

    def __init__(self, fn, device: torch.device):
        self.fn, self.device, self.seconds = fn, device, 0.0

    def __call__(self, *args, **kwargs):
        sync(self.device)
        start = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            sync(self.device)
            self.seconds += time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="bsd-m", choices=tuple(PRESETS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="runs per route; the fastest is shown")
    parser.add_argument("--priors", default="hyper-laplacian,epll")
    parser.add_argument("--gmm", default=None, help="EPLL mixture from b2f-fit-prior (default: fit one first)")
    parser.add_argument("--device", default="cpu", help="the torch route's device (auto, cpu, cuda)")
    args = parser.parse_args()
    dev = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    # numpy's BLAS too (scipy's CG runs its dots and updates there): its default threads spin-wait on a
    # shared CPU and made the scipy route several times slower than one thread, which it is meant to run on
    threadpool_limits(args.threads)

    sharp = cv2.resize(skimage.data.astronaut(), (480, 320), interpolation=cv2.INTER_AREA)
    flow = draw_flow(np.random.default_rng(3), 320, 480, PRESETS[args.preset])[0]
    blurred = line_blur(sharp, flow)
    b, f = to_tensor(blurred), torch.from_numpy(flow).permute(2, 0, 1)
    psnr = lambda x: peak_signal_noise_ratio(sharp, to_image(x), data_range=255)  # noqa: E731
    on = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"{args.threads} thread(s)"
    print(
        f"480x320 RGB, {args.preset} flow (largest {np.linalg.norm(flow, axis=2).max():.1f} px), torch route on "
        f"{on}, scipy route on {args.threads} CPU thread(s); blurred PSNR {psnr(b):.2f} dB"
    )

    priors = {}
    for name in args.priors.split(","):
        if name == "hyper-laplacian":
            priors[name] = HyperLaplacian()
        elif name == "epll":
            if args.gmm is None:
                path = tempfile.mkdtemp() + "/prior.npz"
                photos = [getattr(skimage.data, n)() for n in ("coffee", "chelsea", "rocket", "brick")]
                start = time.perf_counter()
                fit_prior(photos, path)
                print(f"EPLL mixture fitted (20 components, 20000 patches): {time.perf_counter() - start:.1f} s")
                args.gmm = path
            priors[name] = EPLL(load_prior(args.gmm))

    print(f"{'prior':16}{'route':16}{'build s':>9}{'x-step s':>9}{'other s':>9}{'total s':>9}{'PSNR':>8}  CG steps")
    totals = {}
    for name, prior in priors.items():
        best, best_s = (float("inf"),) * 3, (float("inf"),) * 3  # (total, build, x-steps) of the fastest run
        for _ in range(args.repeats):  # the routes alternate, so both meet the same load; fastest kept
            build, solve = Clock(built, dev), Clock(conjugate_gradient, dev)
            solver.LineBlur, solver.conjugate_gradient = build, solve
            sync(dev)
            start = time.perf_counter()
            x, info = deconvolve(b.to(dev), f.to(dev), prior)
            x = x.cpu()
            best = min(best, (time.perf_counter() - start, build.seconds, solve.seconds))
            solver.LineBlur, solver.conjugate_gradient = LineBlur, conjugate_gradient
            start = time.perf_counter()
            xs, build_s, solve_s, its = sparse_deconvolve(b, f, prior)
            best_s = min(best_s, (time.perf_counter() - start, build_s, solve_s))
        for route, (total, build, solve), out, steps in (
            ("torch operator", best, x, info["cg_iterations"]),
            ("scipy.sparse", best_s, xs, its),
        ):
            first = name if route == "torch operator" else ""
            other = total - build - solve
            print(f"{first:16}{route:16}{build:9.2f}{solve:9.2f}{other:9.2f}{total:9.2f}{psnr(out):8.2f}  {steps}")
        totals[name] = (best[0], best_s[0])
    if "epll" in priors:
        gmm = priors["epll"].gmm
        exact = EPLL(gmm, lam=1.5e5, stride=2, rank=gmm["patch"] ** 2 - 1, candidates=0)
        start = time.perf_counter()
        x, info = deconvolve(b.to(dev), f.to(dev), exact)
        x = x.cpu()
        total = time.perf_counter() - start
        print(f"{'epll exact, s2':16}{'torch operator':16}{'':27}{total:9.2f}{psnr(x):8.2f}  {info['cg_iterations']}")
    for name, (ours, theirs) in totals.items():
        print(f"{name}: scipy.sparse / torch operator = {theirs / ours:.2f}x")


if __name__ == "__main__":
    main()
