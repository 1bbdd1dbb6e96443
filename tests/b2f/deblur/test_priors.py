"""The EPLL patch step's algebra against numpy.linalg on explicit covariances: the flat-tail score and
Wiener estimate, and the prior's z-step at full rank against the full-covariance formulas."""

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from b2f.deblur import EPLL, fit_prior
from b2f.deblur.priors import FlatTail


@pytest.fixture(scope="module")
def gmm_dict(tmp_path_factory):
    """A small patch prior fitted on two scikit-image photos (4 components of 8×8 patches)."""
    photos = [cv2.resize(getattr(skimage.data, n)(), (120, 80)) for n in ("coffee", "chelsea")]
    return fit_prior(photos, tmp_path_factory.mktemp("prior") / "prior.npz", components=4, samples=3000, max_iter=30)


def _spd(rng: np.random.Generator, k: int, d: int) -> np.ndarray:
    a = rng.normal(size=(k, d, d)) * rng.uniform(0.1, 2, size=(k, 1, d))  # spread spectra
    return a @ a.transpose(0, 2, 1) + 1e-3 * np.eye(d)


def _truth(weights: np.ndarray, covs: np.ndarray, y: np.ndarray, var: float) -> tuple[np.ndarray, np.ndarray]:
    """(L×K log w_k + log N(y; 0, Σ_k + var·I) up to a constant, L×K×d Wiener estimates), by solve/slogdet."""
    d = covs.shape[-1]
    scores, wiener = [], []
    for w, cov in zip(weights, covs, strict=True):
        c = cov + var * np.eye(d)
        solved = np.linalg.solve(c, y.T).T
        scores.append(np.log(w) - 0.5 * np.linalg.slogdet(c)[1] - 0.5 * (y * solved).sum(axis=1))
        wiener.append(solved @ cov)  # Σ (Σ + vI)⁻¹ y, Σ symmetric
    return np.stack(scores, axis=1), np.stack(wiener, axis=1)


def _flattened(covs: np.ndarray, rank: int) -> np.ndarray:
    """Each covariance with its eigenvalues beyond ``rank`` replaced by their mean, rebuilt as a matrix."""
    e, u = np.linalg.eigh(covs)
    e = e[:, ::-1].copy()
    if rank < e.shape[1]:
        e[:, rank:] = e[:, rank:].mean(axis=1, keepdims=True)
    return np.einsum("kij,kj,klj->kil", u[:, :, ::-1], e, u[:, :, ::-1])


@pytest.mark.parametrize("rank", [10, 4, 1])
def test_flat_tail_score_and_wiener_equal_solve_and_slogdet(rank):
    rng = np.random.default_rng(rank)
    k, d, var = 5, 10, 0.2
    covs, weights = _spd(rng, k, d), rng.dirichlet(np.ones(k))
    y = rng.normal(size=(40, d))
    truth_scores, truth_wiener = _truth(weights, _flattened(covs, rank), y, var)  # rank d: the covariances
    mix = FlatTail.of(weights, covs, rank)
    scores = mix.scores(torch.from_numpy(y), var).numpy()
    offset = (truth_scores - scores).mean()  # the constant common to all components, left out
    np.testing.assert_allclose(scores + offset, truth_scores, atol=1e-4 * np.abs(truth_scores).max())
    cand = torch.from_numpy(rng.integers(0, k, size=(len(y), 3)))  # any components, repeats allowed
    got = mix.candidate_scores(torch.from_numpy(y), cand, var).numpy()
    want = np.take_along_axis(truth_scores, cand.numpy(), axis=1)
    np.testing.assert_allclose(got + offset, want, atol=1e-4 * np.abs(truth_scores).max())
    for j in range(k):
        got = mix.wiener(torch.from_numpy(y), torch.full((len(y),), j), var).numpy()
        np.testing.assert_allclose(got, truth_wiener[:, j], atol=1e-4 * np.abs(truth_wiener).max())


def test_flat_tail_in_float32_picks_the_same_components():
    rng = np.random.default_rng(7)
    k, d, var = 6, 16, 0.05
    covs, weights = _spd(rng, k, d), rng.dirichlet(np.ones(k))
    y = rng.normal(size=(500, d))
    truth_scores, truth_wiener = _truth(weights, covs, y, var)
    mix = FlatTail.of(weights, covs, d).to(torch.device("cpu"))
    yt = torch.from_numpy(y).float()
    best = mix.scores(yt, var).argmax(dim=1).numpy()
    gap = np.sort(truth_scores, axis=1)[:, -1] - np.sort(truth_scores, axis=1)[:, -2]
    clear = gap > 1e-3  # ties within float32 rounding may go either way
    assert (best[clear] == truth_scores.argmax(axis=1)[clear]).all() and clear.mean() > 0.95
    got = mix.wiener(yt, torch.from_numpy(best), var).numpy()
    want = truth_wiener[np.arange(len(y)), best]
    np.testing.assert_allclose(got, want, atol=1e-4 * np.abs(want).max())


@pytest.mark.parametrize("candidates", [0, 2])
def test_epll_z_step_at_full_rank_is_the_full_covariance_map(gmm_dict, candidates):
    """Rank p² − 1 (all but the constant patch): each DC-free patch gets the Wiener estimate of the
    component maximising log w_k + log N(y; 0, Σ_k + I/β) with Σ_k the stored covariances; DC kept.
    Candidates preselected at full rank too must pick the same components."""
    full = gmm_dict["patch"] ** 2 - 1
    prior = EPLL(gmm_dict, rank=full, select_rank=full, candidates=candidates)
    rng = np.random.default_rng(3)
    d = gmm_dict["patch"] ** 2
    patches = rng.normal(size=(2, 60, d)) * 0.1 + rng.uniform(size=(2, 60, 1))
    beta = 200.0
    got = prior.prox(torch.from_numpy(patches).float(), beta).numpy()
    flat = patches.reshape(-1, d)
    mean = flat.mean(axis=1, keepdims=True)
    scores, wiener = _truth(gmm_dict["weights"], gmm_dict["covariances"], flat - mean, 1 / beta)
    want = wiener[np.arange(len(flat)), scores.argmax(axis=1)] + mean
    np.testing.assert_allclose(got.reshape(-1, d), want, atol=1e-4)


@pytest.mark.parametrize(("size", "stride"), [((20, 23), 3), ((18, 18), 2), ((8, 13), 4)])
def test_patches_and_their_sum_equal_a_per_patch_loop(gmm_dict, size, stride):
    """G takes every stride-th patch plus the last row and column of patches; Gᵀ adds them back."""
    prior = EPLL(gmm_dict, stride=stride)
    p = gmm_dict["patch"]
    h, w = size
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, h, w, generator=gen)
    starts = [sorted(set(range(0, n - p + 1, stride)) | {n - p}) for n in size]
    corners = [(i, j) for i in starts[0] for j in starts[1]]
    want = torch.stack([x[:, i : i + p, j : j + p].reshape(2, -1) for i, j in corners], dim=1)
    torch.testing.assert_close(prior.G(x), want, atol=0, rtol=0)
    z = torch.rand(want.shape, generator=gen)
    summed = torch.zeros_like(x)
    for n, (i, j) in enumerate(corners):
        summed[:, i : i + p, j : j + p] += z[:, n].reshape(2, p, p)
    torch.testing.assert_close(prior.GT(z, x), summed)
    counts = torch.zeros(h, w)
    for i, j in corners:
        counts[i : i + p, j : j + p] += 1
    torch.testing.assert_close(prior.gram(x), counts * x)
