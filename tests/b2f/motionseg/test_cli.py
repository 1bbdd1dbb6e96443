"""b2f-segment in-process: masks from flow files and from a B2F-net, and one-line errors that write nothing."""

import cv2
import numpy as np
import pytest
import torch
from helpers import error_line, invoke, tiny_model_config

from b2f.checkpoint import save_model
from b2f.model import build_model
from b2f.motionseg.cli import main
from b2f.motionseg.metrics import counts, iou
from blurgen.core.flow_io import write_flow
from blurgen.core.images import read_image, write_image


def segment_cli(capsys, *args):
    """(exit code, stdout, stderr) of ``b2f-segment ARGS``."""
    return invoke(main, capsys, *args)


def read_mask(path):
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert mask.ndim == 2 and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
    return mask == 255


@pytest.fixture
def inputs(scenes, render, tmp_path):
    """Blurred images of two scenes with their exact flows as .flo and .npy files (the second negated)."""
    made = {}
    for name, fmt, sign in (("square patch", "flo", 1), ("all three", "npy", -1)):
        scene, flow, truth = scenes[name]
        stem = name.replace(" ", "_")
        write_image(tmp_path / "in" / f"{stem}.png", render(scene)["blurred"])
        write_flow(tmp_path / "in" / f"{stem}.{fmt}", sign * flow)
        made[stem] = (tmp_path / "in" / f"{stem}.png", tmp_path / "in" / f"{stem}.{fmt}", truth)
    return made


def test_masks_and_overlays_from_flow_files(inputs, tmp_path, capsys):
    images = [v[0] for v in inputs.values()]
    flows = [a for v in inputs.values() for a in ("--flow", v[1])]
    code, out, err = segment_cli(capsys, *images, *flows, "-o", tmp_path / "out")
    assert code == 0 and "2 masks" in out
    for stem, (image, _, truth) in inputs.items():
        mask = read_mask(tmp_path / "out" / f"{stem}_mask.png")
        assert iou(counts(mask, truth)) >= 0.9 if truth.any() else mask.sum() == 0
        over, rgb = read_image(tmp_path / "out" / f"{stem}_overlay.png"), read_image(image)
        assert np.array_equal(over[~mask], rgb[~mask])  # untouched outside the mask (its outline lies inside)
        if mask.any():  # tinted red inside
            assert (over[mask][:, 0].astype(int) - rgb[mask][:, 0]).mean() > 20
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{s}_{k}.png" for s in inputs for k in ("mask", "overlay")
    )  # no temporary files left


def test_masks_from_a_checkpoint(inputs, tmp_path, capsys):
    """With random weights the flow means nothing; the mask must be that of the model's own flow."""
    torch.manual_seed(0)
    model = build_model(tiny_model_config()).eval()
    save_model(tmp_path / "model.pt", model, tiny_model_config())
    image = inputs["square_patch"][0]
    code, _, err = segment_cli(
        capsys, image, "--ckpt", tmp_path / "model.pt", "-o", tmp_path / "out", "--device", "cpu"
    )
    assert code == 0, err
    rgb = torch.from_numpy(read_image(image)).permute(2, 0, 1)[None].float() / 255
    flow = model.predict(rgb)[0].permute(1, 2, 0).numpy()
    write_flow(tmp_path / "model_flow.npy", flow)
    code, _, err = segment_cli(capsys, image, "--flow", tmp_path / "model_flow.npy", "-o", tmp_path / "from_file")
    assert code == 0, err
    assert np.array_equal(
        read_mask(tmp_path / "out" / "square_patch_mask.png"),
        read_mask(tmp_path / "from_file" / "square_patch_mask.png"),
    )


def test_bad_inputs_are_one_line_and_write_nothing(inputs, tmp_path, capsys):
    image, flow, _ = inputs["square_patch"]
    other_image, other_flow, _ = inputs["all_three"]
    small = tmp_path / "small.npy"
    np.save(small, np.zeros((40, 96, 2), np.float32))
    nan = tmp_path / "nan.flo"
    bad = np.zeros((96, 96, 2), np.float32)
    bad[3, 4] = np.nan
    write_flow(nan, bad)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    twin = tmp_path / "elsewhere" / image.name  # same stem as image, in another folder
    write_image(twin, read_image(image))
    out = tmp_path / "out"
    cases = [
        ((image, twin, "--flow", flow, "--flow", flow), "same name as"),
        ((image, "--flow", small), "small.npy: flow is 96x40 but"),
        ((image, "--flow", nan), "nan.flo: 1 flow vectors are NaN"),
        ((junk, "--flow", flow), "junk.png: not a readable image"),
        ((image, "--flow", tmp_path / "missing.flo"), "missing.flo: flow file not found"),
        ((image, other_image, "--flow", flow), "2 images but 1 --flow files"),
        ((image,), "pass either one --flow FILE per image or --ckpt CKPT"),
        ((image, "--flow", flow, "--ckpt", tmp_path / "model.pt"), "pass either one"),
        ((image, other_image, "--flow", flow, "--flow", tmp_path / "missing.flo"), "missing.flo"),
        ((image, "--ckpt", junk), "junk.png: not a readable checkpoint"),
    ]
    for args, message in cases:
        code, stdout, err = segment_cli(capsys, *args, "-o", out)
        assert code == 2 and stdout == "", (args, err)
        assert message in error_line(err) and err.count("\n") == 1, (args, err)
        assert not out.exists(), args


def test_an_input_is_never_overwritten(inputs, tmp_path, capsys):
    image, flow, _ = inputs["square_patch"]
    folder = image.parent
    decoy = folder / "square_patch_mask.png"  # an input that the output for square_patch.png would replace
    write_image(decoy, np.full((96, 96, 3), 7, np.uint8))
    before = decoy.read_bytes()
    code, _, err = segment_cli(capsys, image, decoy, "--flow", flow, "--flow", flow, "-o", folder)
    assert code == 2 and "is an input and would be overwritten" in error_line(err)
    assert decoy.read_bytes() == before and not (folder / "square_patch_overlay.png").exists()
