"""Table 2 of the paper as stages: non-blind deconvolution with B2F-net's flow on Gong-style blur of BSDS500.

Per preset (BSD-M, BSD-S): `blurgen gong` shards of BSDS500 (train: 200 images, test: val + test, 300
images), B2F-net trained on that preset's blur of the train images, and `b2f.deblur`'s evaluation on the
test images (blurred input, deconvolution with the ground-truth flow, with B2F-net's, with one uniform
kernel), the paper's rows beside.
"""

import json
from dataclasses import MISSING, fields
from pathlib import Path

import numpy as np

from b2f.deblur.evaluate import evaluate_deblur, format_table
from b2f.deblur.priors import EPLL, HyperLaplacian, fit_prior
from blurgen.core.errors import BlurgenError
from blurgen.core.files import atomic_write_text
from blurgen.core.images import write_image
from blurgen.sources.gong import BSDS_IMAGES, GongOptions, gong_images, make_gong

from .report import Table
from .scale import Scale
from .stage import Stage, folder, recorded, result
from .steps import Hardware, train_stage

PRESETS = {"bsd-m": "BSD-M", "bsd-s": "BSD-S"}


def photos_stage(options: dict) -> Stage:
    """scikit-image's bundled photos in BSDS500's layout (smoke): ``count`` train and test photos each,
    centre crops of ``size`` (H, W), named as BSDS500 names its files."""

    def action(out: Path, inputs: dict[str, Path]) -> dict:
        import skimage.data

        from blurgen.sources.synthetic.textures import SKIMAGE_PHOTOS

        h, w = options["size"]
        photos = [np.asarray(getattr(skimage.data, name)()) for name in SKIMAGE_PHOTOS]
        photos = [np.dstack([p] * 3) if p.ndim == 2 else p[..., :3] for p in photos if min(p.shape[:2]) >= max(h, w)]
        n = options["count"]
        if len(photos) < 2 * n:
            raise BlurgenError(f"scikit-image has {len(photos)} photos of at least {max(h, w)} px; ask for fewer")
        for i, photo in enumerate(photos[: 2 * n]):
            y, x = (photo.shape[0] - h) // 2, (photo.shape[1] - w) // 2
            split = "train" if i < n else "test"
            write_image(out / BSDS_IMAGES / split / f"{100000 + i}.jpg", photo[y : y + h, x : x + w])
        return {"images": {split: len(files) for split, files in gong_images(out).items()}}

    return Stage("photos", "bsds-photos", options, action)


def gong_stage(preset: str, part: str, root: str | Stage, options: dict, hw: Hardware) -> Stage:
    """`blurgen gong` shards of one preset: BSDS500's train split and its test split (val + test)."""
    tree = root if isinstance(root, Stage) else None
    config = {"preset": preset, **options, "root": None if tree else str(Path(root).resolve())}

    def action(out: Path, inputs: dict[str, Path]) -> dict:
        where = str(inputs["photos"] if tree else root)
        made = make_gong(out, GongOptions(root=where, preset=preset, **options), workers=hw.workers)
        return {"samples": {split: s["samples"] for split, s in made.manifest["splits"].items()}}

    return Stage("shards", f"gong-{preset}-{part}", config, action, {"photos": tree} if tree else {})


def prior_stage(root: str | Stage, options: dict) -> Stage:
    """The EPLL patch prior (`b2f.deblur.priors.fit_prior`) fitted to BSDS500's train images."""
    tree = root if isinstance(root, Stage) else None
    config = {**options, "root": None if tree else str(Path(root).resolve())}

    def action(out: Path, inputs: dict[str, Path]) -> dict:
        images = gong_images(inputs["photos"] if tree else root)["train"]
        prior = fit_prior(images, out / "prior.npz", **options)
        return {"components": len(prior["weights"]), "images": len(images)}

    return Stage("prior", "epll-prior", config, action, {"photos": tree} if tree else {})


def prior_parameters(prior: str) -> dict:
    """The parameters ``b2f.deblur`` runs the prior named ``prior`` with: its class's defaults (λ, β
    schedule, CG steps, …), less the mixture, which is the prior stage's. Part of a deblurring stage's
    config, so a change of defaults names a new stage instead of resuming a table made with the old ones."""
    classes = {"hyper-laplacian": HyperLaplacian, "epll": EPLL}
    if prior not in classes:
        raise BlurgenError(f"unknown deblurring prior '{prior}'; use one of {', '.join(classes)}")
    return {f.name: f.default for f in fields(classes[prior]) if f.init and f.default is not MISSING}


def deblur_stage(preset: str, trained: Stage, shards: Stage, prior: str, fitted: Stage | None, hw: Hardware) -> Stage:
    """`b2f.deblur.evaluate.evaluate_deblur` on the test split with the trained model's flow."""

    def action(out: Path, inputs: dict[str, Path]) -> dict:
        report = evaluate_deblur(
            inputs["shards"],
            "test",
            ckpt=inputs["model"] / "model.pt",
            prior=prior,
            gmm=inputs["prior"] / "prior.npz" if fitted else None,
            device=hw.device,
            figure=out / "figure.png",
            progress=hw.progress,
        )
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "deblur.json", json.dumps(report, indent=1) + "\n")
        return {k: report[k] for k in ("preset", "images", "prior", "rows")}

    inputs = {"model": trained, "shards": shards, **({"prior": fitted} if fitted else {})}
    config = {"preset": preset, "prior": prior, "parameters": prior_parameters(prior), "split": "test"}
    return Stage("deblur", f"deblur-{preset}", config, action, inputs)


def _render(run: Path, table: Table) -> list[str]:
    """b2f.deblur's table (ours, then the paper's rows) and what is behind each column."""
    done = [(s, result(run, s)) for s in table.extra if s.kind == "deblur"]
    reports = [json.loads((folder(run, s) / "out" / "deblur.json").read_text()) for s, d in done if d]
    if len(reports) < len(done):
        return ["Not run (a deblurring stage has not finished)."]
    lines = format_table(*reports).splitlines()
    for stage, _ in done:
        (test,) = recorded(run, stage.inputs["shards"], "samples.test")
        samples, epochs = recorded(run, stage.inputs["model"], "train_samples", "epochs")
        lines.append(
            f"\n- {PRESETS[stage.config['preset']]}: {test} test images (`{stage.inputs['shards'].name}`); "
            f"B2F-net trained on this preset's blur of the train images, {samples} samples × "
            f"{epochs} epochs, from scratch (`{stage.inputs['model'].name}`); `{stage.name}`\n\n"
            f"  ![{PRESETS[stage.config['preset']]}](stages/{stage.name}/out/figure.png)"
        )
    return lines


def table2(scale: Scale, roots: dict, hw: Hardware) -> Table:
    if scale.bsds is not None:
        root = photos_stage(scale.bsds)
        source = "scikit-image photos in BSDS500's layout"
    elif not roots.get("bsds"):
        raise BlurgenError(
            "--scale full needs --bsds ROOT (BSDS500, with BSR/BSDS500/data/images); or run --scale smoke"
        )
    else:
        root = roots["bsds"]
        if not (Path(root) / BSDS_IMAGES).is_dir():
            raise BlurgenError(f"--bsds {root}: no {BSDS_IMAGES} inside; pass the folder BSDS500 unpacked to")
        source = f"BSDS500 at {root}"
    prior, fitted = scale.deblur_prior
    fit = prior_stage(root, fitted) if prior == "epll" else None
    stages = []
    for preset in PRESETS:
        # the paper's 300 test images once each; more draws per train image to train on
        test = gong_stage(preset, "test", root, {**scale.gong, "per_image": 1}, hw)
        train = gong_stage(preset, "train", root, scale.gong, hw)
        trained = train_stage(f"train-{preset}", train, scale.model, scale.train_options("finetune"), hw)
        stages.append(deblur_stage(preset, trained, test, prior, fit, hw))
    notes = [
        f"Data: {source}; Gong et al.'s motion flows (`blurgen gong`, presets bsd-m and bsd-s, maximum displacement "
        "17 and 36 px). Deconvolution: `b2f.deblur` (half-quadratic splitting, conjugate gradients on the line-blur "
        f"operator), prior: {prior}. PSNR (dB) / SSIM of the restored image against the sharp photo (scikit-image); "
        "the blurred input's scores are the baseline. The paper's Sun et al., Gong et al. and B2F rows are its own.",
        "Figures: the first test images, blurred | B2F-net's flow | deblurred with it | sharp.",
    ]
    return Table("table2", "Table 2: deblurring with the flow (PSNR dB / SSIM)", [], {}, notes, stages, _render)
