"""Tables 1 and 3 of the paper as stage lists: flow from one blurred image, and the ablations on GoPro."""

from . import datasets
from .report import Row, Table
from .scale import Scale
from .stage import Stage
from .steps import Hardware, eval_stage, figure_stage, train_stage

# DESIGN.md "The paper's figures"
PAPER_T1 = {"monkaa": 1.158, "gopro": 2.077, "gopro_ft": 2.038, "nfs_ft": 1.958, "jin": 5.875}
# label suffix, ModelConfig fields, paper's min-EPE on GoPro
ABLATIONS = (
    ("STN + RB", "", {}, 2.077),
    ("no STN", "-nostn", {"stn": False}, 2.263),
    ("no RB", "-norb", {"rb": False}, 2.383),
    ("neither (U-net)", "-unet", {"arch": "unet"}, 2.748),
)


def _gopro_scratch(
    scale: Scale, gopro: datasets.Data, hw: Hardware, suffix: str = "", model: dict | None = None
) -> Stage:
    """GoPro from scratch on the 120-epoch schedule (the paper's for GoPro); Table 3's STN + RB row is
    this very stage, so it runs once for both tables."""
    config = {**scale.model, **(model or {})}
    return train_stage(f"train-gopro{suffix}", gopro.shards, config, scale.train_options("finetune"), hw)


def _label_note(scale: Scale) -> str:
    flow = scale.labeller["flow"] + (f" ({scale.labeller['ckpt']} weights)" if "ckpt" in scale.labeller else "")
    return (
        f"GoPro and NfS are scored against pseudo-ground truth: {flow} between the sharp first and last frames "
        "of each window, over the pixels its forward-backward check keeps. Label noise floor: the same "
        "labeller on the true sharp end frames of synthetic frame trees against their exact flow "
        "(`blurgen.audit.audit`, EPE fwd over the kept pixels)."
    )


def table1(scale: Scale, roots: dict, hw: Hardware) -> Table:
    monkaa, gopro, nfs = (make(scale, roots, hw) for make in (datasets.monkaa, datasets.gopro, datasets.nfs))
    scratch, finetune = scale.train_options("scratch"), scale.train_options("finetune")
    t_monkaa = train_stage("train-monkaa", monkaa.shards, scale.model, scratch, hw)
    t_gopro = _gopro_scratch(scale, gopro, hw)
    t_gopro_ft = train_stage("train-gopro-ft", gopro.shards, scale.model, finetune, hw, init=t_monkaa)
    t_nfs_ft = train_stage("train-nfs-ft", nfs.shards, scale.model, finetune, hw, init=t_monkaa)

    def row(name, paper, trained, data):
        ev = eval_stage(f"eval-{trained.label.removeprefix('train-')}", trained, data.shards, hw)
        return Row(name, paper, ev, trained, data.floor, data.source)

    rows = [
        row("Monkaa, from scratch (300-epoch schedule)", PAPER_T1["monkaa"], t_monkaa, monkaa),
        row("GoPro, from scratch (120-epoch schedule)", PAPER_T1["gopro"], t_gopro, gopro),
        row("GoPro, fine-tuned from Monkaa (120-epoch schedule)", PAPER_T1["gopro_ft"], t_gopro_ft, gopro),
        row("NfS, fine-tuned from Monkaa (120-epoch schedule)", PAPER_T1["nfs_ft"], t_nfs_ft, nfs),
        Row("GoPro, PWC-Net on frames restored by Jin et al.", PAPER_T1["jin"], note="not run: see the note"),
    ]
    figures = {
        "Monkaa": (figure_stage("figure-monkaa", t_monkaa, monkaa.shards, hw), True),
        "GoPro": (figure_stage("figure-gopro", t_gopro_ft, gopro.shards, hw), False),
        "NfS": (figure_stage("figure-nfs", t_nfs_ft, nfs.shards, hw), False),
    }
    notes = [
        "Ours and zero flow: mean over test images of per-image min(EPE vs flow_fwd, EPE vs flow_bwd), px, over "
        "valid pixels (`b2f.evaluate.evaluate`); zero flow is the same score of a flow of zeros.",
        _label_note(scale),
        "Jin et al.'s row (5.875) is the paper's: their frame-restoration weights are not part of this project, "
        "so that row is not reproduced.",
    ]
    return Table("table1", "Table 1: optical flow from one blurred image (min EPE, px)", rows, figures, notes)


def table3(scale: Scale, roots: dict, hw: Hardware) -> Table:
    gopro = datasets.gopro(scale, roots, hw)
    rows = []
    for name, suffix, model, paper in ABLATIONS:
        trained = _gopro_scratch(scale, gopro, hw, suffix, model)
        ev = eval_stage(f"eval-gopro{suffix}", trained, gopro.shards, hw)
        rows.append(Row(name, paper, ev, trained, gopro.floor, gopro.source))
    notes = [
        "All four from scratch on the same GoPro shards and schedule; `b2f.model.ModelConfig(arch=..., stn=..., "
        "rb=...)`. STN + RB is Table 1's GoPro-from-scratch model (the same stage).",
        _label_note(scale),
    ]
    return Table("table3", "Table 3: ablations on GoPro (min EPE, px)", rows, {}, notes)
