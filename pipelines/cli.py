"""b2f-reproduce: the paper's tables as resumable stage pipelines under one run folder.

    b2f-reproduce table1|table2|table3|segmentation|all --out RUN [--scale smoke|full]
                  [--monkaa ROOT --gopro ROOT --nfs ROOT --bsds ROOT]
    b2f-reproduce generalization --out RUN [--scale smoke|full] [--recipe cpu|gpu] [--set KEY=VALUE …]
                                 [--ckpt NAME=PATH …] [--plain]

``segmentation``: the paper's downstream task (moving-object masks from the flow), measured. A rerun skips
the stages that finished and resumes the one that was interrupted; RUN/tables.md holds the tables,
RUN/progress.json each stage's state. ``generalization`` (not part of ``all``: it trains its own model
on data the project makes) writes RUN/generalization.md, the cross-generator matrix.
"""

import json
import shlex
from collections.abc import Sequence
from pathlib import Path

import click
import torch

from blurgen.core.cli import device_option, parse_size, run
from blurgen.core.device import resolve_device
from blurgen.core.errors import BlurgenError

from .estimate import estimate as estimate_cost
from .estimate import format_estimate
from .flow_tables import table1, table3
from .generalization import RECIPES, generalization
from .generalization import build as build_matrix
from .report import Table, write_tables
from .scale import SCALES, Scale
from .segmentation import segmentation
from .stage import run_stages
from .steps import Hardware
from .table2 import table2

TABLES = {"table1": table1, "table2": table2, "table3": table3, "segmentation": segmentation}


def build(tables: Sequence[str], scale: Scale, roots: dict, hw: Hardware) -> list[Table]:
    """The named tables with their stages (nothing runs)."""
    return [TABLES[name](scale, roots, hw) for name in tables]


def reproduce(tables: Sequence[str], out: str | Path, scale: Scale, roots: dict, hw: Hardware, command: str) -> Path:
    """Build the named tables' stages, run those not done, write RUN/tables.md; returns its path."""
    built = build(tables, scale, roots, hw)
    run_stages(out, [s for table in built for s in table.stages])
    return write_tables(out, built, command, scale.name)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("table", type=click.Choice((*TABLES, "all", "generalization")))
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Run folder (stages, tables.md).")
@click.option(
    "--scale",
    type=click.Choice(tuple(SCALES)),
    default="full",
    show_default=True,
    help="full: the paper's data and schedules; smoke: small, on data the project makes.",
)
@click.option("--monkaa", type=click.Path(), help="SceneFlow Monkaa root (full scale).")
@click.option("--gopro", type=click.Path(), help="GoPro 240 fps root, train/ and test/ (full scale).")
@click.option("--nfs", type=click.Path(), help="Need for Speed root, <seq>/240/<seq>/ (full scale).")
@click.option("--bsds", type=click.Path(), help="BSDS500 root, BSR/BSDS500/data/images/ (full scale, Table 2).")
@click.option(
    "--ckpt",
    "ckpts",
    multiple=True,
    metavar="NAME=PATH",
    help="generalization: evaluate this model (a row named NAME) instead of training the recipe; repeatable.",
)
@click.option(
    "--recipe",
    type=click.Choice(tuple(RECIPES)),
    default="cpu",
    show_default=True,
    help="generalization: the training recipe (cpu: the issue's 30 minutes on 2 cores; gpu: about 5 minutes "
    "of training on one GPU).",
)
@click.option(
    "--set",
    "changes",
    multiple=True,
    metavar="KEY=VALUE",
    help="generalization: change the recipe (width, data.KEY, train.KEY; VALUE as JSON, else a string), e.g. "
    "--set data.disp_law=uniform --set train.epochs=4; repeatable.",
)
@click.option(
    "--ensemble/--plain",
    default=None,
    help="generalization: each model reads an image on its 8 flips and quarter turns, combined (8x the passes), "
    "or once (--plain)  [default: --ensemble].",
)
@click.option(
    "--tile",
    metavar="HxW",
    callback=parse_size,
    help="generalization: each model reads an image in half-overlapping HxW tiles, blended (b2f.tiles), e.g. its "
    "training size [default: whole].",
)
@device_option
@click.option("--devices", default="auto", show_default=True, help="Training devices (Lightning's; e.g. 2).")
@click.option("--workers", default=1, show_default=True, help="Processes for rendering and loading (1: in this one).")
@click.option(
    "--threads",
    type=int,
    help="Torch CPU threads [default: 1 at smoke scale (small tensors: more threads mostly wait on each other on a "
    "busy machine), torch's own at full scale].",
)
@click.option(
    "--estimate",
    is_flag=True,
    help="Run nothing: print each training stage's steps and its time on --device from measured s/step.",
)
def main_command(
    table,
    out,
    scale,
    monkaa,
    gopro,
    nfs,
    bsds,
    ckpts,
    recipe,
    changes,
    ensemble,
    tile,
    device,
    devices,
    workers,
    threads,
    estimate,
):
    if threads or scale == "smoke":
        torch.set_num_threads(threads or 1)
    tables = tuple(TABLES) if table == "all" else (table,)
    hw = Hardware(device, int(devices) if str(devices).isdigit() else devices, workers)
    roots = {"monkaa": monkaa, "gopro": gopro, "nfs": nfs, "bsds": bsds}
    if table == "generalization":
        combined = ensemble is not False
        named, changed = _named(ckpts), _changes(changes)
        _generalization(out, SCALES[scale], hw, named, recipe, changed, combined, tile, estimate, device)
        return
    if ckpts or changes or recipe != "cpu" or ensemble is not None or tile:
        raise BlurgenError(
            "--ckpt, --recipe, --set, --ensemble/--plain and --tile are for b2f-reproduce generalization; drop them"
        )
    if estimate:
        stages = [s for table in build(tables, SCALES[scale], roots, hw) for s in table.stages]
        dev = resolve_device(device)
        name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
        click.echo(format_estimate(estimate_cost(out, stages, device), name))
        return
    words = ["b2f-reproduce", table, "--out", out, "--scale", scale]
    words += [w for key, root in roots.items() if root for w in (f"--{key}", root)]
    path = reproduce(tables, out, SCALES[scale], roots, hw, shlex.join(words))
    click.echo(path.read_text())


def _named(ckpts: Sequence[str]) -> dict[str, str]:
    """NAME=PATH pairs in order; a missing '=' or a repeated NAME is one line."""
    named = {}
    for pair in ckpts:
        name, _, path = pair.partition("=")
        if not name or not path:
            raise BlurgenError(f"--ckpt {pair}: expected NAME=PATH (e.g. --ckpt mine=runs/a/model.pt)")
        if name in named:
            raise BlurgenError(f"--ckpt {pair}: the name {name} is given twice; give each model its own")
        named[name] = path
    return named


def _changes(pairs: Sequence[str]) -> dict[str, object]:
    """KEY=VALUE pairs in order, VALUE read as JSON (a number, a list, true) or else kept as a string."""
    changes = {}
    for pair in pairs:
        key, eq, text = pair.partition("=")
        if not key or not eq:
            raise BlurgenError(f"--set {pair}: expected KEY=VALUE (e.g. --set data.disp_law=uniform)")
        try:
            changes[key] = json.loads(text)
        except ValueError:
            changes[key] = text
    return changes


def _generalization(
    out,
    scale: Scale,
    hw: Hardware,
    ckpts: dict[str, str],
    recipe: str,
    changes: dict,
    ensemble: bool,
    tile: tuple[int, int] | None,
    estimate: bool,
    device: str,
) -> None:
    if ckpts and (changes or recipe != "cpu"):
        raise BlurgenError("--ckpt scores given models and trains none; drop --recipe and --set")
    if estimate:
        _, _, cells = build_matrix(scale, hw, ckpts, recipe, changes, ensemble, tile)
        dev = resolve_device(device)
        name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
        click.echo(format_estimate(estimate_cost(out, list(cells.values()), device), name))
        return
    words = ["b2f-reproduce", "generalization", "--out", str(out), "--scale", scale.name]
    words += ["--recipe", recipe] if recipe != "cpu" else []
    words += [w for key, value in changes.items() for w in ("--set", f"{key}={json.dumps(value)}")]
    words += [w for name, path in ckpts.items() for w in ("--ckpt", f"{name}={path}")]
    words += [] if ensemble else ["--plain"]
    words += ["--tile", "{}x{}".format(*tile)] if tile else []
    path = generalization(out, scale, hw, ckpts, shlex.join(words), recipe, changes, ensemble, tile)
    click.echo(path.read_text())


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point (b2f-reproduce)."""
    run(main_command, argv)
