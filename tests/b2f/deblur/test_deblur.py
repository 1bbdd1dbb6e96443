"""Non-blind deconvolution: its parts against independent truths, the gain with the true flow, both priors,
the CLIs and their bad inputs."""

import cv2
import numpy as np
import pytest
import skimage.data
import torch
from helpers import error_line, invoke, tiny_model_config
from skimage.metrics import peak_signal_noise_ratio as psnr

from b2f.checkpoint import save_model
from b2f.deblur import EPLL, HyperLaplacian, conjugate_gradient, deconvolve, load_prior
from b2f.deblur.cli import deblur as deblur_main
from b2f.deblur.cli import fit_prior as fit_prior_main
from b2f.deblur.run import deblur_image
from b2f.model import build_model
from blurgen.blur import line_blur
from blurgen.core.flow_io import write_flow
from blurgen.core.images import read_image, write_image
from blurgen.sources.gong import PRESETS, draw_flow

FAST = HyperLaplacian(cg_iters=15)  # fewer CG steps than the default: the tests' time, not the best result


@pytest.fixture(scope="module")
def scene():
    """A 96×144 photo, a bsd-m motion flow drawn for it and its line blur (scikit-image's astronaut)."""
    sharp = cv2.resize(skimage.data.astronaut(), (144, 96), interpolation=cv2.INTER_AREA)
    flow, _, _ = draw_flow(np.random.default_rng(3), 96, 144, PRESETS["bsd-m"])
    return sharp, flow, line_blur(sharp, flow)


@pytest.fixture(scope="module")
def gmm(tmp_path_factory):
    """A small patch prior fitted by b2f-fit-prior (in-process) on photos other than the test's."""
    path = tmp_path_factory.mktemp("prior") / "prior.npz"
    folder = path.parent
    for name in ("coffee", "chelsea"):
        write_image(folder / f"{name}.png", cv2.resize(getattr(skimage.data, name)(), (120, 80)))
    args = [folder / "coffee.png", folder / "chelsea.png", "-o", path]
    try:
        fit_prior_main([str(a) for a in [*args, "--components", "4", "--samples", "3000", "--max-iter", "30"]])
    except SystemExit as e:
        assert e.code == 0
    return path


def test_conjugate_gradient_solves_per_channel_systems():
    rng = np.random.default_rng(0)
    n = 12  # a 3×4 "image" per channel, two channels with their own SPD matrices
    mats = [(lambda m: m @ m.T + n * np.eye(n))(rng.normal(size=(n, n))) for _ in range(2)]
    rhs = rng.normal(size=(2, n))
    apply = lambda v: torch.stack(  # noqa: E731
        [torch.from_numpy(mats[c]).float() @ v[c].reshape(-1) for c in range(2)]
    ).reshape(2, 3, 4)
    x, its = conjugate_gradient(apply, torch.from_numpy(rhs).float().reshape(2, 3, 4), torch.zeros(2, 3, 4), 50)
    for c in range(2):
        np.testing.assert_allclose(x[c].reshape(-1).numpy(), np.linalg.solve(mats[c], rhs[c]), rtol=1e-4, atol=1e-5)
    assert its <= n + 2  # exact arithmetic needs at most n steps


def test_gradient_operators_are_adjoint():
    gen = torch.Generator().manual_seed(0)
    x, g = torch.rand(3, 9, 11, generator=gen), torch.rand(3, 2, 9, 11, generator=gen)
    g[:, 0, :, -1] = 0  # G is zero across the far edge, so only such g are in its range
    g[:, 1, -1, :] = 0
    prior = HyperLaplacian()
    lhs = (prior.G(x) * g).sum().double().item()
    assert lhs == pytest.approx((x * prior.GT(g)).sum().double().item(), rel=1e-5)
    np.testing.assert_allclose(prior.G(x)[:, 0, :, :-1].numpy(), np.diff(x.numpy(), axis=2), atol=1e-6)


@pytest.mark.parametrize("beta", [1.0, 8.0, 181.0])
def test_hyper_laplacian_shrinkage_minimises_its_objective(beta):
    v = torch.linspace(-1.5, 1.5, 61)
    w = HyperLaplacian().prox(v, beta)
    grid = torch.linspace(-2, 2, 40001)[:, None]  # brute force over a fine grid
    objective = lambda w: beta / 2 * (w - v) ** 2 + w.abs() ** (2 / 3)  # noqa: E731
    best = objective(grid).min(dim=0).values
    assert (objective(w[None]) <= best + 1e-3).all()


def test_epll_patches_are_adjoint_and_the_noiseless_wiener_step_keeps_a_patch(gmm):
    prior = EPLL(load_prior(gmm), stride=3)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(3, 20, 23, generator=gen)
    z = torch.rand(prior.G(x).shape, generator=gen)
    assert (prior.G(x) * z).sum().item() == pytest.approx((x * prior.GT(z, x)).sum().item(), rel=1e-5)
    torch.testing.assert_close(prior.gram(x), prior.GT(prior.G(x), x))  # the counts shortcut is GᵀG
    patches = prior.G(x)
    torch.testing.assert_close(prior.prox(patches, 1e9), patches, atol=1e-3, rtol=0)


def test_true_flow_raises_psnr_and_a_turned_flow_much_less(scene):
    sharp, flow, blurred = scene
    before = psnr(sharp, blurred)
    true = psnr(sharp, deblur_image(blurred, flow, FAST))
    turned = psnr(sharp, deblur_image(blurred, np.stack([-flow[..., 1], flow[..., 0]], axis=-1), FAST))
    assert true - before >= 3.0, (before, true)
    assert turned - before <= true - before - 3.0, (before, true, turned)


def test_epll_prior_runs_and_gains(scene, gmm):
    sharp, flow, blurred = scene
    prior = EPLL(load_prior(gmm), betas=(50.0, 200.0, 800.0), cg_iters=15)
    restored = deblur_image(blurred, flow, prior)
    assert psnr(sharp, restored) - psnr(sharp, blurred) >= 2.0


def test_deconvolve_reports_iterations(scene):
    _, flow, blurred = scene
    x, info = deconvolve(
        torch.from_numpy(blurred).permute(2, 0, 1).float() / 255, torch.from_numpy(flow).permute(2, 0, 1), FAST
    )
    assert len(info["cg_iterations"]) == len(FAST.betas) == 6 and max(info["cg_iterations"]) <= 15
    assert x.min() >= 0 and x.max() <= 1


def test_cli_with_a_flow_file_and_with_a_checkpoint(capsys, scene, tmp_path):
    sharp, flow, blurred = scene
    write_image(tmp_path / "photo.png", blurred)
    np.save(tmp_path / "photo_flow.npy", flow)
    code, out, err = invoke(
        deblur_main,
        capsys,
        tmp_path / "photo.png",
        "--flow",
        tmp_path / "photo_flow.npy",
        "-o",
        tmp_path / "out",
        "--device",
        "cpu",
    )
    assert code == 0, err
    assert psnr(sharp, read_image(tmp_path / "out" / "photo_sharp.png")) - psnr(sharp, blurred) >= 3.0
    # with a checkpoint: the flow and its colour picture as b2f-predict writes them (a random-weight model)
    torch.manual_seed(0)
    save_model(tmp_path / "model.pt", build_model(tiny_model_config()), tiny_model_config())
    code, out, err = invoke(
        deblur_main, capsys, tmp_path / "photo.png", "--ckpt", tmp_path / "model.pt", "-o", tmp_path / "ck"
    )
    assert code == 0, err
    made = {p.name for p in (tmp_path / "ck").iterdir()}  # b2f-predict also lists what it made
    assert made == {"photo.flo", "photo_color.png", "photo_sharp.png", ".b2f-predict-made"}


def test_bad_inputs_are_one_line_and_write_nothing(capsys, scene, tmp_path):
    _, flow, blurred = scene
    write_image(tmp_path / "photo.png", blurred)
    write_flow(tmp_path / "small.flo", flow[:-1])
    nan = flow.copy()
    nan[5, 7] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    (tmp_path / "prior.npz").write_bytes(b"not a prior")
    out = tmp_path / "out"
    cases = [
        (["photo.png", "--flow", "small.flo"], "144x95 but"),
        (["photo.png", "--flow", "nan.npy"], "NaN"),
        (["broken.png", "--flow", "nan.npy"], "not a readable image"),
        (["photo.png"], "either one --flow"),
        (["photo.png", "--flow", "small.flo", "--flow", "nan.npy"], "one flow per image"),
        (["photo.png", "--flow", "nan.npy", "--prior", "epll"], "needs --gmm"),
        (["photo.png", "--flow", "nan.npy", "--prior", "epll", "--gmm", "prior.npz"], "not a patch prior"),
    ]
    for args, message in cases:
        code, _, err = invoke(
            deblur_main,
            capsys,
            *[tmp_path / a if a.endswith((".png", ".flo", ".npy", ".npz")) else a for a in args],
            "-o",
            out,
        )
        assert code == 2 and message in error_line(err), (args, err)
        assert not out.exists()
