"""High-speed video (GoPro 240 fps, Need for Speed 240 fps, any frame folders or videos) cut into
windows of N frames, each averaged into one ~30 fps-like blurred image (the paper's real-blur data).

This module finds sequences, splits them, lists windows and decodes + averages one window (the part
that runs in worker processes); labelling the end frames with flow happens in :mod:`blurgen.labels`.
"""

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..blur import average_frames
from ..core.errors import BlurgenError
from ..core.images import IMAGE_SUFFIXES, read_image
from ..generate import Made, Skipped, generate
from ..labels import DIS, label_samples, make_labeller

LAYOUTS = ("gopro", "nfs", "frames", "video")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg")
# The paper's train shares: 25 of 33 GoPro videos, 70 of 100 NfS videos.
TRAIN_SHARE = {"gopro": 25 / 33, "nfs": 0.7, "frames": 0.7, "video": 0.7}
_NUMBER = re.compile(r"(\d+)$")


@dataclass(frozen=True)
class Sequence:
    """A sequence: numbered frame files in order, or a video file with ``count`` frames."""

    name: str
    where: str  # the folder or video file, for messages
    numbers: tuple  # frame numbers (from file names; 1.. for videos)
    paths: tuple = ()  # frame files, parallel to numbers; empty for a video


@dataclass(frozen=True)
class WindowTask:
    """One window: everything a worker needs to decode and average it."""

    sequence: str
    numbers: tuple
    paths: tuple = ()
    video: str = None
    start: int = 0  # index of the first frame in the video
    gamma: float = None
    on_error: str = "fail"  # or "skip": record the window as skipped and go on
    missing: int | None = None  # a frame number absent from the window's numbering (skipped, never bridged)


# -- discovery ------------------------------------------------------------------------------------
def _numbered_images(folder):
    """(number, path) of every image in ``folder`` whose stem ends in digits, by number."""
    found = []
    for p in folder.iterdir():
        m = _NUMBER.search(p.stem)
        if p.suffix.lower() in IMAGE_SUFFIXES and m and p.is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def _subdirs(folder):
    return sorted(p for p in folder.iterdir() if p.is_dir())


def _is_nfs(root):
    return any((d / "240" / d.name).is_dir() for d in _subdirs(root))


def detect_layout(root: str | Path) -> str:
    """gopro (``train|test/<seq>/*.png``), nfs (``<seq>/240/<seq>/*.jpg``), video (video files)
    or frames (folders of numbered images, or ROOT itself)."""
    root = Path(root)
    if root.is_file():
        if root.suffix.lower() in VIDEO_SUFFIXES:
            return "video"
        raise BlurgenError(f"{root}: not a folder of sequences nor a video ({', '.join(VIDEO_SUFFIXES)})")
    if not root.is_dir():
        raise BlurgenError(f"{root}: no such folder; pass the folder that holds the sequences")
    if any((root / s).is_dir() and _subdirs(root / s) for s in ("train", "test")):
        return "gopro"
    if _is_nfs(root):
        return "nfs"
    if any(p.suffix.lower() in VIDEO_SUFFIXES for p in root.iterdir()):
        return "video"
    if any(_numbered_images(d) for d in [root, *root.rglob("*")] if d.is_dir()):
        return "frames"
    raise BlurgenError(
        f"{root}: found no sequences (no GoPro/NfS tree, numbered images or videos); check the path or pass --layout"
    )


def _frame_sequence(name, folder):
    frames = _numbered_images(folder)
    return Sequence(name, str(folder), tuple(n for n, _ in frames), tuple(str(p) for _, p in frames))


def _video_sequence(path):
    cap = cv2.VideoCapture(str(path))
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    cap.release()
    if not count:
        raise BlurgenError(f"{path}: not a readable video (OpenCV opens no frames); re-encode or remove it")
    return Sequence(path.stem, str(path), tuple(range(1, count + 1)))


def discover(root: str | Path, layout: str) -> list[Sequence]:
    """All sequences of ``root`` in ``layout``, sorted by name; names must be unique."""
    root = Path(root)
    if not root.exists():
        raise BlurgenError(f"{root}: no such folder; pass the folder that holds the sequences")
    if layout == "gopro":
        seqs = [
            _frame_sequence(d.name, d) for s in ("train", "test") if (root / s).is_dir() for d in _subdirs(root / s)
        ]
    elif layout == "nfs":  # only the 240 fps frames; the 30 fps folders and annotations are ignored
        seqs = [_frame_sequence(d.name, d / "240" / d.name) for d in _subdirs(root) if (d / "240" / d.name).is_dir()]
    elif layout == "video":
        files = [root] if root.is_file() else sorted(p for p in root.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        seqs = [_video_sequence(p) for p in files]
    elif layout == "frames":
        folders = [d for d in [root, *sorted(root.rglob("*"))] if d.is_dir() and _numbered_images(d)]
        seqs = [_frame_sequence(d.relative_to(root).as_posix() if d != root else root.name, d) for d in folders]
    else:
        raise BlurgenError(f"unknown --layout '{layout}'; use one of {', '.join(LAYOUTS)}")
    if not seqs:
        raise BlurgenError(f"{root}: no {layout} sequences found; check the path or --layout")
    names = [s.name for s in seqs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise BlurgenError(f"{root}: sequence name '{dup[0]}' appears twice; rename one so names are unique")
    return sorted(seqs, key=lambda s: s.name)


# -- splits ---------------------------------------------------------------------------------------
def split_sequences(
    seqs: list[Sequence],
    layout: str,
    seed: int = 0,
    split_file: str | None = None,
    train_share: float | None = None,
) -> dict[str, list[Sequence]]:
    """{split: [Sequence]}: from ``split_file`` (JSON ``{"train": [names], "test": [names]}``) or a
    seeded shuffle by sequence with the paper's share of training sequences."""
    by_name = {s.name: s for s in seqs}
    if split_file is not None:
        try:
            spec = json.loads(Path(split_file).read_text())
        except (OSError, ValueError):
            spec = None
        if not isinstance(spec, dict) or not all(isinstance(v, list) for v in spec.values()):
            raise BlurgenError(f"{split_file}: not a JSON object of split name -> list of sequence names")
        missing = [n for names in spec.values() for n in names if n not in by_name]
        if missing:
            raise BlurgenError(f"{split_file}: sequence '{missing[0]}' is not under ROOT; fix the name or the file")
        return {split: [by_name[n] for n in names] for split, names in spec.items() if names}
    share = TRAIN_SHARE[layout] if train_share is None else train_share
    order = np.random.default_rng(seed).permutation(len(seqs))
    n_train = min(max(round(share * len(seqs)), 1), len(seqs) - (len(seqs) > 1 and share < 1))
    splits = {"train": sorted(order[:n_train]), "test": sorted(order[n_train:])}
    return {split: [seqs[i] for i in idx] for split, idx in splits.items() if len(idx)}


# -- windows --------------------------------------------------------------------------------------
def window_tasks(
    seq: Sequence, window: int = 7, stride: int | None = None, gamma: float | None = None, on_error: str = "fail"
) -> list[WindowTask]:
    """Windows of ``window`` consecutive frames starting every ``stride`` (default: non-overlapping).

    A window whose numbering has a gap (frame 5 of 1..8 missing) would average frames that are not one
    exposure: it is an error naming the frame, or with ``on_error="skip"`` a window recorded as skipped.
    """
    stride = stride or window
    n = len(seq.numbers)
    if n == 0:
        raise BlurgenError(f"{seq.where}: empty sequence (no numbered frames); remove it or add its frames")
    if n < window:
        raise BlurgenError(f"{seq.where}: {n} frames, fewer than --window {window}; remove it or lower --window")
    video = None if seq.paths else seq.where
    steps = np.diff(seq.numbers)
    step = int(steps.min()) if len(steps) else 1  # numbered 1, 2, 3 … or 0, 10, 20 …
    tasks = []
    for a in range(0, n - window + 1, stride):
        numbers = seq.numbers[a : a + window]
        gaps = [i for i in range(window - 1) if numbers[i + 1] - numbers[i] != step]
        missing = numbers[gaps[0]] + step if gaps else None
        if missing is not None and on_error != "skip":
            raise BlurgenError(
                f"{seq.where}: frame {missing} is missing (the window {numbers[0]}-{numbers[-1]} would bridge "
                "the gap); restore it, or pass --on-error skip to record such windows and go on"
            )
        tasks.append(WindowTask(seq.name, numbers, seq.paths[a : a + window], video, a, gamma, on_error, missing))
    return tasks


def read_window(task: WindowTask) -> Iterator[np.ndarray]:
    """The window's frames as uint8 RGB H×W×3, decoded one at a time (averaging keeps none of them)."""
    if task.video is None:
        shape = None
        for path in task.paths:
            frame = read_image(path)
            if shape not in (None, frame.shape):
                raise BlurgenError(f"{path}: frames of one window differ in size; fix sequence {task.sequence}")
            shape = frame.shape
            yield frame
        return
    cap = cv2.VideoCapture(task.video)
    try:
        cap.set(cv2.CAP_PROP_POS_FRAMES, task.start)
        for number in task.numbers:
            ok, bgr = cap.read()
            if not ok:
                raise BlurgenError(f"{task.video}: frame {number} unreadable; re-encode the video or remove it")
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def decode_window(task: WindowTask) -> dict | Skipped:
    """Decode and average one window (the worker's part): blurred, sharp end frames and meta."""
    if task.missing is not None:
        return Skipped(f"missing frame: {task.sequence} {task.numbers[0]}-{task.numbers[-1]}: frame {task.missing}")
    ends = []

    def frames():  # the labeller needs the sharp end frames
        for i, frame in enumerate(read_window(task)):
            if i in (0, len(task.numbers) - 1):
                ends.append(frame)
            yield frame

    try:
        blurred = average_frames(frames(), task.gamma)
    except BlurgenError as e:
        if task.on_error == "skip":
            return Skipped(f"unreadable: {task.sequence} {task.numbers[0]}-{task.numbers[-1]}: {e}")
        raise BlurgenError(f"{e} (or pass --on-error skip to record such windows and go on)") from None
    return {
        "blurred": blurred,
        "first": ends[0],
        "last": ends[-1],
        "meta": {"sequence": task.sequence, "frames": list(task.numbers)},
    }


# -- labelling (main process) ---------------------------------------------------------------------
def label_step(
    labeller: object, fb_threshold: float = 1.0, max_disp: float | None = None
) -> Callable[[list[dict]], list]:
    """The ``label`` callable for :func:`blurgen.generate.generate`: labels a batch of decoded
    windows on the device and skips those whose trusted flow exceeds ``max_disp`` px."""

    def label(windows):
        samples = label_samples(labeller, windows, fb_threshold)
        return [
            Skipped(f"max |flow| {s['meta']['max_flow']} px > --max-disp {max_disp}")
            if max_disp is not None and s["meta"]["max_flow"] > max_disp
            else s
            for s in samples
        ]

    return label


@dataclass(frozen=True)
class HighspeedOptions:
    """What `blurgen highspeed` makes. The manifest stores them with the labeller's weights record
    (``checkpoint``) for ``ckpt`` and the split rule, see :func:`highspeed_config`."""

    root: str
    layout: str | None = None  # default: detected
    window: int = 7
    stride: int | None = None  # default: window (non-overlapping)
    gamma: float | None = None
    max_disp: float = 100.0
    fb_threshold: float = 1.0
    flow: str = "pwcnet"  # a ptlflow model name or opencv-dis
    ckpt: str = "things"  # a local file, a ptlflow checkpoint name (downloads) or 'random'
    seed: int = 0
    split_file: str | None = None
    train_share: float | None = None


def highspeed_config(options: HighspeedOptions, layout: str, checkpoint: dict | str) -> dict:
    """The manifest's config: the options that decide the samples, with the split rule and weights resolved."""
    splits = (
        json.loads(Path(options.split_file).read_text())
        if options.split_file
        else {
            "seed": options.seed,
            "train_share": TRAIN_SHARE[layout] if options.train_share is None else options.train_share,
        }
    )
    return {
        "root": str(Path(options.root).resolve()),
        "layout": layout,
        "window": options.window,
        "stride": options.stride or options.window,
        "gamma": options.gamma,
        "max_disp": options.max_disp,
        "fb_threshold": options.fb_threshold,
        "flow": options.flow,
        "checkpoint": checkpoint,
        "splits": splits,
    }


def make_highspeed(
    out: str | Path,
    options: HighspeedOptions,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    part: tuple[int, int] | None = None,
    shard_size: int = 256,
    keep_frames: bool = False,
    device: str = "auto",
    batch: int = 4,
    corr_chunk: int = 21,
    on_error: str = "fail",
) -> Made:
    """Average the windows of the sequences under ``options.root`` and label them into shards in ``out``.

    Workers decode and average; the labeller runs here, ``batch`` windows per call. ``scheduler``,
    ``part``: see :func:`blurgen.generate.generate`.
    """
    layout = options.layout or detect_layout(options.root)
    seqs = discover(Path(options.root).absolute(), layout)  # frame paths a worker in another folder can open
    groups = split_sequences(seqs, layout, options.seed, options.split_file, options.train_share)
    splits = {
        name: [t for s in group for t in window_tasks(s, options.window, options.stride, options.gamma, on_error)]
        for name, group in groups.items()
    }
    labeller = make_labeller(
        options.flow, None if options.flow == DIS else options.ckpt, device, corr_chunk, options.seed
    )
    manifest = generate(
        out,
        "highspeed",
        highspeed_config(options, layout, labeller.checkpoint),
        splits,
        decode_window,
        shard_size=shard_size,
        workers=workers,
        scheduler=scheduler,
        part=part,
        keep_frames=keep_frames,
        label=label_step(labeller, options.fb_threshold, options.max_disp),
        label_batch=batch,
    )
    return Made(Path(out), manifest, splits)
