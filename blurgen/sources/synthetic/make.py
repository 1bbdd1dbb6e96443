"""Tasks and the make-shards function of `blurgen synthetic`: one sample per scene, or (with
``frames_out``) a frame tree per scene and one sample per window of it."""

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ...blur import average_frames
from ...core.errors import BlurgenError
from ...core.flow import inside, max_flow
from ...core.images import write_image
from ...generate import Made, generate
from ...parallel import is_local, resolve_scheduler
from .scene import (
    Scene,
    exposure_flows,
    largest_displacement,
    moving_mask,
    render_exposure,
    render_frame,
    scene_flow,
    to_uint8,
    visibility,
)
from .scenes import DISP_LAWS, scene_for
from .textures import TEXTURE_KINDS, cached_textures, scene_textures
from .trees import FRAME_LAYOUTS, frame_number, frame_path, sequence_name, write_pair_flows

EXTRA_FIELDS = ("moving",)  # format v3's optional fields every synthetic sample holds


@dataclass
class SyntheticTask:
    """Everything a worker needs to render one sample (or, with frames_out, one sequence)."""

    split: str
    index: int
    seed: int
    size: tuple
    max_disp: float
    gamma: float = None
    textures: str = None
    frames_out: str = None
    frames_layout: str = "gopro"
    window: int = 7
    windows: int = 4
    min_disp: float = None
    objects: int = 4  # most moving patches in front of the background (0: camera motion only)
    texture_kind: str = None
    noise: float = None
    min_frames: int = None
    disp_law: str = None
    texture_zoom: float = None
    flat: float = None


@dataclass(frozen=True)
class SyntheticOptions:
    """What `blurgen synthetic` renders; the manifest stores exactly these fields as its config."""

    count: int = 200  # training samples (sequences with frames_out)
    test_count: int = 0  # held-out samples, other scenes
    seed: int = 0
    size: tuple = (256, 256)  # H, W
    max_disp: float = 100.0
    min_disp: float | None = None  # default: 0.05 x max_disp
    gamma: float | None = None
    objects: int = 4
    textures: str | None = None
    frames_out: str | None = None
    frames_layout: str = "gopro"  # of the frame tree: gopro, nfs or sceneflow (see .trees)
    window: int = 7
    windows: int = 4
    # None keeps a folder made before these options existed resumable (its config lacks them)
    texture_kind: str | None = None  # "photos" (None: those of `textures`), "procedural" or "leaves" (.textures)
    noise: float | None = None  # largest sensor-noise sigma (8-bit levels); per sample uniform in [0, noise]
    min_frames: int | None = None  # fewest frames between an exposure's ends; per sample uniform in [min_frames, n]
    disp_law: str | None = None  # how the largest displacement is drawn in its range (None: "uniform"; see .scenes)
    texture_zoom: float | None = None  # largest extra magnification of the background; per scene log-uniform in [1, it]
    flat: float | None = None  # share of drawn textures without grain (procedural, leaves; .textures)

    def __post_init__(self):
        object.__setattr__(self, "size", tuple(self.size))  # JSON turns it into a list (a manifest, --set data.size)


def check_options(options: SyntheticOptions) -> None:
    """One line for the first option that cannot be rendered; make_synthetic checks them before writing."""
    if len(options.size) != 2 or not all(isinstance(v, int) and v >= 8 for v in options.size):
        raise BlurgenError(f"--size {list(options.size)} is not two integers H, W of at least 8; e.g. 256x256")
    if options.min_disp is not None and options.min_disp > options.max_disp:
        raise BlurgenError(f"--min-disp {options.min_disp} exceeds --max-disp {options.max_disp}; lower it")
    if options.frames_layout not in FRAME_LAYOUTS:
        raise BlurgenError(f"unknown --frames-layout '{options.frames_layout}'; use one of {', '.join(FRAME_LAYOUTS)}")
    if options.frames_layout != "gopro" and not options.frames_out:
        raise BlurgenError(f"--frames-layout {options.frames_layout} needs --frames-out DIR for the frame tree")
    if options.texture_kind not in (None, *TEXTURE_KINDS):
        raise BlurgenError(f"unknown --texture-kind '{options.texture_kind}'; use one of {', '.join(TEXTURE_KINDS)}")
    if options.disp_law not in (None, *DISP_LAWS):
        raise BlurgenError(f"unknown --disp-law '{options.disp_law}'; use one of {', '.join(DISP_LAWS)}")
    if options.noise is not None and options.noise < 0:
        raise BlurgenError(f"--noise {options.noise} is negative; give the largest sigma in 8-bit levels")
    if options.min_frames is not None and options.min_frames < 0:
        raise BlurgenError(f"--min-frames {options.min_frames} is negative; give 0 or more frames between the ends")
    if options.texture_zoom is not None and options.texture_zoom < 1:
        raise BlurgenError(f"--texture-zoom {options.texture_zoom} is under 1; give the largest magnification")
    if options.flat is not None and not 0 <= options.flat <= 1:
        raise BlurgenError(f"--flat {options.flat} is not a share; give one in 0..1")
    if options.flat and options.texture_kind not in ("procedural", "leaves"):
        raise BlurgenError("--flat takes the grain off drawn textures; add --texture-kind procedural or leaves")


def make_synthetic(
    out: str | Path,
    options: SyntheticOptions,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    part: tuple[int, int] | None = None,
    shard_size: int = 256,
    keep_frames: bool = False,
) -> Made:
    """Render ``options`` into shards in ``out`` (a rerun resumes); bad options fail before anything is written.

    ``frames_out`` is written by the workers, so only where they share this host (not with a remote
    ``scheduler``). ``scheduler``, ``part``: see :func:`blurgen.generate.generate`.
    """
    check_options(options)
    scheduler = resolve_scheduler(scheduler, workers)
    if options.frames_out and not is_local(scheduler):
        raise BlurgenError(
            f"--frames-out with --scheduler {scheduler}: the workers would write the frame tree on their own hosts; "
            "use --scheduler local:N (this host), or make the tree in a run of its own without a remote scheduler"
        )
    cached_textures(options.textures)  # a bad --textures folder fails here
    config = asdict(options)
    task_options = {k: v for k, v in config.items() if k not in ("count", "test_count")}
    for key in ("textures", "frames_out"):  # workers may run in another folder
        if task_options[key]:
            task_options[key] = str(Path(task_options[key]).absolute())
    splits = synthetic_splits(options.count, options.test_count, **task_options)
    manifest = generate(
        out,
        "synthetic",
        config,
        splits,
        render_task,
        shard_size=shard_size,
        workers=workers,
        scheduler=scheduler,
        part=part,
        keep_frames=keep_frames,
        extra_fields=EXTRA_FIELDS,
    )
    return Made(Path(out), manifest, splits)


def synthetic_splits(count: int, test_count: int = 0, **options: object) -> dict[str, list[SyntheticTask]]:
    """{"train": tasks 0..count-1, "test": the next test_count}: test scenes are never training scenes.
    ``options``: the other :class:`SyntheticTask` fields, shared by all tasks."""
    splits = {"train": [SyntheticTask("train", i, **options) for i in range(count)]}
    if test_count:
        splits["test"] = [SyntheticTask("test", count + i, **options) for i in range(test_count)]
    return splits


def _windows(task):
    """The sequence's frame times and each window's (first, last) frame index."""
    times = np.linspace(0.0, 1.0, task.windows * task.window)
    return times, [(w * task.window, (w + 1) * task.window - 1) for w in range(task.windows)]


def _rngs(task):
    """Generators for the scene's procedural textures and for its frame count and noise: apart from the
    scene's own (seed, index) one, so the scenes stay those of a folder made without these options."""
    return np.random.default_rng([task.seed, task.index, 1]), np.random.default_rng([task.seed, task.index, 2])


def add_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """uint8 ``image`` plus Gaussian noise of standard deviation ``sigma`` (8-bit levels), rounded and clipped."""
    if sigma <= 0:
        return image
    return np.clip(image + rng.normal(0.0, sigma, image.shape) + 0.5, 0, 255).astype(np.uint8)


def _sensor_noise(blurred, largest, rng):
    """(``blurred`` with noise of a sigma drawn in [0, ``largest``], the meta entry naming that sigma), or
    ``blurred`` unchanged and no entry without ``largest``."""
    if not largest:
        return blurred, {}
    sigma = float(rng.uniform(0, largest))
    return add_noise(blurred, sigma, rng), {"noise": round(sigma, 4)}


def render_task(task: SyntheticTask) -> dict | list[dict]:
    """The sample of ``task``, or with ``frames_out`` the samples of its sequence's windows.

    ``meta["s"]``: the largest |flow| over the stored flow_fwd and flow_bwd (all pixels); it lies in
    [min_disp, max_disp] and sets n = max(ceil(s), 5) sub-frames per exposure (with ``min_frames``, a
    count drawn uniformly in [min_frames, n]). ``meta["noise"]``: the sample's noise sigma, if any.
    """
    texture_rng, draw_rng = _rngs(task)
    textures = scene_textures(task.texture_kind, task.textures, texture_rng, task.objects + 1, task.flat)
    spans = ((0.0, 1.0),)  # one exposure over the whole motion, or each window's
    if task.frames_out:
        times, windows = _windows(task)
        spans = tuple((times[a], times[b]) for a, b in windows)
    scene = scene_for(
        task.seed,
        task.index,
        task.size,
        textures,
        task.max_disp,
        task.min_disp,
        task.objects,
        spans,
        task.disp_law,
        task.texture_zoom,
    )
    if task.frames_out:
        return render_sequence(task, scene, draw_rng)
    frames = None if task.min_frames is None else lambda n: int(draw_rng.integers(min(task.min_frames, n), n + 1))
    sample, s, n = render_exposure(scene, task.gamma, frames=frames)
    sample["meta"] = {
        "sequence": f"synthetic_{task.index:06d}",
        "frames": [0, n + 1],
        "n_interp": n,
        "s": round(s, 3),
        "max_flow": round(max_flow(sample["flow_fwd"]), 3),
        "layers": len(scene.layers),
        "labeller": "exact",
    }
    sample["blurred"], noise = _sensor_noise(sample["blurred"], task.noise, draw_rng)
    sample["meta"].update(noise)
    return sample


def render_sequence(task: SyntheticTask, scene: Scene, rng: np.random.Generator | None = None) -> list[dict]:
    """Write ``windows × window`` sharp frames as one sequence of a frame tree in ``task.frames_layout``
    (see :mod:`.trees`; the sceneflow layout also gets the exact flow of every consecutive pair) and
    return one exact sample per window.

    The scene's motion spans the whole sequence, so each window sees 1/windows of it; a window's
    blurred image is the plain mean of its frames, as `blurgen highspeed` computes it. ``meta["s"]``
    is the window's largest stored |flow|; --min-disp/--max-disp bound the largest over the windows.
    With ``task.noise``, each window's blur gets its own noise sigma from ``rng`` (``meta["noise"]``).
    ``moving`` is the mask of each window's first frame; ``meta["frames"]`` the numbers in the frame
    files' names and ``meta["sequence"]`` the loader's name for the sequence, as `blurgen audit` matches them.
    """
    name, layout = f"synthetic_{task.index:06d}", task.frames_layout
    times, windows = _windows(task)
    frames = []
    for j, t in enumerate(times):
        frames.append(to_uint8(render_frame(scene, t)))
        write_image(frame_path(task.frames_out, layout, task.split, name, j), frames[-1])
    if layout == "sceneflow":
        visible = [visibility(scene, t) for t in times]
        for j in range(len(times) - 1):
            into_future = scene_flow(scene, visible[j], times[j], times[j + 1])
            into_past = scene_flow(scene, visible[j + 1], times[j + 1], times[j])
            write_pair_flows(task.frames_out, name, j, into_future, into_past)
    samples = []
    for a, b in windows:
        window = np.stack(frames[a : b + 1])
        flow_fwd, flow_bwd, visible = exposure_flows(scene, times[a], times[b])
        blurred, noise = _sensor_noise(average_frames(window, task.gamma), task.noise, rng)
        samples.append(
            {
                "blurred": blurred,
                "flow_fwd": flow_fwd,
                "flow_bwd": flow_bwd,
                "valid": inside(flow_fwd).astype(np.uint8),
                "first": window[0],
                "last": window[-1],
                "moving": moving_mask(visible),
                "meta": {
                    "sequence": sequence_name(layout, name),
                    "frames": [frame_number(layout, j) for j in range(a, b + 1)],
                    "n_interp": task.window - 2,
                    "s": round(largest_displacement(flow_fwd, flow_bwd), 3),
                    "max_flow": round(max_flow(flow_fwd), 3),
                    "labeller": "exact",
                    **noise,
                },
            }
        )
    return samples
