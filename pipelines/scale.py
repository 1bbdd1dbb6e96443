"""How big a reproduction is: the paper's (``full``) or small on data the project makes (``smoke``).

Both run the same stages; a scale only sets counts, sizes, epochs, the model and the labeller.
"""

import dataclasses
from dataclasses import dataclass, field

from b2f.model import ModelConfig
from b2f.run_config import SCHEDULES


@dataclass(frozen=True)
class Scale:
    """``epochs`` per schedule of b2f-train (milestones scaled with them); ``tree``: SyntheticOptions
    fields of the smoke frame trees (None: real data roots), ``sceneflow_tree`` those of the
    Monkaa-layout one (Monkaa blurs each consecutive pair, so each pair spans a whole exposure);
    ``floor_tree``: those of the synthetic frame tree the label noise floor is measured on at full
    scale; ``labeller``: HighspeedOptions' flow and ckpt; ``bsds``: the smoke photos in BSDS500's
    layout (None: --bsds); ``gong``: GongOptions fields of the training shards (the test shards take
    one draw per image); ``deblur_prior``: (name, fit_prior options); ``segmentation``: SyntheticOptions
    fields of the downstream segmentation's shards (moving patches, exact masks); ``generalization``: the
    cross-generator matrix's test sets (see pipelines.generalization) and ``recipe``, what this scale
    changes in the training recipe (``data``: SyntheticOptions fields, ``train``: b2f.train options)."""

    name: str
    model: dict = field(default_factory=lambda: dataclasses.asdict(ModelConfig()))
    epochs: dict = field(default_factory=lambda: {name: e for name, (e, _) in SCHEDULES.items()})
    batch_size: int = 4
    crop: tuple = (256, 256)
    tree: dict | None = None
    sceneflow_tree: dict | None = None
    floor_tree: dict = field(default_factory=dict)
    labeller: dict = field(default_factory=lambda: {"flow": "pwcnet", "ckpt": "things"})
    monkaa: dict = field(default_factory=dict)
    bsds: dict | None = None
    gong: dict = field(default_factory=lambda: {"per_image": 8})
    deblur_prior: tuple = ("epll", {})
    segmentation: dict = field(
        default_factory=lambda: {
            "count": 10000,
            "test_count": 200,
            "size": (256, 256),
            "min_disp": 4.0,
            "max_disp": 30.0,
            "objects": 4,
        }
    )
    generalization: dict = field(
        default_factory=lambda: {
            "size": (256, 256),
            "synthetic": {"test_count": 48, "min_disp": 1.0, "max_disp": 32.0, "objects": 0},
            "tree": {"count": 13, "max_disp": 32.0, "objects": 1, "windows": 4},
            "sceneflow_tree": {"count": 4, "max_disp": 24.0, "objects": 1, "windows": 8},
            "monkaa": {"camera": "left", "split": {"test": 48}},
            "photos": 6,
            "gong": {"per_image": 8},
            "recipe": {"data": {}, "train": {}},
        }
    )
    seed: int = 0

    def train_options(self, schedule: str) -> dict:
        """b2f.train.train options for one of the paper's schedules at this scale (central crops, as the paper)."""
        preset, milestones = SCHEDULES[schedule]
        epochs = self.epochs[schedule]
        return {
            "schedule": schedule,
            "epochs": epochs,
            "milestones": [max(1, round(m * epochs / preset)) for m in milestones],
            "batch_size": self.batch_size,
            "crop": list(self.crop),
            "seed": self.seed,
        }


# The paper's: its schedules, 256×256 central crops, PWC-Net (FlowThings weights) pseudo-ground truth,
# Monkaa's 10,000/1,200 pairs; the noise floor on 16 synthetic 720p sequences (64 windows) with
# GoPro-like displacements; EPLL deconvolution (b2f.deblur's default mixture fit).
FULL = Scale(
    "full",
    monkaa={"split": {"train": 10000, "test": 1200}},
    floor_tree={"count": 16, "size": (720, 1280), "max_disp": 40.0, "objects": 4, "window": 7, "windows": 4},
)

# Minutes on 2 CPU cores: 64×64 scenes, a few epochs, the real model; DIS labels (no weights to download).
SMOKE = Scale(
    "smoke",
    epochs={"scratch": 3, "finetune": 2},
    crop=(64, 64),
    tree={"count": 8, "size": (64, 64), "max_disp": 8.0, "objects": 1, "window": 7, "windows": 4},
    sceneflow_tree={"count": 8, "size": (64, 64), "max_disp": 8.0, "objects": 1, "window": 2, "windows": 8},
    labeller={"flow": "opencv-dis"},
    monkaa={"camera": "left", "split": {"train": 24, "test": 8}},
    bsds={"count": 3, "size": (96, 128)},
    gong={"per_image": 4},
    deblur_prior=("hyper-laplacian", {}),
    segmentation={"count": 24, "test_count": 8, "size": (64, 64), "min_disp": 2.0, "max_disp": 8.0, "objects": 2},
    generalization={
        "size": (64, 64),
        "synthetic": {"test_count": 4, "min_disp": 1.0, "max_disp": 8.0, "objects": 0},
        "tree": {"count": 3, "max_disp": 8.0, "objects": 1, "windows": 2},
        "sceneflow_tree": {"count": 1, "max_disp": 6.0, "objects": 1, "windows": 4},
        "monkaa": {"camera": "left", "split": {"test": 4}},
        "photos": 2,
        "gong": {"per_image": 2},
        "recipe": {
            "data": {"count": 16, "size": (64, 64), "max_disp": 8.0},
            "train": {"epochs": 2, "crop": [64, 64], "random_crop": False, "milestones": []},
        },
    },
)

SCALES = {"full": FULL, "smoke": SMOKE}
