"""What the commands that work from a flow share (b2f-deblur, b2f-segment): their IMAGE… / --out /
--flow… / --ckpt options, and the checks of those inputs, made before anything is written."""

from collections.abc import Callable, Sequence
from pathlib import Path

import click
import numpy as np

from blurgen.core.errors import BlurgenError
from blurgen.core.flow_io import read_flow


def flow_source_options(flow_help: str) -> Callable:
    """IMAGES…, --out/-o, --flow (one per image, in order) and --ckpt (B2F-net predicts the flow)."""

    def decorate(fn: Callable) -> Callable:
        for option in reversed(
            [
                click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False)),
                click.option("--out", "-o", type=click.Path(file_okay=False), required=True, help="Output folder."),
                click.option("--flow", "flows", multiple=True, type=click.Path(dir_okay=False), help=flow_help),
                click.option(
                    "--ckpt",
                    type=click.Path(dir_okay=False),
                    default=None,
                    help="B2F-net checkpoint: predict the flow.",
                ),
            ]
        ):
            fn = option(fn)
        return fn

    return decorate


def check_sources(images: Sequence, flows: Sequence | None, ckpt: str | Path | None) -> None:
    """Exactly one of: one flow file per image, or a checkpoint."""
    if bool(flows) == (ckpt is not None):
        raise BlurgenError("pass either one --flow FILE per image or --ckpt CKPT, not both or neither")
    if flows and len(flows) != len(images):
        raise BlurgenError(f"{len(images)} images but {len(flows)} --flow files; pass one flow per image, in order")


def check_stems(images: Sequence, output: str) -> None:
    """Images whose names would write the same ``<stem><output>`` are refused."""
    stems = {}
    for image in images:
        other = stems.setdefault(Path(image).stem, image)
        if other != image:
            raise BlurgenError(
                f"{image}: same name as {other}, both would write {Path(image).stem}{output}; rename one"
            )


def read_dense_flow(path: str | Path, image: str | Path, size: tuple[int, int]) -> np.ndarray:
    """The flow in ``path`` for ``image`` of ``size`` (H, W): the same size, and every vector finite and valid."""
    flow, valid = read_flow(path)
    if flow.shape[:2] != tuple(size[:2]):
        raise BlurgenError(
            f"{path}: flow is {flow.shape[1]}x{flow.shape[0]} but {image} is {size[1]}x{size[0]}; "
            "pass the flow of that image"
        )
    if not valid.all():
        raise BlurgenError(
            f"{path}: {int((valid == 0).sum())} flow vectors are NaN or marked invalid; a dense flow is needed"
        )
    return flow
