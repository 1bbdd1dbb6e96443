"""The built-in source: layered scenes rendered in sub-frames, with exact, occlusion-correct flow.

A scene is a back-to-front stack of textured layers. Layer k maps texture coordinates to image
coordinates at time t in [0, 1] by an affine matrix M_k(t), so every flow is closed-form:
a pixel p of the first frame on layer k lies at M_k(1) M_k(0)^-1 p in the last one. Each pixel's
flow is that of the layer visible there (alpha > 0.5), so occlusion is handled exactly.
"""

from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..blur import average_frames
from ..core.errors import BlurgenError
from ..core.flow import inside, max_flow
from ..core.images import IMAGE_SUFFIXES, read_image, write_image
from ..generate import Made, generate

SKIMAGE_PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "immunohistochemistry",
    "camera",
    "grass",
    "gravel",
    "brick",
    "moon",
    "coins",
    "cat",
)


def load_textures(folder=None):
    """RGB photos to texture layers with: scikit-image's bundled ones, or every image in ``folder``."""
    if folder is None:
        import skimage.data

        photos = [getattr(skimage.data, name)() for name in SKIMAGE_PHOTOS]
    else:
        files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise BlurgenError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) found for --textures")
        photos = [read_image(p) for p in files]
    return [np.ascontiguousarray(np.dstack([p] * 3) if p.ndim == 2 else p[..., :3]) for p in photos]


@dataclass
class Motion:
    """A similarity motion about ``center``: each parameter moves as ``p1*t + p2*t**2``.

    ``shift`` (px, x then y), ``angle`` (radians), ``log_zoom``; each a pair (p1, p2).
    """

    center: tuple = (0.0, 0.0)
    shift: tuple = ((0.0, 0.0), (0.0, 0.0))
    angle: tuple = (0.0, 0.0)
    log_zoom: tuple = (0.0, 0.0)

    def matrix(self, t):
        """3×3 image-to-image transform from time 0 to time ``t``."""
        (sx1, sy1), (sx2, sy2) = self.shift
        a = self.angle[0] * t + self.angle[1] * t * t
        z = np.exp(self.log_zoom[0] * t + self.log_zoom[1] * t * t)
        cx, cy = self.center
        c, s = z * np.cos(a), z * np.sin(a)
        tx, ty = sx1 * t + sx2 * t * t, sy1 * t + sy2 * t * t
        return np.array(
            [[c, -s, cx + tx - c * cx + s * cy], [s, c, cy + ty - s * cx - c * cy], [0, 0, 1]], dtype=np.float64
        )

    def scaled(self, k):
        return Motion(
            self.center,
            tuple(tuple(k * v for v in p) for p in self.shift),
            tuple(k * v for v in self.angle),
            tuple(k * v for v in self.log_zoom),
        )


@dataclass
class Layer:
    """A texture placed by ``place`` (texture -> image at t=0, 3×3) and moved by ``motion``."""

    texture: np.ndarray
    place: np.ndarray
    motion: Motion = field(default_factory=Motion)
    alpha: np.ndarray = None  # float32 in [0, 1] over the texture; None: opaque background

    def __post_init__(self):
        # Colour and alpha warped in one call: half the resampling work of two.
        if self.alpha is not None:
            self.rgba = np.dstack([self.texture.astype(np.float32), self.alpha.astype(np.float32)])

    def matrix(self, t):
        return self.motion.matrix(t) @ self.place


@dataclass
class Scene:
    size: tuple  # (H, W)
    layers: list  # back to front; layers[0] is the opaque background


def render_frame(scene, t):
    """Float32 RGB frame at time ``t`` and the index of the visible layer per pixel."""
    h, w = scene.size
    frame = np.zeros((h, w, 3), np.float32)
    visible = np.zeros((h, w), np.int8)
    for k, layer in enumerate(scene.layers):
        m = layer.matrix(t)[:2]
        if layer.alpha is None:
            frame[:] = cv2.warpAffine(
                layer.texture, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
            )
            continue
        # Warp only the patch's bounding box: objects cover a fraction of the frame.
        th, tw = layer.alpha.shape
        corners = m @ np.array([[0, tw, 0, tw], [0, 0, th, th], [1, 1, 1, 1]], np.float64)
        x0, y0 = np.maximum(np.floor(corners.min(axis=1)).astype(int) - 1, 0)
        x1, y1 = np.minimum(np.ceil(corners.max(axis=1)).astype(int) + 2, (w, h))
        if x1 <= x0 or y1 <= y0:
            continue
        m = m - np.array([[0, 0, x0], [0, 0, y0]])
        rgba = cv2.warpAffine(layer.rgba, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderValue=0)
        a = rgba[..., 3:]
        box = frame[y0:y1, x0:x1]
        box += a * (rgba[..., :3] - box)
        visible[y0:y1, x0:x1][a[..., 0] > 0.5] = k
    return frame, visible


def layer_flow(scene, k, t0, t1):
    """Flow of layer ``k`` from time ``t0`` to ``t1`` at every pixel of the t0 grid (closed form)."""
    h, w = scene.size
    a = scene.layers[k].matrix(t1) @ np.linalg.inv(scene.layers[k].matrix(t0)) - np.eye(3)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    u = a[0, 0] * xs + a[0, 1] * ys + a[0, 2]
    v = a[1, 0] * xs + a[1, 1] * ys + a[1, 2]
    return np.stack([u, v], axis=-1).astype(np.float32)


def scene_flow(scene, visible, t0, t1):
    """Flow of the visible layer at each pixel of the t0 frame, from t0 to t1."""
    flow = np.zeros(scene.size + (2,), np.float32)
    for k in np.unique(visible):
        mask = visible == k
        flow[mask] = layer_flow(scene, int(k), t0, t1)[mask]
    return flow


def max_displacement(scene, t0=0.0, t1=1.0):
    """Largest displacement of any layer over the image (corners bound an affine map's maximum)."""
    h, w = scene.size
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], np.float64).T
    s = 0.0
    for layer in scene.layers:
        a = layer.matrix(t1) @ np.linalg.inv(layer.matrix(t0))
        s = max(s, float(np.linalg.norm((a @ corners - corners)[:2], axis=0).max()))
    return s


def render_exposure(scene, gamma=None, t0=0.0, t1=1.0, n=None):
    """Blur the exposure [t0, t1] like the Monkaa rule: ends plus n = max(ceil(s), 5) sub-frames.

    Returns the sample dict (blurred, exact flows, valid, sharp end frames) and the frame count.
    """
    s = max_displacement(scene, t0, t1)
    n = max(int(np.ceil(s)), 5) if n is None else n
    times = np.linspace(t0, t1, n + 2)
    frames, vis = zip(*(render_frame(scene, t) for t in times))
    first = np.clip(frames[0] + 0.5, 0, 255).astype(np.uint8)
    last = np.clip(frames[-1] + 0.5, 0, 255).astype(np.uint8)
    flow_fwd = scene_flow(scene, vis[0], t0, t1)
    flow_bwd = scene_flow(scene, vis[-1], t1, t0)
    sample = {
        "blurred": average_frames(np.stack(frames), gamma),
        "flow_fwd": flow_fwd,
        "flow_bwd": flow_bwd,
        "valid": inside(flow_fwd).astype(np.uint8),
        "first": first,
        "last": last,
    }
    return sample, s, n


# -- random scenes --------------------------------------------------------------------------------
def _soft_mask(rng, h, w):
    """An elliptic blob with a blurred edge, the patch of a foreground object."""
    mask = np.zeros((h, w), np.float32)
    axes = (int(w * rng.uniform(0.3, 0.48)), int(h * rng.uniform(0.3, 0.48)))
    cv2.ellipse(mask, (w // 2, h // 2), axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    return cv2.GaussianBlur(mask, (0, 0), sigmaX=max(1.0, 0.03 * min(h, w)))


def _random_motion(rng, center, speed, spin, zoom):
    """Velocity plus an acceleration of the same sign (p2 = a*p1, a in [-0.5, 0.5]) keeps each
    parameter monotone in t, so no sub-frame moves farther than the end frame does."""
    acc = rng.uniform(-0.5, 0.5, size=4)
    direction = rng.uniform(0, 2 * np.pi)
    v = rng.uniform(0.2, 1.0) * speed * np.array([np.cos(direction), np.sin(direction)])
    a = rng.uniform(-spin, spin)
    z = rng.uniform(-zoom, zoom)
    return Motion(
        center=center,
        shift=((v[0], v[1]), (acc[0] * v[0], acc[1] * v[1])),
        angle=(a, acc[2] * a),
        log_zoom=(z, acc[3] * z),
    )


def random_scene(rng, size, textures, max_disp, max_objects=4, min_disp=None):
    """A background under camera motion plus 0..max_objects moving photo patches, s <= max_disp.

    The largest displacement s is drawn from [min_disp, max_disp] (default min_disp: 0.05 · max_disp)."""
    h, w = size
    center = ((w - 1) / 2, (h - 1) / 2)
    # The background texture covers the frame with a margin of max_disp on every side, so the
    # camera never shows its border (the reflected border would not move like the layer).
    margin = max_disp + 2
    bg = textures[rng.integers(len(textures))]
    zoom_bg = max((h + 2 * margin) / bg.shape[0], (w + 2 * margin) / bg.shape[1]) * 1.05
    place = np.array(
        [
            [zoom_bg, 0, center[0] - zoom_bg * (bg.shape[1] - 1) / 2],
            [0, zoom_bg, center[1] - zoom_bg * (bg.shape[0] - 1) / 2],
            [0, 0, 1],
        ]
    )
    layers = [Layer(bg, place, _random_motion(rng, center, 0.6 * max_disp, 0.05, 0.05))]
    for _ in range(rng.integers(0, max_objects + 1)):
        photo = textures[rng.integers(len(textures))]
        ph, pw = int(h * rng.uniform(0.2, 0.5)), int(w * rng.uniform(0.2, 0.5))
        # A region up to 3x the patch, shrunk into it, so patches carry texture rather than flat colour.
        zoom = rng.uniform(1.0, 3.0)
        rh, rw = min(int(ph * zoom), photo.shape[0]), min(int(pw * zoom), photo.shape[1])
        y0, x0 = rng.integers(0, photo.shape[0] - rh + 1), rng.integers(0, photo.shape[1] - rw + 1)
        patch = cv2.resize(photo[y0 : y0 + rh, x0 : x0 + rw], (pw, ph), interpolation=cv2.INTER_AREA)
        cx, cy = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h
        place = np.array([[1, 0, cx - pw / 2], [0, 1, cy - ph / 2], [0, 0, 1]], np.float64)
        layers.append(Layer(patch, place, _random_motion(rng, (cx, cy), max_disp, 0.3, 0.1), _soft_mask(rng, ph, pw)))
    scene = Scene(size, layers)
    # Rescale all motions together to a drawn largest displacement, so blur lengths spread evenly
    # over [min_disp, max_disp] (the displacement scales about linearly; the check below makes it a bound).
    target = rng.uniform(0.05, 1.0) * max_disp if min_disp is None else rng.uniform(min_disp, max_disp)
    for _ in range(5):
        s = max_displacement(scene)
        if s <= max_disp and abs(s - target) < 0.05 * target:
            break
        for layer in layers:
            layer.motion = layer.motion.scaled(target / max(s, 1e-6))
    return scene


def scene_for(seed, index, size, textures, max_disp, min_disp=None, objects=4):
    """The scene of sample ``index``: a pure function of (seed, index), whatever the worker."""
    return random_scene(np.random.default_rng([seed, index]), size, textures, max_disp, objects, min_disp)


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
    window: int = 7
    windows: int = 4
    min_disp: float = None
    objects: int = 4  # most moving patches in front of the background (0: camera motion only)


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
    window: int = 7
    windows: int = 4


def make_synthetic(
    out: str | Path, options: SyntheticOptions, *, workers: int = 1, shard_size: int = 256, keep_frames: bool = False
) -> Made:
    """Render ``options`` into shards in ``out`` (a rerun resumes); bad options fail before anything is written."""
    if options.min_disp is not None and options.min_disp > options.max_disp:
        raise BlurgenError(f"--min-disp {options.min_disp} exceeds --max-disp {options.max_disp}; lower it")
    cached_textures(options.textures)  # a bad --textures folder fails here
    config = asdict(options)
    task_options = {k: v for k, v in config.items() if k not in ("count", "test_count")}
    splits = synthetic_splits(options.count, options.test_count, **task_options)
    manifest = generate(
        out, "synthetic", config, splits, render_task, shard_size=shard_size, workers=workers, keep_frames=keep_frames
    )
    return Made(Path(out), manifest, splits)


def synthetic_splits(count, test_count=0, **options):
    """{"train": tasks 0..count-1, "test": the next test_count}: test scenes are never training scenes.
    ``options``: the other :class:`SyntheticTask` fields, shared by all tasks."""
    splits = {"train": [SyntheticTask("train", i, **options) for i in range(count)]}
    if test_count:
        splits["test"] = [SyntheticTask("test", count + i, **options) for i in range(test_count)]
    return splits


_TEXTURES = {}


def cached_textures(folder=None):
    """:func:`load_textures`, once per process rather than once per sample."""
    if folder not in _TEXTURES:
        _TEXTURES[folder] = load_textures(folder)
    return _TEXTURES[folder]


def render_task(task):
    if task.frames_out:
        # --max-disp bounds each window: the sequence spans (count-1)/(window-1) window lengths, and
        # the factor 1.5 covers windows late in an accelerating motion (speed grows at most 1.5x).
        span = (task.windows * task.window - 1) / (task.window - 1)
        scale = span / 1.5
        scene = scene_for(
            task.seed,
            task.index,
            task.size,
            cached_textures(task.textures),
            task.max_disp * scale,
            None if task.min_disp is None else task.min_disp * scale,
            task.objects,
        )
        return render_sequence(task, scene)
    scene = scene_for(
        task.seed, task.index, task.size, cached_textures(task.textures), task.max_disp, task.min_disp, task.objects
    )
    sample, s, n = render_exposure(scene, task.gamma)
    sample["meta"] = {
        "sequence": f"synthetic_{task.index:06d}",
        "frames": [0, n + 1],
        "n_interp": n,
        "s": round(s, 3),
        "max_flow": round(max_flow(sample["flow_fwd"]), 3),
        "layers": len(scene.layers),
        "labeller": "exact",
    }
    return sample


def render_sequence(task, scene):
    """Write ``windows × window`` sharp frames as one sequence folder (GoPro layout:
    ``frames_out/<split>/<sequence>/000001.png …``) and return one exact sample per window.

    The scene's motion spans the whole sequence, so each window sees 1/windows of it; a window's
    blurred image is the plain mean of its frames, as `blurgen highspeed` computes it.
    """
    name = f"synthetic_{task.index:06d}"
    folder = Path(task.frames_out) / task.split / name
    count = task.windows * task.window
    times = np.linspace(0.0, 1.0, count)
    frames, vis = [], []
    for j, t in enumerate(times):
        frame, visible = render_frame(scene, t)
        frames.append(np.clip(frame + 0.5, 0, 255).astype(np.uint8))
        vis.append(visible)
        write_image(folder / f"{j + 1:06d}.png", frames[-1])
    samples = []
    for w in range(task.windows):
        a, b = w * task.window, (w + 1) * task.window - 1
        window = np.stack(frames[a : b + 1])
        flow_fwd = scene_flow(scene, vis[a], times[a], times[b])
        flow_bwd = scene_flow(scene, vis[b], times[b], times[a])
        samples.append(
            {
                "blurred": average_frames(window, task.gamma),
                "flow_fwd": flow_fwd,
                "flow_bwd": flow_bwd,
                "valid": inside(flow_fwd).astype(np.uint8),
                "first": window[0],
                "last": window[-1],
                "meta": {
                    "sequence": name,
                    "frames": list(range(a + 1, b + 2)),
                    "n_interp": task.window - 2,
                    "s": round(max_displacement(scene, times[a], times[b]), 3),
                    "max_flow": round(max_flow(flow_fwd), 3),
                    "labeller": "exact",
                },
            }
        )
    return samples
