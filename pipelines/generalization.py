"""Cross-generator generalization: B2F-net trained on one generator's blur, scored on the blur of others.

    b2f-reproduce generalization --out RUN [--scale smoke|full] [--recipe cpu|gpu] [--set KEY=VALUE …]
                                 [--ckpt NAME=PATH …] [--plain] [--tile HxW]

Test sets, each from another generator and its own scenes: synthetic test scenes (`blurgen synthetic`,
continuous motion in n sub-frames); synthetic GoPro-layout frame trees through `blurgen highspeed` (7
frames averaged, scored against the tree's exact flow, not the labeller's); Gong et al.'s motion flows
(`blurgen gong` bsd-m and bsd-s, line blur) on scikit-image photos in BSDS500's layout; a synthetic
SceneFlow-layout tree through `blurgen monkaa` (pairs interpolated with their flow). Rows: the model a
recipe of :data:`RECIPES` trains, with ``--set`` changes (unless ``--ckpt`` models are given, then those).
Per cell min-EPE, zero-flow min-EPE, their ratio, the predicted / true length ratio and the slope of the
predicted length on the true one over the images; RUN/generalization.md holds the matrix.
"""

import dataclasses
import inspect
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from b2f.metrics import MIN_LENGTH
from b2f.model import ModelConfig
from b2f.run_config import run_config
from blurgen.core.errors import BlurgenError
from blurgen.core.files import atomic_write_text
from blurgen.sources.synthetic import SyntheticOptions, check_options

from .scale import Scale
from .stage import Stage, result, run_stages
from .steps import Hardware, eval_stage, highspeed_shards, monkaa_shards, synthetic_shards, synthetic_tree, train_stage
from .table2 import gong_stage, photos_stage


@dataclass(frozen=True)
class Recipe:
    """How the model is trained: ``data`` the SyntheticOptions fields of its training shards, ``train``
    the b2f.train options, ``width`` the net's (ModelConfig.narrowed). A scale changes only what its
    ``generalization["recipe"]`` names (its size)."""

    data: dict
    train: dict
    width: float = 1.0

    def at(self, scale: Scale) -> "Recipe":
        change = scale.generalization["recipe"]
        return Recipe({**self.data, **change["data"]}, {**self.train, **change["train"]}, self.width)

    def model(self, scale: Scale) -> dict:
        """The scale's model config at the recipe's width."""
        return dataclasses.asdict(ModelConfig.from_dict(scale.model).narrowed(self.width))

    def changed(self, changes: dict[str, object]) -> "Recipe":
        """This recipe with ``{"data.KEY" | "train.KEY" | "width": value}`` changes (``--set``), checked before
        anything runs: an unknown key, a value of another type than the one it replaces, or one that the data
        or training would refuse is one line."""
        data, train, width = dict(self.data), dict(self.train), self.width
        for key, value in changes.items():
            part, _, name = key.partition(".")
            if key == "width":
                _check_type(key, value, width)
                width = float(value)
            elif part == "data" and name in DATA_KEYS:
                _check_type(key, value, data.get(name, DATA_KEYS[name]))
                data[name] = value
            elif part == "train" and name in TRAIN_KEYS:
                _check_type(key, value, train.get(name, TRAIN_KEYS[name]))
                train[name] = value
            else:
                raise BlurgenError(
                    f"--set {key}: not a recipe key; use width, data.KEY (KEY one of {', '.join(DATA_KEYS)}) or "
                    f"train.KEY (one of {', '.join(TRAIN_KEYS)})"
                )
        if not width > 0 or (train.get("max_minutes") is not None and train["max_minutes"] <= 0):
            raise BlurgenError("--set: width and train.max_minutes must be positive")
        check_options(SyntheticOptions(**data))
        run_config(".", {}, **{k: v for k, v in train.items() if k != "max_minutes"})
        return Recipe(data, train, width)


def _check_type(key: str, value: object, current: object) -> None:
    """One line unless ``value`` is of the JSON type of ``current`` (an int where a float goes; anything
    where the default is None)."""
    if current is None or value is None:
        return
    if isinstance(current, bool) or not isinstance(current, (int, float)):
        ok = isinstance(value, (list, tuple)) if isinstance(current, (list, tuple)) else type(value) is type(current)
    else:
        ok = type(value) in ((int, float) if isinstance(current, float) else (int,))
    if not ok:
        raise BlurgenError(f"--set {key}={json.dumps(value)}: expected a value like {json.dumps(current)}")


# what --set may change, with their defaults: SyntheticOptions fields (but where a frame tree goes), and
# b2f.train's options that shape the weights (run_config's, but the shards and init the pipeline gives) plus
# its time limit
DATA_KEYS = {f.name: f.default for f in dataclasses.fields(SyntheticOptions) if f.name != "frames_out"}
TRAIN_KEYS = {
    **{k: p.default for k, p in list(inspect.signature(run_config).parameters.items())[2:] if k != "init"},
    "max_minutes": None,
}


# The best recipe measured (issue 17's table in the README): B2F-net at half width (about twice the steps in
# the same time), 10,000 photo-free procedural scenes (no test set shares an image) with their largest
# displacement uniform in 0-36 px (the log law read lengths 0.3-0.6x too short at this size, in two seeds
# each; it reads less false motion in sharp photos), sub-frame counts from 5 to dense, sensor noise of a
# sigma up to 2 levels, backgrounds magnified 1-4x (log-uniform: frame trees show their content magnified,
# which models trained without it read as longer blur; mean off-diagonal ratios 0.65 and 0.73 in two seeds
# against 0.73 and 0.76 without it at 6,000 scenes), rescaled 0.5-1.2x with their flow, photometric jitter;
# 5,000 steps of whole 128² images (64² crops did not carry to whole test images), the weights kept an
# exponential moving average over about the last 100 steps (decay 0.99; 0.999 read lengths shorter).
RECIPE = Recipe(
    data={
        "count": 10000,
        "size": (128, 128),
        "min_disp": 0.0,
        "max_disp": 36.0,
        "objects": 0,
        "texture_kind": "procedural",
        "min_frames": 5,
        "disp_law": "uniform",
        "noise": 2.0,
        "texture_zoom": 4.0,
        "seed": 0,
    },
    train={
        "crop": [128, 128],
        "random_crop": True,
        "batch_size": 4,
        "epochs": 2,
        "lr": 1e-3,
        "milestones": [1],
        "direction": "min",
        "scale": [0.5, 1.2],
        "photometric": True,
        "seed": 0,
        "ema": 0.99,
    },
    width=0.5,
)

# At GPU speed (the prepared ~10-minute run on one GPU), as measured there: RECIPE's data without the
# zoom and its training without the average (both untried on a GPU), 16,000 scenes, the paper's widths,
# batches of 32, up to 15 epochs (7,500 steps; lr halved after epochs 9 and 12), stopped at the first epoch
# end past 4 minutes of training (an epoch took under a minute on an H200), so that the run fits its lease.
GPU_RECIPE = Recipe(
    data={**RECIPE.data, "count": 16000, "texture_zoom": None},
    train={
        **{k: v for k, v in RECIPE.train.items() if k != "ema"},
        "batch_size": 32,
        "epochs": 15,
        "milestones": [9, 12],
        "max_minutes": 4.0,
    },
    width=1.0,
)
RECIPES = {"cpu": RECIPE, "gpu": GPU_RECIPE}

# The goal for a cell: min-EPE at most 0.7× zero flow's, and the flow's length within 0.8–1.25× the truth's.
GOAL_RATIO, GOAL_LENGTH = 0.7, (0.8, 1.25)
# Each test set its own scenes: none shares a seed with the recipe's (seed 0) or with another test set.
SEEDS = {"synthetic": 101, "highspeed": 102, "monkaa": 103, "gong": 104}


@dataclass
class Column:
    """A column: its shards, what made them, and the frame tree whose exact flow is scored (highspeed)."""

    name: str
    shards: Stage
    source: str
    truth: Stage | None = None


@dataclass
class Model:
    """A row: a train stage (the recipe) or a checkpoint file (``--ckpt NAME=PATH``)."""

    name: str
    trained: Stage | Path
    generator: str
    home: str | None = None  # the column of its own generator (other scenes): the diagonal


def matrix_columns(scale: Scale, hw: Hardware) -> list[Column]:
    """The columns' stages (nothing runs)."""
    spec, size = scale.generalization, tuple(scale.generalization["size"])
    synthetic = SyntheticOptions(count=0, seed=SEEDS["synthetic"], size=size, **spec["synthetic"])
    tree_options = SyntheticOptions(seed=SEEDS["highspeed"], size=size, test_count=0, window=7, **spec["tree"])
    tree = synthetic_tree("gen-tree-gopro", tree_options, hw)
    # every sequence but the one split_sequences keeps for train is a test sequence
    highspeed = {"layout": "gopro", "window": 7, "train_share": 0.0, "flow": "opencv-dis"}
    sceneflow = SyntheticOptions(
        seed=SEEDS["monkaa"], size=size, frames_layout="sceneflow", window=2, **spec["sceneflow_tree"]
    )
    photos = photos_stage({"count": spec["photos"], "size": size})
    gong = {**spec["gong"], "seed": SEEDS["gong"]}
    n = spec["tree"]["windows"]
    return [
        Column(
            "synthetic",
            synthetic_shards("gen-synthetic", synthetic, hw),
            f"`blurgen synthetic` test scenes: {_motion(synthetic.objects)}, n = max(ceil(s), 5) sub-frames, largest "
            f"|flow| s in {synthetic.min_disp:g}–{synthetic.max_disp:g} px",
        ),
        Column(
            "highspeed",
            highspeed_shards("gen-highspeed", tree, highspeed, hw),
            f"`blurgen highspeed` on a synthetic GoPro-layout tree ({tree_options.count} sequences of {n} 7-frame "
            f"windows, {_motion(tree_options.objects)}, largest |flow| ≤ {tree_options.max_disp:g} px; the test split: "
            "every sequence but the one kept for train), 7 frames averaged; scored against the tree's exact flow "
            "(not the DIS labels)",
            tree,
        ),
        *(
            Column(
                f"gong {preset}",
                gong_stage(preset, "gen-test", photos, gong, hw),
                f"`blurgen gong` {preset} (Gong et al.'s motion flows, line blur), {gong['per_image']} draws on each "
                f"of {spec['photos']} scikit-image photos in BSDS500's layout",
            )
            for preset in ("bsd-m", "bsd-s")
        ),
        Column(
            "monkaa",
            monkaa_shards("gen-monkaa", synthetic_tree("gen-tree-sceneflow", sceneflow, hw), spec["monkaa"], hw),
            f"`blurgen monkaa` on a synthetic SceneFlow-layout tree ({sceneflow.count} × {sceneflow.windows} frames, "
            f"{_motion(sceneflow.objects)}, a pair's |flow| ≤ {sceneflow.max_disp:g} px), each pair interpolated "
            "with its exact flow into max(ceil(s), 5) sub-frames",
        ),
    ]


def _motion(objects: int) -> str:
    if not objects:
        return "camera motion only"
    return f"camera motion and up to {objects} moving patch{'es' if objects > 1 else ''}"


def matrix_rows(
    scale: Scale, hw: Hardware, ckpts: dict[str, str], recipe: str = "cpu", changes: dict | None = None
) -> list[Model]:
    """The rows: the given checkpoints, or the model the named recipe (with ``changes``) trains at this scale."""
    if ckpts:
        return [Model(name, Path(path), f"`{path}`") for name, path in ckpts.items()]
    chosen = RECIPES[recipe].at(scale).changed(changes or {})  # --set over the scale
    shards = synthetic_shards("gen-train-data", SyntheticOptions(**chosen.data), hw)
    trained = train_stage("gen-train", shards, chosen.model(scale), chosen.train, hw)
    named = " ".join([f"{recipe} recipe", *(f"{k}={json.dumps(v)}" for k, v in (changes or {}).items())])
    return [Model("recipe", trained, f"synthetic, {named}", home="synthetic")]


def build(
    scale: Scale,
    hw: Hardware,
    ckpts: dict[str, str],
    recipe: str = "cpu",
    changes: dict | None = None,
    ensemble: bool = True,
    tile: tuple[int, int] | None = None,
) -> tuple[list[Model], list[Column], dict]:
    """Rows, columns and {(row, column): eval stage} (nothing runs); ``ensemble`` (the default): every model reads
    each image on its flips and turns, combined (b2f.ensemble); False: once. ``tile``: in tiles of that size,
    blended (b2f.tiles); None: whole."""
    rows, columns = matrix_rows(scale, hw, ckpts, recipe, changes), matrix_columns(scale, hw)
    cells = {
        (m.name, t.name): eval_stage(
            f"gen-eval-{t.name.replace(' ', '-')}", m.trained, t.shards, hw, truth=t.truth, ensemble=ensemble, tile=tile
        )
        for m in rows
        for t in columns
    }
    return rows, columns, cells


def meets_goal(model: float, zero: float, length: float | None) -> bool:
    return model <= GOAL_RATIO * zero and length is not None and GOAL_LENGTH[0] <= length <= GOAL_LENGTH[1]


def _cell(summary: dict | None) -> str:
    if summary is None:
        return "not run"
    model, zero = summary["model"]["epe_min"], summary["zero_flow"]["epe_min"]
    length = summary["model"]["length_ratio"]
    if model is None or zero is None:
        return "no valid pixel"
    slope = summary["model"].get("length_slope")  # absent from the records of stages run before it existed
    mark = " ✓" if meets_goal(model, zero, length) else ""
    ratio = f"{model / zero:.2f}×" if zero > 0 else "—"
    numbers = f"len {'n/a' if length is None else f'{length:.2f}'}, slope {'n/a' if slope is None else f'{slope:.2f}'}"
    return f"{model:.3f} / {zero:.3f} = {ratio}, {numbers}{mark}"


def write_matrix(run: str | Path, rows: list[Model], columns: list[Column], cells: dict, command: str) -> Path:
    """RUN/generalization.md from the finished stages' records; returns its path."""
    run = Path(run)
    ensemble = any(stage.config.get("ensemble") for stage in cells.values())
    tile = next((stage.config["tile"] for stage in cells.values() if stage.config.get("tile")), None)
    summary = {key: (result(run, stage) or {}).get("summary") for key, stage in cells.items()}
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Cross-generator generalization",
        "",
        f"Command: `{command}` ({stamp}).",
        "",
        f"Per cell: model min-EPE / zero-flow min-EPE = their ratio, and `len`: the predicted / true flow length "
        f"(per image the median of |pred| / |true| over valid pixels with |true| ≥ {MIN_LENGTH:g} px, in the "
        "direction min-EPE scores; median over images), and `slope`: the least-squares slope of an image's median "
        "|pred| on its median |true| over the images (1: the reading grows with the blur; 0: the same length "
        "whatever the blur, the training prior, which can give len 1 by chance). ✓: the goal, ratio ≤ "
        f"{GOAL_RATIO} and len in {GOAL_LENGTH[0]}–{GOAL_LENGTH[1]}. own: the test set of the row's own generator "
        "(other scenes), the diagonal; the goal is for every other cell. A model's reading of an image: "
        + (
            "its 8 flips and quarter turns' readings combined (`--plain`: one)."
            if ensemble
            else "one pass (`--plain`)."
        )
        + (" Each image read in half-overlapping {}x{} tiles, blended (`--tile`).".format(*tile) if tile else ""),
        "",
        "| Model (training data) | " + " | ".join(t.name for t in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for m in rows:
        row = [("own: " if t.name == m.home else "") + _cell(summary[m.name, t.name]) for t in columns]
        lines.append(f"| {m.name} ({m.generator}) | " + " | ".join(row) + " |")
    lines += ["", "Test sets:", ""]
    for t in columns:
        done = next((summary[m.name, t.name] for m in rows if summary[m.name, t.name]), None)
        images = f"{done['images']} images" if done else "not run"
        lines.append(f"- {t.name}: {images}, {t.source}; `{t.shards.name}`")
    lines += ["", "Models:", ""]
    for m in rows:
        lines.append(f"- {m.name}: {_training(run, m)}")
    path = run / "generalization.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _training(run: Path, m: Model) -> str:
    if not isinstance(m.trained, Stage):
        return f"checkpoint `{m.trained}`"
    done = result(run, m.trained)
    if done is None:
        return "no training record (not trained yet, or its stage folder deleted)"
    s = done["summary"]
    data = {k: v for k, v in m.trained.inputs["shards"].config.items() if v is not None}
    options = {k: v for k, v in m.trained.config.items() if k != "model"}
    encoder = m.trained.config["model"]["enc_channels"]
    return (
        f"{s['train_samples']} synthetic samples × {s['epochs']} epochs = {s['steps']} steps in "
        f"{done['seconds'] / 60:.1f} minutes (`{m.trained.name}`); encoder widths {list(encoder)}; "
        f"data `{json.dumps(data, default=str)}`, training `{json.dumps(options, default=str)}`"
    )


def generalization(
    out: str | Path,
    scale: Scale,
    hw: Hardware,
    ckpts: dict[str, str] | None,
    command: str,
    recipe: str = "cpu",
    changes: dict | None = None,
    ensemble: bool = True,
    tile: tuple[int, int] | None = None,
) -> Path:
    """Build the matrix's stages, run those not done, write RUN/generalization.md; returns its path."""
    rows, columns, cells = build(scale, hw, ckpts or {}, recipe, changes, ensemble, tile)
    run_stages(out, list(cells.values()))
    return write_matrix(out, rows, columns, cells, command)
