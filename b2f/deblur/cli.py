"""Console scripts b2f-deblur and b2f-fit-prior (bad input: one line on stderr, exit 2, nothing written)."""

import click

from blurgen.core.cli import device_option, run

from ..flow_source import flow_source_options
from .run import PRIORS

SETTINGS = {"help_option_names": ["-h", "--help"]}


@click.command("b2f-deblur", context_settings=SETTINGS)
@flow_source_options("Flow file (.flo/.png/.pfm/.npy) of each IMAGE, one --flow per image, in order.")
@click.option(
    "--prior",
    type=click.Choice(PRIORS),
    default="hyper-laplacian",
    show_default=True,
    help="hyper-laplacian: |∇x|^(2/3), no weights; epll: the GMM patch prior of --gmm.",
)
@click.option("--gmm", type=click.Path(dir_okay=False), default=None, help="Patch prior from b2f-fit-prior (epll).")
@device_option
def deblur_command(images, out, flows, ckpt, prior, gmm, device):
    """Deblur each IMAGE with the line kernels of its flow: OUT/<name>_sharp.png."""
    from .run import deblur

    written = deblur(list(images), out, flows=list(flows) or None, ckpt=ckpt, prior=prior, gmm=gmm, device=device)
    click.echo(f"{out}: {len(written)} deblurred images ({prior})")


@click.command("b2f-fit-prior", context_settings=SETTINGS)
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", "-o", type=click.Path(dir_okay=False), required=True, help="The mixture file (.npz).")
@click.option("--components", type=click.IntRange(1), default=20, show_default=True, help="Gaussians (paper: 200).")
@click.option("--patch", type=click.IntRange(2), default=8, show_default=True, help="Patch side (px).")
@click.option("--samples", type=click.IntRange(100), default=20000, show_default=True, help="Patches to fit on.")
@click.option("--max-iter", type=click.IntRange(1), default=100, show_default=True, help="EM iterations at most.")
@click.option("--seed", type=int, default=0, show_default=True)
def fit_prior_command(images, out, **options):
    """Fit the EPLL patch prior (a zero-mean Gaussian mixture) to patches of IMAGES with scikit-learn."""
    from .priors import fit_prior

    prior = fit_prior(list(images), out, **options)
    click.echo(f"{out}: {len(prior['weights'])} components of {prior['patch']}x{prior['patch']} patches")


def deblur(argv: list[str] | None = None) -> None:
    run(deblur_command, argv)


def fit_prior(argv: list[str] | None = None) -> None:
    run(fit_prior_command, argv)
