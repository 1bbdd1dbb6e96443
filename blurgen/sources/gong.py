"""Gong et al. (CVPR 2017)'s motion-flow blur of still photos (BSD-M / BSD-S), in Python.

Per image a smooth camera-motion flow is drawn as their code draws it: a translation ramp along x and
along y, a rotation about z around a jittered centre, and a zoom, each parameter uniform in ±max (their
"strong" and "mild" sets). Their code has no clip, so a flow whose largest displacement exceeds the
preset's bound is redrawn. The sharp photo is blurred by the line kernels of that flow
(:class:`blurgen.blur.LineBlur`); the shard holds the blur, ``flow_fwd`` = flow, ``flow_bwd`` = -flow
and the sharp image.

Their rotation and zoom terms use the vectors (-cos α, sin α) and (sin α, cos α) in a y-up frame (a
reflection of the tangential and radial directions; see their ``gen_mf.m``); here they are the true
tangential and radial directions, with the same magnitudes tan(θz)·r and tz·r^1.5, so blur lengths are
distributed as theirs.
"""

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..blur import line_blur
from ..core.errors import BlurgenError
from ..core.flow import inside, max_flow
from ..core.images import IMAGE_SUFFIXES, read_image
from ..generate import Made, generate


@dataclass(frozen=True)
class MotionRanges:
    """Largest magnitude of each motion parameter (each drawn uniform in ±max), and the flow's bound."""

    tx: float  # px, translation along x
    ty: float
    tx_acc: float  # relative ramp of the translation across the image
    ty_acc: float
    tz: float  # zoom: radial displacement tz * r**1.5
    center_shift: float  # px, jitter of the rotation/zoom centre from the image centre
    rot_z: float  # radians: tangential displacement tan(rot_z) * r
    max_disp: float  # px: a flow with a larger |flow| anywhere is redrawn


PRESETS = {
    "bsd-m": MotionRanges(19, 19, 0.25, 0.25, 2e-3, 5, math.pi / 120, 17.0),  # their "mild" set
    "bsd-s": MotionRanges(27, 27, 0.3, 0.3, 5e-3, 15, math.pi / 70, 36.0),  # their "strong" set
}


@dataclass(frozen=True)
class MotionParams:
    """One draw of the motion; all zero is no motion."""

    tx: float = 0.0
    ty: float = 0.0
    tx_acc: float = 0.0
    ty_acc: float = 0.0
    tz: float = 0.0
    center_dx: float = 0.0
    center_dy: float = 0.0
    rot_z: float = 0.0


def draw_params(rng: np.random.Generator, ranges: MotionRanges) -> MotionParams:
    """Each parameter uniform in ±its maximum, as their ``gen_mf_para.m``."""
    u = lambda m: float(rng.uniform(-m, m))  # noqa: E731
    return MotionParams(
        tx=u(ranges.tx),
        ty=u(ranges.ty),
        tx_acc=u(ranges.tx_acc),
        ty_acc=u(ranges.ty_acc),
        tz=u(ranges.tz),
        center_dx=u(ranges.center_shift),
        center_dy=u(ranges.center_shift),
        rot_z=u(ranges.rot_z),
    )


def motion_flow(height: int, width: int, p: MotionParams) -> np.ndarray:
    """The float32 H×W×2 flow (px, u right, v down) of the motion ``p`` on an H×W image.

    Translation ramp: u = tx·(1 - a/2 + a·x/W) with x = 1…W (v alike along rows); rotation: tan(θz)·r
    tangentially and zoom: tz·r^1.5 radially, r the distance to the jittered centre.
    """
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    u = p.tx * (1 - p.tx_acc / 2 + p.tx_acc * (xs + 1) / width)
    v = p.ty * (1 - p.ty_acc / 2 + p.ty_acc * (ys + 1) / height)
    dx, dy = xs - ((width - 1) / 2 + p.center_dx), ys - ((height - 1) / 2 + p.center_dy)
    r = np.hypot(dx, dy)
    spin, zoom = math.tan(p.rot_z), p.tz * np.sqrt(r)  # zoom·(dx, dy) has length tz·r^1.5
    u += -spin * dy + zoom * dx
    v += spin * dx + zoom * dy
    return np.stack([u, v], axis=-1).astype(np.float32)


def draw_flow(
    rng: np.random.Generator, height: int, width: int, ranges: MotionRanges, round_flow: bool = False, tries: int = 1000
) -> tuple[np.ndarray, MotionParams, int]:
    """A flow within ``ranges.max_disp``: (flow, its parameters, draws it took). Rounded first with ``round_flow``."""
    for attempt in range(1, tries + 1):
        params = draw_params(rng, ranges)
        flow = motion_flow(height, width, params)
        if round_flow:
            flow = np.round(flow)
        if max_flow(flow) <= ranges.max_disp:
            return flow, params, attempt
    raise BlurgenError(
        f"no motion within {ranges.max_disp} px in {tries} draws for a {height}x{width} image; "
        "use images near 480x320 (the presets' rotation and zoom grow with the image)"
    )


# -- shards ------------------------------------------------------------------------------------------
BSDS_IMAGES = Path("BSR/BSDS500/data/images")
BSDS_SPLITS = {"train": ("train",), "test": ("val", "test")}  # Gong et al. test on val + test (300 images)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def gong_images(root: str | Path, split: str = "test") -> dict[str, list[Path]]:
    """Split -> sorted image files: BSDS500's layout gives train and test (val + test); any other
    folder gives every image under it as one split named ``split``."""
    root = Path(root)
    if not root.is_dir():
        raise BlurgenError(f"{root}: not a folder of images")
    if (root / BSDS_IMAGES).is_dir():
        found = {name: [p for d in dirs for p in _images(root / BSDS_IMAGES / d)] for name, dirs in BSDS_SPLITS.items()}
        found = {name: files for name, files in found.items() if files}
    else:
        files = _images(root)
        found = {split: files} if files else {}
    if not found:
        raise BlurgenError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) found; pass a folder of photos or BSDS500")
    return found


@dataclass(frozen=True)
class GongOptions:
    """What `blurgen gong` makes; the manifest stores exactly these fields as its config."""

    root: str
    preset: str = "bsd-m"
    per_image: int = 1  # motion flows (samples) per image
    count: int | None = None  # at most this many samples per split (default: all)
    split: str = "test"  # the split name of a plain image folder (BSDS500 has its own)
    round_flow: bool = False  # integer flows, as their classification network needs
    seed: int = 0


@dataclass(frozen=True)
class GongTask:
    image: str
    split_id: int
    index: int
    draw: int
    preset: str
    round_flow: bool
    seed: int


def make_gong(
    out: str | Path,
    options: GongOptions,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    part: tuple[int, int] | None = None,
    shard_size: int = 256,
) -> Made:
    """Blur the photos under ``options.root`` into shards in ``out`` (a rerun resumes). ``scheduler``,
    ``part``: see :func:`blurgen.generate.generate`."""
    if options.preset not in PRESETS:
        raise BlurgenError(f"unknown preset '{options.preset}'; use one of {', '.join(PRESETS)}")
    files = gong_images(Path(options.root).absolute(), options.split)  # paths a worker in another folder can open
    splits = {}
    for split_id, (name, images) in enumerate(sorted(files.items())):
        tasks = [
            GongTask(str(image), split_id, i, k, options.preset, options.round_flow, options.seed)
            for i, image in enumerate(images)
            for k in range(options.per_image)
        ]
        splits[name] = tasks[: options.count]
    config = {**asdict(options), "root": str(Path(options.root).resolve())}
    manifest = generate(
        out,
        "gong",
        config,
        splits,
        render_task,
        shard_size=shard_size,
        workers=workers,
        scheduler=scheduler,
        part=part,
        extra_fields=("sharp",),
    )
    return Made(Path(out), manifest, splits)


def render_task(task: GongTask) -> dict:
    """One sample: a drawn flow (a pure function of seed, split, image index and draw), its blur, the photo."""
    sharp = read_image(task.image)
    h, w = sharp.shape[:2]
    rng = np.random.default_rng([task.seed, task.split_id, task.index, task.draw])
    flow, params, draws = draw_flow(rng, h, w, PRESETS[task.preset], task.round_flow)
    # valid: the whole segment lies in the frame, so no clamped border sample enters the blur
    valid = inside(flow / 2) & inside(-flow / 2)
    return {
        "blurred": line_blur(sharp, flow),
        "flow_fwd": flow,
        "flow_bwd": -flow,
        "valid": valid.astype(np.uint8),
        "sharp": sharp,
        "meta": {
            "sequence": Path(task.image).stem,
            "image": task.image,
            "draw": task.draw,
            "preset": task.preset,
            "params": {k: round(v, 6) for k, v in asdict(params).items()},
            "draws": draws,
            "max_flow": round(max_flow(flow), 3),
            "labeller": "exact",
        },
    }
