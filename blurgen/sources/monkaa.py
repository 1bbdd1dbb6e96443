"""Monkaa (SceneFlow) frame pairs: find the layout, list the pairs, split them, render one pair.

Layout (as the SceneFlow archives unpack)::

    ROOT/frames_cleanpass/<scene>/{left,right}/0000.png …          (or frames_finalpass)
    ROOT/optical_flow/<scene>/into_future/{left,right}/OpticalFlowIntoFuture_0000_L.pfm …
    ROOT/optical_flow/<scene>/into_past/{left,right}/OpticalFlowIntoPast_0001_L.pfm …

ROOT may also be one scene folder inside ``frames_*pass`` or ``optical_flow``.
"""

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..blur import average_frames
from ..core.errors import BlurgenError
from ..core.flow import max_flow
from ..core.flow_io import read_flow
from ..core.images import read_image
from ..generate import Made, Skipped, generate
from ..interp import check_method, interpolate

PASSES = ("clean", "final")
CAMERAS = ("left", "right")
FRAME_SUFFIXES = (".png", ".webp")  # SceneFlow ships both
MIN_INTERP = 5  # the paper's n = max(|s|, 5)


@dataclass(frozen=True, order=True)
class Pair:
    """Frames t and t+1 of one camera of one scene, with the files that make the sample."""

    scene: str
    camera: str
    t: int
    frame0: str
    frame1: str
    flow_fwd: str  # into_future of t
    flow_bwd: str  # into_past of t+1

    @property
    def name(self) -> str:
        return f"{self.scene}/{self.camera} {self.t:04d}-{self.t + 1:04d}"


def _frames_dir(root, pass_):
    return root / f"frames_{pass_}pass"


def find_layout(root: str | Path, pass_: str | None = None) -> tuple[Path, Path, str | None, str]:
    """``(frames_dir, flow_dir, scene or None, pass)`` for a data set root or one scene folder in it."""
    root = Path(root).resolve()
    if root.parent.name in ("frames_cleanpass", "frames_finalpass", "optical_flow"):
        base, scene = root.parent.parent, root.name
        if root.parent.name != "optical_flow":
            found = root.parent.name[len("frames_") : -len("pass")]
            if pass_ not in (None, found):
                raise BlurgenError(
                    f"{root}: a scene of the {found} pass, but --pass {pass_} was given; "
                    f"point at {_frames_dir(base, pass_) / scene} or drop --pass"
                )
            pass_ = found
    elif (root / "optical_flow").is_dir() or any(_frames_dir(root, p).is_dir() for p in PASSES):
        base, scene = root, None
    else:
        raise BlurgenError(
            f"{root}: not a Monkaa/SceneFlow folder; pass the folder holding frames_cleanpass/ "
            "and optical_flow/, or one scene folder inside them"
        )
    pass_ = pass_ or "clean"
    frames, flows = _frames_dir(base, pass_), base / "optical_flow"
    for folder in (frames, flows) if scene is None else (frames / scene, flows / scene):
        if not folder.is_dir():
            raise BlurgenError(
                f"{folder}: folder not found; unpack both the frames_{pass_}pass and the "
                f"optical_flow archives of Monkaa under {base}"
            )
    return frames, flows, scene, pass_


def _frame_indices(folder):
    """Frame numbers in ``folder`` with the suffix and zero padding their names use."""
    if not folder.is_dir():
        raise BlurgenError(f"{folder}: camera folder not found; choose another --camera or --scenes")
    files = [p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and p.stem.isdigit()]
    if not files:
        raise BlurgenError(f"{folder}: no numbered .png/.webp frames here")
    return sorted(int(p.stem) for p in files), files[0].suffix, len(files[0].stem)


def list_pairs(
    root: str | Path, pass_: str | None = None, cameras: tuple = CAMERAS, scenes: list[str] | None = None
) -> list[Pair]:
    """Every pair (t, t+1) from the first to the last frame number of each scene and camera, sorted.

    A frame missing inside that range stays in the list, so rendering names the missing file.
    """
    frames, flows, only, pass_ = find_layout(root, pass_)
    present = [only] if only else sorted(p.name for p in frames.iterdir() if p.is_dir())
    if scenes:
        unknown = sorted(set(scenes) - set(present))
        if unknown:
            raise BlurgenError(f"{frames}: no scene {', '.join(unknown)} (have: {', '.join(present) or 'none'})")
        present = [s for s in present if s in scenes]
    pairs = []
    for scene in present:
        for camera in cameras:
            indices, suffix, width = _frame_indices(frames / scene / camera)
            side = camera[0].upper()
            flow = flows / scene
            for t in range(indices[0], indices[-1]):
                pairs.append(
                    Pair(
                        scene,
                        camera,
                        t,
                        str(frames / scene / camera / f"{t:0{width}d}{suffix}"),
                        str(frames / scene / camera / f"{t + 1:0{width}d}{suffix}"),
                        str(flow / "into_future" / camera / f"OpticalFlowIntoFuture_{t:04d}_{side}.pfm"),
                        str(flow / "into_past" / camera / f"OpticalFlowIntoPast_{t + 1:04d}_{side}.pfm"),
                    )
                )
    if not pairs:
        raise BlurgenError(f"{frames}: no frame pairs (every camera folder holds a single frame)")
    return pairs


def parse_split(text: str) -> dict[str, int]:
    """``"train=10000,test=1200"`` -> ``{"train": 10000, "test": 1200}`` (ValueError if malformed)."""
    counts = {}
    for part in text.split(","):
        name, sep, count = part.partition("=")
        name = name.strip()
        if not sep or not name or not count.strip().isdigit() or name in counts:
            raise ValueError(f"'{text}' is not NAME=COUNT,… with distinct names, e.g. train=10000,test=1200")
        counts[name] = int(count)
    return counts


def allocate(counts: dict[str, int], available: int) -> dict[str, int]:
    """``counts`` if they fit in ``available``; else shares in proportion (largest remainder),
    with at least one for every split that asked for any, as far as ``available`` allows."""
    total = sum(counts.values())
    if total <= available:
        return dict(counts)
    shares = {k: available * c / total for k, c in counts.items()}
    out = {k: math.floor(v) for k, v in shares.items()}
    for k in sorted(shares, key=lambda k: out[k] - shares[k])[: available - sum(out.values())]:
        out[k] += 1
    for k in counts:
        donor = max(out, key=out.get)
        if counts[k] and not out[k] and out[donor] > 1:
            out[donor] -= 1
            out[k] += 1
    return out


def split_pairs(
    pairs: list[Pair], counts: dict[str, int], seed: int, test_scenes: tuple = (), limit: int | None = None
) -> dict[str, list[Pair]]:
    """Deterministic split: {name: sorted pairs}.

    By sample: shuffle all pairs with ``seed`` and deal them out in the order of ``counts``. With
    ``test_scenes``: the ``test`` split draws only from those scenes and the others never do. Counts
    larger than what is there (and ``limit``, a cap on the total) shrink in proportion: see allocate.
    """
    order = np.random.default_rng(seed).permutation(len(pairs))
    shuffled = [pairs[i] for i in order]
    if test_scenes:
        if "test" not in counts:
            raise BlurgenError(f"--test-scenes needs a 'test' entry in --split (got {', '.join(counts)})")
        missing = sorted(set(test_scenes) - {p.scene for p in pairs})
        if missing:
            raise BlurgenError(f"--test-scenes: no pairs from scene {', '.join(missing)}; check the names")
        pools = {"test": [p for p in shuffled if p.scene in test_scenes]}
        rest = [p for p in shuffled if p.scene not in test_scenes]
        want = {
            "test": min(counts["test"], len(pools["test"])),
            **allocate({k: c for k, c in counts.items() if k != "test"}, len(rest)),
        }
    else:
        rest, pools, want = shuffled, {}, allocate(counts, len(shuffled))
    if limit is not None:
        want = allocate(want, limit)
    out, start = {}, 0
    for name in counts:
        if name in pools:
            out[name] = sorted(pools[name][: want[name]])
        else:
            out[name] = sorted(rest[start : start + want[name]])
            start += want[name]
    return out


def n_interp(s: float) -> int:
    return max(math.ceil(s), MIN_INTERP)


def read_rest(pair: Pair, flow_fwd: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The backward flow, its valid mask and the two frames of ``pair``, checked against the forward flow's size."""
    flow_bwd, valid_bwd = read_flow(pair.flow_bwd)
    img0, img1 = read_image(pair.frame0), read_image(pair.frame1)
    h, w = flow_fwd.shape[:2]
    for path, arr in ((pair.flow_bwd, flow_bwd), (pair.frame0, img0), (pair.frame1, img1)):
        if arr.shape[:2] != (h, w):
            raise BlurgenError(
                f"{path}: {arr.shape[1]}x{arr.shape[0]} but {pair.flow_fwd} is {w}x{h}; "
                "the pair's files must have one size"
            )
    return flow_bwd, valid_bwd, img0, img1


@dataclass(frozen=True)
class MonkaaRender:
    """``render(pair)``: the blurred sample of one pair, or Skipped (too much motion, bad file)."""

    interp: str = "flow"
    max_disp: float = 100.0
    gamma: float | None = None
    ckpt: str | None = None
    device: str = "auto"
    on_error: str = "fail"  # or "skip": record the unreadable pair and go on

    def __call__(self, pair) -> dict | Skipped:
        try:
            flow_fwd, valid = read_flow(pair.flow_fwd)
            s = max_flow(flow_fwd, valid)  # the largest forward motion over valid pixels
            if s > self.max_disp:  # decided before reading the rest: a dropped pair costs one file
                return Skipped(f"max-disp: {pair.name}: s={s:.1f}>{self.max_disp:g}")
            flow_bwd, valid_bwd, img0, img1 = read_rest(pair, flow_fwd)
            valid = valid & valid_bwd  # one mask serves both directions: a NaN in either is unknown
        except BlurgenError as e:
            if self.on_error == "skip":
                return Skipped(f"unreadable: {pair.name}: {e}")
            raise BlurgenError(f"{e} (or pass --on-error skip to record such pairs and go on)") from None
        n = n_interp(s)
        frames = interpolate(self.interp, img0, img1, n, flow_fwd, flow_bwd, ckpt=self.ckpt, device=self.device)
        return {
            "blurred": average_frames(frames, self.gamma),
            "flow_fwd": flow_fwd,
            "flow_bwd": flow_bwd,
            "valid": valid,
            "first": img0,
            "last": img1,
            "meta": {
                "sequence": f"{pair.scene}/{pair.camera}",
                "scene": pair.scene,
                "camera": pair.camera,
                "frames": [pair.t, pair.t + 1],
                "s": round(s, 3),
                "n_interp": n,
                "max_flow": round(max_flow(flow_fwd), 3),
                "interp": self.interp,
                "labeller": "ground truth",
            },
        }


@dataclass(frozen=True)
class MonkaaOptions:
    """What `blurgen monkaa` makes; the manifest stores these fields as its config (``pass_`` as ``pass``)."""

    root: str
    pass_: str | None = None  # clean, final, or None: clean, or the pass of the scene folder root is
    camera: str = "both"
    scenes: tuple = ()  # only these scenes (default: all)
    split: dict = field(default_factory=lambda: {"train": 10000, "test": 1200})
    test_scenes: tuple = ()  # split by scene: test draws only from these
    limit: int | None = None
    interp: str = "flow"
    ckpt: str | None = None  # Super SloMo weights for interp="superslomo"
    seed: int = 0
    max_disp: float = 100.0
    gamma: float | None = None

    def config(self) -> dict:
        return {("pass" if k == "pass_" else k): v for k, v in asdict(self).items()}


def make_monkaa(
    out: str | Path,
    options: MonkaaOptions,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    part: tuple[int, int] | None = None,
    shard_size: int = 256,
    keep_frames: bool = False,
    device: str = "auto",
    on_error: str = "fail",
) -> Made:
    """Blur the Monkaa pairs ``options`` select into shards in ``out`` (a rerun resumes).

    ``on_error="skip"`` records a pair with an unreadable file as skipped instead of stopping.
    ``scheduler``, ``part``: see :func:`blurgen.generate.generate`.
    """
    if options.interp == "superslomo" and not options.ckpt:
        raise BlurgenError("--interp superslomo needs --ckpt PATH/TO/SuperSloMo.ckpt (the public Super SloMo weights)")
    if options.interp != "superslomo" and options.ckpt:
        raise BlurgenError("--ckpt is only used with --interp superslomo; drop it or add --interp superslomo")
    ckpt = str(Path(options.ckpt).resolve()) if options.ckpt else None
    check_method(options.interp, ckpt, device)  # a bad checkpoint fails here, once, before any output
    options = replace(
        options, root=str(Path(options.root).resolve()), ckpt=ckpt, pass_=find_layout(options.root, options.pass_)[3]
    )
    cameras = CAMERAS if options.camera == "both" else (options.camera,)
    pairs = list_pairs(options.root, options.pass_, cameras, options.scenes or None)
    splits = split_pairs(pairs, options.split, options.seed, options.test_scenes, options.limit)
    render = MonkaaRender(options.interp, options.max_disp, options.gamma, ckpt, device, on_error)
    manifest = generate(
        out,
        "monkaa",
        options.config(),
        splits,
        render,
        shard_size=shard_size,
        workers=workers,
        scheduler=scheduler,
        part=part,
        keep_frames=keep_frames,
    )
    return Made(Path(out), manifest, splits)
