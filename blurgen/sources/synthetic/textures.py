"""What scene layers are textured with: photos (scikit-image's bundled ones or a folder), or textures drawn
from a generator, so that training data can hold no photo at all."""

from pathlib import Path

import cv2
import numpy as np

from ...core.errors import BlurgenError
from ...core.images import IMAGE_SUFFIXES, read_image

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
TEXTURE_KINDS = ("photos", "procedural", "leaves")
PROCEDURAL_SIZE = 256  # px, side of a drawn texture (the background is zoomed to cover the frame)
_TEXTURES = {}


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


def cached_textures(folder: str | None = None) -> list[np.ndarray]:
    """:func:`load_textures`, once per process rather than once per sample."""
    if folder not in _TEXTURES:
        _TEXTURES[folder] = load_textures(folder)
    return _TEXTURES[folder]


def scene_textures(
    kind: str | None, folder: str | None, rng: np.random.Generator, count: int, flat: float | None = None
) -> list[np.ndarray]:
    """The textures a scene draws from: the photos (kind None or "photos"; see :func:`load_textures`), or
    ``count`` fresh ones from ``rng`` (:func:`procedural_texture`, :func:`leaves_texture`), each without
    grain at odds ``flat`` (no draw without it, so scenes made before the option stay the same)."""
    if kind in (None, "photos"):
        return cached_textures(folder)
    draw = {"procedural": procedural_texture, "leaves": leaves_texture}.get(kind)
    if draw is None:
        raise BlurgenError(f"unknown texture kind '{kind}'; use one of {', '.join(TEXTURE_KINDS)}")
    return [draw(rng, grain=not (flat and rng.random() < flat)) for _ in range(count)]


def _colour_field(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth float32 RGB field: a random 3×3 colour grid, upsampled bicubically."""
    return cv2.resize(rng.uniform(0, 255, (3, 3, 3)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)


GRAIN_SCALES = (0.35, 1.0, 3.0)  # σ of the noise on the half-size grid (a quarter of the draws): grain to detail


def _grain_draws(rng: np.random.Generator, size: int) -> np.ndarray:
    """The white noise every grain field of a size×size texture is made from."""
    return rng.normal(0, 1, (size // 2, size // 2, 4)).astype(np.float32)


def _grain(draws: np.ndarray, size: int, sigma: float) -> tuple[np.ndarray, float]:
    """A size×size×1 field of mostly-luminance noise at scale ``sigma`` of :data:`GRAIN_SCALES`, and its std."""
    noise = cv2.resize(cv2.GaussianBlur(draws, (0, 0), sigmaX=sigma), (size, size), interpolation=cv2.INTER_LINEAR)
    noise = noise[..., :1] + 0.3 * noise[..., 1:]  # mostly luminance, a little colour
    return noise, max(float(noise.std()), 1e-6)


def _finish(rng: np.random.Generator, image: np.ndarray, grain: bool) -> np.ndarray:
    """``image`` as uint8, with grain of random strength (0..15 levels at each scale) unless ``grain`` is False."""
    if grain:
        draws = _grain_draws(rng, image.shape[0])
        for sigma in GRAIN_SCALES:
            noise, std = _grain(draws, image.shape[0], sigma)
            image += float(rng.uniform(0, 15)) * noise / std
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def procedural_texture(rng: np.random.Generator, size: int = PROCEDURAL_SIZE, grain: bool = True) -> np.ndarray:
    """A random uint8 RGB texture, a pure function of ``rng``: a smooth colour field under 20..80 filled
    shapes and lines, softened at random, plus mostly-luminance noise at three scales (``grain``; without
    it the shapes are flat, as sky, walls and backgrounds in photos are, where blur shows only at edges).

    Training on these instead of photos keeps every photo out of the training data (the test sets blur
    scikit-image's photos), and every scene gets textures it has never seen.
    """
    image = _colour_field(rng, size)
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
    return _finish(rng, image, grain)


def _leaf_radius(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A radius with density ∝ r⁻³ on [lo, hi]: the dead-leaves law that makes the picture scale-invariant."""
    return (lo**-2 - rng.random() * (lo**-2 - hi**-2)) ** -0.5


def _draw_leaf(rng: np.random.Generator, ids: np.ndarray, index: int, smallest: float) -> None:
    """Shape ``index`` (an ellipse or a rotated rectangle, power-law size) painted into the id map."""
    size = ids.shape[0]
    centre = rng.uniform(-0.1, 1.1, 2) * size
    r = _leaf_radius(rng, smallest, size / 2)
    aspect, angle = rng.uniform(0.3, 1.0), float(rng.uniform(0, 180))
    if rng.random() < 0.6:
        axes = (max(1, round(r)), max(1, round(r * aspect)))
        cv2.ellipse(ids, tuple(int(v) for v in centre), axes, angle, 0, 360, float(index), -1)
    else:
        corners = cv2.boxPoints(((float(centre[0]), float(centre[1])), (2 * r, 2 * r * aspect), angle))
        cv2.fillPoly(ids, [np.round(corners).astype(np.int32)], float(index))


def _pattern(rng: np.random.Generator, size: int) -> np.ndarray:
    """A size×size field in [-1, 1]: stripes or a grid of random period (3..24 px) and orientation."""
    y, x = np.mgrid[:size, :size].astype(np.float32)
    angle, period = rng.uniform(0, np.pi), rng.uniform(3, 24)
    u = x * np.cos(angle) + y * np.sin(angle)
    field = np.sin(2 * np.pi * u / period + rng.uniform(0, 2 * np.pi))
    if rng.random() < 0.5:  # a grid (bricks, tiles): the product with the perpendicular stripes
        v = -x * np.sin(angle) + y * np.cos(angle)
        field = field * np.sin(2 * np.pi * v / rng.uniform(3, 24) + rng.uniform(0, 2 * np.pi))
    return np.sign(field) if rng.random() < 0.5 else field  # hard or soft edges


def leaves_texture(rng: np.random.Generator, size: int = PROCEDURAL_SIZE, grain: bool = True) -> np.ndarray:
    """A random uint8 RGB texture, a pure function of ``rng``, with what photos have and
    :func:`procedural_texture` lacks: dead leaves (occluding shapes of power-law sizes, so the picture is
    scale-invariant as natural images are) in 2..4 depth layers (the back one all but covering the frame),
    each defocused by its own blur (σ up to 5 px, none for 40 % of them); shapes flat, grained or patterned
    (stripes, grids); a smooth sky-like gradient behind; grain on top (``grain``).

    A model trained on :func:`procedural_texture` scenes reads soft edges, smooth areas and repeated patterns
    of sharp photos as motion (README, "Cross-generator generalization"): here they occur without motion.
    """
    image = _colour_field(rng, size)
    if rng.random() < 0.5:
        ramp = np.linspace(-1, 1, size, dtype=np.float32)[:, None, None]
        image = image + ramp * rng.uniform(-60, 60, 3).astype(np.float32)
    for depth in range(int(rng.integers(2, 5))):
        # the back layer all but covers the frame; the layers before it are scattered objects
        count, smallest = (int(rng.integers(600, 1500)), 2.0) if depth == 0 else (int(rng.integers(10, 150)), 4.0)
        ids = np.zeros((size, size), np.float32)
        for index in range(1, count + 1):
            _draw_leaf(rng, ids, index, smallest)
        ids = ids.astype(np.int64)
        grey = rng.uniform(0, 255, count + 1)
        colours = np.clip(grey[:, None] + rng.uniform(-60, 60, (count + 1, 3)), 0, 255).astype(np.float32)
        fill = rng.integers(0, 3, count + 1)  # 0 flat, 1 grained, 2 patterned
        amplitude = rng.uniform(10, 60, count + 1).astype(np.float32)
        draws = _grain_draws(rng, size)
        noise, std = _grain(draws, size, GRAIN_SCALES[int(rng.integers(3))])
        speckle, pattern = noise[..., 0] / std, _pattern(rng, size)
        texture = np.where(fill[ids] == 1, speckle, np.where(fill[ids] == 2, pattern, 0))
        layer = colours[ids] + (amplitude[ids] * texture)[..., None]
        alpha = (ids > 0).astype(np.float32)
        sigma = 0.0 if rng.random() < 0.4 else float(rng.uniform(0.5, 5.0))
        premultiplied = layer * alpha[..., None]
        if sigma:
            premultiplied = cv2.GaussianBlur(premultiplied, (0, 0), sigmaX=sigma)
            alpha = cv2.GaussianBlur(alpha, (0, 0), sigmaX=sigma)
        image = image * (1 - alpha[..., None]) + premultiplied
    return _finish(rng, image, grain)
