"""Non-blind deblurring with a flow: the line-blur operator of the flow, half-quadratic splitting with
conjugate gradients, a hyper-Laplacian or an EPLL Gaussian-mixture patch prior; PSNR/SSIM (Table 2)."""

from .priors import EPLL, HyperLaplacian, fit_prior, load_prior
from .solver import conjugate_gradient, deconvolve

__all__ = ["EPLL", "HyperLaplacian", "conjugate_gradient", "deconvolve", "fit_prior", "load_prior"]
