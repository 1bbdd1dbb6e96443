"""Table 2's deblurring stages are named by everything that decides their result, the prior's defaults included."""

from dataclasses import asdict, dataclass

import numpy as np
import pytest

from b2f.deblur.priors import EPLL, HyperLaplacian
from b2f.deblur.run import make_prior
from blurgen.core.errors import BlurgenError
from pipelines import table2
from pipelines.stage import Stage
from pipelines.steps import Hardware

HW = Hardware("cpu", 1, 1, progress=False)
TRAINED, SHARDS = Stage("train", "train-bsd-m", {"epochs": 1}, None), Stage("shards", "gong-bsd-m-test", {}, None)


def _stage(prior: str, fitted: Stage | None = None) -> Stage:
    return table2.deblur_stage("bsd-m", TRAINED, SHARDS, prior, fitted, HW)


def test_the_config_holds_the_parameters_the_prior_runs_with(tmp_path):
    # the hyper-Laplacian as b2f.deblur builds it, field by field
    assert _stage("hyper-laplacian").config["parameters"] == asdict(make_prior("hyper-laplacian"))
    # EPLL as built from a mixture file: every field but the mixture (and the private cache)
    gmm = tmp_path / "prior.npz"
    np.savez(gmm, weights=np.ones(1), covariances=np.eye(4)[None], patch=np.int64(2))
    built = make_prior("epll", gmm)
    fitted = Stage("prior", "epll-prior", {}, None)
    want = {k: v for k, v in vars(built).items() if k not in ("gmm", "_cache")}
    assert _stage("epll", fitted).config["parameters"] == want
    with pytest.raises(BlurgenError, match="unknown deblurring prior"):
        _stage("wiener")


@pytest.mark.parametrize("prior", ["hyper-laplacian", "epll"])
def test_a_changed_prior_default_names_a_new_stage(monkeypatch, prior):
    fitted = Stage("prior", "epll-prior", {}, None) if prior == "epll" else None
    before = _stage(prior, fitted).name
    assert _stage(prior, fitted).name == before  # the name is stable for unchanged defaults

    @dataclass(frozen=True)
    class WeakerHyperLaplacian(HyperLaplacian):
        lam: float = 1000.0

    @dataclass
    class LongerEPLL(EPLL):
        betas: tuple[float, ...] = (50.0, 100.0, 200.0, 400.0, 800.0, 1600.0)

    monkeypatch.setattr(table2, "HyperLaplacian", WeakerHyperLaplacian)
    monkeypatch.setattr(table2, "EPLL", LongerEPLL)
    assert _stage(prior, fitted).name != before
