"""The built-in source: layered scenes rendered in sub-frames, with exact, occlusion-correct flow.

:mod:`.scene` is the scene model (layers, motion, rendering, exact flow), :mod:`.scenes` draws random
scenes, :mod:`.textures` what their layers show (photos or drawn textures), :mod:`.make` turns tasks into
samples and shards, :mod:`.trees` lays frame trees out as the real data sets do.
"""

from .make import (
    EXTRA_FIELDS,
    SyntheticOptions,
    SyntheticTask,
    add_noise,
    check_options,
    make_synthetic,
    render_sequence,
    render_task,
    synthetic_splits,
)
from .scene import (
    Layer,
    Motion,
    Scene,
    exposure_flows,
    largest_displacement,
    moving_mask,
    render_exposure,
    render_frame,
    scene_flow,
    visibility,
)
from .scenes import DISP_LAWS, random_scene, scene_for, stored_displacement
from .textures import (
    TEXTURE_KINDS,
    cached_textures,
    leaves_texture,
    load_textures,
    procedural_texture,
    scene_textures,
)
from .trees import FRAME_LAYOUTS

__all__ = [
    "DISP_LAWS",
    "EXTRA_FIELDS",
    "FRAME_LAYOUTS",
    "TEXTURE_KINDS",
    "Layer",
    "Motion",
    "Scene",
    "SyntheticOptions",
    "SyntheticTask",
    "add_noise",
    "cached_textures",
    "check_options",
    "exposure_flows",
    "largest_displacement",
    "leaves_texture",
    "load_textures",
    "make_synthetic",
    "moving_mask",
    "procedural_texture",
    "random_scene",
    "render_exposure",
    "render_frame",
    "render_sequence",
    "render_task",
    "scene_flow",
    "scene_for",
    "scene_textures",
    "stored_displacement",
    "synthetic_splits",
    "visibility",
]
