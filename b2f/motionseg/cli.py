"""Console script b2f-segment (bad input: one line on stderr, exit 2, nothing written)."""

from collections.abc import Sequence

import click

from blurgen.core.cli import device_option, run

from ..flow_source import flow_source_options
from .fit import MODELS

SETTINGS = {"help_option_names": ["-h", "--help"]}


@click.command("b2f-segment", context_settings=SETTINGS)
@flow_source_options(
    "Flow file of an IMAGE (.flo, .pfm, .png, .npy), once per IMAGE in the same order; its sign does not matter."
)
@click.option(
    "--model",
    type=click.Choice(MODELS),
    default="homography",
    show_default=True,
    help="Camera motion fitted to the flow.",
)
@click.option(
    "--min-residual",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Least flow (px) apart from the camera's that counts as moving.",
)
@device_option
def segment_command(
    images: tuple[str, ...],
    out: str,
    flows: tuple[str, ...],
    ckpt: str | None,
    model: str,
    min_residual: float,
    device: str,
) -> None:
    """Mask what moves apart from the camera in each IMAGE: OUT/<stem>_mask.png (0/255) and OUT/<stem>_overlay.png."""
    from .files import segment_files
    from .segmentation import SegmentOptions

    options = SegmentOptions(model=model, min_residual=min_residual)
    written = segment_files(images, out, flows=flows, ckpt=ckpt, device=device, options=options)
    click.echo(f"{out}: {len(written)} masks and overlays")


def main(argv: Sequence[str] | None = None) -> None:
    run(segment_command, argv)
