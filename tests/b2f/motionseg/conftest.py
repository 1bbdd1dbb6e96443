"""Scenes with a known motion (blurgen's synthetic layers): a photo under a camera motion, patches moving
on their own, and their exact flow and moving-pixel truth, independent of the code under test."""

from types import SimpleNamespace

import numpy as np
import pytest
import skimage.data

from blurgen.sources.synthetic import Layer, Motion, Scene, exposure_flows, render_exposure


def camera(size, shift=(0.0, 0.0), angle=0.0, log_zoom=0.0):
    """A camera motion about the frame's centre, constant speed over the exposure."""
    h, w = size
    return Motion(
        center=((w - 1) / 2, (h - 1) / 2), shift=(shift, (0.0, 0.0)), angle=(angle, 0.0), log_zoom=(log_zoom, 0.0)
    )


def build_scene(size, cam, patches=()):
    """A Scene: the astronaut photo filling the frame (with a margin) moved by ``cam``, then one rectangle or
    ellipse cut from the coffee photo per ``(box (x, y, w, h), Motion, shape)`` in ``patches``."""
    h, w = size
    photo = skimage.data.astronaut()
    scale = 1.6 * max(h, w) / photo.shape[0]
    place = np.array([[scale, 0, -0.3 * w], [0, scale, -0.3 * h], [0, 0, 1.0]])
    layers = [Layer(photo, place, cam)]
    texture = skimage.data.coffee()
    for (x, y, pw, ph), motion, shape in patches:
        alpha = np.zeros((ph, pw), np.float32)
        if shape == "ellipse":
            yy, xx = np.mgrid[0:ph, 0:pw]
            alpha[((xx - (pw - 1) / 2) / (pw / 2)) ** 2 + ((yy - (ph - 1) / 2) / (ph / 2)) ** 2 <= 1] = 1
        else:
            alpha[:] = 1
        layers.append(
            Layer(
                texture[100 : 100 + ph, 150 : 150 + pw].copy(),
                np.array([[1, 0, x], [0, 1, y], [0, 0, 1.0]]),
                motion,
                alpha,
            )
        )
    return Scene(size, layers)


def exact_flow(scene):
    """(flow from the first frame to the last, bool mask of the pixels a patch covers in the first frame)."""
    flow_fwd, _, visible = exposure_flows(scene, 0.0, 1.0)
    return flow_fwd, visible > 0


@pytest.fixture(scope="session")
def scenes():
    """Named scenes at 96×96: (Scene, exact flow, moving truth)."""
    size = (96, 96)
    out = {}

    def add(name, scene):
        out[name] = (scene, *exact_flow(scene))

    add("translation", build_scene(size, camera(size, shift=(7.0, -4.0))))
    add("rotation", build_scene(size, camera(size, angle=0.12)))
    add("zoom", build_scene(size, camera(size, log_zoom=0.12)))
    add("all three", build_scene(size, camera(size, shift=(-5.0, 3.0), angle=-0.06, log_zoom=0.05)))
    cam = camera(size, shift=(6.0, 2.0), angle=0.04, log_zoom=0.03)
    add(
        "square patch",
        build_scene(size, cam, [((20, 24, 30, 26), Motion(center=(35, 37), shift=((-6.0, 5.0), (0, 0))), "box")]),
    )
    add(
        "spinning ellipse",
        build_scene(size, cam, [((50, 40, 34, 28), Motion(center=(67, 54), angle=(0.35, 0.0)), "ellipse")]),
    )
    add(
        "two patches",
        build_scene(
            size,
            cam,
            [
                ((8, 10, 24, 20), Motion(center=(20, 20), shift=((0.0, 8.0), (0, 0))), "box"),
                (
                    (58, 52, 28, 30),
                    Motion(center=(72, 67), shift=((-4.0, -3.0), (0, 0)), log_zoom=(0.15, 0.0)),
                    "ellipse",
                ),
            ],
        ),
    )
    # a patch glued to the camera: moving, but like the background
    glued = camera(size, shift=(6.0, 2.0), angle=0.04, log_zoom=0.03)
    add("patch moving with the camera", build_scene(size, cam, [((30, 30, 30, 30), glued, "box")]))
    return out


@pytest.fixture(scope="session")
def render():
    """``render(scene) -> shard sample`` (blurred, exact flows, valid) by blurgen's exposure renderer."""
    return lambda scene: render_exposure(scene)[0]


@pytest.fixture(scope="session")
def known():
    """The scene builders above, for tests that need a scene of their own."""
    return SimpleNamespace(camera=camera, build_scene=build_scene, exact_flow=exact_flow)
