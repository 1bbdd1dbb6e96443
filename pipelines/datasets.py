"""The data behind each table row: shards from the real data sets, or from synthetic frame trees in
their layouts (smoke), and the label noise floor where exact truth exists."""

from dataclasses import dataclass
from pathlib import Path

from blurgen.core.errors import BlurgenError
from blurgen.sources.synthetic import SyntheticOptions

from .scale import Scale
from .stage import Stage
from .steps import Hardware, audit_stage, highspeed_shards, monkaa_shards, synthetic_tree

NAMES = {"monkaa": "Monkaa", "gopro": "GoPro", "nfs": "NfS"}


@dataclass
class Data:
    """A data set's shards (train and test splits), what they were made from, and the stage that
    measures its labels against exact flow (None where the labels are the data set's own truth)."""

    name: str
    shards: Stage
    source: str
    floor: Stage | None = None


# each smoke data set its own scenes (the same seed would give GoPro and NfS the same ones)
SEEDS = {"gopro": 0, "nfs": 1, "sceneflow": 2}


def _tree(scale: Scale, layout: str, hw: Hardware) -> Stage:
    options = scale.sceneflow_tree if layout == "sceneflow" else scale.tree
    seed = scale.seed + SEEDS[layout]
    return synthetic_tree(f"tree-{layout}", SyntheticOptions(seed=seed, frames_layout=layout, **options), hw)


def _root(roots: dict, key: str) -> str:
    if not roots.get(key):
        raise BlurgenError(f"--scale full needs --{key} ROOT (the {NAMES[key]} data set); or run --scale smoke")
    if not Path(roots[key]).exists():
        raise BlurgenError(f"--{key} {roots[key]}: no such folder; pass the folder the data set unpacked to")
    return roots[key]


def monkaa(scale: Scale, roots: dict, hw: Hardware) -> Data:
    if scale.tree is None:
        root = _root(roots, "monkaa")
        return Data("Monkaa", monkaa_shards("monkaa", root, scale.monkaa, hw), f"Monkaa at {root}")
    tree = _tree(scale, "sceneflow", hw)
    return Data("Monkaa", monkaa_shards("monkaa", tree, scale.monkaa, hw), "synthetic SceneFlow-layout tree")


def _highspeed(key: str, scale: Scale, roots: dict, hw: Hardware) -> Data:
    # windows of the trees' own length, so every labelled window is one the synthetic source made exactly
    options = {"layout": key, "window": (scale.tree or scale.floor_tree)["window"], **scale.labeller}
    if scale.tree is None:
        root = _root(roots, key)
        floor_tree = synthetic_tree("tree-floor", SyntheticOptions(seed=scale.seed, **scale.floor_tree), hw)
        labelled = highspeed_shards("floor-labelled", floor_tree, {**options, "layout": "gopro"}, hw)
        floor = audit_stage("floor", labelled, floor_tree)
        return Data(NAMES[key], highspeed_shards(key, root, options, hw), f"{NAMES[key]} at {root}", floor)
    tree = _tree(scale, key, hw)
    shards = highspeed_shards(key, tree, options, hw)
    layout = f"synthetic {NAMES[key]}-layout tree"
    return Data(NAMES[key], shards, layout, audit_stage(f"floor-{key}", shards, tree))


def gopro(scale: Scale, roots: dict, hw: Hardware) -> Data:
    return _highspeed("gopro", scale, roots, hw)


def nfs(scale: Scale, roots: dict, hw: Hardware) -> Data:
    return _highspeed("nfs", scale, roots, hw)
