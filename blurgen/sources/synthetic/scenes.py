"""Random scenes: a photo background under camera motion plus moving photo patches, with the largest
stored flow drawn inside [min_disp, max_disp]."""

from collections.abc import Iterable

import cv2
import numpy as np

from ...core.errors import BlurgenError
from .scene import Layer, Motion, Scene, exposure_flows, largest_displacement

RESCALES = 6  # rescaling steps towards the drawn displacement before a scene is redrawn
REDRAWS = 50  # scenes drawn before giving up on the [min_disp, max_disp] range
DISP_LAWS = ("uniform", "log", "mixed")


def draw_displacement(rng: np.random.Generator, lo: float, hi: float, law: str | None = None) -> float:
    """A target for a scene's largest displacement in [lo, hi]: uniform, or "log": log(1 + s) uniform, so
    each doubling of a blur's length above ~1 px is as likely as the next (small blur, the common case in
    photos, is then as well represented as large; a uniform draw holds few scenes under a few pixels);
    "mixed": either of the two, at even odds (models trained on one over-read and on the other under-read
    blur length: README, "Cross-generator generalization")."""
    if law == "mixed":
        law = "uniform" if rng.random() < 0.5 else "log"
    if law in (None, "uniform"):
        return float(rng.uniform(lo, hi))
    if law == "log":
        return float(np.expm1(rng.uniform(np.log1p(lo), np.log1p(hi))))
    raise BlurgenError(f"unknown displacement law '{law}'; use one of {', '.join(DISP_LAWS)}")


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


def draw_zoom(rng: np.random.Generator, largest: float | None) -> float:
    """The background texture's magnification beyond what covers the frame: log-uniform in [1, largest]
    (1 without ``largest``, and then nothing is drawn, so scenes made before the option stay the same)."""
    if not largest or largest <= 1:
        return 1.0
    return float(np.exp(rng.uniform(0.0, np.log(largest))))


def _draw(rng, size, textures, reach, max_objects, texture_zoom=None):
    """A background that covers the frame with a margin of ``reach`` + 2 px (magnified by
    :func:`draw_zoom` beyond that), moving about 0.6 ``reach``, and 0..max_objects patches moving about
    ``reach`` (the scale is set afterwards)."""
    h, w = size
    center = ((w - 1) / 2, (h - 1) / 2)
    margin = reach + 2
    bg = textures[rng.integers(len(textures))]
    cover = max((h + 2 * margin) / bg.shape[0], (w + 2 * margin) / bg.shape[1]) * 1.05
    zoom_bg = cover * draw_zoom(rng, texture_zoom)
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
    law: str | None = None,
    texture_zoom: float | None = None,
) -> Scene:
    """A background under camera motion plus 0..max_objects moving photo patches.

    The largest displacement of the flow the exposures ``spans`` store (:func:`stored_displacement`)
    is drawn from [min_disp, max_disp] by ``law`` (:func:`draw_displacement`; default min_disp:
    0.05 · max_disp), and all motions are rescaled together to meet it; a scene the rescaling cannot
    bring inside the range (visibility at the end of an exposure changes with the scale) is redrawn, so
    the range always holds. ``texture_zoom``: the background's largest extra magnification
    (:func:`draw_zoom`).
    """
    lo = 0.05 * max_disp if min_disp is None else min_disp
    # The background's whole motion is about max_disp over the shortest exposure's share of [0, 1].
    reach = max_disp / min(t1 - t0 for t0, t1 in spans)
    for _ in range(REDRAWS):
        scene = _draw(rng, size, textures, reach, max_objects, texture_zoom)
        target = draw_displacement(rng, lo, max_disp, law)
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
    law: str | None = None,
    texture_zoom: float | None = None,
) -> Scene:
    """The scene of sample ``index``: a pure function of (seed, index), whatever the worker."""
    rng = np.random.default_rng([seed, index])
    return random_scene(rng, size, textures, max_disp, objects, min_disp, spans, law, texture_zoom)
