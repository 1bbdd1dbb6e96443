"""Console scripts b2f-train, b2f-eval, b2f-predict (bad input: one line on stderr, exit 2)."""

import dataclasses

import click

from blurgen.core.cli import device_option, next_free, parse_milestones, parse_size, run
from blurgen.core.errors import BlurgenError

from .run_config import DIRECTIONS, LR_POLICIES, PRECISIONS, SCHEDULES, WEIGHT_DECAY

SETTINGS = {"help_option_names": ["-h", "--help"]}
shard_dir = click.Path(exists=True, file_okay=False)
checkpoint_file = click.Path(dir_okay=False)  # checked by the loader, which says what the file should be


allow_incomplete_option = click.option(
    "--allow-incomplete",
    is_flag=True,
    help="Use shards whose generation was interrupted (refused by default: `blurgen verify` says what is missing).",
)


def parse_crop(ctx: click.Context | None, param: click.Parameter | None, value: str) -> tuple[int, int]:
    """``256`` or ``HxW`` -> (H, W)."""
    try:
        parts = [int(v) for v in value.lower().split("x")]
        h, w = parts * 2 if len(parts) == 1 else parts
        if h <= 0 or w <= 0:
            raise ValueError
        return h, w
    except ValueError:
        raise click.BadParameter(f"'{value}' is not N or HxW, e.g. 256 or 256x384") from None


def parse_scale(
    ctx: click.Context | None, param: click.Parameter | None, value: str | None
) -> tuple[float, float] | None:
    """``LO,HI`` -> (LO, HI) with 0 < LO <= HI."""
    if value is None:
        return None
    try:
        low, high = (float(v) for v in value.split(","))
        if not 0 < low <= high:
            raise ValueError
        return low, high
    except ValueError:
        raise click.BadParameter(f"'{value}' is not LO,HI with 0 < LO <= HI, e.g. 0.5,1.5") from None


def parse_devices(ctx: click.Context | None, param: click.Parameter | None, value: str) -> int | str:
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a number of devices or 'auto'") from None


@click.command("b2f-train", context_settings=SETTINGS)
@click.argument("shards", type=shard_dir)
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False),
    default=None,
    help="Run folder [default: runs/<n>, the next free number].",
)
@click.option("--split", default="train", show_default=True, help="Shard split to train on.")
@click.option("--val", type=shard_dir, default=None, help="Shards evaluated (min-EPE) after every epoch.")
@click.option("--val-split", default="test", show_default=True, help="Split of --val.")
@click.option(
    "--schedule",
    type=click.Choice(tuple(SCHEDULES)),
    default="scratch",
    show_default=True,
    help="The paper's presets: scratch = 300 epochs halved at 100/150/200/250; "
    "finetune = 120 epochs halved at 60/80/100; lr 1e-4.",
)
@click.option("--epochs", type=click.IntRange(1), default=None, help="Override the schedule's epochs.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None, help="Initial learning rate [1e-4].")
@click.option(
    "--milestones",
    callback=parse_milestones,
    default=None,
    help="Epochs at which the learning rate halves, e.g. 100,150 (overrides the schedule's).",
)
@click.option(
    "--lr-policy",
    type=click.Choice(LR_POLICIES),
    default="multistep",
    show_default=True,
    help="multistep: lr halved at the milestones (the paper); onecycle: RAFT's per-step schedule, a linear "
    "warm-up over the first 5% of the steps to --lr, then a linear decay to lr/250,000 (milestones unused).",
)
@click.option("--batch-size", type=click.IntRange(1), default=4, show_default=True, help="Per device.")
@click.option(
    "--crop",
    default="256",
    show_default=True,
    callback=parse_crop,
    help="Training crop, N or HxW, multiples of 64 (centre crop unless --random-crop).",
)
@click.option("--random-crop", is_flag=True, help="Random instead of centre crops.")
@click.option("--flip", is_flag=True, help="Random left-right and up-down flips (flow mirrored with them).")
@click.option(
    "--scale",
    callback=parse_scale,
    default=None,
    help="Scale augmentation LO,HI: each crop resampled by a factor log-uniform in [LO, HI], its flow with "
    "it (e.g. 0.5,1.5: blur lengths the shards do not hold).",
)
@click.option(
    "--photometric",
    is_flag=True,
    help="Random gamma, channel gains, offset and sensor noise per crop (the flow is unchanged).",
)
@click.option(
    "--direction",
    type=click.Choice(DIRECTIONS),
    default="fwd",
    show_default=True,
    help="Loss target: fwd = flow_fwd (the paper); min = per sample the lower of the losses against "
    "flow_fwd and flow_bwd (a blur looks the same played backwards).",
)
@click.option("--init", type=checkpoint_file, default=None, help="Start from these weights (fine-tuning).")
@click.option(
    "--arch",
    type=click.Choice(("b2f", "unet")),
    default="b2f",
    show_default=True,
    help="unet: the ablation that predicts flow from encoder features alone.",
)
@click.option("--no-stn", is_flag=True, help="Ablation: no spatial transformer in the feature decoders.")
@click.option("--no-rb", is_flag=True, help="Ablation: no refining blocks in the feature decoders.")
@click.option(
    "--width",
    type=click.FloatRange(0, min_open=True),
    default=1.0,
    show_default=True,
    help="Every layer's width times this (0.5: about twice the steps per second; see ModelConfig.narrowed).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for initialisation, order and crops.")
@device_option
@click.option(
    "--devices",
    default="auto",
    callback=parse_devices,
    show_default=True,
    help="Devices per node (GPUs; several means DDP).",
)
@click.option(
    "--num-nodes", type=click.IntRange(1), default=1, show_default=True, help="Nodes (launched by torchrun or SLURM)."
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="32-true",
    show_default=True,
    help="Mixed precision runs the convolutions in 16 bits; the STNs, warping, the cost volume and the loss "
    "stay in float32.",
)
@click.option(
    "--ema",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="Keep an exponential moving average of the weights with this decay per step (e.g. 0.999): "
    "validation, checkpoints and model.pt hold it.",
)
@click.option(
    "--weight-decay",
    type=click.FloatRange(min=0),
    default=WEIGHT_DECAY,
    show_default=True,
    help="Adam's L2 weight decay (the paper's).",
)
@click.option(
    "--bias-decay/--no-bias-decay",
    default=True,
    show_default=True,
    help="Decay the biases too; --no-bias-decay leaves them out, as PWC-Net's Caffe training did.",
)
@click.option("--compile", is_flag=True, help="torch.compile the model (checkpoints keep the same key names).")
@click.option("--workers", type=click.IntRange(0), default=None, help="DataLoader workers [cores, at most 8].")
@click.option(
    "--limit-batches", type=click.IntRange(1), default=None, help="Batches per epoch (train and val), for quick checks."
)
@click.option(
    "--max-minutes",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop at the first epoch end after this long (e.g. a job's time limit); --resume continues.",
)
@click.option("--resume", is_flag=True, help="Continue RUN exactly from its last finished epoch.")
@allow_incomplete_option
@click.option(
    "--new-world-size",
    is_flag=True,
    help="Let --resume continue on another number of processes (devices x nodes) than the run started on.",
)
def train_command(
    shards: str,
    out: str | None,
    arch: str,
    no_stn: bool,
    no_rb: bool,
    width: float,
    resume: bool,
    new_world_size: bool,
    device: str,
    devices: int | str,
    num_nodes: int,
    workers: int | None,
    max_minutes: float | None,
    **options: object,
) -> None:
    """Train B2F-net on the shards in SHARDS into the run folder --out."""
    from .model import ModelConfig
    from .train import train

    if out is None:
        if resume:
            raise BlurgenError("--resume needs the run folder: pass --out RUN")
        out = next_free("runs")
        click.echo(f"run folder: {out}", err=True)

    config = dataclasses.asdict(ModelConfig(arch=arch, stn=not no_stn, rb=not no_rb).narrowed(width))
    train(
        shards,
        out,
        config,
        resume=resume,
        device=device,
        devices=devices,
        num_nodes=num_nodes,
        workers=workers,
        max_minutes=max_minutes,
        new_world_size=new_world_size,
        **options,
    )
    click.echo(f"{out}: trained; model in {out}/model.pt, checkpoints in {out}/checkpoints")


ensemble_option = click.option(
    "--ensemble",
    is_flag=True,
    help="Each image's flow read on its 8 flips and quarter turns: their summed direction, mean length "
    "(8x the passes).",
)

tile_option = click.option(
    "--tile",
    metavar="HxW",
    callback=parse_size,
    help="Read the image in half-overlapping HxW tiles, blended (b2f.tiles), e.g. the size the model was trained "
    "on: a larger input is read differently [default: whole].",
)


@click.command("b2f-eval", context_settings=SETTINGS)
@click.argument("ckpt", type=checkpoint_file)
@click.argument("shards", type=shard_dir)
@click.option("--split", default="test", show_default=True, help="Shard split to evaluate.")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Report file [beside CKPT: <ckpt>.eval-<shards>-<split>.json].",
)
@device_option
@click.option("--workers", type=click.IntRange(0), default=None, help="DataLoader workers [cores, at most 8].")
@allow_incomplete_option
@ensemble_option
@tile_option
def evaluate_command(ckpt, shards, split, json_path, device, workers, allow_incomplete, ensemble, tile):
    """EPE (fwd, bwd, min) and 1/3/5-px accuracy of CKPT on SHARDS, beside the zero-flow baseline."""
    from .evaluate import default_json_path, evaluate, format_table, write_report

    report = evaluate(
        ckpt,
        shards,
        split,
        device=device,
        workers=workers,
        allow_incomplete=allow_incomplete,
        ensemble=ensemble,
        tile=tile,
    )
    path = json_path or default_json_path(ckpt, shards, split)
    click.echo(format_table(report))  # first: a JSON that cannot be written does not lose the numbers
    write_report(report, path)
    click.echo(f"per-image numbers: {path}")


@click.command("b2f-predict", context_settings=SETTINGS)
@click.argument("ckpt", type=checkpoint_file)
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", "-o", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("flo", "png", "npy")),
    default="flo",
    show_default=True,
    help="Flow file: Middlebury .flo, KITTI 16-bit .png, or .npy (H×W×2 float32).",
)
@click.option(
    "--max-side",
    type=click.IntRange(64),
    default=None,
    help="Run the network on the image scaled so its longer side is at most N px (memory grows with the "
    "pixel count); the flow is scaled back to the full image [default: full size].",
)
@device_option
@ensemble_option
@tile_option
def predict_command(ckpt, images, out, fmt, max_side, device, ensemble, tile):
    """Estimate flow for each blurred IMAGE: OUT/<name>.<format> and OUT/<name>_color.png."""
    from .predict import predict

    written = predict(ckpt, images, out, fmt=fmt, device=device, max_side=max_side, ensemble=ensemble, tile=tile)
    click.echo(f"{out}: {len(written)} flows (.{fmt}) and colour images")


def train(argv: list[str] | None = None) -> None:
    run(train_command, argv)


def evaluate(argv: list[str] | None = None) -> None:
    run(evaluate_command, argv)


def predict(argv: list[str] | None = None) -> None:
    run(predict_command, argv)
