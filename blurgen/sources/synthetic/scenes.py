"""Random scenes: a photo background under camera motion plus moving photo patches, with the largest
stored flow drawn inside [min_disp, max_disp]."""

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from ...core.errors import BlurgenError
from ...core.images import IMAGE_SUFFIXES, read_image
from .scene import Layer, Motion, Scene, exposure_flows, largest_displacement

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
RESCALES = 6  # rescaling steps towards the drawn displacement before a scene is redrawn
REDRAWS = 50  # scenes drawn before giving up on the [min_disp, max_disp] range


def load_textures(folder: str | Path | None = None) -> list[np.ndarray]:
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


_TEXTURES = {}
TEXTURE_KINDS = ("photos", "procedural")
PROCEDURAL_SIZE = 256  # px, side of a procedural texture (the background is zoomed to cover the frame)


def procedural_texture(rng: np.random.Generator, size: int = PROCEDURAL_SIZE) -> np.ndarray:
    """A random uint8 RGB texture, a pure function of ``rng``: a smooth colour field under 20..80 filled
    shapes and lines, softened at random, plus mostly-luminance noise at three scales.

    Training on these instead of photos keeps every photo out of the training data (the test sets blur
    scikit-image's photos), and every scene gets textures it has never seen.
    """
    image = cv2.resize(rng.uniform(0, 255, (3, 3, 3)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    for _ in range(rng.integers(20, 81)):
        grey = rng.uniform(0, 255)
        colour = tuple(float(c) for c in np.clip(grey + rng.uniform(-60, 60, 3), 0, 255))
        x, y = (int(v) for v in rng.integers(0, size, 2))
        extent = int(size * rng.uniform(0.02, 0.25))
        kind = rng.integers(3)
        if kind == 0:
            axes = (extent, max(1, int(extent * rng.uniform(0.2, 1.0))))
            cv2.ellipse(image, (x, y), axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
        elif kind == 1:
            cv2.rectangle(image, (x, y), (x + extent, y + int(extent * rng.uniform(0.2, 2.0))), colour, -1)
        else:
            end = (x + int(rng.integers(-extent, extent + 1)), y + int(rng.integers(-extent, extent + 1)))
            cv2.line(image, (x, y), end, colour, int(rng.integers(1, 6)))
    if rng.random() < 0.5:
        image = cv2.GaussianBlur(image, (0, 0), sigmaX=float(rng.uniform(0.5, 1.5)))
    small = rng.normal(0, 1, (size // 2, size // 2, 4)).astype(np.float32)
    for sigma in (0.35, 1.0, 3.0):  # on the half-size grid, upsampled: a quarter of the draws
        noise = cv2.resize(cv2.GaussianBlur(small, (0, 0), sigmaX=sigma), (size, size), interpolation=cv2.INTER_LINEAR)
        noise = noise[..., :1] + 0.3 * noise[..., 1:]  # mostly luminance, a little colour
        image += float(rng.uniform(0, 15)) * noise / max(float(noise.std()), 1e-6)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def scene_textures(kind: str | None, folder: str | None, rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """The textures a scene draws from: the photos (kind None or "photos"; see :func:`load_textures`), or
    ``count`` fresh procedural ones from ``rng``."""
    if kind in (None, "photos"):
        return cached_textures(folder)
    if kind == "procedural":
        return [procedural_texture(rng) for _ in range(count)]
    raise BlurgenError(f"unknown texture kind '{kind}'; use one of {', '.join(TEXTURE_KINDS)}")


def cached_textures(folder: str | None = None) -> list[np.ndarray]:
    """:func:`load_textures`, once per process rather than once per sample."""
    if folder not in _TEXTURES:
        _TEXTURES[folder] = load_textures(folder)
    return _TEXTURES[folder]


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


def _draw(rng, size, textures, reach, max_objects):
    """A background that covers the frame with a margin of ``reach`` + 2 px, moving about 0.6 ``reach``,
    and 0..max_objects patches moving about ``reach`` (the scale is set afterwards)."""
    h, w = size
    center = ((w - 1) / 2, (h - 1) / 2)
    margin = reach + 2
    bg = textures[rng.integers(len(textures))]
    zoom_bg = max((h + 2 * margin) / bg.shape[0], (w + 2 * margin) / bg.shape[1]) * 1.05
    place = np.array(
        [
            [zoom_bg, 0, center[0] - zoom_bg * (bg.shape[1] - 1) / 2],
            [0, zoom_bg, center[1] - zoom_bg * (bg.shape[0] - 1) / 2],
            [0, 0, 1],
        ]
    )
    layers = [Layer(bg, place, _random_motion(rng, center, 0.6 * reach, 0.05, 0.05))]
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
        layers.append(Layer(patch, place, _random_motion(rng, (cx, cy), reach, 0.3, 0.1), _soft_mask(rng, ph, pw)))
    return Scene(size, layers)


def stored_displacement(scene: Scene, spans: Iterable[tuple[float, float]]) -> float:
    """The largest |flow| the samples of ``spans`` (exposures ``(t0, t1)``) will store: what bounds them."""
    return max(largest_displacement(*exposure_flows(scene, t0, t1)[:2]) for t0, t1 in spans)


def _background_covers(scene):
    """Whether the background texture covers the whole frame at every time in [0, 1] (checked at 11
    times; its motion is monotone): outside it the reflected border would not move like the layer."""
    h, w = scene.size
    bg = scene.layers[0]
    th, tw = bg.texture.shape[:2]
    corners = np.array([[0, w - 1, 0, w - 1], [0, 0, h - 1, h - 1], [1, 1, 1, 1]], np.float64)
    for t in np.linspace(0, 1, 11):
        x, y, _ = np.linalg.inv(bg.matrix(t)) @ corners
        if x.min() < 0 or y.min() < 0 or x.max() > tw - 1 or y.max() > th - 1:
            return False
    return True


def random_scene(
    rng: np.random.Generator,
    size: tuple,
    textures: list[np.ndarray],
    max_disp: float,
    max_objects: int = 4,
    min_disp: float | None = None,
    spans: tuple = ((0.0, 1.0),),
) -> Scene:
    """A background under camera motion plus 0..max_objects moving photo patches.

    The largest displacement of the flow the exposures ``spans`` store (:func:`stored_displacement`)
    is drawn uniformly from [min_disp, max_disp] (default min_disp: 0.05 · max_disp), and all motions
    are rescaled together to meet it; a scene the rescaling cannot bring inside the range (visibility
    at the end of an exposure changes with the scale) is redrawn, so the range always holds.
    """
    lo = 0.05 * max_disp if min_disp is None else min_disp
    # The background's whole motion is about max_disp over the shortest exposure's share of [0, 1].
    reach = max_disp / min(t1 - t0 for t0, t1 in spans)
    for _ in range(REDRAWS):
        scene = _draw(rng, size, textures, reach, max_objects)
        target = rng.uniform(lo, max_disp)
        for _ in range(RESCALES):
            s = stored_displacement(scene, spans)
            if abs(s - target) <= 0.05 * target and lo <= s <= max_disp:
                break
            for layer in scene.layers:
                layer.motion = layer.motion.scaled(target / max(s, 1e-9))
        else:
            s = stored_displacement(scene, spans)
        if lo <= s <= max_disp and _background_covers(scene):
            return scene
    raise BlurgenError(
        f"no scene with its largest displacement in [{lo:g}, {max_disp:g}] px after {REDRAWS} draws; "
        "widen --min-disp .. --max-disp"
    )


def scene_for(
    seed: int,
    index: int,
    size: tuple,
    textures: list[np.ndarray],
    max_disp: float,
    min_disp: float | None = None,
    objects: int = 4,
    spans: tuple = ((0.0, 1.0),),
) -> Scene:
    """The scene of sample ``index``: a pure function of (seed, index), whatever the worker."""
    return random_scene(np.random.default_rng([seed, index]), size, textures, max_disp, objects, min_disp, spans)
